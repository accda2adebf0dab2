/**
 * The statistics behind a canary verdict, pure: a pooled two-proportion z-test for error rates
 * (Fisher's exact test where too few failures are expected for its normal approximation) and
 * a Mann-Whitney U test over Prometheus histogram buckets for latency (observations in one bucket
 * are ties; tie-corrected normal approximation with continuity correction, as Kayenta and
 * scipy.stats.mannwhitneyu(method='asymptotic') do). Both are one-sided: the question is only
 * whether the canary is worse than stable. Effect sizes go with every p-value so that a
 * difference that is significant only because of volume can be told from one that matters.
 */

/** erfc(x) to double precision: series for small |x|, Lentz's continued fraction for the tail. */
function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN
  if (x < 0) return 2 - erfc(-x)
  if (x < 2.5) {
    // erf(x) = 2/√π · Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x
    let sum = x
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n
      const next = term / (2 * n + 1)
      sum += next
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum
  }
  if (x > 27) return 0
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …))))
  const tiny = 1e-300
  let f = x
  let c = x
  let d = 0
  for (let n = 1; n < 500; n++) {
    const a = n / 2
    d = x + a * d
    d = d === 0 ? tiny : d
    c = x + a / c
    c = c === 0 ? tiny : c
    d = 1 / d
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f
}

/** P(Z > z) for a standard normal Z (scipy.stats.norm.sf). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2)
}

/** P(Z ≤ z) (scipy.stats.norm.cdf). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2)
}

/** The z with P(Z ≤ z) = p (scipy.stats.norm.ppf): Acklam's approximation, refined by Halley steps. */
export function normalPpf(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : Number.NaN
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ]
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572]
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ]
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416]
  const low = 0.02425
  let x: number
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p))
    x =
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
  } else if (p <= 1 - low) {
    const q = p - 0.5
    const r = q * q
    x =
      ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p))
    x =
      -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
  }
  for (let i = 0; i < 2; i++) {
    const e = normalCdf(x) - p
    const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2)
    x -= u / (1 + (x * u) / 2)
  }
  return x
}

export interface ProportionSample {
  /** Requests in the window. */
  n: number
  /** Failed requests among them. */
  failures: number
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9): about 15 significant digits. */
function logGamma(x: number): number {
  const g = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  const z = x - 1
  let a = g[0]
  const t = z + 7.5
  for (let i = 1; i < 9; i++) a += g[i] / (z + i)
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a)
}

const logChoose = (n: number, k: number): number => logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1)

/**
 * Fisher's exact test, one-sided (the canary fails more often): P(X ≥ canary failures) for X
 * hypergeometric with the table's margins (scipy.stats.fisher_exact(alternative='greater')).
 */
export function fisherExactGreater(canary: ProportionSample, stable: ProportionSample): number {
  const n = canary.n + stable.n
  const failures = canary.failures + stable.failures
  const hi = Math.min(failures, canary.n)
  const lo = Math.max(0, failures - stable.n)
  const logP = (k: number) => logChoose(failures, k) + logChoose(n - failures, canary.n - k) - logChoose(n, canary.n)
  let p = 0
  for (let k = Math.max(canary.failures, lo); k <= hi; k++) p += Math.exp(logP(k))
  return Math.min(1, p)
}

/**
 * The normal approximation of the z-test holds when each side expects at least this many
 * failures and successes under the pooled rate; below it the p-value comes from Fisher's exact
 * test (one error among 60 canary requests is no evidence, though z says p = 0.001).
 */
export const MIN_EXPECTED_COUNT = 5

export interface ProportionTest {
  canaryRate: number
  stableRate: number
  /** canaryRate − stableRate: positive when the canary fails more often. */
  difference: number
  /** Two-sided confidence interval of the difference at the confidence level (unpooled Wald). */
  interval: [number, number]
  /** Pooled z statistic; 0 when neither fails (or both always fail): no evidence either way. */
  z: number
  /** One-sided p-value for "the canary fails more often than stable". */
  pValue: number
  /** z: the pooled z-test; fisher: Fisher's exact test, where too few failures are expected for z. */
  test: 'z' | 'fisher'
}

/**
 * Pooled two-proportion z-test, one-sided (canary worse); Fisher's exact test instead where the
 * normal approximation does not hold (fewer than MIN_EXPECTED_COUNT expected failures or successes).
 */
export function twoProportionTest(
  canary: ProportionSample,
  stable: ProportionSample,
  confidence: number,
): ProportionTest {
  const p1 = canary.failures / canary.n
  const p2 = stable.failures / stable.n
  const pooled = (canary.failures + stable.failures) / (canary.n + stable.n)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / canary.n + 1 / stable.n))
  const z = se > 0 ? (p1 - p2) / se : 0
  const expected = Math.min(canary.n, stable.n) * Math.min(pooled, 1 - pooled)
  const approximate = expected >= MIN_EXPECTED_COUNT
  const zc = normalPpf(1 - (1 - confidence) / 2)
  const seDiff = Math.sqrt((p1 * (1 - p1)) / canary.n + (p2 * (1 - p2)) / stable.n)
  return {
    canaryRate: p1,
    stableRate: p2,
    difference: p1 - p2,
    interval: [p1 - p2 - zc * seDiff, p1 - p2 + zc * seDiff],
    z,
    pValue: se === 0 ? 1 : approximate ? normalSf(z) : fisherExactGreater(canary, stable),
    test: approximate || se === 0 ? 'z' : 'fisher',
  }
}

