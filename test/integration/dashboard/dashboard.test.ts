// `retailops dashboard` in a real browser: Debian's chromium, headless, driven by playwright-core
// (no browser download), against the dashboard the real CLI serves from a project on the sandbox.
// A canary started from the CLI appears, its weight changes on screen as it progresses and an abort
// shows its reason, without a reload; the SLO page shows the budget `retailops slo --json` prints
// (recorded series backfilled into the sandbox's Prometheus); every page loads nothing but the
// dashboard's own URLs; screenshots of each page go to test/artifacts/dashboard/.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import path from 'node:path'

import {chromium, type Browser, type Page} from 'playwright-core'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ROOT} from '../../support/paths.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {startCli, type BackgroundCli} from '../../support/cli.js'
import {randomName} from '../../support/names.js'
import {RolloutProject, routeWeights} from '../rollout/helpers.js'
import {backfill, counter, deleteSeries, instant, waitFor} from '../slo/prometheus.js'

const ARTIFACTS = path.join(ROOT, 'test', 'artifacts', 'dashboard')
const RUN = randomName('t-dash')
const DAY = 86_400_000
const REASON = 'dashboard test: checkout latency'

const SLO = {
  name: 'checkout-success',
  objective: 99,
  window: '7d',
  sli: {
    type: 'ratio',
    good: `sum(rate(dashboard_checkout_success_total{retailops_test="${RUN}"}[{{window}}]))`,
    total: `sum(rate(dashboard_checkout_attempts_total{retailops_test="${RUN}"}[{{window}}]))`,
  },
}

