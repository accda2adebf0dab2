// Configuration and routing of notifications: the schema refuses unknown events and literal URLs,
// subscriptions match by event (wildcards), service and tier, a command's destinations are
// checked before it changes anything (a variable not set is exit 3), and a failed delivery is a
// warning on the output, never an exception.
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import type {LoadedConfig} from '../../../src/config/load.js'
import {parseConfig} from '../../../src/config/parse.js'
import {ConfigError, ExitCode} from '../../../src/errors/index.js'
import {releaseEvents} from '../../../src/notify/events.js'
import {commandNotifier, destinationsFor, destinationsOfEvents, Notifier} from '../../../src/notify/notifier.js'
import {releaseEvent} from '../../../src/ui/events.js'
import {RecordingOutput} from '../../../src/ui/output.js'

const HEAD = `project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  checkout: {tier: revenue-critical}
  catalog: {tier: operational}
  search: {tier: tolerant}
`

const NOTIFICATIONS = `notifications:
  destinations:
    ops: {type: slack, url: env://T_SLACK_URL}
    sre: {type: teams, url: env://T_TEAMS_URL}
    audit: {type: webhook, url: env://T_HOOK_URL, secret: env://T_HOOK_SECRET}
  subscriptions:
    - {destinations: [ops], events: ['rollout.aborted', 'release.refused.*'], tiers: [revenue-critical]}
    - {destinations: [sre], events: ['rollout.*'], services: [catalog]}
    - {destinations: [audit, ops], events: ['*']}
  delivery: {attempts: 2, timeout: 300ms, backoff: 20ms, deadline: 1s}
`

function project(text: string): LoadedConfig {
  return {file: '/p/retailops.yaml', dir: '/p', config: parseConfig(text, '/p/retailops.yaml')}
}

function refused(text: string): ConfigError {
  try {
    parseConfig(text, 'retailops.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected the configuration to be refused')
}

const VARS = ['T_SLACK_URL', 'T_TEAMS_URL', 'T_HOOK_URL', 'T_HOOK_SECRET']
let saved: Record<string, string | undefined> = {}
beforeEach(() => {
  saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]))
})
afterEach(() => {
  for (const v of VARS)
    if (saved[v] === undefined) delete process.env[v]
    else process.env[v] = saved[v]
})

describe('notifications in retailops.yaml', () => {
  it('accepts destinations, subscriptions with wildcards, and delivery bounds', () => {
    const c = project(HEAD + NOTIFICATIONS).config.notifications!
    expect(Object.keys(c.destinations)).toEqual(['ops', 'sre', 'audit'])
    expect(c.delivery).toEqual({attempts: 2, timeout: '300ms', backoff: '20ms', deadline: '1s'})
  })

  it('refuses an unknown event name, naming the known ones', () => {
    const e = refused(
      `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://X}}\n  subscriptions:\n    - {destinations: [ops], events: [rollout.exploded, deploy.*]}\n`,
    )
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    expect(e.issues.map((i) => i.path)).toEqual([
      'notifications.subscriptions[0].events[0]',
      'notifications.subscriptions[0].events[1]',
    ])
    expect(e.message).toContain('"rollout.exploded" is no event')
    expect(e.message).toContain('rollout.aborted')
  })

  it('refuses a literal URL or secret: only env://NAME', () => {
    const e = refused(
      `${HEAD}notifications:\n  destinations:\n    ops: {type: slack, url: 'https://hooks.slack.com/services/T/B/x'}\n    a: {type: webhook, url: env://U, secret: plain}\n`,
    )
    expect(e.issues.map((i) => i.path).sort()).toEqual([
      'notifications.destinations.a.secret',
      'notifications.destinations.ops.url',
    ])
    expect(e.message).toContain('env://NAME')
  })

  it('refuses subscriptions naming unknown destinations and services', () => {
    const e = refused(
      `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://X}}\n  subscriptions:\n    - {destinations: [opz], events: ['*'], services: [paymnts]}\n`,
    )
    expect(e.issues.map((i) => i.path).sort()).toEqual([
      'notifications.subscriptions[0].destinations[0]',
      'notifications.subscriptions[0].services[0]',
    ])
    expect(e.message).toContain('"opz" is not a destination; known: ops')
    const t = refused(
      `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://X}}\n  subscriptions:\n    - {destinations: [ops], events: ['*'], tiers: [gold]}\n`,
    )
    expect(t.issues.map((i) => i.path)).toEqual(['notifications.subscriptions[0].tiers[0]'])
  })

  it('refuses an unknown destination type', () => {
    const e = refused(`${HEAD}notifications:\n  destinations: {ops: {type: pager, url: env://X}}\n`)
    expect(e.issues[0].path).toBe('notifications.destinations.ops.type')
  })
})

