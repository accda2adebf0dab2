import pLimit from 'p-limit'
import pRetry, {AbortError} from 'p-retry'

import {throwIfAborted} from '../ui/context.js'
import {KubeHttp, KubeHttpError} from './http.js'
import {forEachListItem} from './list-page.js'
import {keepOwned, ownedByManager} from './managed-fields.js'
import {
  collectionPath,
  kindInfo,
  type KubeObject,
  MANAGED_KINDS,
  objectKey,
  objectPath,
  objectRef,
} from './resources.js'
import {sleep} from './wait.js'

/**
 * Server-side apply of many objects: ordered in waves (namespaces, then quotas, then
 * accounts/config/policies/services, then workloads, then autoscalers), each wave in parallel
 * with bounded concurrency, retrying conflicts, throttling and server errors with backoff.
 */
export interface ApplyOptions {
  fieldManager: string
  /** Take over fields other managers own (kubectl's --force-conflicts). Only after a person decided so. */
  force?: boolean
  /** Managers whose conflicting fields are taken over without asking (retailops' own, after their work ended). */
  reclaimFrom?: string[]
  /** dryRun=All: the server runs admission and defaulting but persists nothing. */
  dryRun?: boolean
  concurrency?: number
  /** Attempts per object for 409/429/5xx/network errors. */
  retries?: number
  signal?: AbortSignal
  /** Live objects by objectKey, when the caller listed them already (to tell created from changed). */
  live?: Map<string, KubeObject>
  /** Called before each attempt; lets the caller refresh the object after a conflict (e.g. re-read replicas). */
  beforeAttempt?: (obj: KubeObject, attempt: number) => Promise<KubeObject> | KubeObject
  onApplied?: (result: AppliedObject) => void
}

export type ApplyAction = 'created' | 'configured' | 'unchanged'

export interface AppliedObject {
  ref: string
  kind: string
  name: string
  namespace?: string
  action: ApplyAction
  resourceVersion?: string
  generation?: number
  /** The object as the server returned it (after dry run: as it would be); its metadata alone when it was not live before. */
  result: KubeObject
}

export interface ApplyFailure {
  ref: string
  kind: string
  name: string
  namespace?: string
  statusCode?: number
  message: string
  /** Field managers another writer holds, for 409 conflicts. */
  conflicts?: string[]
}

export interface ApplyReport {
  applied: AppliedObject[]
  failed: ApplyFailure[]
  /** Retried attempts by cause: "409", "429", "5xx", "network". */
  retries: Record<string, number>
  /** Objects never attempted because an earlier wave failed. */
  skipped: string[]
}

export function isRetryable(error: unknown): boolean {
  if (error instanceof KubeHttpError)
    return error.statusCode === 409 || error.statusCode === 429 || error.statusCode >= 500
  const code = (error as {code?: string})?.code
  return (
    typeof code === 'string' &&
    ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code)
  )
}

function retryAfterMs(error: unknown): number {
  if (!(error instanceof KubeHttpError)) return 0
  const header = error.headers['retry-after']
  const seconds = Number(Array.isArray(header) ? header[0] : header)
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) * 1000 : 0
}

/** The body the API server sends with a 409 apply conflict names each contested field and its manager. */
export function conflictCauses(error: unknown): string[] {
  if (!(error instanceof KubeHttpError)) return []
  const causes = (error.body as {details?: {causes?: {message?: string; field?: string}[]}})?.details?.causes ?? []
  return causes.map((c) => `${c.field ?? ''} ${c.message ?? ''}`.trim())
}

