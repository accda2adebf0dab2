import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {gzipSync} from 'node:zlib'

import {pack} from 'tar-stream'

import {packagePath} from '../assets/paths.js'
import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {RetailOpsError, UsageError} from '../errors/index.js'
import {kubeClients, kubeError} from '../kubernetes/client.js'
import {KubeHttp} from '../kubernetes/http.js'
import {apiKind, collectionPath, type KubeObject, MANAGED_KINDS} from '../kubernetes/resources.js'
import {openLocation, parseLocation} from '../objectstore/location.js'
import type {RunContext} from '../ui/context.js'
import {isDrillNamespace, MANAGED_BY_SELECTOR} from './naming.js'
import {
  backupKeys,
  groupResourceOf,
  RETAILOPS_MANIFEST_API,
  type RetailopsBackupManifest,
  VELERO_FORMAT_VERSION,
} from './velero.js'

/**
 * `retailops backup`: the objects retailops manages in an environment's namespace (labelled
 * app.kubernetes.io/managed-by=retailops), Secrets included, written to a backup location in
 * Velero's layout (backups/<name>/<name>.tar.gz with metadata/version and
 * resources/<resource>[.<group>]/namespaces/<ns>/<name>.json plus the format 1.1 preferred-version
 * copies; backups/<name>/velero-backup.json, a Completed Backup object), so the drill that restores
 * Velero's backups restores these too, with a manifest (retailops-backup.json: the tarball's size
 * and SHA-256, objects per kind) the drill verifies. The Backup object is written last: a backup is
 * only listed once it is whole.
 */

/** The namespaced kinds a deploy writes, and the Secrets labelled as retailops' too. */
export const BACKUP_KINDS = [
  ...MANAGED_KINDS.filter((k) => k.namespaced).map((k) => ({
    kind: k.kind,
    apiVersion: k.apiVersion,
    plural: k.plural,
    optional: k.optional ?? false,
  })),
  {kind: 'Secret', apiVersion: 'v1', plural: 'secrets', optional: false},
]

export interface BackupOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  /** --to: s3://bucket/prefix or a directory; default backup.location. */
  to?: string
  now?: () => Date
  signal?: AbortSignal
}

export interface BackupResult {
  name: string
  /** The location's URL and the backup's folder in it. */
  location: string
  folder: string
  namespace: string
  context: string
  startTimestamp: string
  completionTimestamp: string
  objects: Record<string, number>
  tarball: {key: string; size: number; sha256: string}
  files: string[]
}

/** retailops-<namespace>-<UTC yyyymmddhhmmss>: a DNS label, as Velero's backup names are. */
export function backupName(namespace: string, at: Date): string {
  const stamp = at.toISOString().replaceAll(/[-:T]/g, '').slice(0, 14)
  const base = `retailops-${namespace}`
    .toLowerCase()
    .replaceAll(/[^a-z0-9-]/g, '-')
    .slice(0, 63 - stamp.length - 1)
  return `${base.replace(/-+$/, '')}-${stamp}`
}

/** The backup's location: --to, else backup.location; a malformed one is refused before anything is read. */
export function backupLocationOf(project: LoadedConfig, to?: string): string {
  const location = to ?? project.config.backup?.location
  if (!location)
    throw new UsageError('No backup location: pass --to s3://bucket/prefix (or a directory), or set backup.location.', {
      nextSteps: [
        'retailops backup --to s3://backups/retailops',
        'or in retailops.yaml: backup: {location: s3://backups/retailops}',
      ],
    })
  parseLocation(location, project.dir)
  return location
}

/** The tarball in Velero's layout: metadata/version, then each object at its classic path and its preferred-version copy. */
export async function packBackup(objects: KubeObject[], namespace: string): Promise<Buffer> {
  const tar = pack()
  const chunks: Buffer[] = []
  tar.on('data', (c) => chunks.push(c as Buffer))
  const done = new Promise<void>((resolve, reject) => {
    tar.on('end', () => resolve())
    tar.on('error', reject)
  })
  tar.entry({name: 'metadata/version', mode: 0o644}, `${VELERO_FORMAT_VERSION}\n`)
  for (const o of objects) {
    const gr = groupResourceOf(o.apiVersion, apiKind(o.kind).plural)
    const version = o.apiVersion.split('/').at(-1)!
    const text = JSON.stringify(o)
    tar.entry({name: `resources/${gr}/namespaces/${namespace}/${o.metadata.name}.json`, mode: 0o644}, text)
    tar.entry(
      {
        name: `resources/${gr}/${version}-preferredversion/namespaces/${namespace}/${o.metadata.name}.json`,
        mode: 0o644,
      },
      text,
    )
  }
  tar.finalize()
  await done
  return gzipSync(Buffer.concat(chunks))
}

function toolVersion(): string {
  try {
    return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as {version: string}).version
  } catch {
    return 'unknown'
  }
}

