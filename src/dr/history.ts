import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {NotFoundError} from '../errors/index.js'
import {redactDeep} from '../ui/secrets.js'
import {isDrillId} from './naming.js'
import {renderHtml, renderMarkdown} from './report.js'
import type {DrillRecord} from './types.js'

/**
 * Drill records live in the project, next to retailops.yaml: .retailops/drills/<id>/ holds
 * drill.json (the record, the --json result), report.md, report.html and any evidence files
 * (a namespace snapshot). Files, not a cluster ConfigMap: the evidence must outlive the cluster it
 * proves recoverable, belongs with the configuration it was measured against (commit it, or keep
 * the folder as a CI artifact for as long as the audit needs), and a ConfigMap's 1 MiB limit
 * would not hold a report.
 */
export const DRILLS_DIR = '.retailops/drills'
/** Where records go instead, when the project's folder is read-only (a job in the cluster mounts retailops.yaml from a ConfigMap). */
export const DRILLS_DIR_ENV = 'RETAILOPS_DRILLS_DIR'

export function drillsDir(projectDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return env[DRILLS_DIR_ENV] ? path.resolve(env[DRILLS_DIR_ENV]) : path.join(projectDir, DRILLS_DIR)
}

export async function saveDrill(record: DrillRecord): Promise<void> {
  await mkdir(record.files.dir, {recursive: true})
  // Evidence files are kept as CI artifacts: the same masking as every other output.
  const masked = redactDeep(record)
  await writeFile(record.files.record, `${JSON.stringify(masked, null, 2)}\n`)
  await writeFile(record.files.markdown, renderMarkdown(masked))
  await writeFile(record.files.html, renderHtml(masked))
}

export interface DrillSummary {
  id: string
  startedAt: string
  status: DrillRecord['status']
  exit: DrillRecord['exit']
  environment: string
  datastores: string[]
  services: string[]
  /** The largest RTO measured, and whether any missed its target. */
  rtoMs?: number
  rpoMs?: number
  /** The strictest RTO and RPO targets the drill measured against (its datastores'). */
  rtoTargetMs?: number
  rpoTargetMs?: number
  targetsMissed: number
  validationsFailed: number
  ranBy: string
  report: string
  /** Where the record is: the project's files, or a ConfigMap in the cluster (a drill that ran there). */
  where: 'files' | 'cluster'
  /** Each datastore's RTO and RPO against its targets: what `dr history` trends. */
  perDatastore?: DatastoreMeasures[]
}

export interface DatastoreMeasures {
  name: string
  status: DrillRecord['datastores'][number]['status']
  rtoMs?: number
  rtoTargetMs: number
  rpoMs?: number
  rpoTargetMs: number
  /** The backup restored, when the drill restored one: its kind and point in time. */
  backup?: {kind: string; time: string}
}

/** One datastore's RTO and RPO over the drills listed, oldest first. */
export interface DatastoreTrend {
  datastore: string
  points: ({drillId: string; at: string} & Omit<DatastoreMeasures, 'name'>)[]
  /** How many of the drills met each target (measured ones only). */
  rtoMet: number
  rpoMet: number
  rtoMeasured: number
  rpoMeasured: number
}

/** Per datastore, its measurements over the given drills, oldest first (the `dr history` trend). */
export function datastoreTrends(drills: DrillSummary[]): DatastoreTrend[] {
  const byName = new Map<string, DatastoreTrend>()
  for (const d of [...drills].sort((a, b) => a.startedAt.localeCompare(b.startedAt))) {
    for (const m of d.perDatastore ?? []) {
      const t = byName.get(m.name) ?? {
        datastore: m.name,
        points: [],
        rtoMet: 0,
        rpoMet: 0,
        rtoMeasured: 0,
        rpoMeasured: 0,
      }
      const {name: _name, ...rest} = m
      void _name
      t.points.push({drillId: d.id, at: d.startedAt, ...rest})
      if (m.rtoMs !== undefined) {
        t.rtoMeasured++
        if (m.rtoMs <= m.rtoTargetMs) t.rtoMet++
      }
      if (m.rpoMs !== undefined) {
        t.rpoMeasured++
        if (m.rpoMs <= m.rpoTargetMs) t.rpoMet++
      }
      byName.set(m.name, t)
    }
  }
  return [...byName.values()].sort((a, b) => a.datastore.localeCompare(b.datastore))
}