describe('routing', () => {
  const c = project(HEAD + NOTIFICATIONS).config.notifications!
  const tiers = {checkout: 'revenue-critical', catalog: 'operational', search: 'tolerant'}

  it('by event, wildcard, service and tier, each destination once', () => {
    expect(destinationsFor(c, {type: 'rollout.aborted', services: ['checkout']}, tiers).sort()).toEqual([
      'audit',
      'ops',
    ])
    expect(destinationsFor(c, {type: 'rollout.aborted', services: ['catalog']}, tiers).sort()).toEqual([
      'audit',
      'ops',
      'sre',
    ])
    expect(destinationsFor(c, {type: 'rollout.paused', services: ['search']}, tiers).sort()).toEqual(['audit', 'ops'])
    const only = project(
      `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://X}}\n  subscriptions:\n    - {destinations: [ops], events: [release.refused.*], tiers: [revenue-critical]}\n`,
    ).config.notifications!
    expect(destinationsFor(only, {type: 'release.refused.freeze', services: ['checkout']}, tiers)).toEqual(['ops'])
    expect(destinationsFor(only, {type: 'release.refused.freeze', services: ['search']}, tiers)).toEqual([])
    expect(destinationsFor(only, {type: 'rollout.aborted', services: ['checkout']}, tiers)).toEqual([])
    // An event about no service (an SLO gate over all of them) reaches only unfiltered subscriptions.
    expect(destinationsFor(only, {type: 'release.refused.freeze', services: []}, tiers)).toEqual([])
  })

  it("a command's events name the destinations it must be able to reach", () => {
    expect(releaseEvents(['rollout.*'])).toEqual([
      'rollout.started',
      'rollout.paused',
      'rollout.step-passed',
      'rollout.analysis-failed',
      'rollout.aborted',
      'rollout.promoted',
      'rollout.timed-out',
    ])
    expect(destinationsOfEvents(c, releaseEvents(['drill.passed'])).sort()).toEqual(['audit', 'ops'])
    const narrow = project(
      `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://X}, dr: {type: slack, url: env://Y}}\n  subscriptions:\n    - {destinations: [dr], events: [drill.*]}\n`,
    ).config.notifications!
    expect(destinationsOfEvents(narrow, releaseEvents(['rollout.*']))).toEqual([])
    expect(destinationsOfEvents(narrow, releaseEvents(['drill.passed', 'drill.missed']))).toEqual(['dr'])
  })
})

