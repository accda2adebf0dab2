// inventory: stock levels and reservations. A reservation holds units for a checkout; it is
// all-or-nothing across its lines and idempotent by Idempotency-Key, so a retried checkout
// never reserves twice. A released reservation gives its units back. A synthetic request
// (X-Synthetic) is checked like a real one but reserves and releases nothing.

import {randomUUID} from 'node:crypto'
import {BoundedMap} from '../../lib/bounded-map.ts'
import {envNumber, loadBaseConfig} from '../../lib/config.ts'
import type {Env} from '../../lib/config.ts'
import {HttpError, notFound} from '../../lib/errors.ts'
import {SEED_STOCK} from '../../lib/products.ts'
import {createService, listRoute, lookupRoute} from '../../lib/service.ts'
import type {Service, ServiceDeps} from '../../lib/service.ts'
import {lineItems, object, string} from '../../lib/validate.ts'
import type {LineItem} from '../../lib/validate.ts'

export const SERVICE = 'inventory'

interface Stock {
  onHand: number
  reserved: number
}

interface Reservation {
  id: string
  status: 'reserved' | 'released'
  reference: string | null
  items: LineItem[]
  createdAt: string
  releasedAt: string | null
}

export function createApp(env: Env = process.env, deps: ServiceDeps = {}): Service {
  const config = loadBaseConfig(SERVICE, env)
  const seedOverride =
    env.INVENTORY_SEED_STOCK === undefined
      ? undefined
      : envNumber(env, 'INVENTORY_SEED_STOCK', 0, {min: 0, integer: true})
  const stock = new Map<string, Stock>(
    Object.entries(SEED_STOCK).map(([sku, units]) => [sku, {onHand: seedOverride ?? units, reserved: 0}]),
  )
  const reservations = new BoundedMap<string, Reservation>(
    envNumber(env, 'INVENTORY_MAX_RESERVATIONS', 500_000, {min: 1, integer: true}),
  )

  const view = (sku: string, level: Stock) => ({
    sku,
    onHand: level.onHand,
    reserved: level.reserved,
    available: level.onHand - level.reserved,
  })

  const service = createService(
    SERVICE,
    config,
    [
      {
        method: 'GET',
        path: '/stock/:sku',
        handler: ({params}) => {
          const level = stock.get(params.sku)
          if (!level) throw notFound('SKU', params.sku)
          return {status: 200, body: view(params.sku, level)}
        },
      },
      {
        method: 'POST',
        path: '/reservations',
        idempotent: true,
        handler: ({body, synthetic}) => {
          const input = object(body)
          const items = lineItems(input)
          const reference = string(input, 'reference', {optional: true, max: 200}) || null
          const outcome = (result: string) => {
            if (!synthetic) outcomes.inc({result})
          }
          // Check every line before touching any, so a reservation is all or nothing.
          for (const item of items) {
            const level = stock.get(item.sku)
            if (!level) {
              outcome('unknown_sku')
              throw new HttpError(422, 'unknown_sku', `no stock record for SKU ${JSON.stringify(item.sku)}`, {
                sku: item.sku,
              })
            }
            const available = level.onHand - level.reserved
            if (available < item.quantity) {
              outcome('insufficient_stock')
              throw new HttpError(409, 'insufficient_stock', `only ${available} of ${item.sku} available`, {
                sku: item.sku,
                available,
                requested: item.quantity,
              })
            }
          }
          if (synthetic) {
            const id = `res_synthetic_${randomUUID()}`
            const body = {
              id,
              status: 'reserved',
              reference,
              items,
              createdAt: new Date().toISOString(),
              releasedAt: null,
              synthetic: true,
            }
            return {status: 201, body}
          }
          for (const item of items) stock.get(item.sku)!.reserved += item.quantity
          const reservation: Reservation = {
            id: `res_${randomUUID()}`,
            status: 'reserved',
            reference,
            items,
            createdAt: new Date().toISOString(),
            releasedAt: null,
          }
          reservations.set(reservation.id, reservation)
          outcomes.inc({result: 'reserved'})
          return {status: 201, body: reservation, headers: {location: `/reservations/${reservation.id}`}}
        },
      },
      listRoute('/reservations', reservations),
      listRoute('/stock', stock, (sku, level) => view(sku, level)),
      lookupRoute('/reservations/:id', 'reservation', (id) => reservations.get(id)),
      {
        // Releasing is idempotent by nature: a released reservation stays released.
        method: 'POST',
        path: '/reservations/:id/release',
        handler: ({params, synthetic}) => {
          // A synthetic release touches nothing, a real reservation least of all.
          if (synthetic)
            return {
              status: 200,
              body: {id: params.id, status: 'released', releasedAt: new Date().toISOString(), synthetic: true},
            }
          const reservation = reservations.get(params.id)
          if (!reservation) throw notFound('reservation', params.id)
          if (reservation.status === 'reserved') {
            for (const item of reservation.items) {
              const level = stock.get(item.sku)
              if (level) level.reserved = Math.max(0, level.reserved - item.quantity)
            }
            reservation.status = 'released'
            reservation.releasedAt = new Date().toISOString()
            releases.inc()
          }
          return {status: 200, body: reservation}
        },
      },
    ],
    deps,
  )
  const outcomes = service.metrics.counter('inventory_reservations_total', 'Reservation requests, by result.', [
    'result',
  ])
  const releases = service.metrics.counter('inventory_releases_total', 'Reservations released.')
  return service
}
