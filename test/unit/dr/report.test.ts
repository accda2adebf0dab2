import {describe, expect, it} from 'vitest'

import {renderHtml, renderMarkdown, timelineLanes} from '../../../src/dr/report.js'
import type {DrillRecord} from '../../../src/dr/types.js'

const t = (s: number) => new Date(Date.parse('2026-05-09T12:03:01Z') + s * 1000).toISOString()

export const record: DrillRecord = {
  apiVersion: 'retailops.dev/drill/v1',
  id: '20260509-120301-7f3a',
  project: 'shop',
  environment: 'staging',
  status: 'target-missed',
  exit: 'DR_TARGET_MISSED',
  startedAt: t(0),
  endedAt: t(95),
  durationMs: 95_000,
  filters: {tiers: ['revenue-critical'], services: [], datastores: []},
  ranBy: {user: 'alice', host: 'ci-7'},
  tool: {name: 'retailops', version: '0.1.0', node: 'v24.1.0'},
  config: {file: '/p/retailops.yaml', sha256: 'a'.repeat(64)},
  services: [
    {
      service: 'orders',
      tier: 'revenue-critical',
      datastores: ['orders-db'],
      rto: {target: '15m', targetMs: 900_000, actualMs: 80_000, status: 'pass', detail: ''},
      rpo: {target: '5m', targetMs: 300_000, actualMs: 420_000, status: 'fail', detail: ''},
      recoverability: {passed: 3, failed: 0, warned: 1},
      status: 'failed',
    },
  ],
  datastores: [
    {
      name: 'orders-db',
      service: 'orders',
      tier: 'revenue-critical',
      provider: 'postgres',
      source: 'app@127.0.0.1:5432/orders',
      target: 'retailops_drill_20260509_120301_7f3a_orders_db on 127.0.0.1:5432',
      status: 'target-missed',
      startedAt: t(0),
      validatedAt: t(80),
      rto: {
        target: '15m',
        targetMs: 900_000,
        actualMs: 80_000,
        status: 'pass',
        detail: '1m20s from drill start to validated copy (target 15m)',
      },
      rpo: {
        target: '5m',
        targetMs: 300_000,
        actualMs: 420_000,
        status: 'fail',
        detail: 'data up to … restored',
        recoveryPoint: t(-420),
        source: 'validation newest-order',
      },
      validations: [
        {
          name: 'order-count',
          query: "select count(*) from orders where note <> 'a|b'",
          expect: {min: 1},
          value: '1200',
          passed: true,
          message: '1200 (≥ 1)',
          durationMs: 3,
        },
        {
          name: 'checksum',
          query: "select md5(string_agg(id::text, ','))",
          expect: {matchesSource: true},
          value: 'abc',
          sourceValue: 'abc',
          passed: true,
          message: 'abc (matches the source)',
          durationMs: 4,
        },
      ],
      evidence: {dumpSha256: 'f'.repeat(64), dumpBytes: 4096, pgDump: 'pg_dump (PostgreSQL) 15.18'},
    },
  ],
  recoverability: [
    {
      service: 'orders',
      kind: 'image',
      subject: '127.0.0.1:5000/shop/orders@sha256:' + '1'.repeat(64),
      status: 'pass',
      detail: 'HEAD manifest answered 200',
    },
    {service: 'orders', kind: 'secret', subject: 'orders-db', status: 'warn', detail: 'missing (optional)'},
  ],
  steps: [
    {
      scope: 'orders-db',
      name: 'backup',
      title: 'pg_dump app@127.0.0.1:5432/orders',
      startedAt: t(0),
      endedAt: t(20),
      durationMs: 20_000,
      status: 'ok',
    },
    {
      scope: 'orders-db',
      name: 'restore',
      title: 'pg_restore',
      startedAt: t(21),
      endedAt: t(70),
      durationMs: 49_000,
      status: 'ok',
    },
    {
      scope: 'orders-db',
      name: 'validate',
      title: '2 validation queries',
      startedAt: t(70),
      endedAt: t(80),
      durationMs: 10_000,
      status: 'ok',
      detail: '2/2 passed',
    },
    {
      scope: 'orders-db',
      name: 'cleanup',
      title: 'clean up',
      startedAt: t(80),
      endedAt: t(95),
      durationMs: 15_000,
      status: 'ok',
    },
    {
      scope: 'recoverability',
      name: 'checks',
      title: 'checks',
      startedAt: t(0),
      endedAt: t(3),
      durationMs: 3000,
      status: 'ok',
    },
  ],
  cleanup: [
    {
      kind: 'scratch database',
      resource: 'retailops_drill_20260509_120301_7f3a_orders_db on 127.0.0.1:5432',
      action: 'drop',
      status: 'removed',
      at: t(95),
    },
  ],
  leftovers: [
    {
      kind: 'namespace',
      name: 'retailops-drill-20260508-000000-aaaa-shop',
      where: 'kwok-retailops',
      drillId: '20260508-000000-aaaa',
      command: 'kubectl --context kwok-retailops delete namespace retailops-drill-20260508-000000-aaaa-shop',
    },
  ],
  warnings: ['catalog-db: no validation queries'],
  files: {dir: '/p/.retailops/drills/x', record: '/p/drill.json', markdown: '/p/report.md', html: '/p/report.html'},
}

