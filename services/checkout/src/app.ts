// checkout: turns a basket into an order. It reserves stock (inventory), authorizes the
// payment (payments) and captures the order (orders), in that order.
//
// - The checkout request needs an Idempotency-Key; each downstream call carries a key derived
//   from it (<key>:reservation, <key>:authorization, <key>:order), so a retried checkout, by
//   the client or by our own retries, reserves, charges and orders exactly once.
// - Every call has a timeout, and the whole checkout a deadline; idempotent calls are retried
//   a bounded number of times with jittered backoff.
// - Each dependency has a circuit breaker: while one is open, checkout answers 503 at once,
//   before reserving anything.
// - A declined payment releases the reservation. A dependency that is unavailable does not:
//   the client retries with the same key and picks up where it stopped.
// - A synthetic checkout (X-Synthetic, e.g. a warm-up) goes through every step with the header
//   passed on, so nothing is reserved, charged or ordered; a dependency that answers without
//   saying it honoured the header fails the checkout (502 synthetic_unsupported) before the next
//   step, and a real reservation it made is released.

import {envNumber, envUrl, loadBaseConfig} from '../../lib/config.ts'
import type {Env} from '../../lib/config.ts'
import {createDownstream, DownstreamError} from '../../lib/downstream.ts'
import type {Downstream, DownstreamResponse} from '../../lib/downstream.ts'
import {HttpError} from '../../lib/errors.ts'
import {findProduct} from '../../lib/products.ts'
import {createService} from '../../lib/service.ts'
import type {Reply, RequestContext, Service, ServiceDeps} from '../../lib/service.ts'
import {lineItems, object, string} from '../../lib/validate.ts'

export const SERVICE = 'checkout'

export interface CheckoutDeps extends ServiceDeps {
  /** Replaces global fetch for downstream calls (tests). */
  fetch?: typeof fetch
}

type FailureReason =
  'invalid_request' | 'out_of_stock' | 'payment_declined' | 'dependency_unavailable' | 'unexpected_response'

interface PricedLine {
  sku: string
  quantity: number
  unitPriceCents: number
}

