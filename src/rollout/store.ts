/**
 * Rollout state in the cluster: one ConfigMap per service, `retailops-rollout-<service>`, with
 * the current rollout (`state.json`) and past rollouts (`history.json`), and a second one,
 * `retailops-rollout-<service>.request`, with a pending request from another CLI (promote,
 * abort). Only the CLI holding the rollout's lease (inside the state) writes the state, and every
 * write is a compare-and-swap: create-if-absent, or replace with the resourceVersion it last read
 * or wrote. A 409 means another CLI wrote the state: it has taken the rollout over (or started
 * one), so this CLI stops; it never re-reads and overwrites.
 */
import {readFileSync, readlinkSync} from 'node:fs'
import os from 'node:os'
import {randomUUID} from 'node:crypto'

import {RetailOpsError} from '../errors/index.js'
import {kubeError} from '../kubernetes/client.js'
import {redactDeep} from '../ui/secrets.js'
import type {Obj, KubeObjects} from '../kubernetes/objects.js'
import {KubeHttpError} from '../kubernetes/http.js'
import {PATHS} from './kube.js'
import type {HistoryEntry, Lease, RolloutRequest, RolloutState} from './types.js'

export const STATE_PREFIX = 'retailops-rollout-'
const TERMINAL = new Set(['Healthy', 'Aborted', 'TimedOut'])
export const HISTORY_LIMIT = 10
export const LEASE_TTL_SECONDS = 20

export function stateName(service: string): string {
  return `${STATE_PREFIX}${service}`
}

/** Service names are DNS labels (no dots): the `.request` suffix never names another service's state. */
export function requestName(service: string): string {
  return `${STATE_PREFIX}${service}.request`
}

/** The variable a detached Job's pod gets: the run id the lease was handed over to (`deploy --detach`). */
export const RUN_ID_ENV = 'RETAILOPS_RUN_ID'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * This run of the CLI: unique per process (two CI containers may share a hostname and a pid). A
 * detached rollout's Job is given its id in RETAILOPS_RUN_ID, so the lease handed to it is its own.
 */
export const RUN_ID = UUID.test(process.env[RUN_ID_ENV] ?? '') ? process.env[RUN_ID_ENV]! : randomUUID()

/** The CI job this CLI runs in, from the usual CI variables, if any. */
export function ciJob(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.GITHUB_RUN_ID)
    return `github ${env.GITHUB_REPOSITORY ?? ''} run ${env.GITHUB_RUN_ID}${env.GITHUB_RUN_ATTEMPT ? `.${env.GITHUB_RUN_ATTEMPT}` : ''}${env.GITHUB_JOB ? ` job ${env.GITHUB_JOB}` : ''}`.replace(
      /\s+/g,
      ' ',
    )
  if (env.GITLAB_CI && env.CI_JOB_ID) return `gitlab job ${env.CI_JOB_ID}${env.CI_JOB_URL ? ` ${env.CI_JOB_URL}` : ''}`
  if (env.BUILDKITE_JOB_ID) return `buildkite job ${env.BUILDKITE_JOB_ID}`
  if (env.CIRCLE_WORKFLOW_JOB_ID ?? env.CIRCLE_BUILD_NUM)
    return `circleci job ${env.CIRCLE_WORKFLOW_JOB_ID ?? env.CIRCLE_BUILD_NUM}`
  if (env.JENKINS_URL && env.BUILD_TAG) return `jenkins ${env.BUILD_TAG}`
  if (env.TF_BUILD && env.BUILD_BUILDID) return `azure build ${env.BUILD_BUILDID}`
  if (env.CI_JOB_ID) return `ci job ${env.CI_JOB_ID}`
  return undefined
}

function readQuietly(read: () => string): string | undefined {
  try {
    return read().trim()
  } catch {
    return undefined
  }
}

/**
 * Where this process runs, precisely enough to tell whether a lease's pid is a process we can
 * see: the same host name, boot and pid namespace (a container on the same host name has its
 * own pid namespace, so its pids say nothing here).
 */
