// `slo` against the sandbox's real Prometheus. Live series come from the bundled services, run as
// real processes on 127.0.0.1 (faults injected by their FAULT_* variables), scraped through a
// file-SD target file; long windows come from recorded series backfilled with promtool. Every
// series carries retailops_test=<run> so the SLIs see only this run, and cleanup deletes them.
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadConfig, type LoadedConfig} from '../../../src/config/load.js'
import {generateRules, renderRulesYaml} from '../../../src/slo/rules.js'
import {errorBudgetStatus, type SloReport, sloStatus} from '../../../src/slo/status.js'
import {cli, randomName, type ServiceProc, startService} from '../capacity/helpers.js'
import {
  backfill,
  counter,
  deleteSeries,
  instant,
  PROMETHEUS,
  registerTargets,
  reload,
  rulesDir,
  SD_DIR,
  scalar,
  waitFor,
  waitForScrapes,
  waitForTargets,
} from './prometheus.js'
import {testContext} from '../../support/context.js'

const RUN = randomName('t-slo')
const H = 3_600_000
const D = 24 * H

const yaml = `
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}}
environments:
  test: {cluster: main, namespace: ${RUN}, prometheus: ${PROMETHEUS}}
services:
  catalog:
    tier: operational
    slos:
      - {name: healthy-availability, objective: 99, window: 28d, sli: {type: availability, labels: {retailops_test: ${RUN}, slo_case: healthy}}}
      - {name: healthy-latency, objective: 95, window: 28d, sli: {type: latency, thresholdMs: 300, labels: {retailops_test: ${RUN}, slo_case: healthy}}}
      - {name: failing-availability, objective: 99, window: 28d, sli: {type: availability, labels: {retailops_test: ${RUN}, slo_case: failing}}}
      - {name: slow-latency, objective: 99, window: 28d, sli: {type: latency, thresholdMs: 300, labels: {retailops_test: ${RUN}, slo_case: slow}}}
      - {name: burning-availability, objective: 99, window: 28d, sli: {type: availability, labels: {retailops_test: ${RUN}, slo_case: burning}}}
      - {name: ticket-availability, objective: 99.9, window: 28d, sli: {type: availability, labels: {retailops_test: ${RUN}, slo_case: ticket}}}
      - {name: missing, objective: 99, window: 28d, sli: {type: availability, labels: {retailops_test: ${RUN}, slo_case: nothing}}}
  checkout:
    tier: revenue-critical
    slos:
      - {name: availability, objective: 99, window: 28d, sli: {type: availability, labels: {retailops_test: ${RUN}}}}
      - name: checkout-success
        objective: 80
        window: 28d
        sli:
          type: ratio
          good: 'sum(rate(checkout_success_total{retailops_test="${RUN}"}[{{window}}]))'
          total: 'sum(rate(checkout_attempts_total{retailops_test="${RUN}"}[{{window}}]))'
`

interface Counts {
  total: number
  byStatus: Record<number, number>
}

/** Sends requests for a while (bounded in time and count) and counts the answers by status. */
async function drive(
  send: (i: number) => Promise<number>,
  {ms, concurrency, max}: {ms: number; concurrency: number; max: number},
): Promise<Counts> {
  const counts: Counts = {total: 0, byStatus: {}}
  const end = Date.now() + ms
  let i = 0
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (Date.now() < end && i < max) {
        const status = await send(i++)
        counts.total += 1
        counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1
      }
    }),
  )
  return counts
}

const get = (url: string) => () => fetch(url).then(async (r) => (await r.arrayBuffer(), r.status))
const errors5xx = (c: Counts) => Object.entries(c.byStatus).reduce((s, [k, n]) => s + (Number(k) >= 500 ? n : 0), 0)

