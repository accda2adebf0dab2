// catalog: the product range, browsing and search. Read-only, seeded at start.

import {loadBaseConfig} from '../../lib/config.ts'
import type {Env} from '../../lib/config.ts'
import {badRequest} from '../../lib/errors.ts'
import {PRODUCTS, findProduct} from '../../lib/products.ts'
import type {Product} from '../../lib/products.ts'
import {createService, lookupRoute} from '../../lib/service.ts'
import type {Service, ServiceDeps} from '../../lib/service.ts'

export const SERVICE = 'catalog'

function page(query: URLSearchParams, total: number): {limit: number; offset: number} {
  const limit = query.has('limit') ? Number(query.get('limit')) : 20
  const offset = query.has('offset') ? Number(query.get('offset')) : 0
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw badRequest('limit: expected an integer from 1 to 100')
  if (!Number.isInteger(offset) || offset < 0) throw badRequest('offset: expected an integer >= 0')
  return {limit, offset: Math.min(offset, total)}
}

function matches(product: Product, terms: string[]): boolean {
  const text = [product.sku, product.name, product.description, product.category, ...product.tags]
    .join(' ')
    .toLowerCase()
  return terms.every((term) => text.includes(term))
}

export function createApp(env: Env = process.env, deps: ServiceDeps = {}): Service {
  const config = loadBaseConfig(SERVICE, env)
  const service = createService(
    SERVICE,
    config,
    [
      {
        method: 'GET',
        path: '/products',
        handler: ({query}) => {
          const category = query.get('category')
          const all = category ? PRODUCTS.filter((product) => product.category === category) : PRODUCTS
          const {limit, offset} = page(query, all.length)
          return {status: 200, body: {items: all.slice(offset, offset + limit), total: all.length, limit, offset}}
        },
      },
      lookupRoute('/products/:id', 'product', findProduct),
      {
        method: 'GET',
        path: '/search',
        handler: ({query}) => {
          const q = (query.get('q') ?? '').trim()
          if (q === '' || q.length > 100) throw badRequest('q: expected a search text of 1 to 100 characters')
          const terms = q.toLowerCase().split(/\s+/)
          const found = PRODUCTS.filter((product) => matches(product, terms))
          const {limit, offset} = page(query, found.length)
          searches.inc({result: found.length > 0 ? 'hit' : 'miss'})
          return {
            status: 200,
            body: {query: q, items: found.slice(offset, offset + limit), total: found.length, limit, offset},
          }
        },
      },
    ],
    deps,
  )
  const searches = service.metrics.counter('catalog_searches_total', 'Searches, by whether anything was found.', [
    'result',
  ])
  return service
}
