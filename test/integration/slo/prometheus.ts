// Feeding the sandbox's real Prometheus (2.42, Debian) for tests, three ways:
// - live targets: a file-SD JSON in $RETAILOPS_PROMETHEUS_SD_DIR (re-read every 5 s);
// - recorded history: `promtool tsdb create-blocks-from openmetrics` writes TSDB blocks, which are
//   moved into Prometheus' data directory (storage.tsdb.path from /api/v1/status/flags) and loaded
//   at its next block reload (once a minute); 2.42 accepts blocks that overlap others. Recordings
//   must end in the past: the newest block's end becomes the oldest time the head accepts;
// - rules: a file in the rules folder the sandbox's rule_files glob reads, then POST /-/reload.
// Cleanup deletes the test's series through the admin API (the sandbox enables it).
import {mkdir, mkdtemp, readdir, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {execa} from 'execa'
import {sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
export const PROMETHEUS = sandbox.prometheusUrl
export const SD_DIR = sandbox.prometheusSdDir
export const PROMTOOL = process.env.RETAILOPS_PROMTOOL ?? '/usr/bin/promtool'

async function api<T>(pathAndQuery: string, init?: RequestInit): Promise<T> {
  const r = await fetch(`${PROMETHEUS}${pathAndQuery}`, init)
  const text = await r.text()
  if (!r.ok) throw new Error(`${pathAndQuery}: HTTP ${r.status} ${text}`)
  return (text ? JSON.parse(text) : {}) as T
}

export async function instant(query: string): Promise<{metric: Record<string, string>; value: [number, string]}[]> {
  const body = await api<{data: {result: {metric: Record<string, string>; value: [number, string]}[]}}>(
    `/api/v1/query?query=${encodeURIComponent(query)}`,
  )
  return body.data.result
}

export async function scalar(query: string): Promise<number | null> {
  const r = await instant(query)
  return r.length ? Number(r[0].value[1]) : null
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Registers scrape targets (host:port on 127.0.0.1) with labels; returns a function that removes them. */
export async function registerTargets(
  name: string,
  groups: {targets: string[]; labels: Record<string, string>}[],
): Promise<() => Promise<void>> {
  if (!SD_DIR) throw new Error('RETAILOPS_PROMETHEUS_SD_DIR is not set: eval "$(bash scripts/sandbox.sh env)"')
  const file = path.join(SD_DIR, `${name}.json`)
  const tmp = `${file}.tmp`
  await writeFile(tmp, JSON.stringify(groups, null, 2))
  await rename(tmp, file)
  return () => rm(file, {force: true})
}

/** Waits until every target with this label value is scraped and up. */
export async function waitForTargets(label: string, value: string, count: number): Promise<void> {
  await waitFor(`${count} targets with ${label}=${value} up`, async () => {
    const body = await api<{
      data: {activeTargets: {labels: Record<string, string>; health: string; lastScrape: string}[]}
    }>('/api/v1/targets?state=active')
    const mine = body.data.activeTargets.filter((t) => t.labels[label] === value)
    return mine.length === count && mine.every((t) => t.health === 'up')
  })
}

/**
 * Waits until every target with this label value has been scraped `times` times since `since`
 * (epoch ms): a scrape that started after a request was answered holds its count. Instead of a
 * fixed sleep of that many scrape intervals, which the targets' last scrape says is over sooner.
 */
export async function waitForScrapes(label: string, value: string, since: number, times = 1): Promise<void> {
  await waitFor(
    `the targets with ${label}=${value} scraped ${times} time(s) after ${new Date(since).toISOString()}`,
    async () => {
      const body = await api<{
        data: {activeTargets: {labels: Record<string, string>; lastScrape: string; scrapeInterval: string}[]}
      }>('/api/v1/targets?state=active')
      const mine = body.data.activeTargets.filter((t) => t.labels[label] === value)
      // The last scrape started after since, and so did the times - 1 before it, one interval apart each.
      return (
        mine.length > 0 &&
        mine.every((t) => Date.parse(t.lastScrape) - (times - 1) * parseSeconds(t.scrapeInterval) * 1000 > since)
      )
    },
    60_000,
    500,
  )
}

/** A Prometheus duration in whole seconds or minutes ("5s", "1m"), as the targets API reports the interval. */
function parseSeconds(duration: string): number {
  const m = /^(\d+)(s|m)$/.exec(duration)
  if (!m) throw new Error(`unexpected scrape interval ${duration}`)
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1)
}

export interface RecordedSeries {
  /** Counter name including _total, or a gauge's name. */
  name: string
  type?: 'counter' | 'gauge'
  labels: Record<string, string>
  /** [epoch ms, cumulative value], in time order. */
  samples: [number, number][]
}

function openMetrics(series: RecordedSeries[]): string {
  const lines: string[] = []
  const families = new Map<string, RecordedSeries[]>()
  for (const s of series) families.set(s.name, [...(families.get(s.name) ?? []), s])
  for (const [name, list] of families) {
    const type = list[0].type ?? 'counter'
    const family = type === 'counter' ? name.replace(/_total$/, '') : name
    lines.push(`# HELP ${family} Recorded by a retailops test.`, `# TYPE ${family} ${type}`)
    for (const s of list) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
        .join(',')
      for (const [t, v] of s.samples) lines.push(`${name}{${labels}} ${v} ${(t / 1000).toFixed(3)}`)
    }
  }
  lines.push('# EOF')
  return `${lines.join('\n')}\n`
}

/** A counter growing at `rate(t)` per second, sampled every stepMs from startMs to endMs. */
export function counter(
  name: string,
  labels: Record<string, string>,
  startMs: number,
  endMs: number,
  stepMs: number,
  rate: (t: number) => number,
): RecordedSeries {
  const samples: [number, number][] = []
  let v = 0
  for (let t = startMs; t <= endMs; t += stepMs) {
    samples.push([t, Math.round(v * 1000) / 1000])
    v += rate(t) * (stepMs / 1000)
  }
  return {name, labels, samples}
}

/** A gauge holding one value, sampled every stepMs. */
export function gauge(
  name: string,
  labels: Record<string, string>,
  startMs: number,
  endMs: number,
  stepMs: number,
  value: number,
): RecordedSeries {
  const samples: [number, number][] = []
  for (let t = startMs; t <= endMs; t += stepMs) samples.push([t, value])
  return {name, type: 'gauge', labels, samples}
}

/** Writes the series as TSDB blocks with promtool and hands them to Prometheus; returns the block ids. */
export async function backfill(series: RecordedSeries[]): Promise<string[]> {
  // A block that ends after "now" moves the head's lower bound into the future: Prometheus then
  // rejects every scrape (of every target) as out of bounds until that time has passed.
  const newest = Math.max(...series.flatMap((s) => s.samples.map(([t]) => t)))
  if (newest > Date.now())
    throw new Error(
      `refusing to record samples in the future (${new Date(newest).toISOString()}): Prometheus would drop every scrape until then`,
    )
  const flags = await api<{data: Record<string, string>}>('/api/v1/status/flags')
  const dataDir = flags.data['storage.tsdb.path']
  // Work next to the data folder so the final move is a rename on one filesystem.
  const work = await mkdtemp(path.join(path.dirname(dataDir), 'backfill-'))
  try {
    const input = path.join(work, 'series.om')
    await writeFile(input, openMetrics(series))
    const out = path.join(work, 'blocks')
    await mkdir(out)
    await execa(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', '--max-block-duration=24h', input, out])
    const blocks = (await readdir(out)).filter((d) => /^[0-9A-Z]{26}$/.test(d))
    for (const b of blocks) await rename(path.join(out, b), path.join(dataDir, b))
    return blocks
  } finally {
    await rm(work, {recursive: true, force: true})
  }
}

/** Deletes every series matching the selector (admin API) and compacts the tombstones away. */
export async function deleteSeries(selector: string): Promise<void> {
  await api(`/api/v1/admin/tsdb/delete_series?match[]=${encodeURIComponent(selector)}`, {method: 'POST'})
  await api('/api/v1/admin/tsdb/clean_tombstones', {method: 'POST'})
}

/** The folder the sandbox's rule_files glob reads (a sibling of the file-SD folder). */
export async function rulesDir(): Promise<string> {
  const body = await api<{data: {yaml: string}}>('/api/v1/status/config')
  const m = /rule_files:\s*\n\s*-\s*(\S+)/.exec(body.data.yaml)
  if (!m) throw new Error('Prometheus has no rule_files')
  return path.dirname(m[1])
}

export async function reload(): Promise<void> {
  await api('/-/reload', {method: 'POST'})
}
