// The analysis statistics against reference values computed independently, in this test, by
// SciPy (PyPI, in the venv scripts/setup-python.sh caches; scripts/sandbox.sh up creates it):
// scipy.stats.mannwhitneyu(method='asymptotic', use_continuity=True) with its tie correction on
// the observations the buckets stand for, and the pooled two-proportion z-test from scipy.stats.norm.
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

import {
  alignBuckets,
  bucketQuantile,
  bucketsFromCumulative,
  fisherExactGreater,
  mannWhitneyBuckets,
  normalCdf,
  normalPpf,
  normalSf,
  twoProportionTest,
} from '../../../src/rollout/statistics.js'

/** The SciPy venv's interpreter: RETAILOPS_PYTHON (scripts/sandbox.sh env), else where setup-python.sh caches it. */
const PYTHON =
  process.env.RETAILOPS_PYTHON ??
  path.join(
    process.env.RETAILOPS_SANDBOX_CACHE ?? path.join(os.homedir(), '.cache', 'retailops-sandbox'),
    'py',
    'bin',
    'python',
  )

function scipy(script: string, input: unknown): any {
  if (!existsSync(PYTHON))
    throw new Error(
      `SciPy venv missing at ${PYTHON}: run \`bash scripts/setup-python.sh\` (scripts/sandbox.sh up runs it)`,
    )
  return JSON.parse(execFileSync(PYTHON, ['-c', script], {input: JSON.stringify(input), encoding: 'utf8'}))
}

