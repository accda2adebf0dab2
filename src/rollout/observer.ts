/**
 * What the drivers of a release wait on, observed once for all of them. Each driver waits for
 * its new version's pods (and, at promotion, the stable Deployment) and for requests from other
 * CLIs (promote, abort). Twenty drivers that each read their two objects every 100 ms sent about
 * 400 GETs a second to one API server, and queued behind each other; here one watch per
 * namespace of the release's Deployments (selected by their service label) and one of its
 * request ConfigMaps feed every driver, and a driver waits for a change of what it waits on
 * instead of a timer. Without list and watch (a role that may only get by name), drivers read
 * by GET as before (DirectReads).
 *
 * A copy from the watch can lag behind this CLI's own last write by the watch's latency: callers
 * that wait for the effect of a write compare the copy's metadata.generation with the one that
 * write returned (Workload does), and a request acted on is never answered again (consumed), even
 * before its deletion is observed.
 */
import type {Deployment} from '../kubernetes/kinds.js'
import {kubeError} from '../kubernetes/client.js'
import {LABEL} from '../kubernetes/labels.js'
import type {KubeObjects, Obj} from '../kubernetes/objects.js'
import {apiListWatch, WatchedCollection, type ListWatchSource} from '../kubernetes/watch.js'
import {interrupted} from '../ui/context.js'
import type {Output} from '../ui/output.js'
import {PATHS} from './kube.js'
import {pendingRequestOf, requestName, type PendingRequest, type StateStore} from './store.js'
import type {RolloutState} from './types.js'

/** How often a driver without the shared observer reads again (DirectReads), as before it. */
export const DIRECT_POLL_MS = 100

export interface WaitOptions {
  signal?: AbortSignal
  pollMs?: number
}

export interface RolloutReads {
  /** watch: shared watches; poll: shared lists (a watch could not be opened); direct: a GET per read. */
  readonly mode: 'watch' | 'poll' | 'direct'
  /** A Deployment of the release as last observed (read directly when it is not observed); undefined when absent. */
  deployment(namespace: string, name: string): Promise<Deployment | undefined>
  /** The pending request for a service, unless this CLI has acted on it already. */
  request(namespace: string, service: string): Promise<PendingRequest | undefined>
  /** A request this CLI acted on and deleted: never answered again. */
  consumed(namespace: string, service: string, resourceVersion: string): void
  /**
   * Resolves when a Deployment named in `names` or the service's request changes, or a member
   * of the release changes (notify), or after ms, whichever comes first; an abort of signal rejects.
   * Direct reads see no change without reading again: they wait pollMs (default DIRECT_POLL_MS) at most.
   */
  changed(namespace: string, service: string, names: string[], ms: number, options?: WaitOptions): Promise<void>
  /** A member of the release changed (stored its state): members waiting for the others look again. */
  notify(): void
  close(): Promise<void>
}

/** Wakes waiters by key, or all of them. */
class Wakeups {
  private readonly waiting = new Map<string, Set<() => void>>()

  wake(key?: string): void {
    const sets = key === undefined ? [...this.waiting.values()] : [this.waiting.get(key)]
    for (const set of sets) for (const resolve of set ?? []) resolve()
  }

  wait(keys: string[], ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(interrupted())
      const cleanUp = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        for (const key of keys) this.waiting.get(key)?.delete(done)
      }
      const done = () => {
        cleanUp()
        resolve()
      }
      // The same rejection as every other abortable wait (kubernetes/wait.ts).
      const onAbort = () => {
        cleanUp()
        reject(interrupted())
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', onAbort, {once: true})
      for (const key of keys) {
        if (!this.waiting.has(key)) this.waiting.set(key, new Set())
        this.waiting.get(key)!.add(done)
      }
    })
  }
}

/** Reads each object when asked (a GET), and waits DIRECT_POLL_MS between reads: what every driver did on its own. */
export class DirectReads implements RolloutReads {
  readonly mode = 'direct'
  private readonly done = new Set<string>()
  private readonly wakeups = new Wakeups()