const PROCESS_SPACE = [
  os.hostname(),
  readQuietly(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')) ?? '',
  readQuietly(() => readlinkSync('/proc/self/ns/pid')) ?? '',
].join('|')

/** Who this process is, for leases and requests: "host/pid/run-id prefix". */
export const HOLDER = `${os.hostname()}/${process.pid}/${RUN_ID.slice(0, 8)}`

/** A request from another CLI, with the resourceVersion that deleting it is conditional on. */
export interface PendingRequest {
  request: RolloutRequest
  resourceVersion: string
}

/** The request a request ConfigMap holds (read or observed), if it holds one. */
export function pendingRequestOf(cm: Obj | undefined): PendingRequest | undefined {
  const request = parse<RolloutRequest>(cm?.data?.['request.json'])
  return cm && request ? {request, resourceVersion: cm.metadata.resourceVersion!} : undefined
}

export interface Stored {
  state?: RolloutState
  history: HistoryEntry[]
  request?: RolloutRequest
  resourceVersion?: string
}

function parse<T>(text: string | undefined): T | undefined {
  if (!text) return undefined
  try {
    return JSON.parse(text) as T
  } catch {
    return undefined
  }
}

/** A lease in words: "host ci-7 (pid 42, run 3f2a…, github run 99 job deploy) since …, renewed …". */
export function describeLease(l: Lease): string {
  if (l.job?.pending)
    return `Job ${l.job.namespace}/${l.job.name} (detached${l.job.by ? ` by ${l.job.by}` : ''}; its pod has not started driving yet, run ${l.id}) since ${l.acquiredAt}`
  const job = l.job ? `Job ${l.job.namespace}/${l.job.name}, pod ` : ''
  return `${job}${l.host} (pid ${l.pid}, run ${l.id ?? l.holder}${l.ci ? `, ${l.ci}` : ''}) since ${l.acquiredAt}, last renewed ${l.renewedAt}`
}

/** Another CLI drives (or has just claimed) the rollout: exit 13, naming it and how to take over. */
export class RolloutHeldError extends RetailOpsError {
  constructor(message: string, service: string, lease?: Lease, extra: string[] = []) {
    super('ROLLOUT_HELD', message, {
      nextSteps: [
        ...extra,
        '`retailops rollout promote` and `retailops rollout abort` signal the CLI that drives it; no need to stop it.',
        lease
          ? `If that CLI is gone, its lease expires ${lease.ttlSeconds}s after ${lease.renewedAt}; \`retailops rollout resume ${service}\` then takes over (it waits for the expiry).`
          : `\`retailops rollout status ${service}\` shows who drives it.`,
        `To take over a lease that is still renewed (a hung job): \`retailops rollout resume ${service} --take-over --reason "…"\` (recorded; the other CLI stops at its next write).`,
      ],
      details: {service, ...(lease ? {lease} : {})},
    })
  }
}

/** The state ConfigMap of a service; with a resourceVersion, a replace conditional on it. */
function stateConfigMap(
  namespace: string,
  service: string,
  parts: {annotations: Record<string, string>; resourceVersion?: string; data: Record<string, string>},
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: stateName(service),
      namespace,
      labels: {
        'app.kubernetes.io/managed-by': 'retailops',
        'retailops.dev/service': service,
        'retailops.dev/rollout-state': 'true',
      },
      annotations: parts.annotations,
      ...(parts.resourceVersion ? {resourceVersion: parts.resourceVersion} : {}),
    },
    data: parts.data,
  }
}

export class StateStore {
  /** The resourceVersion this process last read or wrote per ConfigMap: the precondition of its next write. */
  private versions = new Map<string, string>()
  private histories = new Map<string, HistoryEntry[]>()

  constructor(private readonly kube: KubeObjects) {}

  /**
   * The stored rollout of a service. With `forWrite`, what was read becomes the precondition of
   * this process's next write (the read a decision to write is based on: claiming, taking the
   * lease); any other read leaves the precondition alone, so a CLI never writes over a state it has
   * merely looked at.
   */
  async read(namespace: string, service: string, options: {forWrite?: boolean} = {}): Promise<Stored> {
    const key = `${namespace}/${service}`
    const [cm, request] = await Promise.all([
      this.kube.get(PATHS.configmaps(namespace), stateName(service)),
      this.readRequest(namespace, service),
    ])
    if (!cm) {
      if (options.forWrite) {
        this.versions.delete(key)
        this.histories.delete(key)
      }
      return {history: [], request: request?.request}
    }
    const stored: Stored = {
      state: parse<RolloutState>(cm.data?.['state.json']),
      history: parse<HistoryEntry[]>(cm.data?.['history.json']) ?? [],
      request: request?.request,
      resourceVersion: cm.metadata.resourceVersion,
    }
    if (options.forWrite) {
      this.versions.set(key, cm.metadata.resourceVersion!)
      this.histories.set(key, stored.history)
    }
    return stored
  }

  /** The pending request for a service, with the resourceVersion that deleting it is conditional on. */
  async readRequest(namespace: string, service: string): Promise<PendingRequest | undefined> {
    return pendingRequestOf(await this.kube.get(PATHS.configmaps(namespace), requestName(service)))
  }

