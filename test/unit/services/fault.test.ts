import {describe, expect, it} from 'vitest'
import {createFaultInjector} from '../../../services/lib/fault.ts'
import {createApp as createCatalog} from '../../../services/catalog/src/app.ts'
import {json, launch, sample} from './helpers.ts'

const noWait = async () => {}

describe('fault injector', () => {
  it('is inactive by default and costs nothing', async () => {
    const injector = createFaultInjector({errorRate: 0, latencyMs: 0, latencyJitterMs: 0}, () => 0)
    expect(injector.active).toBe(false)
    expect(await injector.apply()).toEqual({fail: false, delayMs: 0})
  })

  it('fails the share of requests the error rate says', async () => {
    let i = 0
    const sequence = [0.05, 0.5, 0.24, 0.99]
    const injector = createFaultInjector(
      {errorRate: 0.25, latencyMs: 0, latencyJitterMs: 0},
      () => sequence[i++],
      noWait,
    )
    const outcomes = []
    for (let n = 0; n < sequence.length; n++) outcomes.push((await injector.apply()).fail)
    expect(outcomes).toEqual([true, false, true, false])
  })

  it('an error rate of 1 fails everything, whatever the random draw', async () => {
    const injector = createFaultInjector({errorRate: 1, latencyMs: 0, latencyJitterMs: 0}, () => 0.999999, noWait)
    expect((await injector.apply()).fail).toBe(true)
  })

  it('adds the latency plus a jitter drawn from [0, jitter]', async () => {
    const waited: number[] = []
    const wait = async (ms: number) => void waited.push(ms)
    const low = createFaultInjector({errorRate: 0, latencyMs: 200, latencyJitterMs: 100}, () => 0, wait)
    const high = createFaultInjector({errorRate: 0, latencyMs: 200, latencyJitterMs: 100}, () => 1, wait)
    expect(await low.apply()).toEqual({fail: false, delayMs: 200})
    expect(await high.apply()).toEqual({fail: false, delayMs: 300})
    expect(waited).toEqual([200, 300])
  })
})

describe('fault injection in a service', () => {
  it('FAULT_ERROR_RATE=1 answers 500 on business routes only', async () => {
    const {url} = await launch(createCatalog, {FAULT_ERROR_RATE: '1'})
    for (const path of ['/products', '/products/SKU-1001', '/search?q=shoes']) {
      const answer = await json(`${url}${path}`)
      expect(answer.status).toBe(500)
      expect(answer.body.error).toBe('injected_fault')
    }
    expect((await json(`${url}/healthz`)).status).toBe(200)
    expect((await json(`${url}/readyz`)).status).toBe(200)
    const metrics = await json(`${url}/metrics`)
    expect(metrics.status).toBe(200)
    expect(sample(metrics.body, 'http_requests_total', {route: '/products/:id', code: '500'})).toBe(1)
  })

  it('FAULT_LATENCY_MS slows business routes but not probes', async () => {
    const {url} = await launch(createCatalog, {FAULT_LATENCY_MS: '300'})
    let started = performance.now()
    expect((await json(`${url}/products`)).status).toBe(200)
    expect(performance.now() - started).toBeGreaterThanOrEqual(295)
    started = performance.now()
    await json(`${url}/healthz`)
    await json(`${url}/metrics`)
    expect(performance.now() - started).toBeLessThan(250)
    const metrics = (await json(`${url}/metrics`)).body
    const labels = {route: '/products', code: '200'}
    expect(sample(metrics, 'http_request_duration_seconds_bucket', {...labels, le: '0.25'})).toBe(0)
    expect(sample(metrics, 'http_request_duration_seconds_bucket', {...labels, le: '0.5'})).toBe(1)
  })

  it('a share of errors shows in the metrics as that share of 500s', async () => {
    let n = 0
    // Deterministic draws: every fourth request fails.
    const {url} = await launch(createCatalog, {FAULT_ERROR_RATE: '0.25'}, {random: () => (n++ % 4 === 0 ? 0.1 : 0.9)})
    for (let i = 0; i < 20; i++) await json(`${url}/products`)
    const metrics = (await json(`${url}/metrics`)).body
    expect(sample(metrics, 'http_requests_total', {route: '/products', code: '500'})).toBe(5)
    expect(sample(metrics, 'http_requests_total', {route: '/products', code: '200'})).toBe(15)
  })
})
