// cart: shopping carts in memory, priced from the product range. Synthetic carts (X-Synthetic,
// a warm-up) live in a small store of their own, so a warm-up never pushes customers' carts out
// (the store forgets its oldest carts past CART_MAX_CARTS), and are counted in no business counter.

import {randomUUID} from 'node:crypto'
import {BoundedMap} from '../../lib/bounded-map.ts'
import {envNumber, loadBaseConfig} from '../../lib/config.ts'
import type {Env} from '../../lib/config.ts'
import {HttpError, notFound} from '../../lib/errors.ts'
import {findProduct} from '../../lib/products.ts'
import {createService, lookupRoute} from '../../lib/service.ts'
import type {Service, ServiceDeps} from '../../lib/service.ts'
import {object, positiveInt, string} from '../../lib/validate.ts'

export const SERVICE = 'cart'
const MAX_LINES = 50
const MAX_QUANTITY = 1_000

interface CartLine {
  sku: string
  name: string
  quantity: number
  unitPriceCents: number
  lineTotalCents: number
}

interface Cart {
  id: string
  customerId: string | null
  items: CartLine[]
  totalCents: number
  currency: 'USD'
  createdAt: string
  updatedAt: string
}

export function createApp(env: Env = process.env, deps: ServiceDeps = {}): Service {
  const config = loadBaseConfig(SERVICE, env)
  const carts = new BoundedMap<string, Cart>(envNumber(env, 'CART_MAX_CARTS', 100_000, {min: 1, integer: true}))
  const syntheticCarts = new BoundedMap<string, Cart>(1_000)
  const storeOf = (synthetic: boolean) => (synthetic ? syntheticCarts : carts)

  const service = createService(
    SERVICE,
    config,
    [
      {
        method: 'POST',
        path: '/carts',
        handler: ({body, synthetic}) => {
          const input = body === undefined ? {} : object(body)
          const customerId = string(input, 'customerId', {optional: true, max: 100}) || null
          const now = new Date().toISOString()
          const cart: Cart = {
            id: `cart_${randomUUID()}`,
            customerId,
            items: [],
            totalCents: 0,
            currency: 'USD',
            createdAt: now,
            updatedAt: now,
          }
          storeOf(synthetic).set(cart.id, cart)
          if (!synthetic) created.inc()
          return {status: 201, body: cart, headers: {location: `/carts/${cart.id}`}}
        },
      },
      lookupRoute('/carts/:id', 'cart', (id) => carts.get(id) ?? syntheticCarts.get(id)),
      {
        method: 'POST',
        path: '/carts/:id/items',
        handler: ({params, body, synthetic}) => {
          // A synthetic request changes synthetic carts only, a real one real carts only.
          const cart = storeOf(synthetic).get(params.id)
          if (!cart) throw notFound('cart', params.id)
          const input = object(body)
          const sku = string(input, 'sku', {max: 64})
          const quantity = positiveInt(input, 'quantity', MAX_QUANTITY)
          const product = findProduct(sku)
          if (!product) throw new HttpError(422, 'unknown_sku', `no product with SKU ${JSON.stringify(sku)}`, {sku})
          const line = cart.items.find((item) => item.sku === sku)
          if (line) {
            if (line.quantity + quantity > MAX_QUANTITY) {
              throw new HttpError(422, 'quantity_limit', `at most ${MAX_QUANTITY} of one SKU per cart`, {sku})
            }
            line.quantity += quantity
            line.lineTotalCents = line.quantity * line.unitPriceCents
          } else {
            if (cart.items.length >= MAX_LINES) {
              throw new HttpError(422, 'cart_full', `a cart holds at most ${MAX_LINES} different SKUs`)
            }
            cart.items.push({
              sku,
              name: product.name,
              quantity,
              unitPriceCents: product.priceCents,
              lineTotalCents: quantity * product.priceCents,
            })
          }
          cart.totalCents = cart.items.reduce((sum, item) => sum + item.lineTotalCents, 0)
          cart.updatedAt = new Date().toISOString()
          if (!synthetic) itemsAdded.inc(quantity)
          return {status: 200, body: cart}
        },
      },
    ],
    deps,
  )
  const created = service.metrics.counter('cart_created_total', 'Carts created.')
  const itemsAdded = service.metrics.counter('cart_items_added_total', 'Units added to carts.')
  return service
}
