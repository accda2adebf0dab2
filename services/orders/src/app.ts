// orders: order capture. POST /orders is idempotent by Idempotency-Key, so a retried checkout
// creates one order, not two. A synthetic order (X-Synthetic) is validated and answered, never kept.

import {randomUUID} from 'node:crypto'
import {BoundedMap} from '../../lib/bounded-map.ts'
import {envNumber, loadBaseConfig} from '../../lib/config.ts'
import type {Env} from '../../lib/config.ts'
import {HttpError} from '../../lib/errors.ts'
import {createService, listRoute, lookupRoute} from '../../lib/service.ts'
import type {Service, ServiceDeps} from '../../lib/service.ts'
import {invalid, object, positiveInt, string} from '../../lib/validate.ts'

export const SERVICE = 'orders'

interface OrderLine {
  sku: string
  quantity: number
  unitPriceCents: number
}

interface Order {
  id: string
  status: 'confirmed'
  customerId: string
  items: OrderLine[]
  totalCents: number
  currency: string
  reservationId: string
  authorizationId: string
  createdAt: string
}

function orderLines(value: unknown): OrderLine[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 100)
    throw invalid('items', 'a list of 1 to 100 items')
  return value.map((entry, index) => {
    const line = object(entry, `items[${index}]`)
    return {
      sku: string(line, 'sku', {max: 64}),
      quantity: positiveInt(line, 'quantity', 1_000),
      unitPriceCents: positiveInt(line, 'unitPriceCents'),
    }
  })
}

export function createApp(env: Env = process.env, deps: ServiceDeps = {}): Service {
  const config = loadBaseConfig(SERVICE, env)
  const orders = new BoundedMap<string, Order>(envNumber(env, 'ORDERS_MAX_ORDERS', 500_000, {min: 1, integer: true}))

  const service = createService(
    SERVICE,
    config,
    [
      {
        method: 'POST',
        path: '/orders',
        idempotent: true,
        handler: ({body, synthetic}) => {
          const input = object(body)
          const items = orderLines(input.items)
          const totalCents = positiveInt(input, 'totalCents')
          const sum = items.reduce((total, line) => total + line.quantity * line.unitPriceCents, 0)
          if (sum !== totalCents) {
            throw new HttpError(422, 'total_mismatch', `totalCents is ${totalCents} but the lines add up to ${sum}`)
          }
          const order: Order = {
            id: `ord_${synthetic ? 'synthetic_' : ''}${randomUUID()}`,
            status: 'confirmed',
            customerId: string(input, 'customerId', {max: 100}),
            items,
            totalCents,
            currency: string(input, 'currency', {max: 3}),
            reservationId: string(input, 'reservationId'),
            authorizationId: string(input, 'authorizationId'),
            createdAt: new Date().toISOString(),
          }
          if (synthetic) return {status: 201, body: {...order, synthetic: true}}
          orders.set(order.id, order)
          created.inc()
          revenue.inc(totalCents)
          return {status: 201, body: order, headers: {location: `/orders/${order.id}`}}
        },
      },
      listRoute('/orders', orders),
      lookupRoute('/orders/:id', 'order', (id) => orders.get(id)),
    ],
    deps,
  )
  const created = service.metrics.counter('orders_created_total', 'Orders created.')
  const revenue = service.metrics.counter('orders_revenue_cents_total', 'Value of orders created, in cents.')
  return service
}