/** The Backup object Velero would have written for this backup (labelled as retailops'). */
export function veleroBackupObject(m: RetailopsBackupManifest, items: number): Record<string, unknown> {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'Backup',
    metadata: {
      name: m.name,
      labels: {'app.kubernetes.io/managed-by': 'retailops'},
      annotations: {'retailops.dev/manifest': 'retailops-backup.json'},
    },
    spec: {
      includedNamespaces: [m.namespace],
      labelSelector: {matchLabels: {'app.kubernetes.io/managed-by': 'retailops'}},
      includeClusterResources: false,
      snapshotVolumes: false,
    },
    status: {
      version: 1,
      formatVersion: VELERO_FORMAT_VERSION,
      phase: 'Completed',
      startTimestamp: m.startTimestamp,
      completionTimestamp: m.completionTimestamp,
      progress: {totalItems: items, itemsBackedUp: items},
    },
  }
}

export async function backupNamespace(options: BackupOptions, ctx: RunContext): Promise<BackupResult> {
  const {project, environment} = options
  const now = options.now ?? (() => new Date())
  const namespace = environment.namespace
  if (isDrillNamespace(namespace))
    throw new UsageError(`${namespace} is a drill namespace: there is nothing of retailops' to back up there.`)
  const spec = backupLocationOf(project, options.to)
  const started = now()
  const name = backupName(namespace, started)
  const k = kubeClients({context: environment.context, kubeconfig: environment.kubeconfig})
  const api = new KubeHttp(k.kc)
  const objects: KubeObject[] = []
  const task = ctx.out.task(`Reading the ${MANAGED_BY_SELECTOR} objects of ${namespace}`)
  try {
    for (const kind of BACKUP_KINDS) {
      const list = await api
        .request<{items: KubeObject[]}>('GET', collectionPath(kind.kind, namespace), {
          query: {labelSelector: MANAGED_BY_SELECTOR},
          signal: options.signal,
        })
        .catch((error) => {
          if (kind.optional && (error as {statusCode?: number}).statusCode === 404) return {items: []}
          throw kubeError(error, `listing ${kind.plural} in ${namespace}`, k.server)
        })
      for (const item of list.items) objects.push({...item, apiVersion: kind.apiVersion, kind: kind.kind})
    }
    task.succeed(`Read ${objects.length} objects of ${namespace}`)
  } catch (error) {
    task.fail()
    throw error
  } finally {
    api.close()
  }
  if (objects.length === 0)
    throw new RetailOpsError(
      'NOT_FOUND',
      `Namespace ${namespace} has no objects labelled ${MANAGED_BY_SELECTOR}: nothing to back up.`,
      {
        nextSteps: ['Deploy the services there first, or check --environment and --namespace.'],
      },
    )
  const counts: Record<string, number> = {}
  for (const o of objects) counts[o.kind] = (counts[o.kind] ?? 0) + 1
  const tarball = await packBackup(objects, namespace)
  const keys = backupKeys(name)
  const location = await openLocation(spec, {baseDir: project.dir, env: process.env})
  const write = ctx.out.task(`Writing backup ${name} to ${location.url}`)
  try {
    if (await location.head(keys.info, options.signal))
      throw new RetailOpsError('REFUSED', `${location.url}${keys.info} exists already: a backup is never overwritten.`)
    const sha256 = createHash('sha256').update(tarball).digest('hex')
    await location.put(keys.tarball, tarball, {
      contentLength: tarball.length,
      metadata: {'retailops-sha256': sha256},
      signal: options.signal,
    })
    const completed = now()
    const manifest: RetailopsBackupManifest = {
      apiVersion: RETAILOPS_MANIFEST_API,
      name,
      namespace,
      context: k.context,
      selector: MANAGED_BY_SELECTOR,
      startTimestamp: started.toISOString(),
      completionTimestamp: completed.toISOString(),
      tarball: {key: keys.tarball, size: tarball.length, sha256},
      objects: counts,
      retailopsVersion: toolVersion(),
    }
    await location.put(keys.manifest, `${JSON.stringify(manifest, null, 2)}\n`, {signal: options.signal})
    await location.put(keys.info, `${JSON.stringify(veleroBackupObject(manifest, objects.length), null, 2)}\n`, {
      signal: options.signal,
    })
    write.succeed(
      `Wrote backup ${name} (${objects.length} objects, ${tarball.length} bytes) to ${location.url}${keys.dir}`,
    )
    return {
      name,
      location: location.url,
      folder: `${location.url}${keys.dir}`,
      namespace,
      context: k.context,
      startTimestamp: manifest.startTimestamp,
      completionTimestamp: manifest.completionTimestamp,
      objects: counts,
      tarball: manifest.tarball,
      files: [keys.tarball, keys.manifest, keys.info],
    }
  } catch (error) {
    write.fail()
    // A backup is listed by its velero-backup.json, written last; what came before it goes.
    if (!(error as {exit?: string}).exit || (error as {exit?: string}).exit !== 'REFUSED')
      for (const key of [keys.manifest, keys.tarball]) await location.delete(key).catch(() => undefined)
    throw error
  } finally {
    location.close()
  }
}