describe('retailops dashboard in headless Chromium', () => {
  const p = new RolloutProject(
    {
      catalog: {
        tier: 'operational',
        scaling: {minReplicas: 2, maxReplicas: 2},
        slos: [SLO],
        rollout: {
          progressDeadline: '90s',
          analysis: {
            interval: '1s',
            count: 2,
            missingData: 'fail',
            metrics: [{name: 'error-rate', query: 'vector(0.004)', successCondition: 'result < 0.05'}],
          },
        },
      },
    },
    {
      campaigns: [
        {
          name: 'black-friday',
          start: new Date(Date.now() + 20 * DAY).toISOString().replace(/\.\d+Z$/, 'Z'),
          end: new Date(Date.now() + 21 * DAY).toISOString().replace(/\.\d+Z$/, 'Z'),
          peak: {catalog: {rps: 200}},
        },
      ],
    },
  )
  let cli: BackgroundCli
  let url: URL
  let origin: string
  let browser: Browser
  let page: Page
  /** Every URL any page asked for: nothing may come from elsewhere. */
  const requested: string[] = []

  const shot = async (target: Page, name: string) => {
    await target.screenshot({path: path.join(ARTIFACTS, `${name}.png`), fullPage: true})
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, {recursive: true})
    // A drill record as `dr drill` leaves it in the project (the dashboard reads it through `dr history`'s engine).
    const drillId = '20261201-101500-0a1b'
    const drillDir = path.join(p.dir, '.retailops', 'drills', drillId)
    mkdirSync(drillDir, {recursive: true})
    writeFileSync(path.join(drillDir, 'drill.json'), JSON.stringify(drillRecord(drillId, drillDir)))

    // Seven days of checkouts, 0.4 % failed (99 % objective: 60 % of the budget left), ending in the past.
    const now = Date.now()
    const labels = {retailops_test: RUN, service: 'catalog', instance: 'recorded', job: 'recorded'}
    const recorded = backfill([
      counter('dashboard_checkout_attempts_total', labels, now - 6 * DAY, now - 2 * 60_000, 60_000, () => 10),
      counter('dashboard_checkout_success_total', labels, now - 6 * DAY, now - 2 * 60_000, 60_000, () => 10 * 0.996),
    ])

    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json)).toBe(0)
    await p.gatewayRoute('catalog')
    await recorded

    cli = startCli(['dashboard', '--json'], {cwd: p.dir})
    const line = await firstLine(cli)
    const started = JSON.parse(line) as {url: string; host: string; port: number}
    expect(started.host).toBe('127.0.0.1')
    url = new URL(started.url)
    origin = url.origin
    expect(url.searchParams.get('token')).toMatch(/^[\w-]{43}$/)

    browser = await chromium.launch({executablePath: sandboxEnv().chromium, headless: true, args: ['--no-sandbox']})
    const context = await browser.newContext({viewport: {width: 1366, height: 900}})
    context.on('request', (r) => void requested.push(r.url()))
    page = await context.newPage()
  }, 150_000)

  afterAll(async () => {
    await browser?.close()
    if (cli?.exitCode === null) cli.kill('SIGKILL')
    await deleteSeries(`{retailops_test="${RUN}"}`).catch(() => undefined)
    await p.cleanup()
  })

  it('refuses requests without the token or with a wrong one, and answers only on 127.0.0.1', async () => {
    expect((await fetch(origin)).status).toBe(401)
    expect((await fetch(`${origin}/api/rollouts`)).status).toBe(401)
    expect((await fetch(`${origin}/assets/dashboard.js`)).status).toBe(401)
    expect((await fetch(`${origin}/?token=${'x'.repeat(43)}`, {redirect: 'manual'})).status).toBe(403)
    // The token with its last character changed (to another one: a token may already end in A).
    const token = url.searchParams.get('token')!
    const cookie = `retailops_dashboard=${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`
    expect((await fetch(`${origin}/api/rollouts`, {headers: {cookie}})).status).toBe(401)
    // A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) is refused even with the token.
    expect(await statusWithHost(url, 'attacker.example')).toBe(403)
    // The listening socket, as the kernel lists it: 127.0.0.1 only, no IPv6 or wildcard address.
    expect(listeningAddresses(url.port)).toEqual(['127.0.0.1'])
  })

  it('shows a canary started from the CLI, its weight changing as it progresses, and the reason of its abort', async () => {
    await page.goto(url.href)
    // The token leaves the address bar: the cookie carries it.
    expect(page.url()).toBe(`${origin}/`)
    await page.locator('#live').waitFor()
    await page.evaluate('window.marker = 42')

    const deploying = p.deploy(['catalog'], 'v2', ['--canary', '--steps', '20,analysis,50,pause'])
    const card = page.locator('article.rollout[data-service="catalog"]')
    await card.locator('.weight-value', {hasText: /^20%$/}).waitFor({timeout: 60_000})
    await expect(card.locator('.versions').textContent()).resolves.toContain('v1 → v2')
    await shot(page, 'rollouts-20')
    await card.locator('.weight-value', {hasText: /^50%$/}).waitFor({timeout: 60_000})
    await page.locator('article.rollout[data-service="catalog"][data-phase="Paused"]').waitFor({timeout: 30_000})
    const paused = await deploying
    expect(paused.exitCode, JSON.stringify(paused.json.error)).toBe(21)
    // What the page shows is what the cluster holds: the route sends 50 % to the canary.
    expect(routeWeights(await p.route('catalog'))).toEqual({'catalog-stable': 50, 'catalog-canary': 50})
    await expect(card.locator('.weight').getAttribute('data-weight')).resolves.toBe('50')
    await expect(card.locator('li.step.current').textContent()).resolves.toBe('pause')
    await shot(page, 'rollouts')

    // The rollout's page: every measurement against its condition.
    const detail = await page.context().newPage()
    await detail.goto(`${origin}/rollouts/catalog`)
    await expect(detail.locator('table').first().textContent()).resolves.toContain('result < 0.05')
    const measured = detail.locator('section.analysis-run tbody tr')
    await expect(measured.count()).resolves.toBe(2)
    await expect(measured.first().textContent()).resolves.toMatch(/0\.004[\s\S]*Successful/)
    await shot(detail, 'rollout')

    const aborted = await p.cli(['rollout', 'abort', 'catalog', '--reason', REASON])
    expect(aborted.exitCode, aborted.stderr).toBe(0)
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Aborted')
    expect(state.reason).toContain(REASON)
    // Live: within 2 s of the change, with no reload (the marker set on this page is still there).
    const changed = Date.now()
    await page.locator('article.rollout[data-service="catalog"][data-phase="Aborted"] .reason').waitFor({timeout: 2000})
    const latencyMs = Date.now() - changed
    await expect(card.locator('.reason').textContent()).resolves.toBe(`Reason: ${state.reason}`)
    await expect(page.evaluate('window.marker')).resolves.toBe(42)
    expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
    await expect(card.locator('.weight').getAttribute('data-weight')).resolves.toBe('0')
    await shot(page, 'rollouts-aborted')
    await detail.reload()
    await expect(detail.locator('table.history').textContent()).resolves.toContain(REASON)
    await detail.close()
    console.info(`dashboard: the abort showed ${latencyMs} ms after \`rollout abort\` returned`)
  })

  it('shows the error budget `retailops slo --json` reports, with its burn-rate chart', async () => {
    // Prometheus loads backfilled blocks at its next block reload (once a minute).
    await waitFor(
      'the backfilled checkouts in Prometheus',
      async () =>
        (await instant(`count_over_time(dashboard_checkout_attempts_total{retailops_test="${RUN}"}[7d])`)).length > 0,
      90_000,
    )
    const slo = await p.cli(['slo'])
    expect(slo.exitCode, slo.stderr).toBe(0)
    const expected = slo.json.result.slos.find((s: {id: string}) => s.id === 'catalog-checkout-success')
    expect(expected.budgetRemaining).toBeCloseTo(0.6, 2)

    await page.goto(`${origin}/slo`)
    const row = page.locator('tr[data-slo="catalog-checkout-success"]')
    await expect(row.locator('.budget-value').textContent()).resolves.toBe(
      `${(expected.budgetRemaining * 100).toFixed(1)}%`,
    )
    expect(Number(await row.getAttribute('data-budget'))).toBeCloseTo(expected.budgetRemaining, 6)
    await expect(row.textContent()).resolves.toContain(expected.status)
    await page.locator('.uplot-chart canvas').first().waitFor()
    await shot(page, 'slo')
  })

  it('shows cost, pre-warm, DR drills and a service page, loading nothing from elsewhere', async () => {
    await page.goto(`${origin}/cost`)
    await expect(page.locator('tr[data-cost="catalog"]').count()).resolves.toBeGreaterThan(0)
    await expect(page.locator('h2', {hasText: 'Findings and savings'}).count()).resolves.toBe(1)
    await shot(page, 'cost')

    await page.goto(`${origin}/prewarm`)
    const campaign = page.locator('section.campaign[data-campaign="black-friday"]')
    await expect(campaign.textContent()).resolves.toMatch(/upcoming[\s\S]*not pre-warmed/)
    // The Deployment the deploy made (no HPA: min = max), read back: its replicas now, all Ready.
    await expect(campaign.locator('tbody tr').first().innerText()).resolves.toBe(
      'catalog\t200 rps\tDeployment catalog\t2\t–\t–\t2 / 2',
    )
    await shot(page, 'prewarm')

    await page.goto(`${origin}/dr`)
    const drill = page.locator('tr[data-drill="20261201-101500-0a1b"]')
    await expect(drill.textContent()).resolves.toMatch(/passed[\s\S]*95s\s+\/ 15\.0m[\s\S]*40s\s+\/ 5\.0m/)
    await shot(page, 'dr')

    await page.goto(`${origin}/services/catalog`)
    for (const section of ['Rollout', 'SLOs', 'Cost', 'Pre-warm', 'DR drills'])
      await expect(page.locator('h2', {hasText: section}).count()).resolves.toBe(1)
    await expect(page.locator('tr[data-slo="catalog-checkout-success"]').count()).resolves.toBe(1)
    await expect(page.locator('tr[data-drill="20261201-101500-0a1b"]').count()).resolves.toBe(1)
    await page.locator('article.rollout a', {hasText: 'catalog'}).click()
    expect(page.url()).toBe(`${origin}/rollouts/catalog`)
    await page.goto(`${origin}/services/catalog`)
    await shot(page, 'service')

    // Wall display: large type from the toggle, kept across pages.
    await page.locator('#wall-toggle').click()
    await page.goto(`${origin}/?wall=1`)
    await expect(page.evaluate("document.body.classList.contains('wall')")).resolves.toBe(true)
    await page.setViewportSize({width: 1920, height: 1080})
    await shot(page, 'rollouts-wall')

    const foreign = requested.filter((u) => !u.startsWith(`${origin}/`))
    expect(foreign).toEqual([])
    expect(requested.some((u) => u.endsWith('/assets/uPlot.iife.min.js'))).toBe(true)
  })

  it('stops cleanly on Ctrl-C', async () => {
    cli.kill('SIGINT')
    const done = await cli
    expect(done.exitCode).toBe(0)
    const envelope = JSON.parse(done.stdout.slice(done.stdout.indexOf('\n') + 1))
    expect(envelope).toMatchObject({status: 0, result: {host: '127.0.0.1', port: Number(url.port)}})
    await expect(fetch(origin)).rejects.toThrow()
  })
})

