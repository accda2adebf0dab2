import type {RetailOpsConfig} from './schema.js'

/**
 * Hourly prices the plan's cost uses: OpenCost's allocation formula (CPU core-hours × CPU price +
 * RAM GiB-hours × RAM price), with prices from retailops.yaml `prices`. Both the capacity plan and
 * the cost report price pods with them, so they live with the configuration they resolve.
 */
export interface PoolPrice {
  cpuHour: number
  memoryGiBHour: number
  /** Where the price came from, printed with the plan: "prices.pools.spot", "prices.default × (1 − spotDiscount)". */
  source: string
}

export interface PoolPricing {
  pool: string
  /** node.kubernetes.io/instance-type of the pool's nodes (the most common one). */
  instanceType?: string
  spot: boolean
}

/** prices.pools.<pool>, else prices.instanceTypes.<type>, else prices.default; spot pools get spotDiscount unless priced per pool. */
export function poolPrice(prices: RetailOpsConfig['prices'], pool: PoolPricing): PoolPrice {
  const own = prices.pools[pool.pool]
  if (own) return {...own, source: `prices.pools.${pool.pool}`}
  const byType = pool.instanceType ? prices.instanceTypes[pool.instanceType] : undefined
  const base = byType ?? prices.default
  const source = byType ? `prices.instanceTypes.${pool.instanceType}` : 'prices.default'
  if (!pool.spot) return {...base, source}
  const factor = 1 - prices.spotDiscount
  return {
    cpuHour: base.cpuHour * factor,
    memoryGiBHour: base.memoryGiBHour * factor,
    source: `${source} × (1 − spotDiscount ${prices.spotDiscount})`,
  }
}

/** requests: cores and bytes. */
export function podHourlyCost(
  requests: {cpu: number; memory: number},
  price: Pick<PoolPrice, 'cpuHour' | 'memoryGiBHour'>,
): number {
  return requests.cpu * price.cpuHour + (requests.memory / 1024 ** 3) * price.memoryGiBHour
}
