import {parseDuration} from '../config/duration.js'
import {formatHeaderRoute, headerRouteProblem, sameHeaderRoute, type HeaderRouteMatch} from '../config/route-match.js'
import {UsageError} from '../errors/index.js'
import type {RolloutState, Routing, Step} from './types.js'

/** Used when neither the configuration nor --steps gives any. */
export const DEFAULT_CANARY_STEPS: Step[] = [
  {setWeight: 10},
  {analysis: {}},
  {setWeight: 50},
  {analysis: {}},
  {setWeight: 100},
]

export const STEPS_SYNTAX = [
  'N or N%          send N % of traffic to the canary (setWeight)',
  'pause            wait for `retailops rollout promote`',
  'pause:30s        wait 30 s, then go on',
  'analysis[:N]     run the analysis (N measurements; default the configured count)',
  'scale:N          run at least N canary pods (setCanaryScale replicas)',
  'scale:N%         run at least N % of the replicas as canary pods (setCanaryScale weight)',
  'scale:match      canary pods follow the traffic weight (setCanaryScale matchTrafficWeight)',
  'header:NAME=VAL  requests with header NAME: VAL go to the canary until promotion (setHeaderRoute)',
  'cookie:NAME=VAL  requests with cookie NAME=VAL go to the canary until promotion (setHeaderRoute)',
  'mirror:N%        copy N % of live requests to the canary, responses discarded; mirror:0% stops (setMirrorRoute)',
].join('\n')

/**
 * Parses the --steps flag: a comma-separated list such as "10,analysis,50,pause:30s,100".
 * Every item is checked, and all problems are reported at once.
 */
export function parseStepsFlag(text: string): Step[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const steps: Step[] = []
  const problems: string[] = []
  for (const item of items) {
    const step = parseStep(item)
    if (typeof step === 'string') problems.push(`"${item}": ${step}`)
    else steps.push(step)
  }
  if (items.length === 0) problems.push('no steps given')
  if (problems.length > 0) {
    throw new UsageError(`Invalid --steps: ${problems.join('; ')}.`, {
      nextSteps: ['Steps, comma-separated:', ...STEPS_SYNTAX.split('\n')],
    })
  }
  return steps
}

function parseStep(item: string): Step | string {
  const weight = /^(\d{1,3})%?$/.exec(item)
  if (weight) {
    const n = Number(weight[1])
    return n <= 100 ? {setWeight: n} : 'a weight is 0 to 100'
  }
  const match = /^(header|cookie):(.*)$/i.exec(item)
  if (match) return parseHeaderRoute(match[1].toLowerCase() as 'header' | 'cookie', match[2])
  const [head, arg, ...rest] = item.split(':')
  if (rest.length > 0) return 'at most one ":" per step'
  switch (head.toLowerCase()) {
    case 'pause': {
      if (arg === undefined) return {pause: {}}
      return parseDuration(arg) === undefined ? 'a pause takes a duration such as 30s or 5m' : {pause: {duration: arg}}
    }
    case 'analysis': {
      if (arg === undefined) return {analysis: {}}
      const count = Number(arg)
      return Number.isInteger(count) && count >= 1
        ? {analysis: {count}}
        : 'analysis:N takes a whole number of measurements ≥ 1'
    }
    case 'scale': {
      if (arg === 'match') return {setCanaryScale: {matchTrafficWeight: true}}
      const m = /^(\d+)(%?)$/.exec(arg ?? '')
      if (!m) return 'scale takes N (pods), N% (of the replicas) or match'
      const n = Number(m[1])
      if (m[2]) return n <= 100 ? {setCanaryScale: {weight: n}} : 'a scale weight is 0 to 100 %'
      return {setCanaryScale: {replicas: n}}
    }
    case 'mirror': {
      const m = /^(\d{1,3})%$/.exec(arg ?? '')
      if (!m || Number(m[1]) > 100) return 'mirror takes a share of requests, 0% to 100% (e.g. mirror:10%)'
      return {setMirrorRoute: {percent: Number(m[1])}}
    }
    default:
      return 'unknown step (expected a weight, pause, analysis, scale, header, cookie or mirror)'
  }
}

