import {describe, expect, it} from 'vitest'

import {backupLine, backupRows, stepsAgainstRto, type BackupInfo} from '../../../src/dr/backups.js'
import {datastoreTrends, type DrillSummary} from '../../../src/dr/history.js'
import {renderHistoryHtml} from '../../../src/dr/report.js'

const summary = (id: string, at: string, rtoMs?: number, rpoMs?: number): DrillSummary => ({
  id,
  startedAt: at,
  status: 'passed',
  exit: 'OK',
  environment: 'default',
  datastores: ['orders-db'],
  services: ['orders'],
  targetsMissed: 0,
  validationsFailed: 0,
  ranBy: 'ci',
  report: 'r.html',
  where: 'files',
  perDatastore: [
    {
      name: 'orders-db',
      status: 'passed',
      ...(rtoMs === undefined ? {} : {rtoMs}),
      rtoTargetMs: 60_000,
      ...(rpoMs === undefined ? {} : {rpoMs}),
      rpoTargetMs: 300_000,
      backup: {kind: 'pg-dump', time: at},
    },
  ],
})

describe('dr history trends', () => {
  it('orders each datastore oldest first and counts the targets met among measured drills', () => {
    const [t] = datastoreTrends([
      summary('c', '2026-12-07T03:00:00Z', 90_000, 100_000),
      summary('a', '2026-12-07T01:00:00Z', 30_000, undefined),
      summary('b', '2026-12-07T02:00:00Z', 50_000, 400_000),
    ])
    expect(t.points.map((p) => p.drillId)).toEqual(['a', 'b', 'c'])
    expect(t).toMatchObject({rtoMet: 2, rtoMeasured: 3, rpoMet: 1, rpoMeasured: 2})
  })

  it('draws an RTO and an RPO chart per datastore with the target lines, and the drills as a table', () => {
    const html = renderHistoryHtml(
      datastoreTrends([
        summary('a', '2026-12-07T01:00:00Z', 30_000, 60_000),
        summary('b', '2026-12-07T02:00:00Z', 90_000, 60_000),
      ]),
      'shop',
      new Date('2026-12-07T04:00:00Z'),
    )
    expect(html).toContain('Datastore orders-db')
    expect(html.match(/<svg/g)?.length).toBe(2)
    expect(html).toContain('RTO (seconds), target 1m')
    expect(html).toContain('target 5m')
    expect(html).toContain('RTO met 1 of 2 measured')
  })
})

describe('backup and step rendering', () => {
  const b: BackupInfo = {
    kind: 'pg-dump',
    location: 's3://b/orders/',
    name: 'x.dump',
    time: '2026-12-07T00:00:00.000Z',
    timeSource: 'snapshot',
    sizeBytes: 2 * 1024 * 1024,
    checksum: {algorithm: 'sha256', expected: 'aa', actual: 'aa', expectedFrom: 'x.dump.sha256', status: 'verified'},
    ageMs: 600_000,
    rpoTargetMs: 300_000,
  }
  it('names where, when, how big, how old against the RPO, and the checksum', () => {
    expect(backupLine(b)).toBe(
      's3://b/orders/x.dump, 2026-12-07T00:00:00.000Z (10m old, RPO target 5m), 2.00 MiB, sha256 verified',
    )
    expect(backupRows(b)).toContainEqual(['age at drill start', '10m (RPO target 5m: OLDER)'])
    expect(backupRows(b)).toContainEqual(['checksum', 'verified against x.dump.sha256: expected aa, actual aa'])
  })
  it("puts each step's end against the RTO target", () => {
    const steps = stepsAgainstRto(
      [
        {
          scope: 'orders-db',
          name: 'fetch',
          title: 'f',
          status: 'ok',
          startedAt: '2026-12-07T00:00:00Z',
          endedAt: '2026-12-07T00:00:30Z',
          durationMs: 30_000,
        },
        {scope: 'other', name: 'x', title: 'x', status: 'ok', startedAt: '2026-12-07T00:00:00Z'},
        {
          scope: 'orders-db',
          name: 'restore',
          title: 'r',
          status: 'ok',
          startedAt: '2026-12-07T00:00:30Z',
          endedAt: '2026-12-07T00:01:30Z',
          durationMs: 60_000,
        },
      ],
      'orders-db',
      '2026-12-07T00:00:00Z',
      60_000,
    )
    expect(steps.map((s) => [s.name, s.endedAtMs, s.shareOfRto])).toEqual([
      ['fetch', 30_000, 0.5],
      ['restore', 90_000, 1.5],
    ])
  })
})
