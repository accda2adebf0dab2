const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
}

/** A Kubernetes quantity as a plain number (cores for CPU, bytes for memory). */
export function quantityNumber(q: string | number): number {
  if (typeof q === 'number') return q
  const m = /^([+-]?\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$/.exec(q.trim())
  if (!m) throw new Error(`not a Kubernetes quantity: ${q}`)
  return Number(m[1]) * SUFFIX[m[2]]
}

export function formatCpu(cores: number): string {
  const milli = Math.ceil(cores * 1000 - 1e-6)
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`
}

export function formatMemory(bytes: number): string {
  return `${Math.ceil(bytes / 2 ** 20 - 1e-9)}Mi`
}

/** A quantity as a number (cores, bytes); absent is zero. */
export function parseQuantity(value: string | number | undefined): number {
  if (value === undefined || value === '') return 0
  return quantityNumber(value)
}

export const GiB = 1024 ** 3

export interface Resources {
  cpu: number
  memory: number
}

export const ZERO: Resources = {cpu: 0, memory: 0}

export function addResources(a: Resources, b: Resources, times = 1): Resources {
  return {cpu: a.cpu + b.cpu * times, memory: a.memory + b.memory * times}
}

const DECIMAL_SUFFIXES: [string, number][] = [
  ['E', 18],
  ['P', 15],
  ['T', 12],
  ['G', 9],
  ['M', 6],
  ['k', 3],
  ['', 0],
  ['m', -3],
  ['u', -6],
  ['n', -9],
]

/**
 * A plain number as the API server writes a decimal quantity back (canonical form: the largest
 * SI suffix that keeps the mantissa an integer, e.g. 250m, 1500m, 20, 100k), so a rendered metric
 * target reads back as rendered. Rounded to nano units, the finest a quantity holds.
 */
export function formatDecimalQuantity(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`)
  if (Number.isInteger(value) && value !== 0) {
    // Whole numbers need no nano units (and large ones would not fit in them exactly).
    for (const [suffix, exponent] of DECIMAL_SUFFIXES.filter(([, e]) => e >= 0))
      if (value % 10 ** exponent === 0) return `${value / 10 ** exponent}${suffix}`
  }
  const nano = Math.round(value * 1e9)
  if (nano === 0) return '0'
  for (const [suffix, exponent] of DECIMAL_SUFFIXES) {
    const unit = 10 ** (exponent + 9)
    if (nano % unit === 0) return `${nano / unit}${suffix}`
  }
  return `${nano}n`
}
