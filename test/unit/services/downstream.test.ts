import {createServer} from 'node:http'
import type {IncomingMessage, Server, ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {afterEach, describe, expect, it} from 'vitest'
import {createDownstream, DownstreamError} from '../../../services/lib/downstream.ts'
import type {DownstreamOptions} from '../../../services/lib/downstream.ts'
import {silentLogger} from '../../../services/lib/log.ts'
import {createMetrics} from '../../../services/lib/metrics.ts'
import {sample} from './helpers.ts'

type Behaviour = (req: IncomingMessage, res: ServerResponse, n: number) => void

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    }),
  )
})

/** A real HTTP peer on loopback whose answers the test scripts; it counts calls. */
async function peer(behaviour: Behaviour): Promise<{url: string; calls: () => number; keys: string[]}> {
  let calls = 0
  const keys: string[] = []
  const server = createServer((req, res) => {
    calls++
    keys.push(String(req.headers['idempotency-key'] ?? ''))
    req.resume()
    req.on('end', () => behaviour(req, res, calls))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  return {url: `http://127.0.0.1:${port}`, calls: () => calls, keys}
}

const reply = (res: ServerResponse, status: number, body: unknown = {}) => {
  res.writeHead(status, {'content-type': 'application/json'})
  res.end(JSON.stringify(body))
}

function client(url: string, options: Partial<DownstreamOptions> = {}) {
  const metrics = createMetrics({service: 'checkout', version: 'dev', processMetrics: false})
  const downstream = createDownstream({
    name: 'payments',
    baseUrl: url,
    timeoutMs: 200,
    retries: 2,
    backoffMs: 1,
    log: silentLogger,
    metrics,
    ...options,
  })
  return {downstream, metrics}
}

describe('downstream client', () => {
  it('sends JSON with the idempotency key and request id, and parses the answer', async () => {
    let seen: IncomingMessage | undefined
    const target = await peer((req, res) => {
      seen = req
      reply(res, 201, {id: 'auth_1'})
    })
    const {downstream} = client(target.url)
    const answer = await downstream.request('POST', '/authorizations', {
      body: {a: 1},
      idempotencyKey: 'k1',
      requestId: 'r1',
    })
    expect(answer).toMatchObject({status: 201, body: {id: 'auth_1'}})
    expect(seen?.headers).toMatchObject({
      'idempotency-key': 'k1',
      'x-request-id': 'r1',
      'content-type': 'application/json',
    })
  })

  it('retries idempotent calls on 5xx, a bounded number of times, with the same key', async () => {
    const target = await peer((_req, res, n) => reply(res, n < 3 ? 503 : 201, {n}))
    const {downstream, metrics} = client(target.url)
    const answer = await downstream.request('POST', '/authorizations', {idempotencyKey: 'k1'})
    expect(answer.body).toEqual({n: 3})
    expect(target.keys).toEqual(['k1', 'k1', 'k1'])
    const text = await metrics.registry.metrics()
    expect(sample(text, 'downstream_requests_total', {downstream: 'payments', outcome: '503'})).toBe(2)
    expect(sample(text, 'downstream_retries_total', {downstream: 'payments'})).toBe(2)
  })

  it('gives up after the last retry with the dependency failure', async () => {
    const target = await peer((_req, res) => reply(res, 500))
    const {downstream} = client(target.url, {retries: 1})
    const error = await downstream.request('GET', '/x').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DownstreamError)
    expect(error).toMatchObject({kind: 'status', status: 500, downstream: 'payments'})
    expect(target.calls()).toBe(2)
  })

  it('never retries a POST without an idempotency key', async () => {
    const target = await peer((_req, res) => reply(res, 503))
    const {downstream} = client(target.url)
    await expect(downstream.request('POST', '/charge', {body: {}})).rejects.toMatchObject({kind: 'status'})
    expect(target.calls()).toBe(1)
  })

  it('does not retry 4xx answers: they are returned, not thrown', async () => {
    const target = await peer((_req, res) => reply(res, 402, {status: 'declined'}))
    const {downstream} = client(target.url)
    const answer = await downstream.request('POST', '/authorizations', {idempotencyKey: 'k'})
    expect(answer.status).toBe(402)
    expect(target.calls()).toBe(1)
    expect(downstream.breaker.state).toBe('closed')
  })

  it('times out each attempt with AbortSignal.timeout', async () => {
    const target = await peer((_req, res) => setTimeout(() => reply(res, 200), 1_000).unref())
    const {downstream} = client(target.url, {timeoutMs: 50, retries: 1})
    const started = performance.now()
    const error = await downstream.request('GET', '/slow').catch((e: unknown) => e)
    expect(error).toMatchObject({kind: 'timeout'})
    expect(target.calls()).toBe(2)
    expect(performance.now() - started).toBeLessThan(600)
  })

  it('stops at the overall deadline', async () => {
    const target = await peer((_req, res) => setTimeout(() => reply(res, 200), 1_000).unref())
    const {downstream} = client(target.url, {timeoutMs: 500, retries: 5})
    const started = performance.now()
    await expect(downstream.request('GET', '/slow', {deadline: Date.now() + 120})).rejects.toMatchObject({
      kind: 'timeout',
    })
    expect(performance.now() - started).toBeLessThan(450)
  })

  it('reports an unreachable dependency as a network failure', async () => {
    const target = await peer((_req, res) => reply(res, 200))
    const url = target.url
    await new Promise((resolve) => servers.pop()!.close(resolve))
    const {downstream} = client(url, {retries: 0})
    const error = await downstream.request('GET', '/x').catch((e: unknown) => e)
    expect(error).toMatchObject({kind: 'network', message: expect.stringContaining('ECONNREFUSED')})
  })

  it('opens the breaker after consecutive failures and then fails fast without calling', async () => {
    const target = await peer((_req, res) => reply(res, 503))
    const {downstream, metrics} = client(target.url, {
      retries: 0,
      breaker: {consecutiveFailures: 3, openMs: 60_000},
    })
    for (let i = 0; i < 3; i++) await downstream.request('GET', '/x').catch(() => {})
    expect(downstream.breaker.state).toBe('open')
    const started = performance.now()
    const error = await downstream.request('GET', '/x').catch((e: unknown) => e)
    expect(error).toMatchObject({kind: 'circuit_open', downstream: 'payments'})
    expect((error as DownstreamError).retryAfterMs).toBeGreaterThan(59_000)
    expect(performance.now() - started).toBeLessThan(100)
    expect(target.calls()).toBe(3)
    const text = await metrics.registry.metrics()
    expect(sample(text, 'circuit_breaker_state', {downstream: 'payments'})).toBe(1)
    expect(sample(text, 'circuit_breaker_transitions_total', {downstream: 'payments', to: 'open'})).toBe(1)
    expect(sample(text, 'downstream_requests_total', {downstream: 'payments', outcome: 'circuit_open'})).toBe(1)
  })

  it('retries stop as soon as the breaker opens', async () => {
    const target = await peer((_req, res) => reply(res, 503))
    const {downstream} = client(target.url, {retries: 10, breaker: {consecutiveFailures: 2}})
    await expect(downstream.request('GET', '/x')).rejects.toMatchObject({kind: 'circuit_open'})
    expect(target.calls()).toBe(2)
  })
})
