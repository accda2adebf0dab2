import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {formatDuration} from '../config/duration.js'
import {NotFoundError, RetailOpsError} from '../errors/index.js'
import {kubeError, kubeHttp, statusCode} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER_ENV} from '../kubernetes/labels.js'
import {listObjects} from '../kubernetes/objects.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'
import {sleep} from '../kubernetes/wait.js'
import type {RunContext} from '../ui/context.js'
import {PREVIEW, previewNamespace} from './names.js'
import {deleteNamespace, readNamespace} from './preview.js'

/** env list, extend, destroy and sweep: previews are found by their namespace's labels, and only ever their own namespace is touched. */

export interface PreviewInfo {
  name: string
  namespace: string
  owner: string
  created?: string
  expires?: string
  /** Milliseconds since creation. */
  ageMs?: number
  /** Milliseconds left (negative: expired that long ago); undefined when the expiry is unreadable. */
  ttlLeftMs?: number
  expired: boolean
  phase: 'Active' | 'Terminating'
  source?: string
  services: string[]
  /** What the cost engine allocated to the namespace since it was created (filled in by the caller). */
  costSoFar?: number
}

type Namespace = {
  metadata: {
    name: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    creationTimestamp?: string
    deletionTimestamp?: string
    resourceVersion?: string
  }
}

export function previewInfo(ns: Namespace, now: Date): PreviewInfo {
  const a = ns.metadata.annotations ?? {}
  const created = a[PREVIEW.created] ?? ns.metadata.creationTimestamp
  const expiresMs = Date.parse(a[PREVIEW.expires] ?? '')
  return {
    name: ns.metadata.labels?.[PREVIEW.name] ?? ns.metadata.name,
    namespace: ns.metadata.name,
    owner: a[PREVIEW.owner] ?? 'unknown',
    created,
    expires: Number.isNaN(expiresMs) ? undefined : new Date(expiresMs).toISOString(),
    ageMs: created ? now.getTime() - Date.parse(created) : undefined,
    ttlLeftMs: Number.isNaN(expiresMs) ? undefined : expiresMs - now.getTime(),
    expired: !Number.isNaN(expiresMs) && expiresMs <= now.getTime(),
    phase: ns.metadata.deletionTimestamp ? 'Terminating' : 'Active',
    source: a[PREVIEW.source],
    services: (a[PREVIEW.services] ?? '').split(',').filter(Boolean),
  }
}

export async function listPreviewNamespaces(http: KubeHttp, project: string): Promise<Namespace[]> {
  return listObjects<Namespace>(http, collectionPath('Namespace'), {labelSelector: `${PREVIEW.of}=${project}`}).catch(
    (error: unknown) => {
      throw kubeError(error, 'listing preview namespaces')
    },
  )
}

export interface ListPreviewsOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  now?: Date
}

/** Every preview of the project in the environment's cluster, oldest first. */
export async function listPreviews(options: ListPreviewsOptions): Promise<PreviewInfo[]> {
  const now = options.now ?? new Date()
  const http = kubeHttp({context: options.env.context, kubeconfig: options.env.kubeconfig})
  try {
    const list = await listPreviewNamespaces(http, options.project.config.project)
    return list.map((ns) => previewInfo(ns, now)).sort((a, b) => (a.created ?? '').localeCompare(b.created ?? ''))
  } finally {
    http.close()
  }
}

/** The preview's namespace, checked to be this project's preview of that name; NOT_FOUND otherwise. */
async function ownPreview(http: KubeHttp, project: string, name: string): Promise<Namespace> {
  const namespace = previewNamespace(project, name)
  const ns = await readNamespace(http, namespace)
  if (!ns || ns.metadata.labels?.[PREVIEW.of] !== project || ns.metadata.labels?.[PREVIEW.name] !== name) {
    throw new NotFoundError(
      ns
        ? `Namespace ${namespace} is not preview ${name} of project ${project}; it was left alone.`
        : `No preview ${name} of project ${project} (namespace ${namespace} does not exist).`,
      {nextSteps: ['`retailops env list` shows the previews.']},
    )
  }
  return ns
}

export interface ExtendResult {
  name: string
  namespace: string
  previousExpires?: string
  expires: string
  ttl: string
}

