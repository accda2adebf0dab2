import {describe, expect, it} from 'vitest'
import {createApp as createCheckout} from '../../../services/checkout/src/app.ts'
import type {CheckoutDeps} from '../../../services/checkout/src/app.ts'
import {createApp as createInventory} from '../../../services/inventory/src/app.ts'
import {createApp as createOrders} from '../../../services/orders/src/app.ts'
import {createApp as createPayments} from '../../../services/payments/src/app.ts'
import type {Env} from '../../../services/lib/config.ts'
import type {ServiceDeps} from '../../../services/lib/service.ts'
import {json, launch, sample} from './helpers.ts'

/** The four services of a checkout, in this process, on loopback. */
async function shop(
  env: {checkout?: Env; payments?: Env; inventory?: Env; orders?: Env} = {},
  paymentsDeps: Partial<ServiceDeps> = {},
) {
  const inventory = await launch(createInventory, env.inventory)
  const payments = await launch(createPayments, env.payments, paymentsDeps)
  const orders = await launch(createOrders, env.orders)
  const checkout = await launch(createCheckout, {
    INVENTORY_URL: inventory.url,
    PAYMENTS_URL: payments.url,
    ORDERS_URL: orders.url,
    DOWNSTREAM_BACKOFF_MS: '1',
    ...env.checkout,
  })
  return {inventory, payments, orders, checkout}
}

const basket = (overrides: Record<string, unknown> = {}) => ({
  customerId: 'cust-1',
  paymentToken: 'tok_visa',
  items: [
    {sku: 'SKU-1001', quantity: 1},
    {sku: 'SKU-1002', quantity: 2},
  ],
  ...overrides,
})

const post = (url: string, key: string | undefined, body: unknown) =>
  json(`${url}/checkout`, {body, headers: key === undefined ? {} : {'idempotency-key': key}})

