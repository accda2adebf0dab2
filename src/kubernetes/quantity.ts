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