/** A deterministic pseudo-random generator (mulberry32), so the cases are the same on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MWU = `
import json, sys
import numpy as np
from scipy.stats import mannwhitneyu
out = []
for case in json.load(sys.stdin):
    x = np.repeat(np.arange(len(case['canary'])), case['canary'])
    y = np.repeat(np.arange(len(case['stable'])), case['stable'])
    r = mannwhitneyu(x, y, alternative='greater', method='asymptotic', use_continuity=True)
    out.append({'u': float(r.statistic), 'p': float(r.pvalue)})
print(json.dumps(out))
`

const PROPORTIONS = `
import json, sys, math
from scipy.stats import norm, fisher_exact
out = []
for c in json.load(sys.stdin):
    n1, x1, n2, x2, conf = c['n1'], c['x1'], c['n2'], c['x2'], c['confidence']
    p1, p2 = x1 / n1, x2 / n2
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se
    half = norm.ppf(1 - (1 - conf) / 2) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    fisher = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative='greater').pvalue
    out.append({'z': z, 'p': float(norm.sf(z)), 'fisher': float(fisher), 'lo': p1 - p2 - half, 'hi': p1 - p2 + half})
print(json.dumps(out))
`

describe('Mann-Whitney U over histogram buckets, against scipy.stats.mannwhitneyu', () => {
  const rnd = random(21)
  const cases = [
    // The bundled services' 12 buckets: a canary shifted one bucket up, at canary volume.
    {canary: [0, 40, 300, 120, 30, 5, 2, 1, 0, 0, 0, 0, 0], stable: [5, 600, 2400, 500, 80, 10, 3, 1, 1, 0, 0, 0, 0]},
    // Identical shapes: no difference.
    {canary: [10, 20, 30, 20, 10], stable: [100, 200, 300, 200, 100]},
    // The canary faster: p near 1.
    {canary: [60, 30, 10, 0], stable: [10, 30, 60, 40]},
    // Small samples, many ties.
    {canary: [3, 0, 2], stable: [1, 4, 0]},
    // High volume, a tiny shift.
    {canary: [0, 9_000, 1_000, 10], stable: [0, 9_100, 900, 10]},
    ...Array.from({length: 8}, () => {
      const k = 3 + Math.floor(rnd() * 10)
      const draw = (scale: number) => Array.from({length: k}, () => Math.floor(rnd() * scale))
      return {canary: draw(60), stable: draw(400)}
    }),
  ]
  const reference: {u: number; p: number}[] = scipy(MWU, cases)

  it.each(cases.map((c, i) => [i, c] as const))('case %i: the same U and one-sided p-value', (i, c) => {
    const r = mannWhitneyBuckets(c.canary, c.stable)
    expect(r.u).toBeCloseTo(reference[i].u, 6)
    expect(Math.abs(r.pValue - reference[i].p)).toBeLessThan(1e-12 + 1e-9 * reference[i].p)
    const n1 = c.canary.reduce((a, b) => a + b, 0)
    const n2 = c.stable.reduce((a, b) => a + b, 0)
    expect(r.commonLanguage).toBeCloseTo(reference[i].u / (n1 * n2), 12)
    expect(r.rankBiserial).toBeCloseTo((2 * reference[i].u) / (n1 * n2) - 1, 12)
  })

  it('every observation in one bucket is no evidence (p = 1), not NaN', () => {
    const r = mannWhitneyBuckets([0, 50, 0], [0, 500, 0])
    expect(r.pValue).toBe(1)
    expect(r.rankBiserial).toBe(0)
  })
})

describe('pooled two-proportion z-test, against scipy.stats.norm', () => {
  const cases = [
    {n1: 1000, x1: 20, n2: 9000, x2: 9, confidence: 0.95},
    {n1: 60, x1: 1, n2: 540, x2: 0, confidence: 0.95},
    {n1: 5000, x1: 50, n2: 45000, x2: 430, confidence: 0.99},
    {n1: 300, x1: 3, n2: 2700, x2: 40, confidence: 0.9},
    {n1: 120, x1: 60, n2: 1200, x2: 0, confidence: 0.95},
    // Too few expected failures for the normal approximation: Fisher's exact test.
    {n1: 60, x1: 1, n2: 540, x2: 0, confidence: 0.95},
    {n1: 80, x1: 3, n2: 720, x2: 2, confidence: 0.95},
    {n1: 200, x1: 4, n2: 1800, x2: 1, confidence: 0.99},
  ]
  const reference: {z: number; p: number; fisher: number; lo: number; hi: number}[] = scipy(PROPORTIONS, cases)

  it.each(cases.map((c, i) => [i, c] as const))('case %i: the same z, p-value and interval', (i, c) => {
    const r = twoProportionTest({n: c.n1, failures: c.x1}, {n: c.n2, failures: c.x2}, c.confidence)
    expect(r.z).toBeCloseTo(reference[i].z, 10)
    // The rule: z where each side expects ≥ 5 failures and successes under the pooled rate.
    const pooled = (c.x1 + c.x2) / (c.n1 + c.n2)
    const expected = Math.min(c.n1, c.n2) * Math.min(pooled, 1 - pooled)
    expect(r.test).toBe(expected >= 5 ? 'z' : 'fisher')
    const p = r.test === 'z' ? reference[i].p : reference[i].fisher
    expect(Math.abs(r.pValue - p)).toBeLessThan(1e-14 + 1e-9 * p)
    expect(r.interval[0]).toBeCloseTo(reference[i].lo, 9)
    expect(r.interval[1]).toBeCloseTo(reference[i].hi, 9)
  })

  it("Fisher's exact test on its own, against scipy.stats.fisher_exact(alternative='greater')", () => {
    const tables = [
      [1, 60, 0, 540],
      [5, 50, 1, 500],
      [0, 100, 3, 900],
      [12, 400, 30, 3600],
      [7, 7, 0, 10],
    ]
    const ref: number[] = scipy(
      `
import json, sys
from scipy.stats import fisher_exact
print(json.dumps([float(fisher_exact([[a, n1 - a], [b, n2 - b]], alternative='greater').pvalue) for a, n1, b, n2 in json.load(sys.stdin)]))
`,
      tables,
    )
    tables.forEach(([a, n1, b, n2], i) => {
      const p = fisherExactGreater({n: n1, failures: a}, {n: n2, failures: b})
      expect(Math.abs(p - ref[i])).toBeLessThan(1e-13 + 1e-9 * ref[i])
    })
  })

  it('no failures on either side is no evidence: p = 1', () => {
    expect(twoProportionTest({n: 100, failures: 0}, {n: 900, failures: 0}, 0.95)).toMatchObject({z: 0, pValue: 1})
  })
})

describe('the normal distribution, against scipy.stats.norm', () => {
  const zs = [-8, -3.2, -1.96, -0.5, 0, 0.3, 1, 1.6448536269514722, 2.5, 4, 6.5, 9]
  const ps = [1e-10, 0.001, 0.025, 0.05, 0.3, 0.5, 0.9, 0.95, 0.975, 0.995, 0.999999]
  const reference: {sf: number[]; cdf: number[]; ppf: number[]} = scipy(
    `
import json, sys
from scipy.stats import norm
d = json.load(sys.stdin)
print(json.dumps({'sf': [float(norm.sf(z)) for z in d['zs']], 'cdf': [float(norm.cdf(z)) for z in d['zs']], 'ppf': [float(norm.ppf(p)) for p in d['ps']]}))
`,
    {zs, ps},
  )
  it('sf and cdf to relative 1e-12, ppf to 1e-10', () => {
    zs.forEach((z, i) => {
      expect(Math.abs(normalSf(z) - reference.sf[i])).toBeLessThanOrEqual(1e-12 * reference.sf[i] + 1e-300)
      expect(Math.abs(normalCdf(z) - reference.cdf[i])).toBeLessThanOrEqual(1e-12 * reference.cdf[i] + 1e-300)
    })
    ps.forEach((p, i) => expect(normalPpf(p)).toBeCloseTo(reference.ppf[i], 10))
  })
})

describe('buckets from Prometheus', () => {
  it('turns cumulative le samples into per-bucket counts, in le order, never negative', () => {
    const b = bucketsFromCumulative([
      {le: '+Inf', value: 100},
      {le: '0.01', value: 60},
      {le: '0.005', value: 10},
      {le: '0.025', value: 58}, // dipped (a reset inside the window): held at 60
    ])
    expect(b.bounds).toEqual([0.005, 0.01, 0.025, Infinity])
    expect(b.counts).toEqual([10, 50, 0, 40])
    expect(b.total).toBe(100)
  })

  it('aligns two bucket sets on the union of their bounds', () => {
    const a = bucketsFromCumulative([
      {le: '0.1', value: 5},
      {le: '+Inf', value: 6},
    ])
    const b = bucketsFromCumulative([
      {le: '0.05', value: 1},
      {le: '0.1', value: 2},
      {le: '+Inf', value: 2},
    ])
    expect(alignBuckets(a, b)).toEqual({bounds: [0.05, 0.1, Infinity], a: [0, 5, 1], b: [1, 1, 0]})
  })

  it('estimates quantiles as histogram_quantile does (linear in the bucket, +Inf → last finite bound)', () => {
    const buckets = {bounds: [0.005, 0.01, 0.025, Infinity], counts: [10, 50, 30, 10]}
    expect(bucketQuantile(0.05, buckets)).toBeCloseTo(0.0025, 12)
    expect(bucketQuantile(0.5, buckets)).toBeCloseTo(0.005 + 0.005 * (40 / 50), 12)
    expect(bucketQuantile(0.95, buckets)).toBe(0.025)
    expect(bucketQuantile(0.5, {bounds: [1], counts: [0]})).toBeNull()
  })
})