/** The first line the CLI prints on stdout (the dashboard's URL under --json). */
function firstLine(child: BackgroundCli): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      const end = text.indexOf('\n')
      if (end >= 0) resolve(text.slice(0, end))
    })
    child.catch((error: unknown) => reject(error instanceof Error ? error : new Error(String(error))))
    void child.then((r) => reject(new Error(`dashboard exited ${r.exitCode} before printing its URL: ${r.stderr}`)))
  })
}

/** GET with the token and a Host header fetch() would not let a test set. */
function statusWithHost(target: URL, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {host: '127.0.0.1', port: Number(target.port), path: `/${target.search}`, headers: {host}},
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      },
    )
    req.on('error', reject)
  })
}

/** The local addresses sockets listen on for this port, from /proc/net/tcp and tcp6. */
function listeningAddresses(port: string): string[] {
  const hexPort = Number(port).toString(16).toUpperCase().padStart(4, '0')
  const found: string[] = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/)
      if (!local || state !== '0A') continue
      const [address, p] = local.split(':')
      if (p !== hexPort) continue
      found.push(
        address.length === 8
          ? address
              .match(/../g)!
              .reverse()
              .map((b) => parseInt(b, 16))
              .join('.')
          : `[ipv6 ${address}]`,
      )
    }
  }
  return found
}