  constructor(
    private readonly kube: KubeObjects,
    private readonly store: StateStore,
  ) {}

  deployment(namespace: string, name: string): Promise<Deployment | undefined> {
    return this.kube.get<Deployment>(PATHS.deployments(namespace), name)
  }

  async request(namespace: string, service: string): Promise<PendingRequest | undefined> {
    const pending = await this.store.readRequest(namespace, service)
    return pending && !this.done.has(`${namespace}/${service}/${pending.resourceVersion}`) ? pending : undefined
  }

  consumed(namespace: string, service: string, resourceVersion: string): void {
    this.done.add(`${namespace}/${service}/${resourceVersion}`)
  }

  changed(
    _namespace: string,
    _service: string,
    _names: string[],
    ms: number,
    options: WaitOptions = {},
  ): Promise<void> {
    return this.wakeups.wait(['release'], Math.min(ms, options.pollMs ?? DIRECT_POLL_MS), options.signal)
  }

  notify(): void {
    this.wakeups.wake('release')
  }

  async close(): Promise<void> {}
}

/** Where the observed collections of one namespace come from (the API server; a test may give its own). */
export interface NamespaceSources {
  deployments: ListWatchSource<Deployment>
  requests: ListWatchSource<Obj>
}

/** The label selectors the release's collections are watched with: its services' Deployments, and rollout requests. */
export function observedSelectors(services: string[]): {deployments: string; requests: string} {
  return {
    deployments: `${LABEL.service} in (${[...new Set(services)].sort().join(',')})`,
    requests: 'retailops.dev/rollout-request=true',
  }
}

export function apiSources(kube: KubeObjects, namespace: string, services: string[]): NamespaceSources {
  const selectors = observedSelectors(services)
  return {
    deployments: apiListWatch<Deployment>(kube.http, PATHS.deployments(namespace), {
      labelSelector: selectors.deployments,
    }),
    requests: apiListWatch<Obj>(kube.http, PATHS.configmaps(namespace), {labelSelector: selectors.requests}),
  }
}

export interface ObserverOptions {
  /** Between lists when a watch cannot be opened. */
  pollMs?: number
  out?: Output
}

/** One namespace's two collections and the wake-ups their changes cause. */
class NamespaceView {
  constructor(
    readonly deployments: WatchedCollection<Deployment>,
    readonly requests: WatchedCollection<Obj>,
  ) {}
}

/** The shared observer of a release: one NamespaceView per namespace its rollouts live in. */
export class ReleaseObserver implements RolloutReads {
  private readonly wakeups = new Wakeups()
  private readonly done = new Set<string>()
  /** Deployments found by a direct read but not observed (no service label): no change of theirs wakes anyone. */
  private readonly unobserved = new Set<string>()

  private constructor(
    private readonly views: Map<string, NamespaceView>,
    private readonly direct: DirectReads,
  ) {}

  get mode(): 'watch' | 'poll' {
    return [...this.views.values()].some((v) => v.deployments.mode === 'poll' || v.requests.mode === 'poll')
      ? 'poll'
      : 'watch'
  }

  /** What the collections have done (lists, watches, events, relists): for tests and benchmarks. */
  counts(namespace: string): {
    deployments: WatchedCollection<Deployment>['counts']
    requests: WatchedCollection<Obj>['counts']
  } {
    const view = this.views.get(namespace)!
    return {deployments: view.deployments.counts, requests: view.requests.counts}
  }

