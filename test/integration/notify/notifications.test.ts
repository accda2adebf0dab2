// Notifications from real rollouts: the real CLI drives canaries of the bundled catalog service in
// the sandbox (stable and canary as real processes scraped by Prometheus, as in
// rollout/analysis.test.ts) and posts to HTTP receivers this test starts on 127.0.0.1: a Slack
// receiver, a CloudEvents receiver that verifies the HMAC of each body on its own, and a Teams
// receiver that is down. Each message is checked against its format and against the rollout state
// read back from the cluster (the measured error rate behind the abort); the receiver that is down
// changes no exit code and is a warning in --json.
import {createHmac, timingSafeEqual} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import {RolloutProject, ServiceTraffic} from '../rollout/helpers.js'

interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: string
  json: any
}

const SECRET = `hmac-${Math.random().toString(36).slice(2)}`
const received: Received[] = []
let server: http.Server
let base = ''

const ANALYSIS = {interval: '5s', count: 3, window: '20s', failureLimit: 0, inconclusiveLimit: 0, missingData: 'fail'}

const VARS = {
  T_NOTIFY_SLACK: () => `${base}/slack`,
  T_NOTIFY_HOOK: () => `${base}/hook`,
  T_NOTIFY_HOOK_SECRET: () => SECRET,
  T_NOTIFY_TEAMS: () => `${base}/teams-down`,
}

const slack = () => received.filter((r) => r.path === '/slack').map((r) => r.json)
const cloudEvents = () => received.filter((r) => r.path === '/hook')
const slackTypes = () => slack().map((m) => m.blocks.at(-1).elements[0].text.split(' · ')[1] as string)