describe('checkout', () => {
  it('reserves, authorizes and orders, with keys derived from the checkout key', async () => {
    const s = await shop()
    const answer = await post(s.checkout.url, 'co-1', basket())
    expect(answer.status).toBe(201)
    expect(answer.body).toMatchObject({status: 'confirmed', totalCents: 12_900 + 2 * 2_400, currency: 'USD'})
    const order = await json(`${s.orders.url}/orders/${answer.body.orderId}`)
    expect(order.body).toMatchObject({
      reservationId: answer.body.reservationId,
      authorizationId: answer.body.authorizationId,
      totalCents: answer.body.totalCents,
    })
    const reservation = await json(`${s.inventory.url}/reservations/${answer.body.reservationId}`)
    expect(reservation.body.reference).toBe('checkout:co-1')
    const auth = await json(`${s.payments.url}/authorizations/${answer.body.authorizationId}`)
    expect(auth.body).toMatchObject({
      status: 'authorized',
      amountCents: answer.body.totalCents,
      reference: answer.body.reservationId,
    })
  })

  it('needs an idempotency key and a valid basket', async () => {
    const s = await shop()
    expect((await post(s.checkout.url, undefined, basket())).status).toBe(400)
    expect((await post(s.checkout.url, 'k', basket({items: []}))).status).toBe(400)
    const unknown = await post(s.checkout.url, 'k2', basket({items: [{sku: 'NOPE', quantity: 1}]}))
    expect(unknown.status).toBe(422)
    expect(unknown.body.error).toBe('unknown_sku')
  })

  it('answers 409 out of stock without charging', async () => {
    const s = await shop()
    const answer = await post(s.checkout.url, 'big', basket({items: [{sku: 'SKU-1011', quantity: 6}]}))
    expect(answer.status).toBe(409)
    expect(answer.body.error).toBe('out_of_stock')
    const text = (await json(`${s.payments.url}/metrics`)).body
    expect(sample(text, 'payments_authorizations_total')).toBeUndefined()
  })

  it('a declined payment releases the reservation and is remembered as declined', async () => {
    const s = await shop()
    const body = basket({paymentToken: 'tok_decline', items: [{sku: 'SKU-1011', quantity: 5}]})
    const answer = await post(s.checkout.url, 'declined', body)
    expect(answer.status).toBe(402)
    expect(answer.body).toMatchObject({error: 'payment_declined', declineReason: 'card_declined'})
    expect((await json(`${s.inventory.url}/stock/SKU-1011`)).body).toMatchObject({reserved: 0, available: 5})
    const again = await post(s.checkout.url, 'declined', body)
    expect(again.status).toBe(402)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    const text = (await json(`${s.checkout.url}/metrics`)).body
    expect(sample(text, 'checkout_failures_total', {reason: 'payment_declined'})).toBe(1)
    expect(sample(text, 'checkout_attempts_total')).toBe(1)
  })

  it('retries ride over a flaky payments service without charging twice', async () => {
    // Payments fails two requests in three with an injected 500 (deterministic draws); the
    // breaker's ratio is set to 1 so only the retries are under test here.
    let draw = 0
    const random = () => (draw++ % 3 === 2 ? 0.9 : 0.1)
    const s = await shop(
      {payments: {FAULT_ERROR_RATE: '0.5'}, checkout: {DOWNSTREAM_RETRIES: '2', BREAKER_FAILURE_RATIO: '1'}},
      {random},
    )
    for (let i = 0; i < 4; i++) expect((await post(s.checkout.url, `flaky-${i}`, basket())).status).toBe(201)
    const text = (await json(`${s.payments.url}/metrics`)).body
    expect(sample(text, 'payments_authorizations_total', {result: 'authorized'})).toBe(4)
    expect(sample(text, 'http_requests_total', {route: '/authorizations', code: '500'})).toBe(8)
    const checkoutText = (await json(`${s.checkout.url}/metrics`)).body
    expect(sample(checkoutText, 'downstream_retries_total', {downstream: 'payments'})).toBe(8)
  })

  it('opens the payments breaker when payments fails, then answers 503 fast', async () => {
    const s = await shop({
      payments: {FAULT_ERROR_RATE: '1'},
      checkout: {DOWNSTREAM_RETRIES: '0', BREAKER_CONSECUTIVE_FAILURES: '3', BREAKER_OPEN_MS: '60000'},
    })
    for (let i = 0; i < 3; i++) {
      const answer = await post(s.checkout.url, `down-${i}`, basket())
      expect(answer.status).toBe(503)
      expect(answer.body).toMatchObject({error: 'dependency_unavailable', dependency: 'payments', reason: 'status'})
    }
    const started = performance.now()
    const fast = await post(s.checkout.url, 'down-3', basket())
    expect(performance.now() - started).toBeLessThan(250)
    expect(fast.status).toBe(503)
    expect(fast.body).toMatchObject({dependency: 'payments', reason: 'circuit_open'})
    expect(Number(fast.headers.get('retry-after'))).toBeGreaterThanOrEqual(59)
    // Nothing was reserved for the checkout that met an open circuit.
    const stock = (await json(`${s.inventory.url}/metrics`)).body
    expect(sample(stock, 'inventory_reservations_total', {result: 'reserved'})).toBe(3)
    const text = (await json(`${s.checkout.url}/metrics`)).body
    expect(sample(text, 'circuit_breaker_state', {downstream: 'payments'})).toBe(1)
    expect(sample(text, 'circuit_breaker_state', {downstream: 'inventory'})).toBe(0)
    expect(sample(text, 'checkout_failures_total', {reason: 'dependency_unavailable'})).toBe(4)
    expect(sample(text, 'http_requests_total', {route: '/checkout', code: '503'})).toBe(4)
  })

  it('a retried checkout after an outage reuses its reservation and completes once', async () => {
    // Payments is unreachable at first (a closed port), then comes up on another URL: a
    // retry with the same key must find its reservation, not reserve again.
    const inventory = await launch(createInventory)
    const orders = await launch(createOrders)
    const payments = await launch(createPayments)
    const env = {
      INVENTORY_URL: inventory.url,
      ORDERS_URL: orders.url,
      DOWNSTREAM_RETRIES: '0',
      DOWNSTREAM_BACKOFF_MS: '1',
    }
    const broken = await launch(createCheckout, {...env, PAYMENTS_URL: 'http://127.0.0.1:9'})
    const body = basket({items: [{sku: 'SKU-1011', quantity: 2}]})
    const first = await post(broken.url, 'retry-me', body)
    expect(first.status).toBe(503)
    expect(first.body.reason).toBe('network')
    // The same checkout key, now through a checkout that reaches payments.
    const healthy = await launch(createCheckout, {...env, PAYMENTS_URL: payments.url})
    const second = await post(healthy.url, 'retry-me', body)
    expect(second.status).toBe(201)
    expect((await json(`${inventory.url}/stock/SKU-1011`)).body).toMatchObject({reserved: 2, available: 3})
  })
})

