import {describe, expect, it} from 'vitest'
import {IdempotencyStore, fingerprint, stableStringify} from '../../../services/lib/idempotency.ts'
import {createApp as createInventory} from '../../../services/inventory/src/app.ts'
import {createApp as createPayments} from '../../../services/payments/src/app.ts'
import {createApp as createOrders} from '../../../services/orders/src/app.ts'
import {json, launch} from './helpers.ts'

describe('idempotency store', () => {
  it('runs once per key and replays the kept answer', async () => {
    const store = new IdempotencyStore()
    let runs = 0
    const run = async () => ({status: 201, body: {n: ++runs}})
    const first = await store.execute('k', 'fp', run)
    const second = await store.execute('k', 'fp', run)
    expect(first).toEqual({reply: {status: 201, body: {n: 1}}, replayed: false})
    expect(second).toEqual({reply: {status: 201, body: {n: 1}}, replayed: true})
    expect(runs).toBe(1)
  })

  it('keeps 4xx answers too: a declined payment stays declined', async () => {
    const store = new IdempotencyStore()
    let runs = 0
    const run = async () => ({status: 402, body: {n: ++runs}})
    await store.execute('k', 'fp', run)
    expect((await store.execute('k', 'fp', run)).reply.body).toEqual({n: 1})
  })

  it('concurrent requests with one key share one run', async () => {
    const store = new IdempotencyStore()
    let runs = 0
    let finish!: () => void
    const gate = new Promise<void>((resolve) => (finish = resolve))
    const run = async () => {
      runs++
      await gate
      return {status: 201, body: {ok: true}}
    }
    const a = store.execute('k', 'fp', run)
    const b = store.execute('k', 'fp', run)
    finish()
    const [ra, rb] = await Promise.all([a, b])
    expect(runs).toBe(1)
    expect(ra.replayed).toBe(false)
    expect(rb.replayed).toBe(true)
    expect(rb.reply).toBe(ra.reply)
  })

  it('refuses the same key with a different payload (422)', async () => {
    const store = new IdempotencyStore()
    await store.execute('k', fingerprint({a: 1}), async () => ({status: 201}))
    await expect(store.execute('k', fingerprint({a: 2}), async () => ({status: 201}))).rejects.toMatchObject({
      status: 422,
      code: 'idempotency_key_reused',
    })
  })

  it('does not keep 5xx answers or thrown errors, so the client can retry', async () => {
    const store = new IdempotencyStore()
    let runs = 0
    await store.execute('k', 'fp', async () => ({status: 503, body: {n: ++runs}}))
    await expect(store.execute('k', 'fp', async () => Promise.reject(new Error(`run ${++runs}`)))).rejects.toThrow(
      'run 2',
    )
    const third = await store.execute('k', 'fp', async () => ({status: 201, body: {n: ++runs}}))
    expect(third).toEqual({reply: {status: 201, body: {n: 3}}, replayed: false})
    expect(store.size).toBe(1)
  })

  it('forgets keys after the TTL and stays within its size', async () => {
    let now = 0
    const store = new IdempotencyStore({ttlMs: 1_000, maxEntries: 2, now: () => now})
    let runs = 0
    const run = async () => ({status: 201, body: {n: ++runs}})
    await store.execute('a', 'fp', run)
    now = 1_000
    expect((await store.execute('a', 'fp', run)).replayed).toBe(false)
    await store.execute('b', 'fp', run)
    await store.execute('c', 'fp', run)
    expect(store.size).toBe(2)
    expect((await store.execute('c', 'fp', run)).replayed).toBe(true)
  })

  it('fingerprints ignore object key order but not values', () => {
    expect(stableStringify({b: 1, a: [1, {d: 2, c: 3}]})).toBe('{"a":[1,{"c":3,"d":2}],"b":1}')
    expect(fingerprint({a: 1, b: 2})).toBe(fingerprint({b: 2, a: 1}))
    expect(fingerprint({a: 1})).not.toBe(fingerprint({a: 2}))
  })
})

