/**
 * Velero's backup layout, as its documentation describes it ("Output file format"), read without
 * Velero: in a backup storage location each backup has `backups/<name>/velero-backup.json` (the
 * Backup object: spec, status.phase, status.startTimestamp and completionTimestamp) and
 * `backups/<name>/<name>.tar.gz`, whose entries are `metadata/version` and
 * `resources/<resource>[.<group>]/namespaces/<ns>/<name>.json` (or `/cluster/<name>.json` for
 * cluster-scoped objects); format 1.1 adds `<version>[-preferredversion]/` folders beside the
 * classic ones, which are read as the classic ones. `retailops backup` writes the same layout, so
 * one restorer serves both.
 */

export const BACKUPS_PREFIX = 'backups/'
export const VELERO_BACKUP_FILE = 'velero-backup.json'
/** retailops' own manifest beside a backup it wrote: the tarball's size and SHA-256. */
export const RETAILOPS_MANIFEST_FILE = 'retailops-backup.json'
export const RETAILOPS_MANIFEST_API = 'retailops.dev/backup/v1'
export const VELERO_FORMAT_VERSION = '1.1.0'

/**
 * Velero's default restore order (`--restore-resource-priorities`, pkg/cmd/server/config): these
 * first, in this order; every other resource after them in alphabetical order; the low
 * priorities last.
 */
export const VELERO_HIGH_PRIORITIES = [
  'customresourcedefinitions',
  'namespaces',
  'storageclasses',
  'volumesnapshotclass.snapshot.storage.k8s.io',
  'volumesnapshotcontents.snapshot.storage.k8s.io',
  'volumesnapshots.snapshot.storage.k8s.io',
  'datauploads.velero.io',
  'persistentvolumes',
  'persistentvolumeclaims',
  'serviceaccounts',
  'secrets',
  'configmaps',
  'limitranges',
  'pods',
  'replicasets.apps',
  'clusterclasses.cluster.x-k8s.io',
  'endpoints',
  'services',
]
export const VELERO_LOW_PRIORITIES = [
  'clusterbootstraps.run.tanzu.vmware.com',
  'clusters.cluster.x-k8s.io',
  'clusterresourcesets.addons.cluster.x-k8s.io',
]

/** The group-resources in Velero's restore order. */
export function restoreOrder(groupResources: Iterable<string>): string[] {
  const all = [...new Set(groupResources)]
  const high = VELERO_HIGH_PRIORITIES.filter((r) => all.includes(r))
  const low = VELERO_LOW_PRIORITIES.filter((r) => all.includes(r))
  const rest = all.filter((r) => !high.includes(r) && !low.includes(r)).sort()
  return [...high, ...rest, ...low]
}

/** `deployments.apps` → {resource: deployments, group: apps}; `configmaps` → core group. */
export function splitGroupResource(groupResource: string): {resource: string; group: string} {
  const dot = groupResource.indexOf('.')
  return dot === -1
    ? {resource: groupResource, group: ''}
    : {resource: groupResource.slice(0, dot), group: groupResource.slice(dot + 1)}
}

/** The group-resource a backup files an object of this apiVersion and plural under. */
export function groupResourceOf(apiVersion: string, plural: string): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : ''
  return group ? `${plural}.${group}` : plural
}

export interface BackupItem {
  groupResource: string
  /** Undefined for a cluster-scoped object. */
  namespace?: string
  name: string
  /** The tar entry it came from. */
  entry: string
  object: {apiVersion?: string; kind?: string; metadata?: {name?: string; namespace?: string}} & Record<string, unknown>
}

const ITEM = /^resources\/([^/]+)\/(?:namespaces\/([^/]+)|cluster)\/([^/]+)\.json$/
const VERSIONED = /^resources\/[^/]+\/[^/]+\/(?:namespaces\/[^/]+|cluster)\/[^/]+\.json$/

