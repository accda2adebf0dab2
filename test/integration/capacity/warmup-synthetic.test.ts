// The k6 warm-up against the bundled services running as real processes on 127.0.0.1: every
// request is synthetic, so a warm-up with checkouts leaves stock, payments and orders exactly as
// they were (read back from the services), writing traffic only reaches services that declare
// synthetic support, and a service that degrades under the load stops k6 early (exit 32).
// Needs only k6 (--warm-only touches no cluster).
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli, hours, startService, startShop, type ServiceProc} from './helpers.js'
import {tempProject, type TempProject} from '../../support/project.js'

const SERVICES = `
  catalog:
    tier: operational
    scaling: {rpsPerPod: 20}
    slos:
      - {name: availability, objective: 50, sli: {type: availability}}
  cart: {tier: operational, scaling: {rpsPerPod: 20}, synthetic: true}
  checkout:
    tier: revenue-critical
    scaling: {rpsPerPod: 10}
    dependsOn: [inventory, payments, orders]
    synthetic: true
  inventory: {tier: revenue-critical, synthetic: true}
  payments: {tier: revenue-critical, synthetic: true}
  orders: {tier: operational, synthetic: true}
`

const campaign = (name: string, warmup: string) => `
  - name: ${name}
    start: "${hours(3)}"
    end: "${hours(27)}"
    peak: {catalog: {rps: 20}, checkout: {rps: 16}}
    warmup: ${warmup}`

const CONFIG = `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:${SERVICES}
campaigns:${campaign('bf', '{share: 0.5, duration: 10s, mix: {browse: 50, search: 10, cart: 20, checkout: 20}}')}${campaign('guarded', '{share: 0.5, duration: 40s, mix: {browse: 80, checkout: 20}, abort: {errorRate: 0.1, p95Ms: 250, after: 3s}}')}
`