describe('Markdown report', () => {
  const text = renderMarkdown(record)
  it('shows the verdict, targets against actuals and who ran what', () => {
    expect(text).toContain('# DR drill 20260509-120301-7f3a: TARGET MISSED')
    expect(text).toContain('| orders | revenue-critical | 15m | 1m20s | pass | 5m | 7m | FAIL | FAIL |')
    expect(text).toContain('| Ran by | alice@ci-7 |')
    expect(text).toContain(`sha256:${'a'.repeat(64)}`)
    expect(text).toContain('| Exit | DR_TARGET_MISSED |')
  })
  it('lists each step with times from the start, the evidence and the cleanup', () => {
    expect(text).toContain('| orders-db | pg_restore | +21s | +1m10s | 49s | ok |  |')
    expect(text).toContain(`- dumpSha256: \`${'f'.repeat(64)}\``)
    expect(text).toContain(
      '| scratch database | retailops_drill_20260509_120301_7f3a_orders_db on 127.0.0.1:5432 | drop | removed |',
    )
    expect(text).toContain('| checksum |')
    expect(text).toContain('matches source')
  })
  it('lists what earlier drills left behind, with the command that removes it', () => {
    expect(text).toContain(
      '| namespace | retailops-drill-20260508-000000-aaaa-shop | kwok-retailops | 20260508-000000-aaaa | present | kubectl --context kwok-retailops delete namespace retailops-drill-20260508-000000-aaaa-shop |',
    )
  })
  it('escapes table syntax inside values', () => {
    expect(text).toContain("note <> 'a\\|b'")
  })
})

describe('HTML report', () => {
  const page = renderHtml(record)
  it('is one self-contained page: no scripts, nothing loaded from elsewhere', () => {
    expect(page.startsWith('<!doctype html>')).toBe(true)
    expect(page).not.toMatch(/<script|<link|src="http|url\(http/i)
    expect(page).toContain('<style>')
  })
  it('draws the timeline as inline SVG with a lane per datastore and a validated marker', () => {
    expect(page).toMatch(/<svg[^>]*role="img"/)
    expect(page).toContain('orders-db (RTO 15m)')
    expect(page).toContain('validated, RTO 1m20s')
    const lanes = timelineLanes(record)
    expect(lanes.map((l) => l.label)).toEqual(['orders-db (RTO 15m)', 'recoverability'])
    expect(lanes[0].spans.map((s) => s.label)).toEqual(['backup', 'restore', 'validate', 'cleanup'])
  })
  it('shows targets, actuals, evidence and the verdict, escaped', () => {
    expect(page).toContain('TARGET MISSED')
    expect(page).toContain('retailops_drill_20260509_120301_7f3a_orders_db')
    expect(page).toContain('note &lt;&gt; &#39;a|b&#39;')
    expect(page).toContain('f'.repeat(64))
    expect(page).toContain('alice@ci-7')
  })
})
