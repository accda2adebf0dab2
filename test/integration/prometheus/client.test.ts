// The one Prometheus client (src/prometheus/client.ts) against the sandbox's real Prometheus:
// the ±Inf option, a base URL with a path prefix (a reverse proxy on 127.0.0.1 serves the real
// Prometheus under /prom/ only, as a shared ingress would), and errors as UNAVAILABLE (exit 5).

import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PrometheusClient, PromQueryError} from '../../../src/prometheus/client.js'
import {prometheusProvider} from '../../../src/rollout/analysis.js'
import {type PrefixProxy, startPrefixProxy} from '../helpers/prefix-proxy.js'
import {sandboxEnv} from '../../support/sandbox.js'

const upstream = sandboxEnv().prometheusUrl

describe('the Prometheus client against the sandbox Prometheus', () => {
  let proxy: PrefixProxy
  let prefixed: string
  const seen: {method: string; url: string}[] = []

  beforeAll(async () => {
    proxy = await startPrefixProxy(upstream, '/prom', (req) => seen.push(req))
    prefixed = proxy.base
  })
  afterAll(() => proxy.close())

  it('reads ±Inf as no data or as numbers, as the caller says; NaN and an empty vector are always no data', async () => {
    const noData = new PrometheusClient(upstream, {infinity: 'no-data'})
    const keep = new PrometheusClient(upstream, {infinity: 'keep'})
    for (const [expr, asNoData, asKept] of [
      ['vector(+Inf)', null, Infinity],
      ['vector(-Inf)', null, -Infinity],
      ['1/0', null, Infinity], // a scalar result
      ['vector(NaN)', null, null],
      ['vector(2.5)', 2.5, 2.5],
      ['absent(vector(1))', null, null], // empty vector
    ] as const) {
      expect(await noData.scalar(expr), `${expr} no-data`).toBe(asNoData)
      expect(await keep.scalar(expr), `${expr} keep`).toBe(asKept)
    }
    const end = Date.now()
    const [kept] = await keep.queryRange('vector(+Inf)', end - 60_000, end, 30)
    expect(kept.points.map(([, v]) => v)).toEqual([Infinity, Infinity, Infinity])
    const [dropped] = await noData.queryRange('vector(+Inf)', end - 60_000, end, 30)
    expect(dropped.points.map(([, v]) => v)).toEqual([null, null, null])
  })

  it('canary analysis keeps +Inf (a canary slower than the last bucket fails, it is not missing) and wants one series', async () => {
    const provider = prometheusProvider(upstream)
    expect(await provider.query('vector(+Inf)')).toBe(Infinity)
    await expect(
      provider.query('label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")'),
    ).rejects.toThrow(/returned 2 series/)
  })

  it('keeps a path prefix of the base URL for queries, range queries, readiness and build info', async () => {
    seen.length = 0
    for (const base of [prefixed, `${prefixed}/`]) {
      const client = new PrometheusClient(base, {infinity: 'no-data'})
      expect(await client.scalar('vector(42)')).toBe(42)
      expect((await client.queryRange('vector(1)', Date.now() - 30_000, Date.now(), 15)).length).toBe(1)
      expect(await client.readiness()).toBe(200)
      expect((await client.buildInfo()).version).toMatch(/^\d+\.\d+\.\d+/)
      expect(await prometheusProvider(base).query('vector(7)')).toBe(7)
    }
    expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual(
      Array.from({length: 2}, () => [
        'POST /prom/api/v1/query',
        'POST /prom/api/v1/query_range',
        'GET /prom/-/ready',
        'GET /prom/api/v1/status/buildinfo',
        'POST /prom/api/v1/query',
      ]).flat(),
    )
  })

  it('is UNAVAILABLE (exit 5) when Prometheus cannot be reached, answers outside its API, or rejects the query', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const {port} = s.address() as AddressInfo
        s.close(() => resolve(port))
      })
    })
    const unreachable = new PrometheusClient(`http://127.0.0.1:${closed}/prom`, {infinity: 'no-data'})
    await expect(unreachable.query('vector(1)')).rejects.toMatchObject({
      exit: 'UNAVAILABLE',
      exitCode: 5,
      message: expect.stringMatching(/Cannot reach Prometheus at http:\/\/127\.0\.0\.1:\d+\/prom \(ECONNREFUSED\)/),
    })
    await expect(unreachable.readiness()).rejects.toMatchObject({exitCode: 5})
    await expect(prometheusProvider(`http://127.0.0.1:${closed}`).query('vector(1)')).rejects.toMatchObject({
      exitCode: 5,
    })

    // The prefix left out: the proxy answers 404, which is not Prometheus' API.
    const noPrefix = new PrometheusClient(prefixed.replace(/\/prom$/, ''), {infinity: 'no-data'})
    await expect(noPrefix.query('vector(1)')).rejects.toMatchObject({
      exitCode: 5,
      message: expect.stringContaining('answered 404 to /api/v1/query'),
    })

    const bad = new PrometheusClient(upstream, {infinity: 'no-data'}).query('sum(rate(foo[5m]')
    await expect(bad).rejects.toBeInstanceOf(PromQueryError)
    await expect(bad).rejects.toMatchObject({
      exitCode: 5,
      query: 'sum(rate(foo[5m]',
      message: expect.stringContaining('bad_data'),
    })
  })

  it('stops at once when the caller aborts', async () => {
    const controller = new AbortController()
    const client = new PrometheusClient(upstream, {infinity: 'no-data', signal: controller.signal})
    controller.abort()
    await expect(client.query('vector(1)')).rejects.toMatchObject({name: 'AbortError'})
  })
})