describe('checked before anything changes', () => {
  it('a variable not set is CONFIG (exit 3) naming the key and the variable', () => {
    process.env.T_SLACK_URL = 'https://hooks.example.test/x'
    delete process.env.T_HOOK_URL
    process.env.T_HOOK_SECRET = ''
    process.env.T_TEAMS_URL = 'https://teams.example.test/y'
    let error: ConfigError | undefined
    try {
      commandNotifier(
        project(HEAD + NOTIFICATIONS),
        releaseEvents(['rollout.*']),
        {project: 'shop'},
        new RecordingOutput(),
      )
    } catch (e) {
      error = e as ConfigError
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect(error!.exitCode).toBe(ExitCode.CONFIG)
    expect(error!.issues.map((i) => i.path)).toEqual([
      'notifications.destinations.audit.url',
      'notifications.destinations.audit.secret',
    ])
    expect(error!.message).toContain('comes from env://T_HOOK_URL, but T_HOOK_URL is not set')
    expect(error!.message).toContain('T_HOOK_SECRET is empty')
    expect(error!.nextSteps.join('\n')).toContain('Set T_HOOK_URL')
  })

  it('a command whose events no subscription wants needs none of the variables', () => {
    for (const v of VARS) delete process.env[v]
    const narrow = `${HEAD}notifications:\n  destinations: {dr: {type: slack, url: env://T_SLACK_URL}}\n  subscriptions:\n    - {destinations: [dr], events: [drill.*]}\n`
    expect(
      commandNotifier(project(narrow), releaseEvents(['rollout.*']), {project: 'shop'}, new RecordingOutput()),
    ).toBeDefined()
  })

  it('refuses a URL that is not https (plain http only to loopback)', () => {
    process.env.T_SLACK_URL = 'http://hooks.example.test/x'
    const only = `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://T_SLACK_URL}}\n  subscriptions:\n    - {destinations: [ops], events: ['*']}\n`
    expect(() => commandNotifier(project(only), ['rollout.aborted'], {project: 'shop'}, new RecordingOutput())).toThrow(
      /plain http:\/\/ to a host that is not loopback/,
    )
    process.env.T_SLACK_URL = 'http://127.0.0.1:9/x'
    expect(commandNotifier(project(only), ['rollout.aborted'], {project: 'shop'}, new RecordingOutput())).toBeDefined()
  })

  it('masks the URLs and secrets read from the variables in all output', () => {
    process.env.T_SLACK_URL = 'https://hooks.example.test/services/SECRETPART123'
    const only = `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://T_SLACK_URL}}\n  subscriptions:\n    - {destinations: [ops], events: ['*']}\n`
    const out = new RecordingOutput()
    commandNotifier(project(only), ['rollout.aborted'], {project: 'shop'}, out)
    out.warn('posting to https://hooks.example.test/services/SECRETPART123 failed')
    expect(out.warnings[0]).not.toContain('SECRETPART123')
  })
})

describe('Notifier', () => {
  it('delivers in the background, and a failure is a warning after flush, never thrown', async () => {
    const bodies: {url: string; body: string}[] = []
    const server = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        bodies.push({url: req.url!, body})
        res.statusCode = req.url === '/down' ? 503 : 200
        res.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      process.env.T_SLACK_URL = `${base}/slack`
      process.env.T_TEAMS_URL = `${base}/down`
      process.env.T_HOOK_URL = `${base}/hook`
      process.env.T_HOOK_SECRET = 'sekrit'
      const out = new RecordingOutput()
      const notifier = commandNotifier(
        project(HEAD + NOTIFICATIONS),
        releaseEvents(['rollout.*']),
        {project: 'shop'},
        out,
      )!
      expect(notifier).toBeInstanceOf(Notifier)
      out.onEvent((e) => notifier.handle(e))
      out.event({
        type: 'rollout.aborted',
        severity: 'critical',
        summary: 'aborted',
        services: ['catalog'],
        version: 'v2',
      })
      await notifier.flush()
      expect(bodies.map((b) => b.url).sort()).toEqual(['/down', '/down', '/hook', '/slack'])
      expect(notifier.deliveries.map((d) => [d.destination, d.delivered, d.attempts]).sort()).toEqual([
        ['audit', true, 1],
        ['ops', true, 1],
        ['sre', false, 2],
      ])
      expect(out.warnings).toEqual([
        'notification rollout.aborted (catalog) to sre (teams) not delivered after 2 attempts: HTTP 503',
      ])
      expect(out.releaseEvents.map((e) => e.type)).toEqual(['rollout.aborted'])
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('does not wait past the deadline for a receiver that hangs', async () => {
    const server = http.createServer(() => {})
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      process.env.T_SLACK_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hang`
      const only = `${HEAD}notifications:\n  destinations: {ops: {type: slack, url: env://T_SLACK_URL}}\n  subscriptions:\n    - {destinations: [ops], events: ['*']}\n  delivery: {attempts: 5, timeout: 200ms, backoff: 10ms, deadline: 600ms}\n`
      const out = new RecordingOutput()
      const notifier = commandNotifier(project(only), ['slo.gate-closed'], {project: 'shop'}, out)!
      const started = Date.now()
      notifier.handle(releaseEvent({type: 'slo.gate-closed', severity: 'critical', summary: 'closed', services: []}))
      await notifier.flush()
      expect(Date.now() - started).toBeLessThan(1200)
      expect(out.warnings[0]).toMatch(
        /slo.gate-closed to ops \(slack\) not delivered after \d attempts: no answer within/,
      )
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })
})