export function createApp(env: Env = process.env, deps: CheckoutDeps = {}): Service {
  const config = loadBaseConfig(SERVICE, env)
  const deadlineMs = envNumber(env, 'CHECKOUT_DEADLINE_MS', 10_000, {min: 1, integer: true})
  const downstreamBase = {
    timeoutMs: envNumber(env, 'DOWNSTREAM_TIMEOUT_MS', 2_000, {min: 1, integer: true}),
    retries: envNumber(env, 'DOWNSTREAM_RETRIES', 2, {min: 0, max: 10, integer: true}),
    backoffMs: envNumber(env, 'DOWNSTREAM_BACKOFF_MS', 50, {min: 0, integer: true}),
    breaker: {
      consecutiveFailures: envNumber(env, 'BREAKER_CONSECUTIVE_FAILURES', 5, {min: 1, integer: true}),
      failureRatio: envNumber(env, 'BREAKER_FAILURE_RATIO', 0.5, {min: 0.01, max: 1}),
      minimumCalls: envNumber(env, 'BREAKER_MINIMUM_CALLS', 10, {min: 1, integer: true}),
      windowSize: envNumber(env, 'BREAKER_WINDOW', 20, {min: 1, integer: true}),
      openMs: envNumber(env, 'BREAKER_OPEN_MS', 5_000, {min: 0, integer: true}),
    },
    fetch: deps.fetch,
  }
  const urls = {
    inventory: envUrl(env, 'INVENTORY_URL', 'http://inventory:8080'),
    payments: envUrl(env, 'PAYMENTS_URL', 'http://payments:8080'),
    orders: envUrl(env, 'ORDERS_URL', 'http://orders:8080'),
  }

  const service = createService(
    SERVICE,
    config,
    [{method: 'POST', path: '/checkout', idempotent: true, handler: (ctx) => checkout(ctx)}],
    deps,
  )
  const {metrics, log} = service
  const attempts = metrics.counter(
    'checkout_attempts_total',
    'Checkouts attempted (replays of an idempotent checkout not counted).',
  )
  const successes = metrics.counter('checkout_success_total', 'Checkouts that ended in a confirmed order.')
  const failures = metrics.counter('checkout_failures_total', 'Checkouts that did not end in an order, by reason.', [
    'reason',
  ])

  const downstream = (name: string, baseUrl: string): Downstream =>
    createDownstream({...downstreamBase, name, baseUrl, log, metrics})
  const inventory = downstream('inventory', urls.inventory)
  const payments = downstream('payments', urls.payments)
  const orders = downstream('orders', urls.orders)

  async function checkout(ctx: RequestContext): Promise<Reply> {
    // Business counters count business: a synthetic checkout shows only in http_* {synthetic="true"}.
    const count = !ctx.synthetic
    if (count) attempts.inc()
    try {
      const reply = await run(ctx)
      if (count) successes.inc()
      return reply
    } catch (error) {
      if (error instanceof DownstreamError) {
        if (count) failures.inc({reason: 'dependency_unavailable'})
        const retryAfter = Math.max(1, Math.ceil((error.retryAfterMs ?? 1_000) / 1_000))
        throw new HttpError(
          503,
          'dependency_unavailable',
          error.kind === 'circuit_open' ? `${error.downstream} is unavailable (circuit open)` : error.message,
          {dependency: error.downstream, reason: error.kind},
          {'retry-after': String(retryAfter)},
        )
      }
      if (error instanceof HttpError && count) failures.inc({reason: reasonOf(error)})
      throw error
    }
  }

  async function run(ctx: RequestContext): Promise<Reply> {
    const input = object(ctx.body)
    const customerId = string(input, 'customerId', {max: 100})
    const paymentToken = string(input, 'paymentToken', {max: 100})
    const lines: PricedLine[] = lineItems(input).map(({sku, quantity}) => {
      const product = findProduct(sku)
      if (!product) throw new HttpError(422, 'unknown_sku', `no product with SKU ${JSON.stringify(sku)}`, {sku})
      return {sku, quantity, unitPriceCents: product.priceCents}
    })
    const totalCents = lines.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0)
    const currency = 'USD'
    const key = ctx.idempotencyKey!
    // A dependency known to be down fails the checkout before anything is reserved or charged.
    for (const dependency of [inventory, payments, orders]) {
      if (dependency.breaker.state === 'open') {
        throw new DownstreamError(dependency.name, 'circuit_open', `circuit for ${dependency.name} is open`, {
          retryAfterMs: dependency.breaker.retryAfterMs(),
        })
      }
    }
    const common = {requestId: ctx.requestId, deadline: Date.now() + deadlineMs, synthetic: ctx.syntheticSource}

    const reservation = await inventory.request<{id: string; available?: number}>('POST', '/reservations', {
      ...common,
      idempotencyKey: `${key}:reservation`,
      body: {items: lines.map(({sku, quantity}) => ({sku, quantity})), reference: `checkout:${key}`},
    })
    if (reservation.status === 409) {
      throw new HttpError(409, 'out_of_stock', 'not enough stock for this order', {detail: reservation.body})
    }
    expect(reservation, 201)
    const reservationId = reservation.body.id
    if (!honoured(ctx, reservation)) {
      // A real reservation was made for a synthetic request: give the units back before failing.
      await release(reservationId, key, {...ctx, synthetic: false, syntheticSource: undefined})
      throw syntheticUnsupported('inventory')
    }

    const authorization = await payments.request<{id: string; declineReason?: string}>('POST', '/authorizations', {
      ...common,
      idempotencyKey: `${key}:authorization`,
      body: {amountCents: totalCents, currency, token: paymentToken, reference: reservationId},
    })
    if (authorization.status === 402) {
      await release(reservationId, key, ctx)
      throw new HttpError(402, 'payment_declined', 'the payment was declined', {
        declineReason: authorization.body.declineReason,
        authorizationId: authorization.body.id,
      })
    }
    expect(authorization, 201)
    const authorizationId = authorization.body.id
    if (!honoured(ctx, authorization)) {
      await release(reservationId, key, ctx)
      throw syntheticUnsupported('payments')
    }

    const order = await orders.request<{id: string; createdAt: string}>('POST', '/orders', {
      ...common,
      idempotencyKey: `${key}:order`,
      body: {customerId, items: lines, totalCents, currency, reservationId, authorizationId},
    })
    expect(order, 201)
    if (!honoured(ctx, order)) throw syntheticUnsupported('orders')

    ctx.log.info('checkout confirmed', {orderId: order.body.id, totalCents})
    return {
      status: 201,
      body: {
        orderId: order.body.id,
        status: 'confirmed',
        customerId,
        items: lines,
        totalCents,
        currency,
        reservationId,
        authorizationId,
        createdAt: order.body.createdAt,
        ...(ctx.synthetic ? {synthetic: true} : {}),
      },
      // A synthetic order is not stored: there is nothing to point at.
      headers: ctx.synthetic ? {} : {location: `/orders/${order.body.id}`},
    }
  }

  /** A synthetic call must come back marked synthetic: otherwise the dependency did it for real. */
  function honoured(ctx: RequestContext, response: DownstreamResponse): boolean {
    return !ctx.synthetic || response.headers.get('x-synthetic') === 'true'
  }

  function syntheticUnsupported(dependency: string): HttpError {
    return new HttpError(
      502,
      'synthetic_unsupported',
      `${dependency} does not honour X-Synthetic: a synthetic checkout cannot go on without side effects`,
      {dependency},
    )
  }

  function expect(response: DownstreamResponse, status: number): void {
    if (response.status === status) return
    throw new HttpError(502, 'unexpected_response', `a dependency answered ${response.status}, expected ${status}`, {
      detail: response.body,
    })
  }

  /** Gives reserved units back after a declined payment; a failure here is logged, not fatal. */
  async function release(reservationId: string, key: string, ctx: RequestContext): Promise<void> {
    try {
      await inventory.request('POST', `/reservations/${encodeURIComponent(reservationId)}/release`, {
        requestId: ctx.requestId,
        synthetic: ctx.syntheticSource,
        // Releasing is idempotent in inventory, so the key only marks the call safe to retry.
        idempotencyKey: `${key}:release`,
      })
    } catch (error) {
      ctx.log.warn('could not release reservation', {reservationId, err: error})
    }
  }

  return service
}

function reasonOf(error: HttpError): FailureReason {
  if (error.code === 'out_of_stock') return 'out_of_stock'
  if (error.code === 'payment_declined') return 'payment_declined'
  if (error.status === 502) return 'unexpected_response'
  return 'invalid_request'
}