describe('k6 warm-up: synthetic traffic and abort limits', () => {
  const services: ServiceProc[] = []
  const urls: Record<string, string> = {}
  let project: TempProject
  const flags = (overrides: Record<string, string> = {}) =>
    ['catalog', 'cart', 'checkout'].flatMap((s) => ['--service-url', `${s}=${overrides[s] ?? urls[s]}`])
  const get = async (url: string): Promise<any> => (await fetch(url)).json()
  const metric = async (url: string, name: string, labels: Record<string, string>) => {
    const text = await (await fetch(`${url}/metrics`)).text()
    let sum = 0
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1))
    }
    return sum
  }
  /** What the stores hold: every SKU's stock, and how many reservations, authorizations and orders exist. */
  const stores = async () => ({
    stock: (await get(`${urls.inventory}/stock`)).items,
    reservations: (await get(`${urls.inventory}/reservations`)).total,
    authorizations: (await get(`${urls.payments}/authorizations`)).total,
    orders: (await get(`${urls.orders}/orders`)).total,
    carts: await metric(urls.cart, 'cart_created_total', {}),
  })

  beforeAll(async () => {
    if (!process.env.RETAILOPS_K6)
      throw new Error('RETAILOPS_K6 is not set: eval "$(bash scripts/sandbox.sh env)" first (the sandbox builds k6)')
    project = await tempProject(CONFIG, {}, 't-capacity')
    Object.assign(urls, await startShop(services))
    // Real business first, so "as before" is not just "empty".
    const order = await fetch(`${urls.checkout}/checkout`, {
      method: 'POST',
      headers: {'content-type': 'application/json', 'idempotency-key': 'it-real-order'},
      body: JSON.stringify({customerId: 'c-1', paymentToken: 'tok_visa', items: [{sku: 'SKU-1011', quantity: 2}]}),
    })
    expect(order.status).toBe(201)
  }, 60_000)

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()))
  })

  it('a warm-up with checkouts leaves stock, reservations, payments, orders and carts exactly as before', async () => {
    const before = await stores()
    expect(before.orders).toBe(1)
    expect(before.stock.find((s: {sku: string}) => s.sku === 'SKU-1011')).toMatchObject({reserved: 2, available: 3})
    const r = await cli(['prewarm', '--campaign', 'bf', '--warm-only', ...flags()], project.dir)
    expect(r.exitCode, r.stderr + r.stdout.slice(0, 2000)).toBe(0)
    const w = r.doc!.result.warmup
    expect(w.excluded).toEqual([])
    const checkout = w.behaviours.find((b: {behaviour: string}) => b.behaviour === 'checkout')
    expect(checkout.requests).toBeGreaterThan(20)
    expect(checkout.failedRate).toBe(0)
    expect(w.behaviours.find((b: {behaviour: string}) => b.behaviour === 'cart').requests).toBeGreaterThan(10)

    expect(await stores()).toEqual(before)
    // Every checkout was answered as synthetic and passed on as such: each dependency counted them under synthetic="true".
    expect(
      await metric(urls.checkout, 'http_requests_total', {route: '/checkout', code: '201', synthetic: 'true'}),
    ).toBe(checkout.requests)
    for (const [name, route] of [
      ['inventory', '/reservations'],
      ['payments', '/authorizations'],
      ['orders', '/orders'],
    ]) {
      expect(await metric(urls[name], 'http_requests_total', {route, synthetic: 'true'}), name).toBe(checkout.requests)
    }
    expect(await metric(urls.checkout, 'checkout_attempts_total', {})).toBe(1)
    expect(await metric(urls.catalog, 'http_requests_total', {synthetic: 'false'})).toBe(0)
  })

  it('leaves writing behaviours out when a service they reach does not declare synthetic support', async () => {
    const unsupported = await tempProject(
      CONFIG.replace('  payments: {tier: revenue-critical, synthetic: true}', '  payments: {tier: revenue-critical}'),
    )
    const checkoutsBefore = await metric(urls.checkout, 'http_requests_total', {route: '/checkout'})
    const r = await cli(['prewarm', '--campaign', 'bf', '--warm-only', ...flags()], unsupported.dir)
    expect(r.exitCode, r.stderr).toBe(0)
    const w = r.doc!.result.warmup
    expect(w.behaviours.map((b: {behaviour: string}) => b.behaviour)).toEqual(['browse', 'search', 'cart'])
    expect(w.excluded).toEqual([
      {
        behaviour: 'checkout',
        reason:
          'payments does not declare synthetic: true (honouring X-Synthetic), so checkout traffic would change real state',
      },
    ])
    expect(r.doc!.warnings.join('\n')).toContain(
      'checkout left out of the mix: payments does not declare synthetic: true',
    )
    expect(await metric(urls.checkout, 'http_requests_total', {route: '/checkout'})).toBe(checkoutsBefore)
  })

  it('a service failing under the load stops k6 early: exit 32 with the limit and the value, nothing changed', async () => {
    const failing = await startService('catalog', {FAULT_ERROR_RATE: '0.5'})
    services.push(failing)
    const before = await stores()
    const started = Date.now()
    const r = await cli(
      ['prewarm', '--campaign', 'guarded', '--warm-only', ...flags({catalog: failing.url})],
      project.dir,
    )
    expect(r.exitCode, r.stderr + r.stdout.slice(0, 2000)).toBe(32)
    const w = r.doc!.result.warmup
    expect(w.passed).toBe(false)
    expect(w.aborted.crossed.map((a: {service: string; limit: string}) => `${a.service} ${a.limit}`)).toEqual([
      'catalog error rate',
    ])
    const crossed = w.aborted.crossed[0]
    expect(crossed).toMatchObject({metric: 'http_req_failed{service:catalog}', expression: 'rate<0.1', ok: false})
    // The fault fails each request with probability 0.5, and k6 stops as soon as the rate crosses 0.1, so on a loaded
    // machine the sample can be small: what is certain is that the reported value crossed the limit.
    expect(crossed.observed).toBeGreaterThan(0.1)
    expect(w.aborted.reason).toContain(`catalog error rate ${Math.round(crossed.observed * 10_000) / 100} %`)
    // Planned 40 s; the limit is judged from 3 s on.
    expect(w.aborted.plannedMs).toBe(40_000)
    expect(w.aborted.ranMs).toBeLessThan(20_000)
    expect(Date.now() - started).toBeLessThan(35_000)
    expect(w.aborted.reason).toMatch(
      /^catalog error rate \d+(\.\d+)? % crossed the limit rate<0\.1; k6 stopped the warm-up after \d+ s of 40 s$/,
    )
    expect(await stores()).toEqual(before)
  })

  it('a service slowing down under the load stops k6 early on the latency limit', async () => {
    const slow = await startService('catalog', {FAULT_LATENCY_MS: '400'})
    services.push(slow)
    const r = await cli(['prewarm', '--campaign', 'guarded', '--warm-only', ...flags({catalog: slow.url})], project.dir)
    expect(r.exitCode, r.stderr + r.stdout.slice(0, 2000)).toBe(32)
    const w = r.doc!.result.warmup
    expect(w.aborted.crossed.map((a: {service: string; limit: string}) => `${a.service} ${a.limit}`)).toEqual([
      'catalog p95 latency',
    ])
    expect(w.aborted.crossed[0].observed).toBeGreaterThanOrEqual(400)
    expect(w.aborted.ranMs).toBeLessThan(20_000)
  })
})
