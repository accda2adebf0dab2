import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'

import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {NotFoundError, toRetailOpsError} from '../errors/index.js'
import {isNotFound, kubeCredentials, kubeError} from '../kubernetes/client.js'
import {KubeHttp} from '../kubernetes/http.js'
import type {RunContext} from '../ui/context.js'
import {redactDeep} from '../ui/secrets.js'
import {
  type DatastoreTrend,
  datastoreTrends,
  type DrillSummary,
  drillsDir,
  type HistoryFilter,
  listDrills,
  loadDrill,
  matchesFilter,
  saveDrill,
  summariseDrill,
} from './history.js'
import {isDrillId} from './naming.js'
import {listDrillSchedules, type ScheduledDrill} from './schedule.js'
import type {DrillRecord} from './types.js'
import {collectionPath, namedPath} from '../kubernetes/resources.js'

/**
 * Drill records kept in the cluster, for drills that run there (`dr drill --schedule`): the pod's
 * files go with it, so the record (masked as every output is) and its evidence files go into a
 * ConfigMap retailops-dr-record-<id> in the environment's namespace, gzipped, where `dr history`
 * reads them from any workstation or pipeline. `dr history <id>` copies one into
 * .retailops/drills/<id>/ (record, reports, evidence), where records outlive the cluster.
 */
export const RECORD_PREFIX = 'retailops-dr-record-'
export const RECORD_LABEL = 'retailops.dev/drill-record'
const RECORD_KEY = 'drill.json.gz'
/** A ConfigMap holds at most 1 MiB; evidence files that do not fit stay out (the record says so). */
const MAX_BYTES = 900 * 1024

export function recordConfigMapName(drillId: string): string {
  return `${RECORD_PREFIX}${drillId}`
}

/** Stores the record and the evidence files of its folder (not the reports: they are rendered from the record). */
export async function saveDrillToCluster(
  http: KubeHttp,
  namespace: string,
  record: DrillRecord,
): Promise<{configMap: string; evidenceLeftOut: string[]}> {
  const name = recordConfigMapName(record.id)
  const binaryData: Record<string, string> = {
    [RECORD_KEY]: gzipSync(JSON.stringify(redactDeep(record))).toString('base64'),
  }
  let size = binaryData[RECORD_KEY].length
  const evidenceLeftOut: string[] = []
  const own = new Set([record.files.record, record.files.markdown, record.files.html].map((f) => path.basename(f)))
  const entries = await readdir(record.files.dir).catch(() => [] as string[])
  for (const file of entries.sort()) {
    if (own.has(file) || !/^[-._a-zA-Z0-9]+$/.test(file)) continue
    const data = gzipSync(await readFile(path.join(record.files.dir, file))).toString('base64')
    if (size + data.length > MAX_BYTES) {
      evidenceLeftOut.push(file)
      continue
    }
    binaryData[`${file}.gz`] = data
    size += data.length
  }
  const body = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: {
        'app.kubernetes.io/managed-by': 'retailops',
        'app.kubernetes.io/component': 'dr-record',
        [RECORD_LABEL]: record.id,
        'retailops.dev/drill-status': record.status,
      },
      annotations: {
        'retailops.dev/drill-started-at': record.startedAt,
        ...(evidenceLeftOut.length ? {'retailops.dev/evidence-left-out': evidenceLeftOut.join(',')} : {}),
      },
    },
    immutable: true,
    binaryData,
  }
  try {
    await http.request('POST', collectionPath('ConfigMap', namespace), {body})
  } catch (error) {
    throw kubeError(error, `keeping drill ${record.id}'s record in ConfigMap ${namespace}/${name}`)
  }
  return {configMap: name, evidenceLeftOut}
}

interface RecordConfigMap {
  metadata: {name: string; namespace: string; labels?: Record<string, string>}
  binaryData?: Record<string, string>
}

export interface ClusterRecord {
  record: DrillRecord
  configMap: string
  namespace: string
  /** Evidence file name → contents. */
  evidence: Record<string, Buffer>
}

function decode(cm: RecordConfigMap): ClusterRecord | undefined {
  const data = cm.binaryData?.[RECORD_KEY]
  if (!data) return undefined
  const record = JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8')) as DrillRecord
  if (!isDrillId(record.id)) return undefined
  const evidence: Record<string, Buffer> = {}
  for (const [key, value] of Object.entries(cm.binaryData ?? {}))
    if (key !== RECORD_KEY && key.endsWith('.gz')) evidence[key.slice(0, -3)] = gunzipSync(Buffer.from(value, 'base64'))
  return {record, configMap: cm.metadata.name, namespace: cm.metadata.namespace, evidence}
}

/** The records kept in the namespace, newest first; unreadable ones are named. */
export async function listClusterDrills(
  http: KubeHttp,
  namespace: string,
): Promise<{records: ClusterRecord[]; unreadable: string[]}> {
  const list = await http
    .request<{items: RecordConfigMap[]}>('GET', collectionPath('ConfigMap', namespace), {
      query: {labelSelector: RECORD_LABEL},
    })
    .catch((error: unknown) => {
      throw kubeError(error, `listing drill records in ${namespace}`)
    })
  const records: ClusterRecord[] = []
  const unreadable: string[] = []
  for (const cm of list.items) {
    try {
      const r = decode(cm)
      if (r) records.push(r)
      else unreadable.push(`ConfigMap ${namespace}/${cm.metadata.name}`)
    } catch {
      unreadable.push(`ConfigMap ${namespace}/${cm.metadata.name}`)
    }
  }
  records.sort((a, b) => (a.record.id < b.record.id ? 1 : -1))
  return {records, unreadable}
}

