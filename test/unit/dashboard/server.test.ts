import {describe, expect, it} from 'vitest'

import {cached, CONTENT_SECURITY_POLICY, dashboardApp, RolloutFeed} from '../../../src/dashboard/server.js'
import type {RolloutView} from '../../../src/dashboard/views.js'
import {providers, rollout} from './fixtures.js'

const TOKEN = 'tok_0123456789abcdefghijklmnopqrstuvwxyzABCDE'
const ORIGIN = 'http://127.0.0.1:8088'
const COOKIE = {cookie: `retailops_dashboard=${TOKEN}`}

function app(p = providers()) {
  return dashboardApp(p, {token: TOKEN, port: () => 8088, cacheMs: 60_000}).app
}

describe('dashboard routes', () => {
  it('refuses every request without the token, assets and API included', async () => {
    const a = app()
    for (const path of ['/', '/slo', '/api/rollouts', '/assets/dashboard.js', '/events/rollouts', '/nothing']) {
      const r = await a.request(`${ORIGIN}${path}`)
      expect(r.status, path).toBe(401)
      expect(await r.text()).toContain('access token')
    }
    expect((await a.request(`${ORIGIN}/`, {headers: {cookie: 'retailops_dashboard=wrong'}})).status).toBe(401)
  })

  it('takes the token once from the URL, sets the session cookie and drops it from the address', async () => {
    const r = await app().request(`${ORIGIN}/slo?token=${TOKEN}&wall=1`)
    expect(r.status).toBe(303)
    expect(r.headers.get('location')).toBe('/slo?wall=1')
    expect(r.headers.get('set-cookie')).toBe(`retailops_dashboard=${TOKEN}; Path=/; HttpOnly; SameSite=Strict`)
    const wrong = await app().request(`${ORIGIN}/slo?token=${TOKEN.slice(1)}`)
    expect(wrong.status).toBe(403)
    expect(wrong.headers.get('set-cookie')).toBeNull()
  })

  it('refuses a Host other than its own loopback address and port, even with the token', async () => {
    const a = app()
    expect((await a.request('http://attacker.example:8088/', {headers: COOKIE})).status).toBe(403)
    expect((await a.request('http://127.0.0.1:9999/', {headers: COOKIE})).status).toBe(403)
    expect((await a.request('http://localhost:8088/', {headers: COOKIE})).status).toBe(200)
  })

  it('serves every page with a policy that loads nothing from elsewhere', async () => {
    const a = app()
    for (const path of [
      '/',
      '/rollouts/checkout',
      '/slo',
      '/cost',
      '/prewarm',
      '/dr',
      '/services',
      '/services/checkout',
    ]) {
      const r = await a.request(`${ORIGIN}${path}`, {headers: COOKIE})
      expect(r.status, path).toBe(200)
      expect(r.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY)
      expect(r.headers.get('cache-control')).toBe('no-store')
      const body = await r.text()
      const external = [...body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((u) => !u.startsWith('/'))
      expect(external, path).toEqual([])
    }
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'")
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'")
  })

  it('serves uPlot from the installed package, and its own script and stylesheet', async () => {
    const a = app()
    const uplot = await a.request(`${ORIGIN}/assets/uPlot.iife.min.js`, {headers: COOKIE})
    expect(uplot.status).toBe(200)
    expect(uplot.headers.get('content-type')).toContain('text/javascript')
    expect(await uplot.text()).toContain('uPlot')
    expect(
      (await a.request(`${ORIGIN}/assets/uPlot.min.css`, {headers: COOKIE})).headers.get('content-type'),
    ).toContain('text/css')
    expect(await (await a.request(`${ORIGIN}/assets/dashboard.js`, {headers: COOKIE})).text()).toContain('EventSource')
    expect((await a.request(`${ORIGIN}/assets/..%2Fpackage.json`, {headers: COOKIE})).status).toBe(404)
  })

  it('answers the data as JSON, and a provider failure as 502 with its first line', async () => {
    const ok = await app().request(`${ORIGIN}/api/cost`, {headers: COOKIE})
    expect(await ok.json()).toMatchObject({currency: 'USD', potentialMonthlySaving: 123.45})
    const down = await app(providers({fail: 'slo'})).request(`${ORIGIN}/api/slo`, {headers: COOKIE})
    expect(down.status).toBe(502)
    expect(await down.json()).toEqual({error: 'slo is unreachable: connect ECONNREFUSED 127.0.0.1:9090'})
  })

  it('shows one unreachable system on its section and the rest of the page', async () => {
    const r = await app(providers({fail: 'slo'})).request(`${ORIGIN}/services/checkout`, {headers: COOKIE})
    expect(r.status).toBe(200)
    const body = await r.text()
    expect(body).toContain('SLOs could not be read:</b> slo is unreachable')
    expect(body).toContain('data-cost="checkout"')
    expect(body).toContain('data-drill="20261201-101500-0a1b"')
  })

  it('has a page for the configured services and those with a rollout, and 404 for others', async () => {
    const p = providers({rollouts: () => [rollout({service: 'legacy-search'})]})
    const a = app(p)
    expect((await a.request(`${ORIGIN}/services/legacy-search`, {headers: COOKIE})).status).toBe(200)
    expect((await a.request(`${ORIGIN}/services/catalog`, {headers: COOKIE})).status).toBe(200)
    const missing = await a.request(`${ORIGIN}/services/nope`, {headers: COOKIE})
    expect(missing.status).toBe(404)
    expect(await missing.text()).toContain('No service nope')
    const list = await (await a.request(`${ORIGIN}/services`, {headers: COOKIE})).text()
    expect(list.indexOf('/services/catalog')).toBeLessThan(list.indexOf('/services/checkout'))
    expect(list).toContain('/services/legacy-search')
  })

  it('reuses slow data for the cache time and reads rollouts again on each page', async () => {
    const p = providers()
    const a = app(p)
    await a.request(`${ORIGIN}/slo`, {headers: COOKIE})
    await a.request(`${ORIGIN}/slo`, {headers: COOKIE})
    expect(p.calls.slo).toBe(1)
  })

  it('streams the live rollouts part as server-sent events', async () => {
    const r = await app().request(`${ORIGIN}/events/rollouts?service=checkout`, {headers: COOKIE})
    expect(r.headers.get('content-type')).toContain('text/event-stream')
    const reader = r.body!.getReader()
    const {value} = await reader.read()
    const text = new TextDecoder().decode(value)
    expect(text.startsWith('event: update\ndata: ')).toBe(true)
    expect(text).toContain('data-service="checkout"')
    expect(text).toContain('data-weight="20"')
    await reader.cancel()
  })
})

describe('cached', () => {
  it('reuses an answer, or a failure, until it is older than the time to live', async () => {
    let now = 0
    let n = 0
    const read = cached(
      async () => {
        n += 1
        if (n === 2) throw new Error('down\nstack')
        return n
      },
      1000,
      () => now,
    )
    expect(await read()).toEqual({ok: true, value: 1})
    now = 999
    expect(await read()).toEqual({ok: true, value: 1})
    now = 1000
    expect(await read()).toEqual({ok: false, error: 'down'})
    now = 1500
    expect(await read()).toEqual({ok: false, error: 'down'})
    now = 2000
    expect(await read()).toEqual({ok: true, value: 3})
  })
})

describe('RolloutFeed', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  it('reads while someone listens, tells every listener, and stops with the last one', async () => {
    let weight = 0
    const feed = new RolloutFeed(async () => ({ok: true, value: [rollout({weight: (weight += 10)})]}), 10)
    const seen: number[] = []
    const other: number[] = []
    const stopA = feed.subscribe((r) => r.ok && seen.push(r.value[0].weight))
    const stopB = feed.subscribe((r) => r.ok && other.push(r.value[0].weight))
    for (let i = 0; i < 500 && (seen.length < 2 || other.length < 2); i++) await sleep(10)
    stopA()
    expect(feed.size).toBe(1)
    stopB()
    expect(feed.size).toBe(0)
    expect(seen.length).toBeGreaterThanOrEqual(2)
    expect(seen).toEqual([...seen].sort((a, b) => a - b))
    expect(other.slice(0, seen.length)).toEqual(seen)
    // Nobody listens: no more reads.
    const reads = weight
    await sleep(100)
    expect(weight).toBe(reads)
    const current = (await feed.current()) as {ok: true; value: RolloutView[]}
    expect(current.value[0].weight).toBe(reads)
  })
})