function drillRecord(id: string, dir: string) {
  const measured = (target: string, targetMs: number, actualMs: number) => ({
    target,
    targetMs,
    actualMs,
    status: actualMs <= targetMs ? 'pass' : 'fail',
    detail: 'measured',
  })
  return {
    apiVersion: 'retailops.dev/drill/v1',
    id,
    project: 'shop',
    environment: 'test',
    status: 'passed',
    exit: 'OK',
    startedAt: '2026-12-01T10:15:00.000Z',
    endedAt: '2026-12-01T10:17:00.000Z',
    durationMs: 120_000,
    filters: {tiers: [], services: [], datastores: []},
    ranBy: {user: 'sre', host: 'laptop'},
    tool: {name: 'retailops', version: '0.1.0', node: 'v24'},
    config: {file: 'retailops.yaml', sha256: '0'.repeat(64)},
    services: [
      {
        service: 'catalog',
        tier: 'revenue-critical',
        datastores: ['catalog-db'],
        rto: measured('15m', 900_000, 95_000),
        rpo: measured('5m', 300_000, 40_000),
        recoverability: {passed: 1, failed: 0, warned: 0},
        status: 'passed',
      },
    ],
    datastores: [
      {
        name: 'catalog-db',
        service: 'catalog',
        tier: 'revenue-critical',
        provider: 'postgres',
        source: 'postgresql://retailops@127.0.0.1/catalog',
        target: 'drill_catalog',
        status: 'passed',
        startedAt: '2026-12-01T10:15:00.000Z',
        rto: measured('15m', 900_000, 95_000),
        rpo: measured('5m', 300_000, 40_000),
        validations: [],
        evidence: {},
      },
    ],
    recoverability: [],
    steps: [],
    cleanup: [],
    leftovers: [],
    warnings: [],
    files: {
      dir,
      record: path.join(dir, 'drill.json'),
      markdown: path.join(dir, 'report.md'),
      html: path.join(dir, 'report.html'),
    },
  }
}