export async function loadClusterDrill(
  http: KubeHttp,
  namespace: string,
  id: string,
): Promise<ClusterRecord | undefined> {
  if (!isDrillId(id)) return undefined
  try {
    return decode(
      await http.request<RecordConfigMap>('GET', namedPath('ConfigMap', recordConfigMapName(id), namespace)),
    )
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw kubeError(error, `reading drill ${id}'s record in ${namespace}`)
  }
}

export interface HistoryOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  filter: HistoryFilter
  /** Also read the records and schedules kept in the environment's namespace (default true). */
  cluster: boolean
}

export interface HistoryResult {
  drills: DrillSummary[]
  /** Each datastore's RTO and RPO over the drills listed, oldest first. */
  trends: DatastoreTrend[]
  unreadable: string[]
  /** The drills scheduled in the environment's namespace, with their next runs. */
  scheduled: ScheduledDrill[]
  /** What was read from the cluster; a failure to read it is a warning (the files are still listed). */
  cluster: {namespace: string; read: boolean; error?: string}
}

function withHttp<T>(environment: ResolvedEnvironment, fn: (http: KubeHttp) => Promise<T>): Promise<T> {
  const http = new KubeHttp(kubeCredentials({context: environment.context, kubeconfig: environment.kubeconfig}))
  return fn(http).finally(() => http.close())
}

/** The project's records and the cluster's (one entry per drill, the files' when both), newest first, and the schedules. */
export async function readHistory(options: HistoryOptions, ctx: RunContext): Promise<HistoryResult> {
  const result = await readHistoryRecords(options, ctx)
  return {...result, trends: datastoreTrends(result.drills)}
}

async function readHistoryRecords(options: HistoryOptions, ctx: RunContext): Promise<Omit<HistoryResult, 'trends'>> {
  const namespace = options.environment.namespace
  const local = await listDrills(options.project.dir, {...options.filter, limit: undefined})
  if (!options.cluster)
    return {
      ...local,
      drills: local.drills.slice(0, options.filter.limit),
      scheduled: [],
      cluster: {namespace, read: false},
    }
  try {
    const [kept, scheduled] = await withHttp(options.environment, async (http) =>
      Promise.all([listClusterDrills(http, namespace), listDrillSchedules(http, namespace)]),
    )
    const ids = new Set(local.drills.map((d) => d.id))
    const remote = kept.records
      .filter((r) => !ids.has(r.record.id))
      .map((r): DrillSummary => ({
        ...summariseDrill(r.record),
        report: `ConfigMap ${r.namespace}/${r.configMap} (\`retailops dr history ${r.record.id}\` copies it to ${drillsDir(options.project.dir)})`,
        where: 'cluster',
      }))
      .filter((s) => matchesFilter(s, options.filter))
    const drills = [...local.drills, ...remote].sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, options.filter.limit)
    return {drills, unreadable: [...local.unreadable, ...kept.unreadable], scheduled, cluster: {namespace, read: true}}
  } catch (error) {
    const message = toRetailOpsError(error).message.split('\n')[0]
    ctx.out.warn(
      `Drills kept in the cluster (namespace ${namespace}) were not read: ${message}. Pass --no-cluster to list only the files here.`,
    )
    return {
      ...local,
      drills: local.drills.slice(0, options.filter.limit),
      scheduled: [],
      cluster: {namespace, read: false, error: message},
    }
  }
}

/** One drill: from the files, else from the cluster, copied into the files (record, reports, evidence) so it outlives the cluster. */
export async function showDrill(
  options: {project: LoadedConfig; environment: ResolvedEnvironment; id: string; cluster: boolean},
  ctx: RunContext,
): Promise<DrillRecord> {
  try {
    return await loadDrill(options.project.dir, options.id)
  } catch (error) {
    if (!options.cluster || !(error instanceof NotFoundError)) throw error
  }
  const kept = await withHttp(options.environment, (http) =>
    loadClusterDrill(http, options.environment.namespace, options.id),
  )
  if (!kept) {
    throw new NotFoundError(
      `No drill ${options.id} in ${drillsDir(options.project.dir)} or in namespace ${options.environment.namespace}.`,
      {nextSteps: ['`retailops dr history` lists the drills kept here and in the cluster.']},
    )
  }
  const dir = path.join(drillsDir(options.project.dir), kept.record.id)
  await mkdir(dir, {recursive: true})
  for (const [file, data] of Object.entries(kept.evidence)) await writeFile(path.join(dir, path.basename(file)), data)
  const record: DrillRecord = {
    ...kept.record,
    files: {
      dir,
      record: path.join(dir, 'drill.json'),
      markdown: path.join(dir, 'report.md'),
      html: path.join(dir, 'report.html'),
    },
  }
  await saveDrill(record)
  ctx.out.info(`Copied drill ${record.id} from ConfigMap ${kept.namespace}/${kept.configMap} to ${dir}`)
  return record
}
