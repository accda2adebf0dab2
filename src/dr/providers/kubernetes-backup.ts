import {loadYaml} from '../../assets/yaml.js'
import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import {PassThrough, type Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'

import {formatDuration} from '../../config/duration.js'
import type {DatastoreConfig} from '../../config/schema.js'
import {RetailOpsError} from '../../errors/index.js'
import {isNotFound, kubeClients, kubeError} from '../../kubernetes/client.js'
import {KubeHttp} from '../../kubernetes/http.js'
import {FIELD_MANAGER_DR} from '../../kubernetes/labels.js'
import {type KubeObject, resourceObjectPath} from '../../kubernetes/resources.js'
import {type BackupLocation, openLocation, parseLocation} from '../../objectstore/location.js'
import {throwIfAborted} from '../../ui/context.js'
import {parseDuration} from '../../config/duration.js'
import {DRILL_LABEL, drillNamespaceName, isDrillNamespace} from '../naming.js'
import type {RestoredObject} from '../types.js'
import {
  type BackupInfo,
  type BackupItem,
  backupKeys,
  BACKUPS_PREFIX,
  chooseBackup,
  classifyEntry,
  parseBackupInfo,
  parseItem,
  parseManifest,
  recoveryPointOf,
  restoreOrder,
  RETAILOPS_MANIFEST_FILE,
  splitGroupResource,
  VELERO_BACKUP_FILE,
} from '../velero.js'
import {
  createDrillNamespace,
  DEFAULT_DENY_POLICY,
  planRestore,
  restoredByKind,
  SAME_NAMESPACE_POLICY,
  secretReference,
  validateRestore,
} from './kubernetes.js'
import type {DrillContext, PlanContext, ProviderPlan, ProviderResult} from './types.js'
import {RBAC_NOT_RESTORED, RESTORE_FAILED} from './types.js'

/**
 * A kubernetes datastore restored from a backup that exists (Velero's, or `retailops backup`'s in
 * the same layout) rather than from a snapshot of the live objects: the backup is chosen and its
 * age checked against the RPO before anything is read in full, the tarball is read whole and
 * verified (the manifest's or the store's SHA-256, gzip's CRC, every entry's JSON) before anything
 * is written, and the namespace's objects go into the isolated drill namespace in Velero's restore
 * order, one by one, each restored, skipped or failed with the reason.
 */

/** Resources a drill never restores from a backup, and why. */
const NEVER_RESTORED: Record<string, string> = {
  pods: 'made by its controller (a restored workload starts its own pods)',
  'replicasets.apps': "made by its Deployment's controller from the restored Deployment",
  'controllerrevisions.apps': "made by its StatefulSet's or DaemonSet's controller",
  endpoints: "made by the endpoints controller from the restored Service's selector",
  'endpointslices.discovery.k8s.io': "made by the EndpointSlice controller from the restored Service's selector",
  events: 'a record of what happened in the source, not state to restore',
  'events.events.k8s.io': 'a record of what happened in the source, not state to restore',
  'roles.rbac.authorization.k8s.io': RBAC_NOT_RESTORED,
  'rolebindings.rbac.authorization.k8s.io': RBAC_NOT_RESTORED,
  'ingresses.networking.k8s.io':
    'would route traffic from outside into the drill namespace, which nothing outside may reach',
  'leases.coordination.k8s.io': "a controller's lock, held by the source's pods",
}
const ROUTE_GROUP = 'gateway.networking.k8s.io'
/** HTTPRoutes are restored detached (no parentRefs), as from a snapshot; Gateway API's other kinds are not restored. */
const HTTP_ROUTES = `httproutes.${ROUTE_GROUP}`
const PVC_BIND_ANNOTATIONS = ['pv.kubernetes.io/bind-completed', 'pv.kubernetes.io/bound-by-controller']

export interface PlannedItem {
  object: KubeObject
  path: string
  groupResource: string
}

/**
 * What a drill restores of a backup's items, in Velero's restore order (by resource, then name):
 * the source namespace's objects only; cluster-scoped objects, controller-made objects, RBAC and
 * anything that routes traffic in (Ingresses, Gateway API kinds other than HTTPRoutes) are skipped
 * with the reason; what remains goes through the same rules as a live snapshot (Secrets as empty
 * placeholders, no NetworkPolicies, restricted pod templates, ClusterIP Services, suspended
 * CronJobs, paused ScaledObjects, HTTPRoutes without parentRefs), and a PersistentVolumeClaim loses its binding (as Velero's own
 * restore does) so it never binds the source's volume.
 */
export function planBackupRestore(
  items: BackupItem[],
  sourceNs: string,
  targetNs: string,
  drillId: string,
  datastore: string,
): {ordered: PlannedItem[]; inventory: RestoredObject[]; notes: string[]; otherNamespaces: number} {
  const ordered: PlannedItem[] = []
  const inventory: RestoredObject[] = []
  const notes: string[] = []
  const mine = items.filter((i) => i.namespace === undefined || i.namespace === sourceNs)
  const context = mine.map((i) => i.object as KubeObject)
  const otherNamespaces = items.length - mine.length
  const byResource = new Map<string, BackupItem[]>()
  for (const item of mine) byResource.set(item.groupResource, [...(byResource.get(item.groupResource) ?? []), item])
  for (const groupResource of restoreOrder(byResource.keys())) {
    const {resource, group} = splitGroupResource(groupResource)
    for (const item of byResource.get(groupResource)!.sort((a, b) => a.name.localeCompare(b.name))) {
      const source = item.object as KubeObject & {
        metadata: KubeObject['metadata'] & {ownerReferences?: {kind: string; name: string; controller?: boolean}[]}
      }
      const entry = {kind: source.kind, name: item.name}
      const skip = (reason: string) => inventory.push({...entry, outcome: 'not-restored', reason})
      if (item.namespace === undefined) {
        skip(
          source.kind === 'Namespace'
            ? `the drill namespace ${targetNs} stands in for it (Pod Security restricted, ${DEFAULT_DENY_POLICY} and ${SAME_NAMESPACE_POLICY})`
            : 'cluster-scoped: a drill writes only inside its own namespace, never to the cluster',
        )
        continue
      }
      const never =
        NEVER_RESTORED[groupResource] ??
        (group === ROUTE_GROUP && groupResource !== HTTP_ROUTES
          ? 'would route traffic from outside into the drill namespace'
          : undefined) ??
        (group === 'velero.io' || group.endsWith('.velero.io') ? "Velero's own object, not the namespace's" : undefined)
      if (never) {
        skip(never)
        continue
      }
      if (groupResource === 'configmaps' && item.name === 'kube-root-ca.crt') {
        skip("the cluster publishes its CA into every namespace: the drill namespace has the cluster's own")
        continue
      }
      const owner = source.metadata.ownerReferences?.find((o) => o.controller)
      if (owner) {
        skip(`owned by ${owner.kind} ${owner.name}: its controller makes it again from the restored owner`)
        continue
      }
      const planned = planRestore([source], targetNs, drillId, datastore, context)
      inventory.push(...planned.inventory)
      notes.push(...planned.notes)
      const object = planned.objects[0]
      if (!object) continue
      if (source.kind === 'PersistentVolumeClaim') {
        const spec = object.spec as {volumeName?: string} | undefined
        const annotations = object.metadata.annotations ?? {}
        const bound = Boolean(spec?.volumeName) || PVC_BIND_ANNOTATIONS.some((a) => a in annotations)
        if (spec) delete spec.volumeName
        for (const a of PVC_BIND_ANNOTATIONS) delete annotations[a]
        if (bound) {
          const last = inventory.at(-1)!
          const change =
            "binding removed (volumeName and the bind annotations): it must never bind the source's volume; the backup holds no volume data"
          last.outcome = 'modified'
          last.reason = last.reason ? `${last.reason}; ${change}` : change
        }
      }
      ordered.push({
        object,
        groupResource,
        path: resourceObjectPath(object.apiVersion, resource, object.metadata.name, targetNs),
      })
    }
  }
  return {ordered, inventory, notes, otherNamespaces}
}

/** Every backup in the location (a velero-backup.json under backups/), unreadable ones as findings. */
export async function listBackups(
  location: BackupLocation,
  signal?: AbortSignal,
): Promise<{backups: BackupInfo[]; unreadable: string[]}> {
  const keys = (await location.list(BACKUPS_PREFIX, signal))
    .map((o) => o.key)
    .filter((k) => k.endsWith(`/${VELERO_BACKUP_FILE}`) && k.split('/').length === 3)
  const backups: BackupInfo[] = []
  const unreadable: string[] = []
  for (const key of keys) {
    try {
      const info = parseBackupInfo(await location.readText(key, signal), key)
      if (`${BACKUPS_PREFIX}${info.name}/${VELERO_BACKUP_FILE}` !== key)
        throw new Error(`${key}: describes backup ${info.name}, which belongs in ${backupKeys(info.name).dir}`)
      backups.push(info)
    } catch (error) {
      if ((error as {exit?: string}).exit) throw error
      unreadable.push((error as Error).message)
    }
  }
  return {backups, unreadable}
}

export interface ReadBackup {
  items: BackupItem[]
  bytes: number
  sha256: string
  formatVersion?: string
  /** What the tarball was checked against. */
  verified: string[]
}

/** A backup that cannot be trusted: the drill's verdict (exit 41), raised before anything is written. */
function corrupt(url: string, name: string, why: string): RetailOpsError {
  return new RetailOpsError(RESTORE_FAILED, `Backup ${name} in ${url} is corrupt: ${why}. Nothing was restored.`, {
    nextSteps: [
      'Check the object store for a partial upload or bit rot; restore from an older backup (kubernetes.backup.name) and take a new one.',
    ],
  })
}

/**
 * Reads a backup's tarball whole: its bytes hashed as they stream (checked against the
 * retailops manifest's SHA-256 and size, or the store's own SHA-256 when it keeps one),
 * gunzipped (gzip's CRC-32 and length catch a flipped or missing byte) and every resource entry
 * parsed and matched to its path.
 */
export async function readBackupTarball(
  location: BackupLocation,
  info: BackupInfo,
  signal?: AbortSignal,
): Promise<ReadBackup> {
  const keys = backupKeys(info.name)
  const head = await location.head(keys.tarball, signal)
  if (!head) throw corrupt(location.url, info.name, `${keys.tarball} is missing`)
  let expected: ReturnType<typeof parseManifest> | undefined
  if (await location.head(keys.manifest, signal)) {
    try {
      expected = parseManifest(await location.readText(keys.manifest, signal), `${location.url}${keys.manifest}`)
    } catch (error) {
      if ((error as {exit?: string}).exit) throw error
      throw corrupt(location.url, info.name, (error as Error).message)
    }
  }
  const hash = createHash('sha256')
  let bytes = 0
  const tap = new PassThrough()
  tap.on('data', (chunk: Buffer) => {
    hash.update(chunk)
    bytes += chunk.length
  })
  const items: BackupItem[] = []
  let formatVersion: string | undefined
  // The archive's and the snapshot's libraries load with the restore that reads them: `dr plan` loads this module too.
  const {extract} = await import('tar-stream')
  const ex = extract()
  const body: Readable = await location.read(keys.tarball, signal)
  const feeding = pipeline(body, tap, createGunzip(), ex, {signal})
  try {
    for await (const entry of ex) {
      const chunks: Buffer[] = []
      for await (const chunk of entry) chunks.push(chunk as Buffer)
      if (entry.header.type !== 'file') continue
      const where = classifyEntry(entry.header.name)
      const text = Buffer.concat(chunks).toString('utf8')
      if (where.type === 'item') items.push(parseItem(entry.header.name.replace(/^\.\//, ''), text))
      else if (where.type === 'version') formatVersion = text.trim()
    }
    await feeding
  } catch (error) {
    await feeding.catch(() => undefined)
    if ((error as {code?: string}).code === 'ABORT_ERR') throw error
    throw corrupt(location.url, info.name, (error as Error).message)
  }
  const sha256 = hash.digest('hex')
  const verified: string[] = ['gzip CRC-32 and length', `${items.length} resource entries parsed`]
  if (expected) {
    if (expected.tarball.sha256 !== sha256 || expected.tarball.size !== bytes)
      throw corrupt(
        location.url,
        info.name,
        `${keys.tarball} has SHA-256 ${sha256} (${bytes} bytes), its manifest (${RETAILOPS_MANIFEST_FILE}) says ${expected.tarball.sha256} (${expected.tarball.size} bytes)`,
      )
    verified.unshift(`SHA-256 and size match ${RETAILOPS_MANIFEST_FILE}`)
  }
  if (head.checksumSha256) {
    if (head.checksumSha256 !== sha256)
      throw corrupt(
        location.url,
        info.name,
        `${keys.tarball} has SHA-256 ${sha256}, the store recorded ${head.checksumSha256}`,
      )
    verified.unshift("SHA-256 matches the store's checksum")
  }
  if (!expected && !head.checksumSha256)
    verified.push("no SHA-256 to compare with (a Velero backup carries none; gzip's CRC is the check)")
  return {items, bytes, sha256, formatVersion, verified}
}

export function backupSource(ds: DatastoreConfig, envNamespace: string): string {
  return ds.kubernetes?.namespace ?? envNamespace
}

export function planFromBackup(ds: DatastoreConfig, ctx: PlanContext): ProviderPlan {
  const backup = ds.kubernetes!.backup!
  const ns = backupSource(ds, ctx.environment.namespace)
  const target = drillNamespaceName(ctx.drillId, ds.name)
  const problems: string[] = []
  let where = backup.location
  try {
    where = parseLocation(backup.location, ctx.project.dir).url
  } catch (error) {
    problems.push(`${ds.name}: kubernetes.backup.location ${(error as Error).message}`)
  }
  if (ds.validation.length > 0)
    problems.push(
      `${ds.name}: kubernetes datastores take no validation queries (the built-in checks are: every object restored, every Deployment available)`,
    )
  if (isDrillNamespace(ns)) problems.push(`${ds.name}: the source namespace ${ns} is itself a drill namespace`)
  return {
    source: `${backup.name ? `backup ${backup.name}` : 'the newest Completed backup'} of namespace ${ns} in ${where}`,
    target: `namespace ${target}`,
    steps: [
      `list ${where}${BACKUPS_PREFIX} (Velero's layout) and pick ${backup.name ?? 'the newest Completed backup that includes the namespace'}; refuse it if it is older than the RPO target (read-only)`,
      "read the tarball whole and verify it (SHA-256 against retailops' manifest or the store's checksum, gzip's CRC, every entry) before anything is written",
      `create namespace ${target}, enforcing Pod Security restricted, with ${DEFAULT_DENY_POLICY} and ${SAME_NAMESPACE_POLICY}`,
      "restore the namespace's objects there in Velero's restore order, one by one (server-side apply): Secrets as empty placeholders, no NetworkPolicies, RBAC, Ingresses or routes, no controller-made objects, Services as ClusterIP, restricted pod templates",
      `check every object restored, no Secret value, the isolation; wait until every restored Deployment is available (at most ${ds.kubernetes?.waitTimeout ?? '5m'})`,
      `delete namespace ${target}`,
    ],
    problems,
    warnings: [],
  }
}

export async function runFromBackup(
  ds: DatastoreConfig,
  plan: ProviderPlan & {targets?: {rpo: string; rpoMs: number}},
  ctx: DrillContext,
): Promise<ProviderResult> {
  const backup = ds.kubernetes!.backup!
  const sourceNs = backupSource(ds, ctx.environment.namespace)
  const targetNs = drillNamespaceName(ctx.drillId, ds.name)
  if (!isDrillNamespace(targetNs) || targetNs === sourceNs)
    throw new RetailOpsError('INTERNAL', `Refusing to restore into ${targetNs}.`)
  const scope = ds.name
  const timeoutMs = parseDuration(ds.kubernetes?.waitTimeout ?? '5m')!
  const location = await openLocation(backup.location, {baseDir: ctx.project.dir, env: ctx.env})
  const evidence: Record<string, unknown> = {
    sourceNamespace: sourceNs,
    drillNamespace: targetNs,
    location: location.url,
  }
  try {
    // 1. Which backup (reads only), and whether it is recent enough to restore at all.
    const chosen = await ctx.steps.run(
      scope,
      'backup',
      `choose ${backup.name ? `backup ${backup.name}` : 'the newest backup'} of ${sourceNs} in ${location.url}`,
      async () => {
        const {backups, unreadable} = await listBackups(location, ctx.signal)
        const choice = chooseBackup(backups, sourceNs, backup.name)
        if (unreadable.length) evidence.unreadableBackups = unreadable
        if (choice.passedOver.length) evidence.passedOver = choice.passedOver
        if (!choice.chosen)
          throw new RetailOpsError(RESTORE_FAILED, `${location.url}: ${choice.problem}.`, {
            nextSteps: [
              'Check kubernetes.backup.location and name, and that the backup schedule (Velero, or `retailops backup --schedule`) runs.',
            ],
          })
        return choice.chosen
      },
      (b) =>
        `${b.name} (${b.byRetailops ? 'retailops backup' : 'Velero'}, started ${b.startTimestamp ?? '?'}, completed ${b.completionTimestamp ?? '?'})`,
    )
    const recoveryPoint = recoveryPointOf(chosen)!
    const recoveryPointSource = `backup ${chosen.name}: status.startTimestamp ${chosen.startTimestamp ?? '(none; completionTimestamp)'}, completed ${chosen.completionTimestamp ?? '?'} (${location.url}${backupKeys(chosen.name).info})`
    const keys = backupKeys(chosen.name)
    evidence.backup = {
      name: chosen.name,
      writtenBy: chosen.byRetailops ? 'retailops backup' : 'Velero',
      location: `${location.url}${keys.dir}`,
      startTimestamp: chosen.startTimestamp,
      completionTimestamp: chosen.completionTimestamp,
      expiration: chosen.expiration,
    }
    const ageMs = ctx.drillStartMs - recoveryPoint.getTime()
    if (plan.targets && ageMs > plan.targets.rpoMs) {
      const refused = `backup ${chosen.name} is ${formatDuration(ageMs)} old (started ${recoveryPoint.toISOString()}), older than the RPO target ${plan.targets.rpo}: refused, not restored`
      ctx.steps.start(scope, 'rpo-gate', 'the backup against the RPO target').fail(refused)
      return {target: `namespace ${targetNs}`, recoveryPoint, recoveryPointSource, refused, validations: [], evidence}
    }
    throwIfAborted(ctx.signal)

    // 2. The whole tarball, verified, before anything is written.
    const read = await ctx.steps.run(
      scope,
      'verify',
      `read and verify ${keys.tarball}`,
      () => readBackupTarball(location, chosen, ctx.signal),
      (r) => `${r.items.length} objects, ${r.bytes} bytes, SHA-256 ${r.sha256.slice(0, 12)}…; ${r.verified.join('; ')}`,
    )
    Object.assign(evidence.backup as object, {
      bytes: read.bytes,
      sha256: read.sha256,
      formatVersion: read.formatVersion ?? chosen.formatVersion,
      verified: read.verified,
    })
    const restore = planBackupRestore(read.items, sourceNs, targetNs, ctx.drillId, ds.name)
    const notRestored = restore.inventory.filter((i) => i.outcome === 'not-restored')
    evidence.objectsInOtherNamespaces = restore.otherNamespaces
    if (restore.notes.length) evidence.restoreNotes = restore.notes
    const inSource = read.items.filter((i) => i.namespace === sourceNs)
    const snapshotFile = path.join(ctx.recordDir, `${ds.name}-backup.yaml`)
    const {stringify} = await loadYaml()
    await writeFile(
      snapshotFile,
      inSource
        .map((i) => stringify(i.object.kind === 'Secret' ? secretReference(i.object as KubeObject) : i.object))
        .join('---\n'),
    )
    evidence.backupObjectsFile = path.basename(snapshotFile)
    if (inSource.length === 0)
      throw new RetailOpsError(
        RESTORE_FAILED,
        `Backup ${chosen.name} holds no objects of namespace ${sourceNs}: nothing to restore.`,
        {
          nextSteps: ['Check kubernetes.namespace: it names the namespace as it was backed up.'],
        },
      )
    throwIfAborted(ctx.signal)

    const k = kubeClients({context: ctx.environment.context, kubeconfig: ctx.environment.kubeconfig})
    const api = new KubeHttp(k.kc)
    try {
      // 3. The drill namespace, locked down before anything is restored.
      await createDrillNamespace(api, k, targetNs, ds.name, ctx, evidence)
      throwIfAborted(ctx.signal)

      // 4. Velero's order, one object at a time; a refusal is recorded and the restore goes on.
      const order: string[] = []
      await ctx.steps.run(
        scope,
        'restore',
        `restore ${restore.ordered.length} of ${inSource.length} objects to ${targetNs} in Velero's order`,
        async (step) => {
          for (const p of restore.ordered) {
            throwIfAborted(ctx.signal)
            const entry = restore.inventory.find((i) => i.kind === p.object.kind && i.name === p.object.metadata.name)
            try {
              await api.request('PATCH', p.path, {
                query: {fieldManager: FIELD_MANAGER_DR, force: true},
                body: p.object,
                contentType: 'application/apply-patch+yaml',
                signal: ctx.signal,
              })
              order.push(`${p.object.kind} ${p.object.metadata.name}`)
            } catch (error) {
              if ((error as {code?: string}).code === 'ABORT_ERR') throw error
              if (entry) {
                entry.outcome = 'failed'
                entry.reason = `${kubeError(error, `restoring ${p.groupResource} ${p.object.metadata.name}`).message.split('\n')[0]}${entry.reason ? ` (planned: ${entry.reason})` : ''}`
              }
            }
          }
          const failed = restore.inventory.filter((i) => i.outcome === 'failed')
          if (failed.length)
            step.fail(`${failed.length} failed: ${failed.map((f) => `${f.kind} ${f.name}`).join(', ')}`)
        },
        () => `${order.length} restored, ${notRestored.length} skipped`,
      )
      evidence.restoreOrder = order
      evidence.restoredByKind = restoredByKind(restore.inventory)

      // 5. Validate, as a snapshot restore is validated, reading each object back by its path.
      const started = ctx.clock()
      const failed = restore.inventory.filter((i) => i.outcome === 'failed')
      const missing: string[] = []
      const secrets: (KubeObject & {data?: Record<string, string>})[] = []
      for (const p of restore.ordered) {
        const ref = `${p.object.kind} ${p.object.metadata.name}`
        if (failed.some((f) => `${f.kind} ${f.name}` === ref)) {
          missing.push(ref)
          continue
        }
        const found = await api.request<KubeObject>('GET', p.path, {signal: ctx.signal}).catch((error) => {
          if (isNotFound(error)) return undefined
          throw kubeError(error, `reading back ${ref}`)
        })
        if (!found || found.metadata.labels?.[DRILL_LABEL] !== ctx.drillId) missing.push(ref)
        else if (found.kind === 'Secret') secrets.push(found)
      }
      const validations = await validateRestore(
        api,
        {
          sourceNs,
          targetNs,
          meant: restore.ordered.length,
          missing,
          notRestored,
          total: inSource.length,
          secrets,
          timeoutMs,
          started,
        },
        scope,
        ctx,
        evidence,
      )
      return {
        target: `namespace ${targetNs}`,
        recoveryPoint,
        recoveryPointSource,
        validations,
        evidence,
        inventory: restore.inventory,
      }
    } finally {
      api.close()
    }
  } finally {
    location.close()
  }
}