describe('slo against the sandbox Prometheus', () => {
  let project: LoadedConfig
  let dir: string
  const procs: ServiceProc[] = []
  let unregister: (() => Promise<void>) | undefined
  let rulesFile: string | undefined
  const load: Record<string, Counts> = {}
  let report: SloReport

  beforeAll(async () => {
    if (!SD_DIR) throw new Error('The sandbox environment is not loaded: eval "$(bash scripts/sandbox.sh env)"')
    dir = await mkdtemp(path.join(os.tmpdir(), 't-slo-'))
    await writeFile(path.join(dir, 'retailops.yaml'), yaml)
    project = await loadConfig(path.join(dir, 'retailops.yaml'))

    // Recorded history, written while the services start.
    const now = Date.now()
    const base = {
      service: 'catalog',
      method: 'GET',
      route: '/products',
      retailops_test: RUN,
      instance: 'recorded',
      job: 'recorded',
    }
    const backfilled = backfill([
      // burning: six clean days up to 65 minutes ago; the live errors are all the last hour sees.
      counter(
        'http_requests_total',
        {...base, slo_case: 'burning', code: '200'},
        now - 6 * D,
        now - 65 * 60_000,
        60_000,
        () => 20,
      ),
      // ticket: 3.5 clean days, then 3 days at 1.2x the budget (0.12 % errors on a 99.9 % SLO).
      counter(
        'http_requests_total',
        {...base, slo_case: 'ticket', code: '200'},
        now - 6.5 * D,
        now - 60_000,
        60_000,
        (t) => (t < now - 3 * D ? 20 : 10 * (1 - 0.0012)),
      ),
      counter(
        'http_requests_total',
        {...base, slo_case: 'ticket', code: '500'},
        now - 3 * D,
        now - 60_000,
        60_000,
        () => 10 * 0.0012,
      ),
    ])

    const [healthy, failing, slow, burning, inventory, payments, orders] = await Promise.all([
      startService('catalog', {APP_VERSION: RUN}),
      startService('catalog', {APP_VERSION: RUN, FAULT_ERROR_RATE: '0.3'}),
      startService('catalog', {APP_VERSION: RUN, FAULT_LATENCY_MS: '400'}),
      startService('catalog', {APP_VERSION: RUN, FAULT_ERROR_RATE: '0.3'}),
      startService('inventory', {APP_VERSION: RUN}),
      startService('payments', {APP_VERSION: RUN}),
      startService('orders', {APP_VERSION: RUN}),
    ])
    const checkout = await startService('checkout', {
      APP_VERSION: RUN,
      INVENTORY_URL: inventory.url,
      PAYMENTS_URL: payments.url,
      ORDERS_URL: orders.url,
    })
    procs.push(healthy, failing, slow, burning, inventory, payments, orders, checkout)
    const host = (p: ServiceProc) => new URL(p.url).host
    unregister = await registerTargets(RUN, [
      {targets: [host(healthy)], labels: {retailops_test: RUN, slo_case: 'healthy'}},
      {targets: [host(failing)], labels: {retailops_test: RUN, slo_case: 'failing'}},
      {targets: [host(slow)], labels: {retailops_test: RUN, slo_case: 'slow'}},
      {targets: [host(burning)], labels: {retailops_test: RUN, slo_case: 'burning'}},
      {
        targets: [host(checkout), host(inventory), host(payments), host(orders)],
        labels: {retailops_test: RUN, slo_case: 'business'},
      },
    ])
    await waitForTargets('retailops_test', RUN, 8)

    // Load: ~40 s on each, bounded in count too.
    const opts = {ms: 40_000, concurrency: 4, max: 4000}
    let key = 0
    const shopper = async (i: number) => {
      const r = await fetch(`${checkout.url}/checkout`, {
        method: 'POST',
        headers: {'content-type': 'application/json', 'idempotency-key': `${RUN}-${key++}`},
        // One checkout in ten is declined: the business SLI sees about 90 % success.
        body: JSON.stringify({
          customerId: 'cust-slo',
          paymentToken: i % 10 === 9 ? 'tok_decline' : 'tok_visa',
          items: [{sku: 'SKU-1001', quantity: 1}],
        }),
      })
      await r.arrayBuffer()
      return r.status
    }
    // Warm-up: a counter series only exists from its first request, and Prometheus cannot know a
    // first sample was preceded by 0; once each series has been scraped, rate() counts every
    // request the load makes.
    const warm = {ms: 3000, concurrency: 2, max: 20}
    await Promise.all([healthy, failing, slow, burning].map((p) => drive(get(`${p.url}/products`), warm)))
    await drive(shopper, {...warm, max: 10})
    await waitForScrapes('retailops_test', RUN, Date.now())
    const [h, f, s, b, c] = await Promise.all([
      drive(get(`${healthy.url}/products`), opts),
      drive(get(`${failing.url}/products`), opts),
      drive(get(`${slow.url}/products`), {...opts, concurrency: 8}),
      drive(get(`${burning.url}/products`), opts),
      drive(shopper, {...opts, concurrency: 2, max: 400}),
    ])
    Object.assign(load, {healthy: h, failing: f, slow: s, burning: b, business: c})
    // Two more scrapes so Prometheus holds the final counts.
    await waitForScrapes('retailops_test', RUN, Date.now(), 2)
    await backfilled
    await waitFor(
      'the recorded series to load',
      async () =>
        (await scalar(`sum(rate(http_requests_total{retailops_test="${RUN}",slo_case="ticket"}[3d]))`)) ?? undefined,
      150_000,
      2000,
    )
    report = await sloStatus({config: project.config, prometheusUrl: PROMETHEUS, history: true}, testContext())
  })

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    await unregister?.()
    if (rulesFile) {
      await rm(rulesFile, {force: true})
      await reload().catch(() => undefined)
    }
    await deleteSeries(`{retailops_test="${RUN}"}`).catch(() => undefined)
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  const slo = (service: string, name: string) => report.slos.find((s) => s.service === service && s.slo === name)!

  it('a healthy service meets its SLOs: ok, with a real 100 % availability', () => {
    const a = slo('catalog', 'healthy-availability')
    expect(load.healthy.total).toBeGreaterThan(100)
    expect(errors5xx(load.healthy)).toBe(0)
    expect(a.status).toBe('ok')
    expect(a.errorRatio).toBe(0)
    expect(a.sli).toBe(100)
    // Every request of the load and the 20 of the warm-up, give or take rate()'s extrapolation to the
    // window's edges (at most half a scrape interval each side, on ~a minute of samples).
    expect(a.events!).toBeGreaterThan(load.healthy.total * 0.95)
    expect(a.events!).toBeLessThan((load.healthy.total + 20) * 1.12)
    const l = slo('catalog', 'healthy-latency')
    expect(l.status).toBe('ok')
    expect(l.errorRatio!).toBeLessThan(0.05)
  })

  it('30 % errors: the SLI matches the answers the load saw, and the budget is exhausted', () => {
    const f = slo('catalog', 'failing-availability')
    const seen = errors5xx(load.failing) / load.failing.total
    expect(seen).toBeGreaterThan(0.2)
    // The warm-up's few requests and rate()'s per-series extrapolation keep them a little apart.
    expect(Math.abs(f.errorRatio! - seen)).toBeLessThan(0.03)
    expect(f.burnRates.find((b) => b.window === '5m')!.burnRate!).toBeCloseTo(
      f.burnRates.find((b) => b.window === '5m')!.errorRatio! / 0.01,
      6,
    )
    expect(f.budgetRemaining!).toBeLessThan(0)
    expect(f.status).toBe('exhausted')
  })

  it('400 ms of injected latency fails a 300 ms latency SLO', () => {
    const s = slo('catalog', 'slow-latency')
    expect(s.errorRatio!).toBeGreaterThan(0.95)
    expect(s.status).toBe('exhausted')
  })

  it('a fresh burn on a long clean history pages, with most of the budget left', () => {
    const b = slo('catalog', 'burning-availability')
    const oneHour = b.burnRates.find((w) => w.window === '1h')!
    const fiveMin = b.burnRates.find((w) => w.window === '5m')!
    expect(oneHour.burnRate!).toBeGreaterThan(13.44)
    expect(fiveMin.burnRate!).toBeGreaterThan(13.44)
    expect(b.alerts.find((a) => a.id === 'page-quick')!.active).toBe(true)
    // Six days at 20 req/s dwarf 40 s of errors.
    expect(b.budgetRemaining!).toBeGreaterThan(0.9)
    expect(b.events!).toBeGreaterThan(6 * 86_400 * 20 * 0.95)
    expect(b.status).toBe('page')
    expect(b.timeToExhaustion).toMatch(/\d/)
  })

  it('a slow burn over three days is a ticket (recorded series), with the budget maths of the recording', () => {
    const t = slo('catalog', 'ticket-availability')
    expect(t.burnRates.find((w) => w.window === '3d')!.burnRate!).toBeCloseTo(1.2, 1)
    expect(t.burnRates.find((w) => w.window === '6h')!.burnRate!).toBeCloseTo(1.2, 1)
    expect(t.alerts.find((a) => a.id === 'ticket-slow')!.active).toBe(true)
    expect(t.alerts.filter((a) => a.severity === 'page').every((a) => a.active === false)).toBe(true)
    // 3 days at 10 req/s with 0.12 % errors over 3.5 days at 20 req/s and those 3 days: 0.036 % errors.
    expect(t.errorRatio!).toBeGreaterThan(0.00036 * 0.9)
    expect(t.errorRatio!).toBeLessThan(0.00036 * 1.1)
    expect(t.budgetRemaining!).toBeCloseTo(0.64, 1)
    expect(t.status).toBe('ticket')
  })

  it('an SLO without series is no-data, never 100 %', () => {
    const m = slo('catalog', 'missing')
    expect(m.status).toBe('no-data')
    expect(m.sli).toBeNull()
    expect(m.budgetRemaining).toBeNull()
    expect(m.missing.join()).toMatch(/no request series/)
    expect(report.gate.missing).toContainEqual({service: 'catalog', slo: 'missing'})
  })

  it('the business SLI is checkouts that succeeded over checkouts attempted', () => {
    const b = slo('checkout', 'checkout-success')
    const seen = (load.business.byStatus[201] ?? 0) / load.business.total
    expect(load.business.total).toBeGreaterThan(50)
    expect(seen).toBeLessThan(0.95)
    expect(Math.abs(b.sli! / 100 - seen)).toBeLessThan(0.03)
    expect(b.status).toBe('ok')
    // Declines are 4xx: checkout's own availability is untouched.
    expect(slo('checkout', 'availability').status).toBe('ok')
  })

  it('the release gate: catalog is blocked, checkout may release (errorBudgetStatus for rollouts)', async () => {
    expect(report.gate.pass).toBe(false)
    expect(report.gate.blocking.map((b) => b.slo).sort()).toEqual([
      'burning-availability',
      'failing-availability',
      'slow-latency',
    ])
    const catalog = await errorBudgetStatus('catalog', {config: project.config, prometheusUrl: PROMETHEUS})
    expect(catalog.ok).toBe(false)
    expect(catalog.reasons.join('\n')).toMatch(/failing-availability: error budget exhausted/)
    expect(catalog.reasons.join('\n')).toMatch(/burning-availability: page-level burn \(1h\/5m over 13.44×\)/)
    const checkout = await errorBudgetStatus('checkout', {config: project.config, prometheusUrl: PROMETHEUS})
    expect(checkout.ok).toBe(true)
    expect(checkout.reasons).toEqual([])
  })

  it('the CLI: --gate exits 50 (SLO_GATE) with the report in --json, 0 for a service that may release; --html writes a report', async () => {
    const html = path.join(dir, 'slo.html')
    // The recorded series carry retailops_test, not the environment's namespace label.
    const gated = await cli(['slo', '--gate', '--all-namespaces', '--html', html], dir)
    expect(gated.exitCode, `${gated.stderr}\n${gated.stdout.slice(0, 3000)}`).toBe(50)
    expect(gated.doc!.status).toBe(50)
    expect(gated.doc!.result.counts).toMatchObject({ok: 4, ticket: 1, page: 1, exhausted: 2, 'no-data': 1})
    const page = await readFile(html, 'utf8')
    expect(page).toContain('Burn timeline')
    expect(page.match(/<svg /g)!.length).toBeGreaterThan(5)
    await writeFile(path.join(os.tmpdir(), 'retailops-slo-report.html'), page)
    const ok = await cli(['slo', 'checkout', '--gate', '--all-namespaces'], dir)
    expect(ok.exitCode, ok.stderr).toBe(0)
    expect(ok.doc!.result.gate.pass).toBe(true)
  })

  it('the generated rules load into Prometheus, record the same error ratios and fire the page alert', async () => {
    const result = generateRules({config: project.config, services: ['catalog'], labels: {retailops_test: RUN}})
    const file = path.join(await rulesDir(), `${RUN}.yml`)
    await writeFile(file, await renderRulesYaml(result))
    rulesFile = file
    const check = await execa('/usr/bin/promtool', ['check', 'rules', file], {reject: false})
    expect(check.exitCode, check.stdout + check.stderr).toBe(0)
    await reload()
    const recorded = await waitFor(
      'the SLI recording rule',
      async () =>
        (await scalar(`slo:sli_error:ratio_rate1h{sloth_id="catalog-burning-availability",retailops_test="${RUN}"}`)) ??
        undefined,
      60_000,
    )
    const ours = slo('catalog', 'burning-availability').burnRates.find((w) => w.window === '1h')!.errorRatio!
    expect(Math.abs(recorded - ours)).toBeLessThan(0.05)
    const alerts = await waitFor(
      'the page alert',
      async () => {
        const a = await instant(`ALERTS{alertname="CatalogBurningAvailabilitySLOBurnRate",retailops_test="${RUN}"}`)
        return a.length ? a : undefined
      },
      60_000,
    )
    expect(alerts.map((a) => a.metric.sloth_severity)).toContain('page')
    expect(alerts[0].metric).toMatchObject({
      sloth_id: 'catalog-burning-availability',
      sloth_service: 'catalog',
      sloth_slo: 'burning-availability',
    })
    // Every group evaluates on its own 5 s tick: wait for all the SLOs' info series.
    await waitFor(
      'sloth_slo_info of every SLO',
      async () => (await instant(`sloth_slo_info{retailops_test="${RUN}"}`)).length === result.slos.length,
      30_000,
    )
  })
}, 600_000)
