/**
 * The rollout's HTML report (`rollout get --html`): its analysis runs with the numbers behind every
 * metric's verdict (counts against the minimum, the test, p-value, confidence interval, effect
 * size and thresholds) and the evidence forecast said before each run. Built from the shared
 * report shell (src/report), like the cost, slo and drill reports.
 */

import {badge, html, note, renderPage, type Html, type ReportSection, table, type Tone} from '../report/html.js'
import type {AnalysisVerdict} from './analysis.js'
import type {RolloutTree} from './tree.js'
import type {Evidence} from './types.js'

type MetricVerdict = AnalysisVerdict['metrics'][number]

const TONE: Record<string, Tone> = {
  Successful: 'good',
  Running: 'info',
  Inconclusive: 'warn',
  Failed: 'bad',
  Error: 'bad',
}

const num = (v: number | null | undefined, digits = 4): string =>
  v === null || v === undefined
    ? ''
    : !Number.isFinite(v)
      ? String(v)
      : v !== 0 && Math.abs(v) < 10 ** -digits
        ? v.toExponential(2)
        : String(Math.round(v * 10 ** digits) / 10 ** digits)
const pct = (v: number): string => `${num(v * 100, 2)} %`
const msOf = (s: number | null): string => (s === null ? 'n/a' : `${num(s * 1000, 1)} ms`)

/** The columns of one metric: what the test was, and each number it rests on. */
function testCells(e: Evidence | undefined): {test: string; p: string; effect: string; threshold: string} {
  if (e?.proportion) {
    const x = e.proportion
    return {
      test: x.test === 'z' ? `two-proportion z-test (z = ${num(x.z, 2)})` : "Fisher's exact test",
      p: `${num(x.pValue)} (α = ${num(1 - x.confidence)})`,
      effect: `${pct(x.canary.rate)} − ${pct(x.stable.rate)} = ${pct(x.difference)} (${Math.round(x.confidence * 100)} % CI ${pct(x.interval[0])} to ${pct(x.interval[1])})`,
      threshold: `≥ ${pct(x.minEffect)}`,
    }
  }
  if (e?.distribution) {
    const x = e.distribution
    return {
      test: `Mann-Whitney U (U = ${num(x.u, 1)}, z = ${num(x.z, 2)})`,
      p: `${num(x.pValue)} (α = ${num(1 - x.confidence)})`,
      effect: `rank-biserial ${num(x.rankBiserial, 3)} (slower in ${num(x.commonLanguage * 100, 1)} % of pairs); p50 ${msOf(x.canary.p50)} vs ${msOf(x.stable.p50)}, p95 ${msOf(x.canary.p95)} vs ${msOf(x.stable.p95)}`,
      threshold: `≥ ${num(x.minEffect, 3)}`,
    }
  }
  return {test: e ? 'tolerance' : '', p: '', effect: '', threshold: ''}
}

function runSection(run: AnalysisVerdict): ReportSection {
  const forecast = run.forecast
    ? [note(`Before it started: ${run.forecast.message}`, run.forecast.enough ? 'info' : 'warn')]
    : []
  const metrics = table<MetricVerdict>(run.metrics, [
    {header: 'Metric', value: (m) => m.name},
    {header: 'Verdict', value: (m) => badge(m.phase, TONE[m.phase] ?? 'neutral')},
    {header: 'Measurements', value: (m) => `✔ ${m.successful}  ✖ ${m.failed}  ? ${m.inconclusive}  ⚠ ${m.errors}`},
    {header: 'Canary n', numeric: true, value: (m) => m.decisive?.evidence?.samples.canary},
    {header: 'Stable n', numeric: true, value: (m) => m.decisive?.evidence?.samples.stable},
    {header: 'Needed', numeric: true, value: (m) => m.decisive?.evidence?.samples.needed},
    {header: 'Canary', numeric: true, value: (m) => num(m.decisive?.canary)},
    {header: 'Stable', numeric: true, value: (m) => num(m.decisive?.stable)},
    {header: 'Test', value: (m) => testCells(m.decisive?.evidence).test},
    {header: 'p-value', value: (m) => testCells(m.decisive?.evidence).p},
    {header: 'Effect', value: (m) => testCells(m.decisive?.evidence).effect},
    {header: 'Fails at', value: (m) => testCells(m.decisive?.evidence).threshold},
  ])
  const reasons: Html[] = run.metrics.map((m) =>
    note(html`<b>${m.name}</b>: ${m.decisive?.reason ?? 'not measured yet'}`, TONE[m.phase] ?? 'neutral'),
  )
  return {
    title: `${run.kind} analysis (${run.id}): ${run.phase}`,
    ...(run.message ? {intro: run.message} : {}),
    body: [...forecast, metrics, ...reasons],
  }
}

/** The page: the rollout's status, then one section per analysis run, most recent last. */
export function renderRolloutHtml(tree: RolloutTree, generatedAt?: Date): string {
  const s = tree.status
  const sections: ReportSection[] = tree.analysis.map(runSection)
  if (sections.length === 0)
    sections.push({title: 'Analysis', body: note('No analysis has run in this rollout yet.', 'neutral')})
  return renderPage({
    title: `Rollout ${s.service}: ${s.phase}`,
    subtitle: `canary ${s.canary.version} against stable ${s.stable.version} in ${s.namespace}${s.reason ? `: ${s.reason}` : ''}`,
    ...(generatedAt ? {generatedAt} : {}),
    meta: [
      {label: 'Strategy', value: `${s.strategy} (${s.router})`},
      {label: 'Steps', value: s.steps},
      {label: 'Weight', value: `${s.weight} %`},
      {label: 'Analysis', value: s.analysisSpec},
    ],
    sections,
    footer: `retailops rollout get ${s.service} --html. Each metric shows the measurement that decided it; the state ConfigMap retailops-rollout-${s.service} keeps every measurement.`,
  })
}