/** `header:X-Canary=staff` / `cookie:canary=always`: the name ends at the first "=". */
function parseHeaderRoute(kind: 'header' | 'cookie', text: string): Step | string {
  const eq = text.indexOf('=')
  if (eq < 0)
    return `${kind} takes NAME=VALUE (e.g. ${kind === 'header' ? 'header:X-Canary=staff' : 'cookie:canary=always'})`
  const name = text.slice(0, eq)
  const value = text.slice(eq + 1)
  const route: HeaderRouteMatch = kind === 'cookie' ? {cookie: name, value} : {header: name, value}
  return headerRouteProblem(route) ?? {setHeaderRoute: route}
}

/** The flag syntax for a step list: what status and history print. */
export function formatSteps(steps: Step[]): string {
  return steps.map((s) => formatStep(s)).join(',')
}

export function formatStep(step: Step): string {
  if ('setWeight' in step) return `${step.setWeight}%`
  if ('pause' in step) return step.pause.duration ? `pause:${step.pause.duration}` : 'pause'
  if ('analysis' in step) return step.analysis.count ? `analysis:${step.analysis.count}` : 'analysis'
  if ('setHeaderRoute' in step) return formatHeaderRoute(step.setHeaderRoute)
  if ('setMirrorRoute' in step) return `mirror:${step.setMirrorRoute.percent}%`
  const s = step.setCanaryScale
  if (s.matchTrafficWeight) return 'scale:match'
  if (s.weight !== undefined) return `scale:${s.weight}%`
  return `scale:${s.replicas ?? 0}`
}

/** The weight in force after step `index` has run (the last setWeight at or before it). */
export function weightAfter(steps: Step[], index: number): number {
  let weight = 0
  for (let i = 0; i <= index && i < steps.length; i++) {
    const s = steps[i]
    if ('setWeight' in s) weight = s.setWeight
  }
  return weight
}

/**
 * The header and cookie matches and the mirror share in force at step `index` (every header or
 * cookie step so far, a later one on the same name replacing an earlier; the last mirror step),
 * with `weight`.
 */
export function routingAt(steps: Step[], index: number, weight: number): Routing {
  const headers: HeaderRouteMatch[] = []
  let mirrorPercent = 0
  for (let i = 0; i <= index && i < steps.length; i++) {
    const s = steps[i]
    if ('setHeaderRoute' in s) {
      const at = headers.findIndex((h) => sameHeaderRoute(h, s.setHeaderRoute))
      if (at >= 0) headers.splice(at, 1)
      headers.push(s.setHeaderRoute)
    }
    if ('setMirrorRoute' in s) mirrorPercent = s.setMirrorRoute.percent
  }
  return {weight, headers, mirrorPercent}
}

/** Only the weight: no header routes, no mirror (traffic back to stable, promotion's re-pin). */
export const weightOnly = (weight: number): Routing => ({weight, headers: [], mirrorPercent: 0})

/** The setCanaryScale in force at step `index`, if any. */
export function scaleAt(
  steps: Step[],
  index: number,
): Extract<Step, {setCanaryScale: unknown}>['setCanaryScale'] | undefined {
  let scale: Extract<Step, {setCanaryScale: unknown}>['setCanaryScale'] | undefined
  for (let i = 0; i <= index && i < steps.length; i++) {
    const s = steps[i]
    if ('setCanaryScale' in s) scale = s.setCanaryScale
  }
  return scale
}

/** Inconclusive, or paused at a pause without a duration: only `promote` or `abort` moves it. */
export function waitsForPerson(state: Pick<RolloutState, 'phase' | 'step' | 'spec'>): boolean {
  if (state.phase === 'Inconclusive') return true
  const step = state.spec.steps[state.step]
  return state.phase === 'Paused' && Boolean(step && 'pause' in step && !step.pause.duration)
}