/** Sets the preview's expiry to now + ttl (guarded by the namespace's resourceVersion). */
export async function extendPreview(
  options: {project: LoadedConfig; env: ResolvedEnvironment; name: string; ttlMs: number; now?: Date},
  ctx: RunContext,
): Promise<ExtendResult> {
  const project = options.project.config.project
  const now = options.now ?? new Date()
  const http = kubeHttp({context: options.env.context, kubeconfig: options.env.kubeconfig})
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const ns = await ownPreview(http, project, options.name)
      if (ns.metadata.deletionTimestamp)
        throw new NotFoundError(`Preview ${options.name} is being deleted; it cannot be extended.`)
      const expires = new Date(now.getTime() + options.ttlMs).toISOString()
      try {
        await http.request('PATCH', namedPath('Namespace', ns.metadata.name), {
          body: {
            metadata: {
              resourceVersion: ns.metadata.resourceVersion,
              annotations: {[PREVIEW.expires]: expires, [PREVIEW.ttl]: formatDuration(options.ttlMs)},
            },
          },
          contentType: 'application/merge-patch+json',
          query: {fieldManager: FIELD_MANAGER_ENV},
        })
      } catch (error) {
        if (statusCode(error) === 409) continue
        throw kubeError(error, `extending preview ${options.name}`)
      }
      ctx.out.info(`Preview ${options.name} now expires at ${expires}.`)
      return {
        name: options.name,
        namespace: ns.metadata.name,
        previousExpires: ns.metadata.annotations?.[PREVIEW.expires],
        expires,
        ttl: formatDuration(options.ttlMs),
      }
    }
  } finally {
    http.close()
  }
  throw new RetailOpsError('REFUSED', `Preview ${options.name} kept changing while it was extended; try again.`)
}

export interface DestroyResult {
  name: string
  namespace: string
  deleted: boolean
  /** The namespace was gone (all its objects deleted) before the command ended. */
  gone: boolean
}

async function waitGone(http: KubeHttp, namespace: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!(await readNamespace(http, namespace))) return true
    await sleep(1000, signal)
  }
  return false
}

/** Deletes the preview's namespace (and with it everything the preview holds); nothing outside it. */
export async function destroyPreview(
  options: {project: LoadedConfig; env: ResolvedEnvironment; name: string; wait?: boolean; timeoutMs?: number},
  ctx: RunContext,
): Promise<DestroyResult> {
  const http = kubeHttp({context: options.env.context, kubeconfig: options.env.kubeconfig})
  try {
    const ns = await ownPreview(http, options.project.config.project, options.name)
    const task = ctx.out.task(`Deleting preview ${options.name} (namespace ${ns.metadata.name})`)
    if (!ns.metadata.deletionTimestamp) await deleteNamespace(http, ns)
    const gone =
      options.wait === false ? false : await waitGone(http, ns.metadata.name, options.timeoutMs ?? 300_000, ctx.signal)
    task.succeed(gone ? `Preview ${options.name} deleted` : `Preview ${options.name} is being deleted`)
    return {name: options.name, namespace: ns.metadata.name, deleted: true, gone}
  } finally {
    http.close()
  }
}

export interface SweepResult {
  now: string
  deleted: PreviewInfo[]
  kept: PreviewInfo[]
  /** Previews whose expiry cannot be read: never deleted. */
  unreadable: string[]
}

/** Deletes every expired preview of the project, and only those. */
export async function sweepPreviews(
  options: {project: LoadedConfig; env: ResolvedEnvironment; now?: Date; dryRun?: boolean},
  ctx: RunContext,
): Promise<SweepResult> {
  const now = options.now ?? new Date()
  const http = kubeHttp({context: options.env.context, kubeconfig: options.env.kubeconfig})
  try {
    const all = await listPreviewNamespaces(http, options.project.config.project)
    const result: SweepResult = {now: now.toISOString(), deleted: [], kept: [], unreadable: []}
    for (const ns of all) {
      const info = previewInfo(ns, now)
      if (info.ttlLeftMs === undefined) {
        result.unreadable.push(info.name)
        ctx.out.warn(`Preview ${info.name} (${info.namespace}) has no readable expiry; left alone.`)
        result.kept.push(info)
        continue
      }
      if (!info.expired) {
        result.kept.push(info)
        continue
      }
      if (!options.dryRun && info.phase === 'Active') {
        await deleteNamespace(http, ns)
        ctx.out.info(
          `Deleted preview ${info.name} (expired ${formatDuration(-info.ttlLeftMs)} ago, owner ${info.owner}).`,
        )
      }
      result.deleted.push(info)
    }
    return result
  } finally {
    http.close()
  }
}