  /** Every rollout state in a namespace with its history, from one list call (the dashboard's view). */
  async listStored(namespace: string): Promise<{state: RolloutState; history: HistoryEntry[]}[]> {
    const items = await this.kube.list(PATHS.configmaps(namespace), 'retailops.dev/rollout-state=true')
    return items.flatMap((cm) => {
      const state = parse<RolloutState>(cm.data?.['state.json'])
      return state ? [{state, history: parse<HistoryEntry[]>(cm.data?.['history.json']) ?? []}] : []
    })
  }

  /** Every rollout state in a namespace (for `rollout status` without a service). */
  async list(namespace: string): Promise<RolloutState[]> {
    const items = await this.kube.list(PATHS.configmaps(namespace), 'retailops.dev/rollout-state=true')
    return items.map((cm) => parse<RolloutState>(cm.data?.['state.json'])).filter((s): s is RolloutState => Boolean(s))
  }

  /**
   * Compare-and-swap: creates the ConfigMap when this process read none, else replaces it with
   * the resourceVersion this process last read or wrote. A 409 (or a 404: it was deleted) means
   * another CLI wrote in between: RolloutHeldError, naming it. Nothing is retried.
   */
  async write(state: RolloutState, options: {history?: HistoryEntry[]} = {}): Promise<void> {
    const key = `${state.namespace}/${state.service}`
    state.updatedAt = new Date().toISOString()
    const version = this.versions.get(key)
    const history = (options.history ?? this.histories.get(key) ?? []).slice(-HISTORY_LIMIT)
    const cm = stateConfigMap(state.namespace, state.service, {
      annotations: {
        'retailops.dev/phase': state.phase,
        'retailops.dev/rollout-id': state.id,
        ...(state.lease ? {'retailops.dev/driven-by': describeLease(state.lease)} : {}),
      },
      resourceVersion: version,
      // Masked like every output: a ConfigMap is readable by anyone who may list the namespace.
      data: {'state.json': JSON.stringify(redactDeep(state)), 'history.json': JSON.stringify(redactDeep(history))},
    })
    try {
      const saved = version
        ? await this.kube.replace(PATHS.configmaps(state.namespace), cm)
        : await this.kube.create(PATHS.configmaps(state.namespace), cm)
      this.versions.set(key, saved.metadata.resourceVersion!)
      this.histories.set(key, history)
    } catch (error) {
      const code = error instanceof KubeHttpError ? error.statusCode : undefined
      if (code === 409 || (code === 404 && version)) {
        this.versions.delete(key)
        const now = await this.read(state.namespace, state.service).catch(() => undefined)
        const other = now?.state
        const who = other?.lease ? `${describeLease(other.lease)}` : 'another CLI'
        throw new RolloutHeldError(
          other && other.id !== state.id
            ? `Another rollout of ${state.service} (${other.id}, ${other.phase}) was stored by ${who} while this CLI was about to write ${state.id}; this CLI stops and changes nothing more.`
            : `The rollout of ${state.service} was written by ${who} in between (this CLI's write lost the compare-and-swap); this CLI stops driving it.`,
          state.service,
          other?.lease,
        )
      }
      throw kubeError(error, `saving rollout state ${stateName(state.service)}`)
    }
  }

  /**
   * Puts a ConfigMap back as it was before this process claimed it (a release that did not start
   * after all): compare-and-swap as every write, deleted when there was none.
   */
  async restore(namespace: string, service: string, previous: Stored): Promise<void> {
    const key = `${namespace}/${service}`
    const version = this.versions.get(key)
    if (!version) return
    if (!previous.state && previous.history.length === 0) {
      await this.kube.http
        .request('DELETE', `${PATHS.configmaps(namespace)}/${stateName(service)}`, {
          body: {preconditions: {resourceVersion: version}},
        })
        .catch(() => undefined)
      this.versions.delete(key)
      return
    }
    const cm = stateConfigMap(namespace, service, {
      annotations: previous.state
        ? {'retailops.dev/phase': previous.state.phase, 'retailops.dev/rollout-id': previous.state.id}
        : {},
      resourceVersion: version,
      data: {
        ...(previous.state ? {'state.json': JSON.stringify(previous.state)} : {}),
        'history.json': JSON.stringify(previous.history),
      },
    })
    const saved = await this.kube.replace(PATHS.configmaps(namespace), cm).catch(() => undefined)
    if (saved) this.versions.set(key, saved.metadata.resourceVersion!)
  }