export interface MannWhitneyTest {
  /** U of the canary: pairs (canary, stable) where the canary is slower, ties counted half. */
  u: number
  z: number
  /** One-sided p-value for "the canary is slower than stable"; 1 when every observation ties. */
  pValue: number
  /** U / (n₁·n₂): the probability that a random canary request is slower than a random stable one (ties half). */
  commonLanguage: number
  /** 2·CL − 1, from −1 (canary always faster) to 1 (always slower): Cliff's delta. */
  rankBiserial: number
}

/**
 * Mann-Whitney U over bucketed counts. `canary[i]` and `stable[i]` are the observations in the
 * i-th bucket (not cumulative), buckets in increasing order; every observation of a bucket ties
 * with the others of that bucket.
 */
export function mannWhitneyBuckets(canary: number[], stable: number[]): MannWhitneyTest {
  const n1 = canary.reduce((s, v) => s + v, 0)
  const n2 = stable.reduce((s, v) => s + v, 0)
  const n = n1 + n2
  let below = 0
  let rankSum = 0
  let ties = 0
  for (let i = 0; i < Math.max(canary.length, stable.length); i++) {
    const c = canary[i] ?? 0
    const s = stable[i] ?? 0
    const t = c + s
    // Midrank of the bucket's tied observations.
    rankSum += c * (below + (t + 1) / 2)
    ties += t * t * t - t
    below += t
  }
  const u = rankSum - (n1 * (n1 + 1)) / 2
  const mu = (n1 * n2) / 2
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)))
  const sd = Math.sqrt(Math.max(variance, 0))
  const z = sd > 0 ? (u - mu - 0.5) / sd : 0
  const commonLanguage = n1 * n2 > 0 ? u / (n1 * n2) : 0.5
  return {u, z, pValue: sd > 0 ? normalSf(z) : 1, commonLanguage, rankBiserial: 2 * commonLanguage - 1}
}

export interface Buckets {
  /** Upper bounds (the `le` label), increasing; the last is +Inf. */
  bounds: number[]
  /** Observations per bucket, not cumulative. */
  counts: number[]
  total: number
}

/**
 * Per-bucket counts from Prometheus' cumulative `_bucket` series (one sample per `le`). Counts
 * that `increase()` extrapolated to fractions are kept as they are; a cumulative count that dips
 * (a counter reset inside the window, bucket by bucket) never makes a bucket negative.
 */
export function bucketsFromCumulative(samples: {le: string; value: number | null}[]): Buckets {
  const sorted = samples
    .map((s) => ({bound: s.le === '+Inf' ? Infinity : Number(s.le), value: s.value ?? 0}))
    .filter((s) => !Number.isNaN(s.bound))
    .sort((a, b) => a.bound - b.bound)
  const counts: number[] = []
  let previous = 0
  for (const s of sorted) {
    const cumulative = Math.max(s.value, previous)
    counts.push(cumulative - previous)
    previous = cumulative
  }
  return {bounds: sorted.map((s) => s.bound), counts, total: previous}
}

/** Combines two bucket sets on the union of their bounds (missing buckets are empty). */
export function alignBuckets(a: Buckets, b: Buckets): {bounds: number[]; a: number[]; b: number[]} {
  const bounds = [...new Set([...a.bounds, ...b.bounds])].sort((x, y) => x - y)
  const at = (x: Buckets) => bounds.map((bound) => x.counts[x.bounds.indexOf(bound)] ?? 0)
  return {bounds, a: at(a), b: at(b)}
}

/**
 * A quantile estimated from buckets as histogram_quantile does: linear within the bucket, the
 * lower bound of the first bucket 0; in the +Inf bucket the answer is the last finite bound.
 */
export function bucketQuantile(q: number, buckets: Pick<Buckets, 'bounds' | 'counts'>): number | null {
  const total = buckets.counts.reduce((s, v) => s + v, 0)
  if (total <= 0) return null
  const rank = q * total
  let cumulative = 0
  for (let i = 0; i < buckets.bounds.length; i++) {
    const count = buckets.counts[i]
    if (cumulative + count >= rank && count > 0) {
      const upper = buckets.bounds[i]
      const lower = i === 0 ? 0 : buckets.bounds[i - 1]
      if (!Number.isFinite(upper)) return lower
      return lower + ((upper - lower) * (rank - cumulative)) / count
    }
    cumulative += count
  }
  return buckets.bounds.filter(Number.isFinite).at(-1) ?? null
}
