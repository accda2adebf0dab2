// The bundled retail services as real processes: each is spawned with Node (type stripping,
// no build), bound to 127.0.0.1 on a port the kernel picks (PORT=0; the port is read from the
// "listening" log line), and checkout is wired to the real inventory, payments and orders.

import {spawn} from 'node:child_process'
import type {ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {json as call, sample} from '../unit/services/http.ts'

const SERVICES_DIR = fileURLToPath(new URL('../../services/', import.meta.url))
const VERSION = 'it-1.0.0'

interface Proc {
  name: string
  url: string
  child: ChildProcess
  logs: Array<Record<string, unknown>>
  exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>
}

const procs: Proc[] = []

function exitOf(child: ChildProcess): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({code: child.exitCode, signal: child.signalCode})
    else child.once('exit', (code, signal) => resolve({code, signal}))
  })
}

/** Spawns services/<name>/src/main.ts and resolves once /readyz answers 200. */
async function start(name: string, env: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, [`${name}/src/main.ts`], {
    cwd: SERVICES_DIR,
    // A clean environment: nothing from the test runner leaks into the service's config.
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: '0',
      APP_VERSION: VERSION,
      SHUTDOWN_DELAY_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, unknown>> = []
  const stderr: string[] = []
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk))
  const exited = exitOf(child)
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not listen within 15 s: ${stderr.join('')}`)), 15_000)
    createInterface({input: child.stdout}).on('line', (line) => {
      let record: Record<string, unknown>
      try {
        record = JSON.parse(line)
      } catch {
        record = {unparsed: line}
      }
      logs.push(record)
      if (record.msg === 'listening') {
        clearTimeout(timer)
        resolve(Number(record.port))
      }
    })
    void exited.then(({code, signal}) => {
      clearTimeout(timer)
      reject(
        new Error(`${name} exited (${code ?? signal}) before listening: ${stderr.join('')}${JSON.stringify(logs)}`),
      )
    })
  })
  const proc: Proc = {name, url: `http://127.0.0.1:${port}`, child, logs, exited}
  procs.push(proc)
  const deadline = Date.now() + 15_000
  for (;;) {
    const ready = await fetch(`${proc.url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ready) return proc
    if (Date.now() > deadline) throw new Error(`${name} never turned ready`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const metricsOf = async (proc: Proc): Promise<string> => (await call(`${proc.url}/metrics`)).body

const basket = {
  customerId: 'cust-42',
  paymentToken: 'tok_visa',
  items: [
    {sku: 'SKU-1003', quantity: 1},
    {sku: 'SKU-1006', quantity: 2},
  ],
}

describe('bundled services, as real processes', () => {
  let shop: Record<'catalog' | 'cart' | 'inventory' | 'payments' | 'orders' | 'checkout', Proc>

  beforeAll(async () => {
    const major = Number(process.versions.node.split('.')[0])
    if (major < 24)
      throw new Error(
        `the services need Node 24 (type stripping); this is ${process.version}: put $(bash scripts/setup-node.sh) first on PATH`,
      )
    if (!existsSync(`${SERVICES_DIR}node_modules/prom-client/package.json`)) {
      throw new Error('services/node_modules is missing: run `npm ci --prefix services` first')
    }
    const [catalog, cart, inventory, payments, orders] = await Promise.all(
      ['catalog', 'cart', 'inventory', 'payments', 'orders'].map((name) => start(name)),
    )
    const checkout = await start('checkout', {
      INVENTORY_URL: inventory.url,
      PAYMENTS_URL: payments.url,
      ORDERS_URL: orders.url,
    })
    shop = {catalog, cart, inventory, payments, orders, checkout}
  })

  afterAll(async () => {
    for (const proc of procs)
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
  })

  it('every service answers its probes', async () => {
    for (const proc of Object.values(shop)) {
      expect((await call(`${proc.url}/healthz`)).status, proc.name).toBe(200)
      expect((await call(`${proc.url}/readyz`)).body, proc.name).toEqual({status: 'ready'})
    }
  })

  it('catalog and cart serve a shopper', async () => {
    const products = await call(`${shop.catalog.url}/products`)
    expect(products.status).toBe(200)
    expect(products.body.items.length).toBeGreaterThan(5)
    expect((await call(`${shop.catalog.url}/products/SKU-1003`)).body.name).toBe('Waterproof Shell Jacket')
    expect((await call(`${shop.catalog.url}/search?q=camping`)).body.total).toBeGreaterThan(1)
    const cart = await call(`${shop.cart.url}/carts`, {body: {customerId: 'cust-42'}})
    expect(cart.status).toBe(201)
    const filled = await call(`${shop.cart.url}/carts/${cart.body.id}/items`, {body: {sku: 'SKU-1003', quantity: 2}})
    expect(filled.body.totalCents).toBe(2 * 24_900)
    expect((await call(`${shop.cart.url}/carts/${cart.body.id}`)).body.items).toHaveLength(1)
  })

  it('a real checkout reserves, authorizes and orders; a retry with the same key changes nothing', async () => {
    const before = (await call(`${shop.inventory.url}/stock/SKU-1006`)).body
    const authorizedBefore =
      sample(await metricsOf(shop.payments), 'payments_authorizations_total', {result: 'authorized'}) ?? 0
    const headers = {'idempotency-key': 'it-checkout-1', 'x-request-id': 'it-req-1'}

    const first = await call(`${shop.checkout.url}/checkout`, {body: basket, headers})
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({status: 'confirmed', totalCents: 24_900 + 2 * 4_500})
    const order = await call(`${shop.orders.url}/orders/${first.body.orderId}`)
    expect(order.status).toBe(200)
    expect(order.body).toMatchObject({customerId: 'cust-42', totalCents: first.body.totalCents})
    const after = (await call(`${shop.inventory.url}/stock/SKU-1006`)).body
    expect(after.reserved - before.reserved).toBe(2)

    const again = await call(`${shop.checkout.url}/checkout`, {body: basket, headers})
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.body.orderId).toBe(first.body.orderId)
    expect((await call(`${shop.inventory.url}/stock/SKU-1006`)).body.reserved).toBe(after.reserved)
    expect(sample(await metricsOf(shop.payments), 'payments_authorizations_total', {result: 'authorized'})).toBe(
      authorizedBefore + 1,
    )

    // The same key with another basket is refused rather than silently replayed.
    const reused = await call(`${shop.checkout.url}/checkout`, {body: {...basket, customerId: 'someone-else'}, headers})
    expect(reused.status).toBe(422)

    // The request id travelled to the dependencies' logs.
    expect(shop.payments.logs.some((r) => r.requestId === 'it-req-1' && r.route === '/authorizations')).toBe(true)
  })

  it('exposes Prometheus metrics labelled by service, route, code and version', async () => {
    const response = await fetch(`${shop.checkout.url}/metrics`)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await response.text()
    const labels = {service: 'checkout', version: VERSION, route: '/checkout', code: '201'}
    expect(sample(text, 'http_requests_total', labels)).toBeGreaterThanOrEqual(2)
    for (const le of ['0.05', '0.1', '0.25', '0.3', '0.5', '1', '2.5']) {
      expect(text).toContain(
        `http_request_duration_seconds_bucket{le="${le}",service="checkout",version="${VERSION}",method="POST",route="/checkout",code="201",synthetic="false"}`,
      )
    }
    expect(sample(text, 'checkout_attempts_total')).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'checkout_success_total')).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'circuit_breaker_state', {downstream: 'payments'})).toBe(0)
    expect(sample(text, 'downstream_requests_total', {downstream: 'orders', outcome: '201'})).toBeGreaterThanOrEqual(1)
    expect(text).toMatch(/^process_resident_memory_bytes\{service="checkout",version="it-1.0.0"\} \d+/m)
    const payments = await metricsOf(shop.payments)
    expect(
      sample(payments, 'http_requests_total', {service: 'payments', route: '/authorizations', code: '201'}),
    ).toBeGreaterThanOrEqual(1)
  })

  it('a synthetic shopper (X-Synthetic) goes through cart and checkout and leaves every store as it was', async () => {
    const read = async () => ({
      stock: (await call(`${shop.inventory.url}/stock`)).body,
      reservations: (await call(`${shop.inventory.url}/reservations`)).body.total,
      authorizations: (await call(`${shop.payments.url}/authorizations`)).body.total,
      orders: (await call(`${shop.orders.url}/orders`)).body.total,
      carts: sample(await metricsOf(shop.cart), 'cart_created_total') ?? 0,
    })
    const before = await read()
    const headers = {'x-synthetic': 'it-warmup', 'x-request-id': 'it-syn-1'}
    const cart = await call(`${shop.cart.url}/carts`, {body: {customerId: 'synthetic'}, headers})
    expect(cart.status).toBe(201)
    expect(
      (await call(`${shop.cart.url}/carts/${cart.body.id}/items`, {body: {sku: 'SKU-1003', quantity: 1}, headers}))
        .status,
    ).toBe(200)
    // A real request cannot change a synthetic cart, nor a synthetic one a real cart.
    expect(
      (await call(`${shop.cart.url}/carts/${cart.body.id}/items`, {body: {sku: 'SKU-1003', quantity: 1}})).status,
    ).toBe(404)
    const answer = await call(`${shop.checkout.url}/checkout`, {
      body: basket,
      headers: {...headers, 'idempotency-key': 'it-syn-1'},
    })
    expect(answer.status).toBe(201)
    expect(answer.body.synthetic).toBe(true)
    expect(await read()).toEqual(before)
    // Passed on: the dependencies saw it as synthetic, with the request id.
    for (const [proc, route] of [
      [shop.inventory, '/reservations'],
      [shop.payments, '/authorizations'],
      [shop.orders, '/orders'],
    ] as const) {
      expect(
        proc.logs.some((r) => r.requestId === 'it-syn-1' && r.route === route && r.synthetic === true),
        proc.name,
      ).toBe(true)
      expect(
        sample(await metricsOf(proc), 'http_requests_total', {route, code: '201', synthetic: 'true'}),
        proc.name,
      ).toBe(1)
    }
  })

  it('FAULT_ERROR_RATE=1 answers 500 to business routes, never to probes', async () => {
    const sick = await start('catalog', {FAULT_ERROR_RATE: '1', APP_VERSION: 'canary'})
    for (let i = 0; i < 10; i++) expect((await call(`${sick.url}/products`)).status).toBe(500)
    expect((await call(`${sick.url}/healthz`)).status).toBe(200)
    expect((await call(`${sick.url}/readyz`)).status).toBe(200)
    const text = await metricsOf(sick)
    expect(sample(text, 'http_requests_total', {version: 'canary', route: '/products', code: '500'})).toBe(10)
    expect(sample(text, 'http_requests_total', {version: 'canary', route: '/products', code: '200'})).toBeUndefined()
  })

  it('FAULT_LATENCY_MS makes answers slow enough for a latency SLO to see', async () => {
    const slow = await start('catalog', {FAULT_LATENCY_MS: '350', FAULT_LATENCY_JITTER_MS: '50'})
    const started = performance.now()
    expect((await call(`${slow.url}/products/SKU-1001`)).status).toBe(200)
    expect(performance.now() - started).toBeGreaterThanOrEqual(345)
    const text = await metricsOf(slow)
    const labels = {route: '/products/:id', code: '200'}
    expect(sample(text, 'http_request_duration_seconds_bucket', {...labels, le: '0.3'})).toBe(0)
    expect(sample(text, 'http_request_duration_seconds_bucket', {...labels, le: '0.5'})).toBe(1)
  })

  it('checkout opens its payments breaker when payments fails, then answers 503 fast', async () => {
    const badPayments = await start('payments', {FAULT_ERROR_RATE: '1'})
    const checkout = await start('checkout', {
      INVENTORY_URL: shop.inventory.url,
      PAYMENTS_URL: badPayments.url,
      ORDERS_URL: shop.orders.url,
      DOWNSTREAM_RETRIES: '1',
      DOWNSTREAM_BACKOFF_MS: '5',
      BREAKER_CONSECUTIVE_FAILURES: '3',
      BREAKER_OPEN_MS: '60000',
    })
    const reasons: string[] = []
    for (let i = 0; i < 5 && !reasons.includes('circuit_open'); i++) {
      const answer = await call(`${checkout.url}/checkout`, {body: basket, headers: {'idempotency-key': `it-bad-${i}`}})
      expect(answer.status).toBe(503)
      expect(answer.body.dependency).toBe('payments')
      reasons.push(answer.body.reason)
    }
    // Two attempts per checkout (one retry): the third failure opens the circuit mid-second checkout.
    expect(reasons).toEqual(['status', 'circuit_open'])
    const attemptsAtPayments = sample(await metricsOf(badPayments), 'http_requests_total', {
      route: '/authorizations',
      code: '500',
    })
    expect(attemptsAtPayments).toBe(3)

    const started = performance.now()
    const fast = await call(`${checkout.url}/checkout`, {body: basket, headers: {'idempotency-key': 'it-bad-fast'}})
    expect(performance.now() - started).toBeLessThan(250)
    expect(fast.status).toBe(503)
    expect(fast.body.reason).toBe('circuit_open')
    expect(fast.headers.get('retry-after')).toMatch(/^\d+$/)
    // While open, payments is not called at all, and nothing is reserved first.
    expect(sample(await metricsOf(badPayments), 'http_requests_total', {route: '/authorizations', code: '500'})).toBe(3)
    const text = await metricsOf(checkout)
    expect(sample(text, 'circuit_breaker_state', {downstream: 'payments'})).toBe(1)
    expect(sample(text, 'http_requests_total', {route: '/checkout', code: '503'})).toBe(3)
    expect(checkout.logs.some((r) => r.msg === 'circuit opened' && r.downstream === 'payments')).toBe(true)
  })

  it('SIGTERM: readiness turns false, in-flight requests drain, the process exits 0', async () => {
    const proc = await start('orders', {FAULT_LATENCY_MS: '800', SHUTDOWN_DELAY_MS: '300'})
    const order = {
      customerId: 'c',
      items: [{sku: 'SKU-1002', quantity: 1, unitPriceCents: 2_400}],
      totalCents: 2_400,
      currency: 'USD',
      reservationId: 'res_x',
      authorizationId: 'auth_x',
    }
    const inFlight = call(`${proc.url}/orders`, {body: order, headers: {'idempotency-key': 'it-drain'}})
    await new Promise((resolve) => setTimeout(resolve, 150))
    proc.child.kill('SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const probe = await call(`${proc.url}/readyz`)
    expect(probe.status).toBe(503)
    expect(probe.body).toEqual({status: 'stopping'})
    const answer = await inFlight
    expect(answer.status).toBe(201)
    expect(await proc.exited).toEqual({code: 0, signal: null})
    await expect(fetch(`${proc.url}/healthz`)).rejects.toThrow()
    const messages = proc.logs.map((r) => r.msg)
    expect(messages).toEqual(expect.arrayContaining(['shutting down', 'stopped']))
    expect(proc.logs.find((r) => r.msg === 'stopped')).toMatchObject({drained: true, abandoned: 0})
  })

  it('a bad configuration stops the process at start with a message naming the variable', async () => {
    const child = spawn(process.execPath, ['payments/src/main.ts'], {
      cwd: SERVICES_DIR,
      env: {PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', FAULT_ERROR_RATE: 'lots'},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    expect((await exitOf(child)).code).toBe(1)
    expect(JSON.parse(out.trim())).toMatchObject({
      level: 'error',
      msg: 'invalid configuration',
      error: expect.stringMatching(/^FAULT_ERROR_RATE="lots" is invalid/),
    })
  })

  it('every service shuts down cleanly on SIGTERM (SIGINT too)', async () => {
    const running = procs.filter((proc) => proc.child.exitCode === null && proc.child.signalCode === null)
    running.forEach((proc, i) => proc.child.kill(i % 2 === 0 ? 'SIGTERM' : 'SIGINT'))
    const exits = await Promise.all(running.map(async (proc) => ({name: proc.name, ...(await proc.exited)})))
    for (const exit of exits) expect(exit, exit.name).toMatchObject({code: 0, signal: null})
  })
})