describe('notifications on real rollouts', () => {
  const p = new RolloutProject(
    {
      catalog: {
        tier: 'operational',
        scaling: {minReplicas: 2, maxReplicas: 2},
        rollout: {progressDeadline: '90s', analysis: ANALYSIS},
      },
    },
    {
      notifications: {
        destinations: {
          ops: {type: 'slack', url: 'env://T_NOTIFY_SLACK'},
          audit: {type: 'webhook', url: 'env://T_NOTIFY_HOOK', secret: 'env://T_NOTIFY_HOOK_SECRET'},
          sre: {type: 'teams', url: 'env://T_NOTIFY_TEAMS'},
        },
        subscriptions: [
          {destinations: ['ops'], events: ['rollout.*'], services: ['catalog']},
          {destinations: ['audit'], events: ['*']},
          {destinations: ['sre'], events: ['rollout.aborted', 'rollout.promoted']},
        ],
        delivery: {attempts: 2, timeout: '500ms', backoff: '50ms', deadline: '1500ms'},
      },
    },
  )
  const traffic = new ServiceTraffic(p, 'catalog', {versionPrefix: 'n', maxMs: 240_000})

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        received.push({path: req.url!, headers: req.headers, body, json: JSON.parse(body)})
        res.statusCode = req.url === '/teams-down' ? 503 : 200
        res.end(req.url === '/teams-down' ? 'unavailable' : 'ok')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    for (const [name, value] of Object.entries(VARS)) process.env[name] = value()
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
  })
  afterEach(async () => {
    await traffic.stop()
    received.length = 0
  })
  afterAll(async () => {
    for (const name of Object.keys(VARS)) delete process.env[name]
    server?.closeAllConnections()
    server?.close()
    await p.cleanup()
  })

  it('an analysis abort is announced with the measured error rate; the receiver that is down is only a warning', async () => {
    const {stable, canary} = await traffic.serve({FAULT_ERROR_RATE: '0.5'})
    const r = await p.deploy(['catalog'], canary, ['--canary', '--steps', '50,analysis,100'])
    expect(r.exitCode, JSON.stringify(r.json.error)).toBe(20)
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Aborted')
    const measured = state.analysisRuns
      .at(-1)!
      .metrics.find((m) => m.name === 'error-rate')!
      .measurements.at(-1)!
    expect(measured.canary).toBeGreaterThan(0.3)

    // Slack: the rollout's events in order, each in Block Kit.
    expect(slackTypes()).toEqual([
      'rollout.started',
      'rollout.step-passed',
      'rollout.analysis-failed',
      'rollout.aborted',
    ])
    for (const m of slack()) {
      expect(typeof m.text).toBe('string')
      expect(m.blocks[0]).toMatchObject({type: 'header', text: {type: 'plain_text'}})
      expect(m.blocks[0].text.text).toContain(`catalog ${canary}`)
    }
    const failed = slack()[2]
    const measuredText = failed.blocks.find((b: any) => b.text?.text?.startsWith('*Measured*')).text.text as string
    expect(measuredText).toContain(`error-rate = canary ${Number(measured.canary!.toPrecision(4))}, stable 0`)
    const aborted = slack()[3]
    expect(aborted.text).toContain(`All traffic is back on ${stable}`)
    expect(JSON.stringify(aborted.blocks)).toContain(`retailops deploy catalog --canary -n ${p.ns}`)
    expect(JSON.stringify(aborted.blocks)).toContain(`*Previous version*\\n${stable}`)

    // CloudEvents: every event, signed; the HMAC checked here over the raw body.
    const events = cloudEvents()
    expect(events.map((e) => e.json.type)).toEqual([
      'dev.retailops.rollout.started',
      'dev.retailops.rollout.step-passed',
      'dev.retailops.rollout.analysis-failed',
      'dev.retailops.rollout.aborted',
    ])
    for (const e of events) {
      expect(e.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8')
      const given = Buffer.from(String(e.headers['x-retailops-signature']).replace(/^sha256=/, ''), 'hex')
      expect(timingSafeEqual(given, createHmac('sha256', SECRET).update(e.body).digest())).toBe(true)
      expect(e.json).toMatchObject({specversion: '1.0', source: '/retailops/shop', subject: 'catalog'})
      expect(e.json.datacontenttype).toBe('application/json')
      expect(e.json.data).toMatchObject({
        services: ['catalog'],
        version: canary,
        previousVersion: stable,
        namespace: p.ns,
      })
    }
    expect(new Set(events.map((e) => e.json.id)).size).toBe(4)
    const abortedEvent = events[3].json.data
    expect(abortedEvent.facts.Reason).toBe(state.reason)
    expect(abortedEvent.measurements.find((m: any) => m.name === 'error-rate').value).toBe(
      `canary ${Number(measured.canary!.toPrecision(4))}, stable 0`,
    )

    // Teams is down: retried, then a warning in the envelope; the exit code is the rollout's.
    const down = received.filter((x) => x.path === '/teams-down')
    expect(down.length).toBe(2)
    expect(down[0].json.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive')
    expect(r.json.warnings).toContain(
      'notification rollout.aborted (catalog) to sre (teams) not delivered after 2 attempts: HTTP 503: unavailable',
    )
  })

  it('a promotion is announced with the analysis that passed', async () => {
    const {stable, canary} = await traffic.serve({})
    const r = await p.deploy(['catalog'], canary, ['--canary', '--steps', '50,analysis,100'])
    expect(r.exitCode, JSON.stringify(r.json.error ?? r.json.result?.release)).toBe(0)
    expect((await p.state('catalog'))!.phase).toBe('Healthy')
    expect(slackTypes()).toEqual([
      'rollout.started',
      'rollout.step-passed',
      'rollout.step-passed',
      'rollout.step-passed',
      'rollout.promoted',
    ])
    const promoted = cloudEvents().at(-1)!.json
    expect(promoted.type).toBe('dev.retailops.rollout.promoted')
    expect(promoted.data.summary).toContain(`catalog ${canary} was promoted`)
    expect(promoted.data.previousVersion).toBe(stable)
    expect(promoted.data.measurements.map((m: any) => m.name)).toContain('error-rate')
    expect(promoted.data.actions).toContain(`retailops rollout undo catalog -n ${p.ns}`)
    expect(r.json.warnings.filter((w: string) => w.startsWith('notification'))).toEqual([
      'notification rollout.promoted (catalog) to sre (teams) not delivered after 2 attempts: HTTP 503: unavailable',
    ])
  })

  it('a variable not set stops the deploy before anything changes (exit 3), and nothing is sent', async () => {
    const before = (await p.deployment('catalog'))!.spec.template.metadata.labels['app.kubernetes.io/version']
    const stateBefore = (await p.state('catalog'))!.id
    delete process.env.T_NOTIFY_HOOK_SECRET
    try {
      const r = await p.deploy(['catalog'], traffic.freshVersion(), ['--canary', '--steps', '50,100'])
      expect(r.exitCode).toBe(3)
      expect(r.json.error.message).toContain('notifications.destinations.audit.secret')
      expect(r.json.error.message).toContain('T_NOTIFY_HOOK_SECRET is not set')
    } finally {
      process.env.T_NOTIFY_HOOK_SECRET = SECRET
    }
    expect((await p.deployment('catalog'))!.spec.template.metadata.labels['app.kubernetes.io/version']).toBe(before)
    expect((await p.state('catalog'))!.id).toBe(stateBefore)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(received).toEqual([])
  })

  it('notify test: a message to each destination, per-destination result, exit 28 when one failed', async () => {
    const r = await p.cli(['notify', 'test'])
    expect(r.exitCode).toBe(28)
    const byName = Object.fromEntries(r.json.result.destinations.map((d: any) => [d.destination, d]))
    expect(byName.ops).toMatchObject({type: 'slack', delivered: true, status: 200, attempts: 1})
    expect(byName.audit).toMatchObject({type: 'webhook', delivered: true, status: 200, attempts: 1})
    expect(byName.sre).toMatchObject({type: 'teams', delivered: false, status: 503, attempts: 2})
    expect(r.json.result).toMatchObject({delivered: 2, failed: 1})
    expect(received.find((x) => x.path === '/hook')!.json.type).toBe('dev.retailops.notify.test')
    expect(received.find((x) => x.path === '/slack')!.json.blocks[0].text.text).toBe('Test message')

    const one = await p.cli(['notify', 'test', '--destination', 'ops'])
    expect(one.exitCode).toBe(0)
    expect(one.json.result.destinations.map((d: any) => d.destination)).toEqual(['ops'])
    expect((await p.cli(['notify', 'test', '--destination', 'pager'])).exitCode).toBe(4)
  })
})
