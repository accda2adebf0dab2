// The reconcile job's entry point: reads every order, reservation and stock level over HTTP, prints
// one JSON report on stdout and ends with 0 (no mismatch), 3 (mismatches: the report lists them)
// or 2 (a service could not be read: nothing was compared). It changes nothing.
import {reconcile} from './reconcile.ts'
import type {Order, Reservation, StockLevel} from './reconcile.ts'

const EXIT_MISMATCH = 3
const EXIT_UNREADABLE = 2
const PAGE = 100

function url(name: string, fallback: string): string {
  const value = process.env[name] ?? fallback
  const parsed = new URL(value)
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new Error(`${name}=${value}: expected an http(s) URL`)
  return value.replace(/\/+$/, '')
}

const timeoutMs = Number(process.env.RECONCILE_TIMEOUT_MS ?? 10_000)
const graceMs = Number(process.env.RECONCILE_GRACE_SECONDS ?? 900) * 1000

async function get<T>(address: string): Promise<T> {
  const response = await fetch(address, {
    headers: {'x-synthetic': 'retailops-reconcile', accept: 'application/json'},
    signal: AbortSignal.timeout(timeoutMs),
  })
  if (!response.ok) throw new Error(`GET ${address}: HTTP ${response.status} ${await response.text()}`)
  return (await response.json()) as T
}

/** Every item of a list route, newest first, 100 at a time. */
async function all<T>(base: string, path: string): Promise<T[]> {
  const out: T[] = []
  for (let offset = 0; ; offset += PAGE) {
    const page = await get<{total: number; items: T[]}>(`${base}${path}?limit=${PAGE}&offset=${offset}`)
    out.push(...page.items)
    if (page.items.length < PAGE || out.length >= page.total) return out
  }
}

try {
  const orders = url('ORDERS_URL', 'http://orders:8080')
  const inventory = url('INVENTORY_URL', 'http://inventory:8080')
  const [orderList, reservations, stock] = await Promise.all([
    all<Order>(orders, '/orders'),
    all<Reservation>(inventory, '/reservations'),
    all<StockLevel>(inventory, '/stock'),
  ])
  const report = reconcile({orders: orderList, reservations, stock}, {now: new Date(), graceMs})
  process.stdout.write(`${JSON.stringify(report)}\n`)
  for (const m of report.mismatches.slice(0, 20)) process.stderr.write(`mismatch ${m.type}: ${m.detail}\n`)
  process.stderr.write(
    report.ok
      ? `reconcile: ${report.orders} orders, ${report.reservations} reservations, ${report.skus} SKUs: no mismatch\n`
      : `reconcile: ${report.mismatches.length} mismatch(es) in ${report.orders} orders and ${report.reservations} reservations\n`,
  )
  process.exitCode = report.ok ? 0 : EXIT_MISMATCH
} catch (error) {
  process.stdout.write(
    `${JSON.stringify({job: 'reconcile', checkedAt: new Date().toISOString(), ok: false, error: (error as Error).message})}\n`,
  )
  process.stderr.write(`reconcile: could not read the services: ${(error as Error).message}\n`)
  process.exitCode = EXIT_UNREADABLE
}
