import {describe, expect, it} from 'vitest'
import {DURATION_BUCKETS, createMetrics} from '../../../services/lib/metrics.ts'
import {createApp as createCart} from '../../../services/cart/src/app.ts'
import {createApp as createCatalog} from '../../../services/catalog/src/app.ts'
import {json, launch, sample} from './helpers.ts'

describe('metrics', () => {
  it('has the buckets the latency SLOs need', () => {
    for (const le of [0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5]) expect(DURATION_BUCKETS).toContain(le)
  })

  it('labels every series with service and version; version defaults to dev', async () => {
    const metrics = createMetrics({service: 'catalog', version: 'dev', processMetrics: false})
    metrics.observeRequest({method: 'GET', route: '/products/:id', code: 404}, 0.012)
    const {body, contentType} = await metrics.render()
    expect(contentType).toMatch(/^text\/plain/)
    expect(
      sample(body, 'http_requests_total', {service: 'catalog', version: 'dev', route: '/products/:id', code: '404'}),
    ).toBe(1)
    expect(sample(body, 'http_request_duration_seconds_bucket', {route: '/products/:id', le: '0.01'})).toBe(0)
    expect(sample(body, 'http_request_duration_seconds_bucket', {route: '/products/:id', le: '0.025'})).toBe(1)
  })

  it('a service labels requests by route template, status code and APP_VERSION', async () => {
    const {url} = await launch(createCatalog, {APP_VERSION: '1.4.2'})
    await json(`${url}/products/SKU-1001`)
    await json(`${url}/products/SKU-1002`)
    await json(`${url}/products/NOPE`)
    await json(`${url}/no/such/route`)
    await json(`${url}/products`, {method: 'DELETE'})
    const response = await fetch(`${url}/metrics`)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    const base = {service: 'catalog', version: '1.4.2', method: 'GET'}
    expect(sample(text, 'http_requests_total', {...base, route: '/products/:id', code: '200'})).toBe(2)
    expect(sample(text, 'http_requests_total', {...base, route: '/products/:id', code: '404'})).toBe(1)
    expect(sample(text, 'http_requests_total', {...base, route: 'unmatched', code: '404'})).toBe(1)
    expect(sample(text, 'http_requests_total', {method: 'DELETE', route: '/products', code: '405'})).toBe(1)
    expect(text).not.toContain('SKU-1001') // raw paths never become labels
    expect(sample(text, 'http_request_duration_seconds_count', {...base, route: '/products/:id', code: '200'})).toBe(2)
    // Probes and scrapes are not business traffic and are not counted.
    await json(`${url}/healthz`)
    expect(await (await fetch(`${url}/metrics`)).text()).not.toMatch(/route="\/(healthz|readyz|metrics)"/)
    // Process metrics come with the same labels.
    expect(
      sample(text, 'process_cpu_user_seconds_total', {service: 'catalog', version: '1.4.2'}),
    ).toBeGreaterThanOrEqual(0)
  })

  it('business counters move with the business', async () => {
    const {url} = await launch(createCart)
    const cart = await json(`${url}/carts`, {body: {customerId: 'c-9'}})
    await json(`${url}/carts/${cart.body.id}/items`, {body: {sku: 'SKU-1002', quantity: 2}})
    await json(`${url}/carts/${cart.body.id}/items`, {body: {sku: 'SKU-1002', quantity: 1}})
    const text = (await json(`${url}/metrics`)).body
    expect(sample(text, 'cart_created_total')).toBe(1)
    expect(sample(text, 'cart_items_added_total')).toBe(3)
    const current = await json(`${url}/carts/${cart.body.id}`)
    expect(current.body.items).toEqual([
      {sku: 'SKU-1002', name: 'Merino Wool Socks', quantity: 3, unitPriceCents: 2_400, lineTotalCents: 7_200},
    ])
    expect(current.body.totalCents).toBe(7_200)
  })
})