  /**
   * Appends a history entry (a forced rolling deploy) to a service that no CLI is rolling out:
   * compare-and-swap like every write; on a conflict it reads again and appends again (an append
   * overwrites nobody), but never while a rollout is in progress.
   */
  async appendHistory(namespace: string, service: string, entry: HistoryEntry): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cm = await this.kube.get(PATHS.configmaps(namespace), stateName(service))
      const state = parse<RolloutState>(cm?.data?.['state.json'])
      if (state && !TERMINAL.has(state.phase))
        throw new RolloutHeldError(
          `A rollout of ${service} (${state.id}, ${state.phase}) started meanwhile; the history entry of this deploy was not written.`,
          service,
          state.lease,
        )
      const history = [...(parse<HistoryEntry[]>(cm?.data?.['history.json']) ?? []), entry].slice(-HISTORY_LIMIT)
      const body = stateConfigMap(namespace, service, {
        annotations: cm?.metadata.annotations ?? {},
        resourceVersion: cm?.metadata.resourceVersion,
        data: {...cm?.data, 'history.json': JSON.stringify(redactDeep(history))},
      })
      try {
        await (cm
          ? this.kube.replace(PATHS.configmaps(namespace), body)
          : this.kube.create(PATHS.configmaps(namespace), body))
        return
      } catch (error) {
        if (error instanceof KubeHttpError && error.statusCode === 409) continue
        throw kubeError(error, `saving rollout history ${stateName(service)}`)
      }
    }
    throw new RolloutHeldError(
      `The rollout history of ${service} kept changing while this CLI appended to it.`,
      service,
    )
  }

  /** A request from another CLI: its own ConfigMap, so it never races the driver's writes of the state. */
  async request(namespace: string, service: string, request: RolloutRequest): Promise<void> {
    await this.kube.apply(PATHS.configmaps(namespace), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: requestName(service),
        namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'retailops',
          'retailops.dev/service': service,
          'retailops.dev/rollout-request': 'true',
        },
      },
      data: {'request.json': JSON.stringify(redactDeep(request))},
    })
  }

  /** Removes a request that was acted on; a newer one (another resourceVersion) stays. */
  async clearRequest(namespace: string, service: string, resourceVersion?: string): Promise<void> {
    try {
      await this.kube.http.request('DELETE', `${PATHS.configmaps(namespace)}/${requestName(service)}`, {
        body: resourceVersion ? {preconditions: {resourceVersion}} : {},
      })
    } catch (error) {
      const code = error instanceof KubeHttpError ? error.statusCode : undefined
      if (code === 404 || code === 409) return
      throw kubeError(error, `removing rollout request ${requestName(service)}`)
    }
  }

  async delete(namespace: string, service: string): Promise<void> {
    await this.kube.delete(PATHS.configmaps(namespace), stateName(service))
    await this.kube.delete(PATHS.configmaps(namespace), requestName(service))
    this.versions.delete(`${namespace}/${service}`)
  }
}

export function leaseAlive(lease: Lease | undefined, now = Date.now()): boolean {
  if (!lease) return false
  if (Date.parse(lease.renewedAt) + lease.ttlSeconds * 1000 < now) return false
  // A holder in this very process space (host, boot, pid namespace) whose process is gone (kill -9)
  // holds nothing. On the same host name elsewhere (another container) the pid says nothing.
  if (lease.processSpace === PROCESS_SPACE && lease.pid !== process.pid) {
    try {
      process.kill(lease.pid, 0)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    }
  }
  return true
}

export function newLease(now = new Date()): Lease {
  return {
    holder: HOLDER,
    id: RUN_ID,
    host: os.hostname(),
    pid: process.pid,
    processSpace: PROCESS_SPACE,
    ci: ciJob(),
    acquiredAt: now.toISOString(),
    renewedAt: now.toISOString(),
    ttlSeconds: LEASE_TTL_SECONDS,
  }
}

export function ownsLease(state: RolloutState): boolean {
  return Boolean(state.lease) && (state.lease!.id ? state.lease!.id === RUN_ID : state.lease!.holder === HOLDER)
}

/** Refuses to drive a rollout another live CLI drives (exit 13, naming it). */
export function assertLeaseFree(state: RolloutState): void {
  if (state.lease && !ownsLease(state) && leaseAlive(state.lease)) {
    throw new RolloutHeldError(
      `The rollout of ${state.service} (${state.id}) is driven by ${describeLease(state.lease)}.`,
      state.service,
      state.lease,
    )
  }
}