describe('idempotent routes', () => {
  const reservation = {items: [{sku: 'SKU-1002', quantity: 3}]}

  it('inventory: the same key returns the same reservation and reserves once', async () => {
    const {url} = await launch(createInventory)
    const headers = {'idempotency-key': 'checkout-1:reservation'}
    const first = await json(`${url}/reservations`, {body: reservation, headers})
    const again = await json(`${url}/reservations`, {body: reservation, headers})
    expect(first.status).toBe(201)
    expect(again.status).toBe(201)
    expect(again.body.id).toBe(first.body.id)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    const stock = await json(`${url}/stock/SKU-1002`)
    expect(stock.body).toMatchObject({reserved: 3, available: stock.body.onHand - 3})

    const other = await json(`${url}/reservations`, {
      body: reservation,
      headers: {'idempotency-key': 'checkout-2:reservation'},
    })
    expect(other.body.id).not.toBe(first.body.id)
    expect((await json(`${url}/stock/SKU-1002`)).body.reserved).toBe(6)
  })

  it('inventory: concurrent retries with one key reserve once', async () => {
    const {url} = await launch(createInventory)
    const headers = {'idempotency-key': 'burst'}
    const answers = await Promise.all(
      Array.from({length: 5}, () => json(`${url}/reservations`, {body: reservation, headers})),
    )
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1)
    expect((await json(`${url}/stock/SKU-1002`)).body.reserved).toBe(3)
  })

  it('needs the header, and refuses a reused key with another payload', async () => {
    const {url} = await launch(createInventory)
    const missing = await json(`${url}/reservations`, {body: reservation})
    expect(missing.status).toBe(400)
    expect(missing.body.error).toBe('idempotency_key_required')

    const headers = {'idempotency-key': 'k'}
    expect((await json(`${url}/reservations`, {body: reservation, headers})).status).toBe(201)
    const reused = await json(`${url}/reservations`, {body: {items: [{sku: 'SKU-1002', quantity: 4}]}, headers})
    expect(reused.status).toBe(422)
    expect(reused.body.error).toBe('idempotency_key_reused')
  })

  it('inventory: a reservation is all or nothing, and 409 is replayed as 409', async () => {
    const {url} = await launch(createInventory)
    const body = {
      items: [
        {sku: 'SKU-1001', quantity: 1},
        {sku: 'SKU-1011', quantity: 6},
      ],
    }
    const first = await json(`${url}/reservations`, {body, headers: {'idempotency-key': 'too-many'}})
    expect(first.status).toBe(409)
    expect(first.body).toMatchObject({error: 'insufficient_stock', sku: 'SKU-1011', available: 5, requested: 6})
    expect((await json(`${url}/stock/SKU-1001`)).body.reserved).toBe(0)
    const again = await json(`${url}/reservations`, {body, headers: {'idempotency-key': 'too-many'}})
    expect(again.status).toBe(409)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
  })

  it('inventory: releasing gives the units back, once', async () => {
    const {url} = await launch(createInventory)
    const made = await json(`${url}/reservations`, {body: reservation, headers: {'idempotency-key': 'r'}})
    for (let i = 0; i < 2; i++) {
      const released = await json(`${url}/reservations/${made.body.id}/release`, {method: 'POST'})
      expect(released.body.status).toBe('released')
    }
    expect((await json(`${url}/stock/SKU-1002`)).body.reserved).toBe(0)
  })

  it('payments: a retried authorization is not charged twice', async () => {
    const {url, service} = await launch(createPayments)
    const body = {amountCents: 2_400, currency: 'USD', token: 'tok_visa'}
    const headers = {'idempotency-key': 'pay-1'}
    const first = await json(`${url}/authorizations`, {body, headers})
    const again = await json(`${url}/authorizations`, {body, headers})
    expect(first.status).toBe(201)
    expect(again.body).toEqual(first.body)
    const metrics = await service.metrics.registry.getSingleMetricAsString('payments_authorizations_total')
    expect(metrics).toContain('payments_authorizations_total{result="authorized",service="payments",version="dev"} 1')

    const declined = await json(`${url}/authorizations`, {
      body: {...body, token: 'tok_decline'},
      headers: {'idempotency-key': 'pay-2'},
    })
    expect(declined.status).toBe(402)
    expect(declined.body).toMatchObject({status: 'declined', declineReason: 'card_declined'})
  })

  it('orders: one order per key, readable afterwards', async () => {
    const {url} = await launch(createOrders)
    const body = {
      customerId: 'c-1',
      items: [{sku: 'SKU-1002', quantity: 2, unitPriceCents: 2_400}],
      totalCents: 4_800,
      currency: 'USD',
      reservationId: 'res_1',
      authorizationId: 'auth_1',
    }
    const first = await json(`${url}/orders`, {body, headers: {'idempotency-key': 'o-1'}})
    const again = await json(`${url}/orders`, {body, headers: {'idempotency-key': 'o-1'}})
    expect(first.status).toBe(201)
    expect(again.body.id).toBe(first.body.id)
    expect((await json(`${url}/orders/${first.body.id}`)).body).toEqual(first.body)
    const wrong = await json(`${url}/orders`, {body: {...body, totalCents: 1}, headers: {'idempotency-key': 'o-2'}})
    expect(wrong.status).toBe(422)
    expect(wrong.body.error).toBe('total_mismatch')
  })
})
