import cvss from 'ae-cvss-calculator'

import {SEVERITY_THRESHOLDS, type VulnerabilitySeverity} from '../config/vocabulary.js'

/** Qualitative severities, lowest first (CVSS v3.1/v4.0 specification, "Qualitative Severity Rating Scale"). */
export const SEVERITIES = ['none', 'low', 'medium', 'high', 'critical'] as const
export type KnownSeverity = (typeof SEVERITIES)[number]
/** `unknown`: the record has no CVSS vector that scores and no severity of the database's own. */
export type Severity = KnownSeverity | 'unknown'
/** The thresholds `--fail-on` and supplyChain.policy.failOn accept. */
export const THRESHOLDS = SEVERITY_THRESHOLDS
export type Threshold = VulnerabilitySeverity

export type SeveritySource = 'CVSS_V4' | 'CVSS_V3' | 'CVSS_V2' | 'database_specific' | 'none'

export interface Rating {
  severity: Severity
  /** CVSS base score (0.0–10.0) when a vector scored. */
  score?: number
  /** The vector the score came from. */
  vector?: string
  source: SeveritySource
  /** Vectors that did not score (malformed or incomplete): why the rating fell back. */
  problems: string[]
}

export interface OsvSeverityEntry {
  type: string
  score: string
}

/**
 * CVSS v3.x and v4.0 ranges: 0.0 none, 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0
 * critical. CVSS v2 defines no qualitative scale of its own; NVD's v2 ranges (low < 4.0, medium
 * < 7.0, high up to 10.0) have no critical, so a v2 score is never rated critical.
 */
export function severityOfScore(score: number, version: 2 | 3 | 4 = 3): KnownSeverity {
  if (score <= 0) return 'none'
  if (score < 4) return 'low'
  if (score < 7) return 'medium'
  if (version === 2 || score < 9) return 'high'
  return 'critical'
}

const PREFERENCE: {type: string; source: SeveritySource; version: 2 | 3 | 4}[] = [
  {type: 'CVSS_V4', source: 'CVSS_V4', version: 4},
  {type: 'CVSS_V3', source: 'CVSS_V3', version: 3},
  {type: 'CVSS_V2', source: 'CVSS_V2', version: 2},
]

/** The base score of a CVSS vector, or why it has none. */
export function cvssBaseScore(type: string, vector: string): {score: number} | {problem: string} {
  const text = vector.trim()
  let calculator
  try {
    if (type === 'CVSS_V4') {
      if (!text.startsWith('CVSS:4.0/')) return {problem: `${type} "${vector}" does not start with CVSS:4.0/`}
      calculator = new cvss.Cvss4P0(text)
    } else if (type === 'CVSS_V3') {
      if (text.startsWith('CVSS:3.1/')) calculator = new cvss.Cvss3P1(text)
      else if (text.startsWith('CVSS:3.0/')) calculator = new cvss.Cvss3P0(text)
      else return {problem: `${type} "${vector}" does not start with CVSS:3.0/ or CVSS:3.1/`}
    } else if (type === 'CVSS_V2') {
      calculator = new cvss.Cvss2(text.replace(/^\((.*)\)$/, '$1'))
    } else return {problem: `${type} is not a CVSS type`}
  } catch (error) {
    return {problem: `${type} "${vector}" is not a CVSS vector (${(error as Error).message})`}
  }
  if (!calculator.isBaseFullyDefined()) return {problem: `${type} "${vector}" lacks base metrics`}
  const base = calculator.calculateScores().base
  if (base === undefined || Number.isNaN(base)) return {problem: `${type} "${vector}" has no base score`}
  return {score: base}
}

/** GHSA's `database_specific.severity` words (MODERATE is GitHub's medium). */
const DATABASE_WORDS: Record<string, KnownSeverity> = {
  none: 'none',
  low: 'low',
  moderate: 'medium',
  medium: 'medium',
  high: 'high',
  critical: 'critical',
}

/**
 * The severity of a record for one affected package: the package's own `severity` list when it
 * has one (the OSV schema allows per-package severities, and then no top-level one), else the
 * record's; the newest CVSS version that scores wins (v4, then v3, then v2). Without a vector
 * that scores, the database's own word (`database_specific.severity`, as GHSA records carry);
 * else unknown.
 */
export function rate(
  entries: OsvSeverityEntry[] | undefined,
  databaseSpecific: Record<string, unknown> | undefined,
): Rating {
  const problems: string[] = []
  for (const {type, source, version} of PREFERENCE) {
    for (const entry of entries ?? []) {
      if (entry.type !== type) continue
      const scored = cvssBaseScore(type, entry.score)
      if ('problem' in scored) {
        problems.push(scored.problem)
        continue
      }
      return {
        severity: severityOfScore(scored.score, version),
        score: scored.score,
        vector: entry.score,
        source,
        problems,
      }
    }
  }
  const word = databaseSpecific?.severity
  if (typeof word === 'string' && DATABASE_WORDS[word.toLowerCase()])
    return {severity: DATABASE_WORDS[word.toLowerCase()], source: 'database_specific', problems}
  return {severity: 'unknown', source: 'none', problems}
}

export function severityRank(severity: KnownSeverity): number {
  return SEVERITIES.indexOf(severity)
}

/**
 * Whether a finding's severity is at or above a threshold. An unknown severity is rated as
 * `unknownAs` (default critical: a record nothing rates is not assumed harmless, which is what
 * malicious-package records without CVSS look like).
 */
export function atOrAbove(severity: Severity, threshold: Threshold, unknownAs: KnownSeverity = 'critical'): boolean {
  const rated = severity === 'unknown' ? unknownAs : severity
  return severityRank(rated) >= severityRank(threshold)
}

/** Sort key, highest first: unknown above critical, since nothing rated it and it needs a person's look. */
export function displayRank(severity: Severity): number {
  return severity === 'unknown' ? SEVERITIES.length : severityRank(severity)
}
