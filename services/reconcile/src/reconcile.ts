// reconcile: compares the orders the orders service holds with the reservations and stock the
// inventory service holds, and reports every mismatch. Read-only: it only sends GET requests, each
// marked X-Synthetic, so the services count its traffic as synthetic and nothing changes.

export interface LineItem {
  sku: string
  quantity: number
}

export interface Order {
  id: string
  reservationId: string
  items: LineItem[]
  createdAt: string
}

export interface Reservation {
  id: string
  status: 'reserved' | 'released'
  reference: string | null
  items: LineItem[]
  createdAt: string
}

export interface StockLevel {
  sku: string
  onHand: number
  reserved: number
}

export type MismatchType =
  | 'order-without-reservation'
  | 'order-reservation-released'
  | 'order-items-differ'
  | 'orphaned-reservation'
  | 'stock-reserved-differs'

export interface Mismatch {
  type: MismatchType
  orderId?: string
  reservationId?: string
  sku?: string
  detail: string
}

export interface ReconcileReport {
  job: 'reconcile'
  checkedAt: string
  ok: boolean
  orders: number
  reservations: number
  skus: number
  mismatches: Mismatch[]
  /** Mismatches by type. */
  summary: Partial<Record<MismatchType, number>>
}

function itemsKey(items: LineItem[]): string {
  const sum = new Map<string, number>()
  for (const i of items) sum.set(i.sku, (sum.get(i.sku) ?? 0) + i.quantity)
  return [...sum]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([sku, q]) => `${sku}x${q}`)
    .join(',')
}

/**
 * Every order must hold a live reservation of exactly its items; a live reservation no order uses
 * after the grace period holds stock for nothing (a checkout that failed after reserving); and each
 * SKU's reserved count must equal what the live reservations hold.
 */
export function reconcile(
  input: {orders: Order[]; reservations: Reservation[]; stock: StockLevel[]},
  options: {now: Date; graceMs: number},
): ReconcileReport {
  const mismatches: Mismatch[] = []
  const reservations = new Map(input.reservations.map((r) => [r.id, r]))
  const used = new Set<string>()
  for (const order of input.orders) {
    const reservation = reservations.get(order.reservationId)
    used.add(order.reservationId)
    if (!reservation) {
      mismatches.push({
        type: 'order-without-reservation',
        orderId: order.id,
        reservationId: order.reservationId,
        detail: `order ${order.id} names reservation ${order.reservationId}, which inventory does not have`,
      })
      continue
    }
    if (reservation.status !== 'reserved')
      mismatches.push({
        type: 'order-reservation-released',
        orderId: order.id,
        reservationId: reservation.id,
        detail: `order ${order.id} is confirmed but its reservation ${reservation.id} was released: its units are back on sale`,
      })
    if (itemsKey(order.items) !== itemsKey(reservation.items))
      mismatches.push({
        type: 'order-items-differ',
        orderId: order.id,
        reservationId: reservation.id,
        detail: `order ${order.id} has ${itemsKey(order.items)} but reservation ${reservation.id} holds ${itemsKey(reservation.items)}`,
      })
  }
  const held = new Map<string, number>()
  for (const r of input.reservations) {
    if (r.status !== 'reserved') continue
    for (const i of r.items) held.set(i.sku, (held.get(i.sku) ?? 0) + i.quantity)
    const age = options.now.getTime() - Date.parse(r.createdAt)
    if (!used.has(r.id) && age >= options.graceMs)
      mismatches.push({
        type: 'orphaned-reservation',
        reservationId: r.id,
        detail: `reservation ${r.id} (${itemsKey(r.items)}) holds stock but no order uses it, ${Math.round(age / 1000)}s after it was made`,
      })
  }
  for (const s of input.stock) {
    const expected = held.get(s.sku) ?? 0
    if (s.reserved !== expected)
      mismatches.push({
        type: 'stock-reserved-differs',
        sku: s.sku,
        detail: `${s.sku}: inventory counts ${s.reserved} reserved, its live reservations hold ${expected}`,
      })
  }
  const summary: Partial<Record<MismatchType, number>> = {}
  for (const m of mismatches) summary[m.type] = (summary[m.type] ?? 0) + 1
  return {
    job: 'reconcile',
    checkedAt: options.now.toISOString(),
    ok: mismatches.length === 0,
    orders: input.orders.length,
    reservations: input.reservations.length,
    skus: input.stock.length,
    mismatches,
    summary,
  }
}