/** Field managers named in a 409 apply conflict. */
export function conflictManagers(error: unknown): string[] {
  return [
    ...new Set(conflictCauses(error).flatMap((c) => [...c.matchAll(/conflict with "([^"]+)"/g)].map((m) => m[1]))),
  ]
}

/** Strips what the server adds, so an apply body is exactly the intent. */
function applyBody(obj: KubeObject): KubeObject {
  const {metadata, ...rest} = obj
  const {
    resourceVersion: _rv,
    uid: _uid,
    managedFields: _mf,
    generation: _g,
    creationTimestamp: _ct,
    ...meta
  } = metadata as Record<string, unknown>
  const body = {...rest, metadata: meta} as KubeObject
  delete (body as Record<string, unknown>).status
  return body
}

/** The Accept header that asks for the answer's metadata alone (PartialObjectMetadata), JSON as the fallback. */
export const PARTIAL_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json'

export async function applyOne(
  http: KubeHttp,
  obj: KubeObject,
  options: Pick<ApplyOptions, 'fieldManager' | 'force' | 'dryRun' | 'signal'> & {
    /** Only the answer's metadata is read (an object that did not exist: created or not is in its metadata). */
    metadataOnly?: boolean
  },
): Promise<KubeObject> {
  const answer = await http.request<KubeObject>('PATCH', objectPath(obj), {
    query: {
      fieldManager: options.fieldManager,
      force: options.force ? true : undefined,
      dryRun: options.dryRun ? 'All' : undefined,
      // The server's default (Warn) parses every body a second time to find duplicate and unknown fields, for
      // warnings nobody reads: a JSON body has no duplicates, and unknown fields are dropped either way.
      fieldValidation: 'Ignore',
    },
    contentType: 'application/apply-patch+yaml',
    // The server encodes, and the client parses, only the metadata (a Deployment's answer is several KB otherwise).
    accept: options.metadataOnly ? PARTIAL_METADATA : undefined,
    // JSON is valid YAML: the apply-patch+yaml content type accepts it.
    body: applyBody(obj),
    signal: options.signal,
  })
  return answer.kind === 'PartialObjectMetadata'
    ? {apiVersion: obj.apiVersion, kind: obj.kind, metadata: answer.metadata}
    : answer
}

type Writable = {
  apiVersion?: string
  kind?: string
  metadata: {name: string; namespace?: string; [k: string]: unknown}
  [k: string]: unknown
}

/**
 * Server-side apply of a change to one object that keeps every other field `fieldManager` owns:
 * the body is what the manager holds now (read back from managedFields, live values) with the
 * change laid over it (see keepOwned), so nothing it set before is dropped or reset to a default
 * by omission. Compare-and-swap on resourceVersion: when another writer changed the object in
 * between, it reads again and rebuilds the body. A missing object is created from `change`.
 * Every write of an object that retailops changes part of (rollout undo, promotion, the canary's
 * objects) goes through here; the deploy's own apply sends the whole intent instead.
 */
export async function applyKeepingOwned<T = KubeObject>(
  http: KubeHttp,
  path: string,
  change: Writable,
  options: {fieldManager: string; force?: boolean; signal?: AbortSignal; attempts?: number},
): Promise<T> {
  const attempts = options.attempts ?? 6
  for (let attempt = 1; ; attempt++) {
    const live = await http
      .request<Writable & {metadata: {resourceVersion?: string; managedFields?: unknown}}>('GET', path, {
        signal: options.signal,
      })
      .catch((error) => {
        if (error instanceof KubeHttpError && error.statusCode === 404) return undefined
        throw error
      })
    const body = live
      ? keepOwned(ownedByManager(live, options.fieldManager), change)
      : (JSON.parse(JSON.stringify(change)) as Record<string, unknown>)
    if (live) (body.metadata as Record<string, unknown>).resourceVersion = live.metadata.resourceVersion
    try {
      return await http.request<T>('PATCH', path, {
        query: {fieldManager: options.fieldManager, force: options.force ? true : undefined},
        contentType: 'application/apply-patch+yaml',
        body,
        signal: options.signal,
      })
    } catch (error) {
      // A 409 without field conflicts is the resourceVersion precondition: someone wrote in between.
      const stale = error instanceof KubeHttpError && error.statusCode === 409 && conflictCauses(error).length === 0
      if (!stale || attempt >= attempts) throw error
    }
  }
}

function describeFailure(obj: KubeObject, error: unknown): ApplyFailure {
  const base = {ref: objectRef(obj), kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace}
  if (error instanceof KubeHttpError) {
    const message = (error.body as {message?: string})?.message ?? String(error.body ?? error.message)
    const conflicts = error.statusCode === 409 ? conflictCauses(error) : undefined
    return {...base, statusCode: error.statusCode, message, ...(conflicts?.length ? {conflicts} : {})}
  }
  return {...base, message: (error as Error)?.message ?? String(error)}
}

/** Groups objects by apply wave, in wave order. */
export function waves(objects: KubeObject[]): KubeObject[][] {
  const byWave = new Map<number, KubeObject[]>()
  for (const o of objects) {
    const w = kindInfo(o.kind).wave
    if (!byWave.has(w)) byWave.set(w, [])
    byWave.get(w)!.push(o)
  }
  return [...byWave.entries()].sort((a, b) => a[0] - b[0]).map(([, list]) => list)
}

export async function applyObjects(http: KubeHttp, objects: KubeObject[], options: ApplyOptions): Promise<ApplyReport> {
  const limit = pLimit(options.concurrency ?? 32)
  const report: ApplyReport = {applied: [], failed: [], skipped: [], retries: {}}
  const started = Date.now()
  const groups = waves(objects)
  for (let w = 0; w < groups.length; w++) {
    throwIfAborted(options.signal)
    await Promise.all(
      groups[w].map((original) =>
        limit(async () => {
          let reclaim = false
          // Telling created from configured needs the whole answer only where a live object is compared with it.
          const metadataOnly = !options.live?.has(objectKey(original))
          try {
            const result = await pRetry(
              async (attempt) => {
                throwIfAborted(options.signal)
                const obj = options.beforeAttempt ? await options.beforeAttempt(original, attempt) : original
                try {
                  return await applyOne(http, obj, {...options, force: options.force || reclaim, metadataOnly})
                } catch (error) {
                  // Fields a finished rollout of ours still holds are ours to take back; anyone else's are a real conflict.
                  const managers = conflictManagers(error)
                  if (!reclaim && managers.length > 0 && managers.every((m) => options.reclaimFrom?.includes(m))) {
                    reclaim = true
                    throw error
                  }
                  if (!isRetryable(error)) throw new AbortError(error as Error)
                  const cause =
                    error instanceof KubeHttpError
                      ? error.statusCode >= 500
                        ? '5xx'
                        : String(error.statusCode)
                      : 'network'
                  report.retries[cause] = (report.retries[cause] ?? 0) + 1
                  const wait = retryAfterMs(error)
                  if (wait > 0)
                    await sleep(wait, options.signal).catch((abort: Error) => Promise.reject(new AbortError(abort)))
                  throw error
                }
              },
              {
                retries: options.retries ?? 4,
                minTimeout: 200,
                maxTimeout: 3000,
                factor: 2,
                randomize: true,
                signal: options.signal,
              },
            )
            const live = options.live?.get(objectKey(original))
            const action: ApplyAction = live
              ? live.metadata.resourceVersion === result.metadata.resourceVersion ||
                (sameApplyEntry(live, result, options.fieldManager) && sameContent(live, result))
                ? 'unchanged'
                : 'configured'
              : wasCreated(result, started)
                ? 'created'
                : 'configured'
            const applied: AppliedObject = {
              ref: objectRef(original),
              kind: original.kind,
              name: original.metadata.name,
              namespace: original.metadata.namespace,
              action,
              resourceVersion: result.metadata.resourceVersion,
              generation: result.metadata.generation,
              result,
            }
            report.applied.push(applied)
            options.onApplied?.(applied)
          } catch (error) {
            if ((error as {code?: string})?.code === 'ABORT_ERR' || options.signal?.aborted) throw error
            report.failed.push(describeFailure(original, error))
          }
        }),
      ),
    )
    if (report.failed.length > 0) {
      for (const rest of groups.slice(w + 1)) report.skipped.push(...rest.map(objectRef))
      break
    }
  }
  return report
}

/**
 * Unchanged by this apply even though the resourceVersion moved (a controller updated status in
 * between): the manager's Apply entry keeps its time and fields unless the apply changed something.
 */
function sameApplyEntry(before: KubeObject, after: KubeObject, manager: string): boolean {
  const entry = (o: KubeObject) =>
    (
      o.metadata.managedFields as
        {manager?: string; operation?: string; time?: string; fieldsV1?: unknown}[] | undefined
    )?.find((m) => m.manager === manager && m.operation === 'Apply')
  const a = entry(before)
  const b = entry(after)
  return Boolean(a && b && a.time === b.time && JSON.stringify(a.fieldsV1) === JSON.stringify(b.fieldsV1))
}

/**
 * The Apply entry alone cannot tell: its time has one-second resolution and its fieldsV1 lists fields, not values,
 * so a new image applied within the second of the previous apply leaves the entry as it was. What the object holds
 * (everything but status and the server's bookkeeping) can.
 */
function sameContent(before: KubeObject, after: KubeObject): boolean {
  const content = (o: KubeObject) => {
    const {status: _status, metadata, ...rest} = o as KubeObject & {status?: unknown}
    return JSON.stringify({
      ...rest,
      generation: metadata.generation,
      labels: metadata.labels,
      annotations: metadata.annotations,
    })
  }
  return content(before) === content(after)
}

function wasCreated(result: KubeObject, started: number): boolean {
  const created = Date.parse(String(result.metadata.creationTimestamp ?? ''))
  // Dry-run creations have no timestamp; a live object older than this run was configured.
  return Number.isNaN(created) || created >= started - 2000
}

/**
 * Every object carrying `selector`, of every managed kind, in all namespaces (one list per kind).
 * Without `managedFields` (diff, which never reads them) each object drops them as its page is
 * read: they are often half of an object, and 20,000 objects are held at once.
 */
export async function listManaged(
  http: KubeHttp,
  labelSelector: string,
  signal?: AbortSignal,
  options: {managedFields?: boolean} = {},
): Promise<Map<string, KubeObject>> {
  const out = new Map<string, KubeObject>()
  const keep = (k: (typeof MANAGED_KINDS)[number], item: KubeObject) => {
    if (options.managedFields === false) delete item.metadata.managedFields
    item.apiVersion = k.apiVersion
    item.kind = k.kind
    out.set(objectKey(item), item)
  }
  await Promise.all(
    MANAGED_KINDS.map(async (k) => {
      let cont: string | undefined
      do {
        // Each page is parsed item by item (list-page.ts): a 500-Deployment page's whole tree, managedFields and
        // all, never lives at once, and what is dropped dies young.
        const chunks: Buffer[] = []
        const found = await pRetry(
          async () => {
            chunks.length = 0
            await http.request('GET', collectionPath(k.kind), {
              query: {labelSelector, limit: 500, continue: cont},
              signal,
              onData: (chunk) => chunks.push(chunk),
            })
            return true
          },
          {retries: 3, minTimeout: 200, shouldRetry: (e) => isRetryable(e)},
        ).catch((error: unknown) => {
          if (k.optional && error instanceof KubeHttpError && error.statusCode === 404) return false
          throw error
        })
        if (!found) break
        const page = forEachListItem<KubeObject>(Buffer.concat(chunks), (item) => keep(k, item))
        cont = page.metadata?.continue || undefined
      } while (cont)
    }),
  )
  return out
}

export interface PruneResult {
  ref: string
  kind: string
  name: string
  namespace?: string
  deleted: boolean
  error?: string
}

/** Deletes objects in reverse apply order (autoscalers before workloads before accounts). */
export async function deleteObjects(
  http: KubeHttp,
  objects: KubeObject[],
  options: {dryRun?: boolean; concurrency?: number; signal?: AbortSignal},
): Promise<PruneResult[]> {
  const limit = pLimit(options.concurrency ?? 32)
  const out: PruneResult[] = []
  for (const group of waves(objects).reverse()) {
    await Promise.all(
      group.map((obj) =>
        limit(async () => {
          const base = {ref: objectRef(obj), kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace}
          try {
            await pRetry(
              () =>
                http.request('DELETE', objectPath(obj), {
                  query: {dryRun: options.dryRun ? 'All' : undefined},
                  body: {
                    kind: 'DeleteOptions',
                    apiVersion: 'v1',
                    propagationPolicy: 'Background',
                    preconditions: obj.metadata.uid ? {uid: obj.metadata.uid} : undefined,
                  },
                  signal: options.signal,
                }),
              {
                retries: 3,
                minTimeout: 200,
                shouldRetry: (e) => isRetryable(e) && (e as unknown as KubeHttpError).statusCode !== 409,
              },
            )
            out.push({...base, deleted: true})
          } catch (error) {
            if (error instanceof KubeHttpError && error.statusCode === 404) out.push({...base, deleted: true})
            else out.push({...base, deleted: false, error: (error as Error).message})
          }
        }),
      ),
    )
  }
  return out
}
