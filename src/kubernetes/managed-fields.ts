/**
 * Server-side apply treats an apply body as the manager's whole intent: a field the manager
 * owned and the body leaves out is removed (or reset to its default). A writer that means to
 * change one part of an object (the pod template on undo, the replicas of a canary) must send
 * everything else it owns too. These helpers read that set back from the object's managedFields
 * (fieldsV1), with the live values, like client-go's Extract<Kind>() apply configurations.
 */

type Json = unknown
interface FieldSet {
  [field: string]: FieldSet
}

interface ManagedFieldsEntry {
  manager?: string
  operation?: string
  fieldsType?: string
  fieldsV1?: FieldSet
  subresource?: string
}

const isObject = (v: Json): v is Record<string, Json> => Boolean(v) && typeof v === 'object' && !Array.isArray(v)

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T)
}

/** True when `element` has every key/value of a `k:{...}` list key. */
function matchesKey(element: Json, key: Record<string, Json>): boolean {
  return isObject(element) && Object.entries(key).every(([k, v]) => JSON.stringify(element[k]) === JSON.stringify(v))
}

function extract(value: Json, set: FieldSet): Json {
  const children = Object.keys(set).filter((k) => k !== '.')
  if (children.length === 0) {
    // "." alone: the manager owns that the map or list element exists, none of its fields.
    if ('.' in set) return isObject(value) ? {} : Array.isArray(value) ? [] : clone(value)
    // A leaf (or an atomic field): the manager owns the value whole.
    return clone(value)
  }
  if (Array.isArray(value)) {
    const out: Json[] = []
    value.forEach((element, index) => {
      for (const k of children) {
        if (k.startsWith('k:')) {
          const key = JSON.parse(k.slice(2)) as Record<string, Json>
          if (matchesKey(element, key)) out.push({...(extract(element, set[k]) as Record<string, Json>), ...key})
        } else if (k.startsWith('v:')) {
          if (JSON.stringify(element) === JSON.stringify(JSON.parse(k.slice(2)))) out.push(clone(element))
        } else if (k === `i:${index}`) out.push(extract(element, set[k]))
      }
    })
    return out
  }
  if (isObject(value)) {
    const out: Record<string, Json> = {}
    for (const k of children) {
      if (!k.startsWith('f:')) continue
      const name = k.slice(2)
      if (name in value) out[name] = extract(value[name], set[k])
    }
    return out
  }
  return clone(value)
}

/**
 * The fields `manager` holds through server-side apply on `live` (main resource, not status),
 * with their live values; apiVersion, kind, name and namespace included. Empty when it holds none.
 */
export function ownedByManager<
  T extends {apiVersion?: string; kind?: string; metadata: {name: string; namespace?: string; managedFields?: unknown}},
>(live: T, manager: string): Record<string, Json> {
  const entries = ((live.metadata.managedFields ?? []) as ManagedFieldsEntry[]).filter(
    (e) =>
      e.manager === manager && e.operation === 'Apply' && !e.subresource && e.fieldsType === 'FieldsV1' && e.fieldsV1,
  )
  const owned: Record<string, Json> = {}
  for (const e of entries) Object.assign(owned, mergeOwned(owned, extract(live, e.fieldsV1!) as Record<string, Json>))
  const {metadata: m = {}, ...rest} = owned as {metadata?: Record<string, Json>}
  delete (rest as Record<string, Json>).status
  return {
    ...rest,
    apiVersion: live.apiVersion,
    kind: live.kind,
    metadata: {
      ...m,
      name: live.metadata.name,
      ...(live.metadata.namespace ? {namespace: live.metadata.namespace} : {}),
    },
  }
}

function mergeOwned(a: Json, b: Json): Json {
  if (isObject(a) && isObject(b)) {
    const out: Record<string, Json> = {...a}
    for (const [k, v] of Object.entries(b)) out[k] = k in a ? mergeOwned(a[k], v) : v
    return out
  }
  return b
}

/**
 * The apply body that changes what `change` names and keeps everything else the manager owns:
 * labels and annotations merge by key (a null value removes the key), each direct field of
 * `spec` in `change` replaces the owned one whole (a pod template is restored exactly, not
 * merged with the current one), and any other top-level field of `change` replaces the owned one.
 */
export function keepOwned(
  owned: Record<string, Json>,
  change: Record<string, Json> & {metadata: Record<string, Json>},
): Record<string, Json> {
  const out: Record<string, Json> = {...owned}
  for (const [k, v] of Object.entries(change)) {
    if (k === 'metadata' || k === 'status') continue
    out[k] = k === 'spec' && isObject(v) && isObject(owned.spec) ? {...owned.spec, ...v} : v
  }
  const ownedMeta = (owned.metadata ?? {}) as Record<string, Json>
  const meta: Record<string, Json> = {...ownedMeta, ...change.metadata}
  for (const map of ['labels', 'annotations']) {
    const merged = {
      ...(ownedMeta[map] as Record<string, Json> | undefined),
      ...(change.metadata[map] as Record<string, Json> | undefined),
    }
    for (const [key, value] of Object.entries(merged)) if (value === null || value === undefined) delete merged[key]
    if (Object.keys(merged).length > 0) meta[map] = merged
    else delete meta[map]
  }
  out.metadata = meta
  return out
}
