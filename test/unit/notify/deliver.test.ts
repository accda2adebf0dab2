// Delivery against receivers this test starts on 127.0.0.1: retried after failures with backoff,
// one attempt cut at its timeout, the whole message bounded by its deadline, permanent refusals
// not retried.
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterEach, describe, expect, it} from 'vitest'

import {deliver} from '../../../src/notify/deliver.js'

interface Receiver {
  url: string
  hits: {at: number; body: string}[]
  close: () => Promise<void>
}

const open: Receiver[] = []

async function receiver(answer: (n: number, res: http.ServerResponse) => void): Promise<Receiver> {
  const hits: Receiver['hits'] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      hits.push({at: Date.now(), body})
      answer(hits.length, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const r: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  open.push(r)
  return r
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()))
})

const request = {headers: {'content-type': 'application/json'}, body: '{"text":"hi"}'}

describe('deliver', () => {
  it('retries a receiver that fails, then succeeds, backing off exponentially', async () => {
    const r = await receiver((n, res) => {
      res.statusCode = n < 3 ? 503 : 200
      res.end('ok')
    })
    const outcome = await deliver(r.url, request, {attempts: 4, timeoutMs: 1000, backoffMs: 100, deadlineMs: 5000})
    expect(outcome).toMatchObject({delivered: true, attempts: 3, status: 200})
    expect(r.hits.map((h) => h.body)).toEqual([request.body, request.body, request.body])
    const gaps = [r.hits[1].at - r.hits[0].at, r.hits[2].at - r.hits[1].at]
    expect(gaps[0]).toBeGreaterThanOrEqual(95)
    expect(gaps[1]).toBeGreaterThanOrEqual(195)
  })

  it('gives up after the attempts, reporting the last status', async () => {
    const r = await receiver((_, res) => {
      res.statusCode = 500
      res.end('broken')
    })
    const outcome = await deliver(r.url, request, {attempts: 3, timeoutMs: 1000, backoffMs: 10, deadlineMs: 5000})
    expect(outcome).toMatchObject({delivered: false, attempts: 3, status: 500, error: 'HTTP 500: broken'})
    expect(r.hits).toHaveLength(3)
  })

  it('does not retry a permanent refusal (404, 400)', async () => {
    const r = await receiver((_, res) => {
      res.statusCode = 404
      res.end('no_service')
    })
    const outcome = await deliver(r.url, request, {attempts: 5, timeoutMs: 1000, backoffMs: 10, deadlineMs: 5000})
    expect(outcome).toMatchObject({delivered: false, attempts: 1, status: 404})
    expect(r.hits).toHaveLength(1)
  })

  it('retries 429 (rate limited)', async () => {
    const r = await receiver((n, res) => {
      res.statusCode = n === 1 ? 429 : 200
      res.end()
    })
    expect(
      await deliver(r.url, request, {attempts: 3, timeoutMs: 1000, backoffMs: 10, deadlineMs: 5000}),
    ).toMatchObject({delivered: true, attempts: 2})
  })

  it('cuts an attempt at its timeout against a receiver that hangs, and the whole message at its deadline', async () => {
    const r = await receiver(() => {
      // never answers
    })
    const started = Date.now()
    const outcome = await deliver(r.url, request, {attempts: 10, timeoutMs: 300, backoffMs: 50, deadlineMs: 1000})
    const took = Date.now() - started
    expect(outcome.delivered).toBe(false)
    expect(outcome.error).toMatch(/no answer within \d+ ms/)
    expect(outcome.attempts).toBeGreaterThanOrEqual(2)
    expect(outcome.attempts).toBeLessThan(10)
    expect(took).toBeLessThan(1400)
    expect(took).toBeGreaterThanOrEqual(600)
  })

  it('reports an unreachable receiver without throwing', async () => {
    const r = await receiver((_, res) => res.end())
    const url = r.url
    await r.close()
    open.length = 0
    const outcome = await deliver(url, request, {attempts: 2, timeoutMs: 300, backoffMs: 10, deadlineMs: 1000})
    expect(outcome).toMatchObject({delivered: false, attempts: 2})
    expect(outcome.error).toMatch(/ECONNREFUSED/)
  })

  it('does not follow a redirect (a signed body would go elsewhere)', async () => {
    const r = await receiver((_, res) => {
      res.statusCode = 307
      res.setHeader('location', 'http://127.0.0.1:1/elsewhere')
      res.end()
    })
    expect(await deliver(r.url, request, {attempts: 2, timeoutMs: 300, backoffMs: 10, deadlineMs: 1000})).toMatchObject(
      {delivered: false, attempts: 1, status: 307},
    )
  })
})