/** Where a tar entry belongs: an item (classic path), a versioned copy (ignored), metadata, or something unknown. */
export function classifyEntry(
  entry: string,
):
  | {type: 'item'; groupResource: string; namespace?: string; name: string}
  | {type: 'versioned'}
  | {type: 'version'}
  | {type: 'other'} {
  const name = entry.replace(/^\.\//, '')
  const m = ITEM.exec(name)
  if (m) return {type: 'item', groupResource: m[1], ...(m[2] ? {namespace: m[2]} : {}), name: m[3]}
  if (VERSIONED.test(name)) return {type: 'versioned'}
  if (name === 'metadata/version') return {type: 'version'}
  return {type: 'other'}
}

/** Parses one item's JSON; an object that does not match its path is a corrupt backup. */
export function parseItem(entry: string, text: string): BackupItem {
  const where = classifyEntry(entry)
  if (where.type !== 'item') throw new Error(`${entry}: not a resource entry`)
  let object: BackupItem['object']
  try {
    object = JSON.parse(text) as BackupItem['object']
  } catch (error) {
    throw new Error(`${entry}: not JSON (${(error as Error).message})`, {cause: error})
  }
  if (!object || typeof object !== 'object' || typeof object.kind !== 'string' || typeof object.apiVersion !== 'string')
    throw new Error(`${entry}: not a Kubernetes object (no apiVersion or kind)`)
  if (object.metadata?.name !== where.name)
    throw new Error(`${entry}: holds an object named ${String(object.metadata?.name)}`)
  return {groupResource: where.groupResource, namespace: where.namespace, name: where.name, entry, object}
}

/** What a drill needs of a Backup object (velero-backup.json). */
export interface BackupInfo {
  name: string
  phase: string
  startTimestamp?: string
  completionTimestamp?: string
  expiration?: string
  formatVersion?: string
  includedNamespaces: string[]
  excludedNamespaces: string[]
  /** Written by `retailops backup` (labelled app.kubernetes.io/managed-by=retailops). */
  byRetailops: boolean
}

export function parseBackupInfo(text: string, where: string): BackupInfo {
  let doc: {
    kind?: string
    metadata?: {name?: string; labels?: Record<string, string>}
    spec?: {includedNamespaces?: string[] | null; excludedNamespaces?: string[] | null}
    status?: {
      phase?: string
      startTimestamp?: string
      completionTimestamp?: string
      expiration?: string
      formatVersion?: string
    }
  }
  try {
    doc = JSON.parse(text) as typeof doc
  } catch (error) {
    throw new Error(`${where}: not JSON (${(error as Error).message})`, {cause: error})
  }
  if (doc?.kind !== 'Backup' || !doc.metadata?.name) throw new Error(`${where}: not a Velero Backup object`)
  return {
    name: doc.metadata.name,
    phase: doc.status?.phase ?? 'Unknown',
    startTimestamp: doc.status?.startTimestamp,
    completionTimestamp: doc.status?.completionTimestamp,
    expiration: doc.status?.expiration,
    formatVersion: doc.status?.formatVersion,
    includedNamespaces: doc.spec?.includedNamespaces ?? [],
    excludedNamespaces: doc.spec?.excludedNamespaces ?? [],
    byRetailops: doc.metadata.labels?.['app.kubernetes.io/managed-by'] === 'retailops',
  }
}

function globMatches(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replaceAll('*', '.*')
      .replaceAll('?', '.')}$`,
  )
  return re.test(value)
}

/** Whether the backup's namespace filters take in the namespace (no includes, or `*`, means all). */
export function includesNamespace(info: BackupInfo, namespace: string): boolean {
  if (info.excludedNamespaces.some((p) => globMatches(p, namespace))) return false
  return info.includedNamespaces.length === 0 || info.includedNamespaces.some((p) => globMatches(p, namespace))
}

/** The backup's point in time: when it started reading the cluster (objects changed after that may be missing). */
export function recoveryPointOf(info: BackupInfo): Date | undefined {
  const t = info.startTimestamp ?? info.completionTimestamp
  const d = t ? new Date(t) : undefined
  return d && !Number.isNaN(d.getTime()) ? d : undefined
}

/**
 * The backup a drill restores: the named one, else the newest Completed one (by completion time)
 * whose namespace filters take in the namespace. Answers why each other one was passed over.
 */
export function chooseBackup(
  backups: BackupInfo[],
  namespace: string,
  name?: string,
): {chosen?: BackupInfo; passedOver: string[]; problem?: string} {
  const passedOver: string[] = []
  if (name) {
    const named = backups.find((b) => b.name === name)
    if (!named)
      return {
        passedOver,
        problem: `no backup named ${name} (found: ${backups.map((b) => b.name).join(', ') || 'none'})`,
      }
    if (named.phase !== 'Completed') return {passedOver, problem: `backup ${name} is ${named.phase}, not Completed`}
    if (!includesNamespace(named, namespace))
      return {passedOver, problem: `backup ${name} does not include namespace ${namespace}`}
    return {chosen: named, passedOver}
  }
  const time = (b: BackupInfo) => new Date(b.completionTimestamp ?? b.startTimestamp ?? 0).getTime() || 0
  const candidates: BackupInfo[] = []
  for (const b of backups) {
    if (b.phase !== 'Completed') passedOver.push(`${b.name}: ${b.phase}, not Completed`)
    else if (!includesNamespace(b, namespace)) passedOver.push(`${b.name}: does not include namespace ${namespace}`)
    else if (!recoveryPointOf(b)) passedOver.push(`${b.name}: no startTimestamp or completionTimestamp`)
    else candidates.push(b)
  }
  candidates.sort((a, b) => time(b) - time(a) || b.name.localeCompare(a.name))
  if (candidates.length === 0)
    return {
      passedOver,
      problem: `no Completed backup includes namespace ${namespace}${backups.length ? ` (${passedOver.join('; ')})` : ' (the location holds no backups)'}`,
    }
  return {chosen: candidates[0], passedOver}
}

/** retailops' manifest beside a backup it wrote. */
export interface RetailopsBackupManifest {
  apiVersion: typeof RETAILOPS_MANIFEST_API
  name: string
  namespace: string
  context?: string
  selector: string
  startTimestamp: string
  completionTimestamp: string
  tarball: {key: string; size: number; sha256: string}
  /** Objects per kind. */
  objects: Record<string, number>
  retailopsVersion: string
}

export function parseManifest(text: string, where: string): RetailopsBackupManifest {
  let doc: RetailopsBackupManifest
  try {
    doc = JSON.parse(text) as RetailopsBackupManifest
  } catch (error) {
    throw new Error(`${where}: not JSON (${(error as Error).message})`, {cause: error})
  }
  if (
    doc?.apiVersion !== RETAILOPS_MANIFEST_API ||
    typeof doc.tarball?.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(doc.tarball.sha256) ||
    typeof doc.tarball.size !== 'number'
  )
    throw new Error(`${where}: not a ${RETAILOPS_MANIFEST_API} manifest with the tarball's size and SHA-256`)
  return doc
}

/** A backup's folder and tarball keys in its location. */
export function backupKeys(name: string): {dir: string; info: string; tarball: string; manifest: string} {
  const dir = `${BACKUPS_PREFIX}${name}/`
  return {
    dir,
    info: `${dir}${VELERO_BACKUP_FILE}`,
    tarball: `${dir}${name}.tar.gz`,
    manifest: `${dir}${RETAILOPS_MANIFEST_FILE}`,
  }
}
