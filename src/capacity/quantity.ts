import {quantityNumber} from '../deploy/quantity.js'

export {formatCpu, formatMemory} from '../deploy/quantity.js'

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