  /**
   * Starts watching every namespace of the release. Rejects when a first list fails (the caller
   * then reads directly: DirectReads), after closing what had started.
   */
  static async start(
    kube: KubeObjects,
    store: StateStore,
    states: Pick<RolloutState, 'namespace' | 'service'>[],
    options: ObserverOptions & {sources?: (namespace: string, services: string[]) => NamespaceSources} = {},
  ): Promise<ReleaseObserver> {
    const byNamespace = new Map<string, string[]>()
    for (const s of states) byNamespace.set(s.namespace, [...(byNamespace.get(s.namespace) ?? []), s.service])
    const views = new Map<string, NamespaceView>()
    const observer = new ReleaseObserver(views, new DirectReads(kube, store))
    const sources = options.sources ?? ((ns, services) => apiSources(kube, ns, services))
    const collectionOptions = (what: string) => ({
      pollMs: options.pollMs ?? DIRECT_POLL_MS,
      onPolling: (reason: string) =>
        options.out?.debug(`rollout: the watch of ${what} could not be opened (${reason}); listing them instead`),
    })
    try {
      for (const [namespace, services] of byNamespace) {
        const source = sources(namespace, services)
        const view = new NamespaceView(
          new WatchedCollection(source.deployments, collectionOptions(`Deployments in ${namespace}`)),
          new WatchedCollection(source.requests, collectionOptions(`rollout requests in ${namespace}`)),
        )
        views.set(namespace, view)
        view.deployments.subscribe((name) => observer.wakeups.wake(`${namespace}/${name}`))
        view.requests.subscribe((name) => observer.wakeups.wake(`${namespace}/${name}`))
        await Promise.all([view.deployments.start(), view.requests.start()])
      }
    } catch (error) {
      await observer.close()
      throw error
    }
    return observer
  }

  async deployment(namespace: string, name: string): Promise<Deployment | undefined> {
    const view = this.views.get(namespace)
    let observed: Deployment | undefined
    try {
      observed = view?.deployments.get(name)
    } catch (error) {
      throw kubeError(error, `listing Deployments in ${namespace}`)
    }
    if (observed) return observed
    // Not observed (another namespace, or a Deployment without the service label): read it.
    const read = await this.direct.deployment(namespace, name)
    if (read) this.unobserved.add(`${namespace}/${name}`)
    return read
  }

  async request(namespace: string, service: string): Promise<PendingRequest | undefined> {
    const view = this.views.get(namespace)
    if (!view) return this.direct.request(namespace, service)
    let cm: Obj | undefined
    try {
      cm = view.requests.get(requestName(service))
    } catch (error) {
      throw kubeError(error, `listing rollout requests in ${namespace}`)
    }
    const pending = pendingRequestOf(cm)
    return pending && !this.done.has(`${namespace}/${service}/${pending.resourceVersion}`) ? pending : undefined
  }

  consumed(namespace: string, service: string, resourceVersion: string): void {
    this.done.add(`${namespace}/${service}/${resourceVersion}`)
    this.direct.consumed(namespace, service, resourceVersion)
  }

  changed(namespace: string, service: string, names: string[], ms: number, options: WaitOptions = {}): Promise<void> {
    if (!this.views.has(namespace) || names.some((n) => this.unobserved.has(`${namespace}/${n}`)))
      return this.direct.changed(namespace, service, names, ms, options)
    return this.wakeups.wait(
      [...names.map((n) => `${namespace}/${n}`), `${namespace}/${requestName(service)}`, 'release'],
      ms,
      options.signal,
    )
  }

  notify(): void {
    this.wakeups.wake('release')
  }

  async close(): Promise<void> {
    await Promise.all([...this.views.values()].flatMap((v) => [v.deployments.close(), v.requests.close()]))
  }
}

/**
 * The reads a release's drivers share: the observer, or direct reads when it cannot start (a first
 * list refused or failing), said once at debug level.
 */
export async function releaseReads(
  kube: KubeObjects,
  store: StateStore,
  states: Pick<RolloutState, 'namespace' | 'service'>[],
  out?: Output,
): Promise<RolloutReads> {
  try {
    return await ReleaseObserver.start(kube, store, states, {out})
  } catch (error) {
    out?.debug(
      `rollout: cannot list the release's Deployments and requests (${(error as Error).message}); reading each one directly`,
    )
    return new DirectReads(kube, store)
  }
}