export function summariseDrill(r: DrillRecord): DrillSummary {
  const rtos = r.datastores.map((d) => d.rto.actualMs).filter((n): n is number => n !== undefined)
  const rpos = r.datastores.map((d) => d.rpo.actualMs).filter((n): n is number => n !== undefined)
  return {
    id: r.id,
    startedAt: r.startedAt,
    status: r.status,
    exit: r.exit,
    environment: r.environment,
    datastores: r.datastores.map((d) => d.name),
    services: r.services.map((s) => s.service),
    rtoMs: rtos.length > 0 ? Math.max(...rtos) : undefined,
    rpoMs: rpos.length > 0 ? Math.max(...rpos) : undefined,
    rtoTargetMs: r.datastores.length > 0 ? Math.min(...r.datastores.map((d) => d.rto.targetMs)) : undefined,
    rpoTargetMs: r.datastores.length > 0 ? Math.min(...r.datastores.map((d) => d.rpo.targetMs)) : undefined,
    targetsMissed: r.datastores.filter((d) => d.rto.status === 'fail' || d.rpo.status === 'fail').length,
    validationsFailed:
      r.datastores.reduce((n, d) => n + d.validations.filter((v) => !v.passed).length, 0) +
      r.recoverability.filter((c) => c.status === 'fail').length,
    ranBy: r.ranBy.ci ?? `${r.ranBy.user}@${r.ranBy.host}`,
    report: r.files.html,
    where: 'files',
    perDatastore: r.datastores.map((d) => ({
      name: d.name,
      status: d.status,
      ...(d.rto.actualMs === undefined ? {} : {rtoMs: d.rto.actualMs}),
      rtoTargetMs: d.rto.targetMs,
      ...(d.rpo.actualMs === undefined ? {} : {rpoMs: d.rpo.actualMs}),
      rpoTargetMs: d.rpo.targetMs,
      ...(d.backup ? {backup: {kind: d.backup.kind, time: d.backup.time}} : {}),
    })),
  }
}

export interface HistoryFilter {
  limit?: number
  datastore?: string
  service?: string
  status?: string
}

export function matchesFilter(s: DrillSummary, filter: HistoryFilter): boolean {
  if (filter.datastore && !s.datastores.includes(filter.datastore)) return false
  if (filter.service && !s.services.includes(filter.service)) return false
  if (filter.status && s.status !== filter.status) return false
  return true
}

/** Past drills, newest first; unreadable records are reported, not fatal. */
export async function listDrills(
  projectDir: string,
  filter: HistoryFilter = {},
): Promise<{drills: DrillSummary[]; unreadable: string[]}> {
  const dir = drillsDir(projectDir)
  if (!existsSync(dir)) return {drills: [], unreadable: []}
  const ids = (await readdir(dir)).filter(isDrillId).sort().reverse()
  const drills: DrillSummary[] = []
  const unreadable: string[] = []
  for (const id of ids) {
    const file = path.join(dir, id, 'drill.json')
    if (!existsSync(file)) continue
    let record: DrillRecord
    try {
      record = JSON.parse(await readFile(file, 'utf8')) as DrillRecord
    } catch {
      unreadable.push(file)
      continue
    }
    const s = summariseDrill(record)
    if (!matchesFilter(s, filter)) continue
    drills.push(s)
    if (filter.limit !== undefined && drills.length >= filter.limit) break
  }
  return {drills, unreadable}
}

export async function loadDrill(projectDir: string, id: string): Promise<DrillRecord> {
  const file = path.join(drillsDir(projectDir), id, 'drill.json')
  if (!isDrillId(id) || !existsSync(file)) {
    throw new NotFoundError(`No drill ${id} in ${drillsDir(projectDir)}.`, {
      nextSteps: ['`retailops dr history` lists the drills kept here.'],
    })
  }
  return JSON.parse(await readFile(file, 'utf8')) as DrillRecord
}
