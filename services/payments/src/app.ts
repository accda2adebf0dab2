// payments: card authorizations against a simulated processor. Idempotent by Idempotency-Key:
// a retried authorization returns the first answer and never charges twice.
// Test tokens: tok_decline (card declined), tok_insufficient_funds; anything else authorizes.
// A synthetic request (X-Synthetic) is checked and answered like a real one, but nothing is
// authorized, kept or counted.

import {randomUUID} from 'node:crypto'
import {BoundedMap} from '../../lib/bounded-map.ts'
import {envNumber, loadBaseConfig} from '../../lib/config.ts'
import type {Env} from '../../lib/config.ts'
import {invalid, object, positiveInt, string} from '../../lib/validate.ts'
import {createService, listRoute, lookupRoute} from '../../lib/service.ts'
import type {Service, ServiceDeps} from '../../lib/service.ts'

export const SERVICE = 'payments'

export const DECLINING_TOKENS: Readonly<Record<string, string>> = {
  tok_decline: 'card_declined',
  tok_insufficient_funds: 'insufficient_funds',
}

interface Authorization {
  id: string
  status: 'authorized' | 'declined'
  declineReason: string | null
  amountCents: number
  currency: string
  reference: string | null
  createdAt: string
}

export function createApp(env: Env = process.env, deps: ServiceDeps = {}): Service {
  const config = loadBaseConfig(SERVICE, env)
  const maxAmount = envNumber(env, 'PAYMENTS_MAX_AMOUNT_CENTS', 10_000_000, {min: 1, integer: true})
  const authorizations = new BoundedMap<string, Authorization>(
    envNumber(env, 'PAYMENTS_MAX_AUTHORIZATIONS', 500_000, {min: 1, integer: true}),
  )

  const service = createService(
    SERVICE,
    config,
    [
      {
        method: 'POST',
        path: '/authorizations',
        idempotent: true,
        handler: ({body, synthetic}) => {
          const input = object(body)
          const amountCents = positiveInt(input, 'amountCents')
          const currency = string(input, 'currency', {max: 3})
          if (!/^[A-Z]{3}$/.test(currency)) throw invalid('currency', 'an ISO 4217 code such as USD')
          const token = string(input, 'token', {max: 100})
          const reference = string(input, 'reference', {optional: true, max: 200}) || null
          const declineReason = DECLINING_TOKENS[token] ?? (amountCents > maxAmount ? 'amount_limit' : null)
          const authorization: Authorization = {
            id: `auth_${synthetic ? 'synthetic_' : ''}${randomUUID()}`,
            status: declineReason ? 'declined' : 'authorized',
            declineReason,
            amountCents,
            currency,
            reference,
            createdAt: new Date().toISOString(),
          }
          const status = declineReason ? 402 : 201
          if (synthetic) return {status, body: {...authorization, synthetic: true}}
          authorizations.set(authorization.id, authorization)
          results.inc({result: authorization.status})
          if (authorization.status === 'authorized') amount.inc(amountCents)
          return {status, body: authorization}
        },
      },
      listRoute('/authorizations', authorizations),
      lookupRoute('/authorizations/:id', 'authorization', (id) => authorizations.get(id)),
    ],
    deps,
  )
  const results = service.metrics.counter('payments_authorizations_total', 'Authorizations, by result.', ['result'])
  const amount = service.metrics.counter('payments_authorized_amount_cents_total', 'Amount authorized, in cents.')
  return service
}
