import {describe, expect, it} from 'vitest'

import {reconcile} from '../../../services/reconcile/src/reconcile.ts'
import type {Order, Reservation, StockLevel} from '../../../services/reconcile/src/reconcile.ts'

const NOW = new Date('2026-11-27T10:00:00Z')
const OLD = '2026-11-27T09:00:00Z'
const order = (id: string, reservationId: string, items = [{sku: 'SKU-1001', quantity: 2}]): Order => ({
  id,
  reservationId,
  items,
  createdAt: OLD,
})
const reservation = (
  id: string,
  items = [{sku: 'SKU-1001', quantity: 2}],
  status: Reservation['status'] = 'reserved',
  createdAt = OLD,
): Reservation => ({id, status, reference: null, items, createdAt})
const stock = (reserved: Record<string, number>): StockLevel[] =>
  Object.entries(reserved).map(([sku, n]) => ({sku, onHand: 100, reserved: n}))

describe('reconcile', () => {
  it('finds nothing when every order holds a live reservation of its items and stock agrees', () => {
    const report = reconcile(
      {
        orders: [order('o1', 'r1'), order('o2', 'r2', [{sku: 'SKU-1002', quantity: 1}])],
        reservations: [reservation('r1'), reservation('r2', [{sku: 'SKU-1002', quantity: 1}])],
        stock: stock({'SKU-1001': 2, 'SKU-1002': 1, 'SKU-1003': 0}),
      },
      {now: NOW, graceMs: 60_000},
    )
    expect(report).toMatchObject({ok: true, orders: 2, reservations: 2, skus: 3, mismatches: [], summary: {}})
  })

  it('reports each kind of mismatch, with the ids involved', () => {
    const report = reconcile(
      {
        orders: [
          order('o-missing', 'r-gone'),
          order('o-released', 'r-released'),
          order('o-differs', 'r-differs', [{sku: 'SKU-1001', quantity: 3}]),
        ],
        reservations: [
          reservation('r-released', undefined, 'released'),
          reservation('r-differs'),
          reservation('r-orphan', [{sku: 'SKU-1005', quantity: 1}]),
          // Too young to call orphaned: its checkout may still be writing the order.
          reservation('r-young', [{sku: 'SKU-1005', quantity: 1}], 'reserved', '2026-11-27T09:59:50Z'),
        ],
        stock: stock({'SKU-1001': 2, 'SKU-1005': 5}),
      },
      {now: NOW, graceMs: 60_000},
    )
    expect(report.ok).toBe(false)
    expect(report.mismatches.map((m) => [m.type, m.orderId ?? m.reservationId ?? m.sku])).toEqual([
      ['order-without-reservation', 'o-missing'],
      ['order-reservation-released', 'o-released'],
      ['order-items-differ', 'o-differs'],
      ['orphaned-reservation', 'r-orphan'],
      ['stock-reserved-differs', 'SKU-1005'],
    ])
    expect(report.summary).toEqual({
      'order-without-reservation': 1,
      'order-reservation-released': 1,
      'order-items-differ': 1,
      'orphaned-reservation': 1,
      'stock-reserved-differs': 1,
    })
    expect(report.mismatches[4].detail).toBe('SKU-1005: inventory counts 5 reserved, its live reservations hold 2')
  })
})