describe('synthetic checkout (X-Synthetic)', () => {
  const synthetic = (url: string, key: string, body: unknown) =>
    json(`${url}/checkout`, {body, headers: {'idempotency-key': key, 'x-synthetic': 'retailops-prewarm'}})
  const state = async (s: Awaited<ReturnType<typeof shop>>) => ({
    stock: (await json(`${s.inventory.url}/stock`)).body,
    reservations: (await json(`${s.inventory.url}/reservations`)).body.total,
    authorizations: (await json(`${s.payments.url}/authorizations`)).body.total,
    orders: (await json(`${s.orders.url}/orders`)).body.total,
  })

  it('runs every step with the header passed on, and reserves, charges and orders nothing', async () => {
    const s = await shop()
    await post(s.checkout.url, 'real-1', basket())
    const before = await state(s)
    expect(before.orders).toBe(1)
    const answer = await synthetic(s.checkout.url, 'syn-1', basket())
    expect(answer.status).toBe(201)
    expect(answer.headers.get('x-synthetic')).toBe('true')
    expect(answer.body).toMatchObject({status: 'confirmed', synthetic: true, totalCents: 12_900 + 2 * 2_400})
    expect(answer.body.orderId).toMatch(/^ord_synthetic_/)
    expect(answer.body.reservationId).toMatch(/^res_synthetic_/)
    expect(answer.headers.get('location')).toBeNull()
    // A retry with the same key replays; out of stock and declines still answer as for real.
    expect((await synthetic(s.checkout.url, 'syn-1', basket())).headers.get('idempotent-replayed')).toBe('true')
    expect(
      (await synthetic(s.checkout.url, 'syn-2', basket({items: [{sku: 'SKU-1011', quantity: 6}]}))).body.error,
    ).toBe('out_of_stock')
    expect((await synthetic(s.checkout.url, 'syn-3', basket({paymentToken: 'tok_decline'}))).body.error).toBe(
      'payment_declined',
    )
    expect(await state(s)).toEqual(before)
    expect((await json(`${s.orders.url}/orders/${answer.body.orderId}`)).status).toBe(404)

    // Every service counted it as synthetic, and no business counter moved.
    for (const [name, svc, route] of [
      ['checkout', s.checkout, '/checkout'],
      ['inventory', s.inventory, '/reservations'],
      ['payments', s.payments, '/authorizations'],
      ['orders', s.orders, '/orders'],
    ] as const) {
      const text = (await json(`${svc.url}/metrics`)).body
      expect(sample(text, 'http_requests_total', {route, synthetic: 'true'}), name).toBeGreaterThanOrEqual(1)
    }
    const checkoutMetrics = (await json(`${s.checkout.url}/metrics`)).body
    expect(sample(checkoutMetrics, 'checkout_attempts_total')).toBe(1)
    expect(sample(checkoutMetrics, 'checkout_success_total')).toBe(1)
    expect(sample((await json(`${s.orders.url}/metrics`)).body, 'orders_created_total')).toBe(1)
    expect(
      sample((await json(`${s.payments.url}/metrics`)).body, 'payments_authorizations_total', {result: 'authorized'}),
    ).toBe(1)
  })

  it('a synthetic key never collides with a real one, nor pushes it out', async () => {
    const s = await shop()
    const real = await post(s.checkout.url, 'same-key', basket())
    const fake = await synthetic(s.checkout.url, 'same-key', basket({customerId: 'other'}))
    expect(fake.status).toBe(201)
    expect(fake.body.synthetic).toBe(true)
    const again = await post(s.checkout.url, 'same-key', basket())
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.body.orderId).toBe(real.body.orderId)
  })

  it('a dependency that does not honour the header fails the checkout and its real reservation is released', async () => {
    // An older inventory: the header never reaches it, so it reserves for real and says nothing.
    const stripInventory: typeof fetch = (input, init) => {
      const url = String(input)
      const headers = {...(init?.headers as Record<string, string>)}
      if (url.includes('/reservations')) delete headers['x-synthetic']
      return fetch(input, {...init, headers})
    }
    const inventory = await launch(createInventory)
    const payments = await launch(createPayments)
    const orders = await launch(createOrders)
    const checkout = await launch<CheckoutDeps>(
      createCheckout,
      {INVENTORY_URL: inventory.url, PAYMENTS_URL: payments.url, ORDERS_URL: orders.url},
      {fetch: stripInventory},
    )
    const answer = await synthetic(checkout.url, 'old-inventory', basket())
    expect(answer.status).toBe(502)
    expect(answer.body).toMatchObject({error: 'synthetic_unsupported', dependency: 'inventory'})
    expect((await json(`${inventory.url}/stock/SKU-1001`)).body).toMatchObject({reserved: 0})
    expect((await json(`${inventory.url}/reservations`)).body.items[0].status).toBe('released')
    expect((await json(`${payments.url}/authorizations`)).body.total).toBe(0)
    expect((await json(`${orders.url}/orders`)).body.total).toBe(0)
  })
})
