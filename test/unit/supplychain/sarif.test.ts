import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type CycloneDxBom, matchVulnerabilities} from '../../../src/supplychain/match.js'
import {osvDatabase} from '../../../src/supplychain/osv.js'
import {lockfileLine, renderSarif} from '../../../src/supplychain/sarif.js'
import type {ScanResult} from '../../../src/supplychain/scan.js'
import {ROOT} from '../../support/paths.js'
import {sarifValidator} from '../../support/sarif.js'

let project: string
beforeAll(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), 't-sarif-'))
  await mkdir(path.join(project, '.git'))
  await mkdir(path.join(project, 'services'))
  await writeFile(
    path.join(project, 'services', 'package-lock.json'),
    await readFile(path.join(ROOT, 'services', 'package-lock.json'), 'utf8'),
  )
})
afterAll(async () => {
  await rm(project, {recursive: true, force: true})
})

function result(): ScanResult {
  const db = osvDatabase([
    {
      id: 'GHSA-prom-0001',
      modified: '2026-12-01T00:00:00Z',
      aliases: ['CVE-2026-4242'],
      summary: 'prom-client registry leaks labels',
      severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H'}],
      affected: [
        {
          package: {ecosystem: 'npm', name: 'prom-client'},
          ranges: [{type: 'ECOSYSTEM', events: [{introduced: '15.0.0'}, {fixed: '15.1.4'}]}],
        },
      ],
      references: [{type: 'ADVISORY', url: 'https://github.com/advisories/GHSA-prom-0001'}],
    },
    {
      id: 'MAL-2026-5',
      modified: '2026-12-01T00:00:00Z',
      affected: [{package: {ecosystem: 'npm', name: 'tdigest'}, versions: ['0.1.3']}],
    },
    {
      id: 'GHSA-bin-0002',
      modified: '2026-12-01T00:00:00Z',
      database_specific: {severity: 'LOW'},
      affected: [{package: {ecosystem: 'npm', name: 'bintrees'}, versions: ['1.0.2']}],
    },
  ])
  const bom: CycloneDxBom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    components: ['pkg:npm/prom-client@15.1.3', 'pkg:npm/tdigest@0.1.3', 'pkg:npm/bintrees@1.0.2'].map((purl) => ({
      name: purl,
      purl,
    })),
  }
  const findings = [
    ...matchVulnerabilities(bom, db, {service: 'checkout'}),
    ...matchVulnerabilities(bom, db, {service: 'cart'}).filter((f) => f.id === 'GHSA-prom-0001'),
  ]
  return {
    database: {...db.info, age: '5d', ageMs: 0, maxAge: '7d', stale: false},
    targets: [
      {
        service: 'checkout',
        sbomFile: '.retailops/sbom/checkout.cdx.json',
        lockfile: 'services/package-lock.json',
        packages: 3,
        notScanned: [],
        uncomparable: [],
        findings: 3,
      },
      {
        service: 'cart',
        sbomFile: '.retailops/sbom/cart.cdx.json',
        lockfile: 'services/package-lock.json',
        packages: 3,
        notScanned: [],
        uncomparable: [],
        findings: 1,
      },
    ],
    findings,
    counts: {critical: 0, high: 1, medium: 0, low: 1, none: 0, unknown: 1},
    expiredWaivers: [],
  }
}

describe('SARIF output', () => {
  it('is valid SARIF 2.1.0: one rule per vulnerability id, one result per service and package, at the lockfile entry', async () => {
    const log = await renderSarif(result(), {projectDir: project, toolVersion: '0.1.0'})
    const validate = await sarifValidator()
    expect(validate(log), JSON.stringify(validate.errors, null, 2)).toBe(true)

    const run = log.runs[0]
    expect(run.tool.driver.rules.map((r) => r.id)).toEqual(['MAL-2026-5', 'GHSA-prom-0001', 'GHSA-bin-0002'])
    const prom = run.tool.driver.rules[1]
    expect(prom.properties).toMatchObject({'security-severity': '7.5', tags: expect.arrayContaining(['security'])})
    expect(prom.help.text).toContain('Identifiers: GHSA-prom-0001, CVE-2026-4242.')
    expect(prom.help.text).toContain('Upgrade prom-client to 15.1.4 or later.')
    expect(prom.helpUri).toBe('https://github.com/advisories/GHSA-prom-0001')
    // Unknown (a malicious-package record without CVSS) is shown as high, the database's LOW as low.
    expect(run.tool.driver.rules[0].properties['security-severity']).toBe('8.0')
    expect(run.tool.driver.rules[2].properties['security-severity']).toBe('2.0')

    const lock = await readFile(path.join(project, 'services', 'package-lock.json'), 'utf8')
    const promLine = lock.split('\n').findIndex((l) => l.includes('"node_modules/prom-client": {')) + 1
    expect(promLine).toBeGreaterThan(1)
    const promResults = run.results.filter((r) => r.ruleId === 'GHSA-prom-0001')
    expect(promResults.map((r) => r.properties.service)).toEqual(['checkout', 'cart'])
    for (const r of promResults) {
      expect(run.tool.driver.rules[r.ruleIndex].id).toBe('GHSA-prom-0001')
      expect(r.level).toBe('error')
      expect(r.locations[0].physicalLocation).toEqual({
        artifactLocation: {uri: 'services/package-lock.json', uriBaseId: '%SRCROOT%'},
        region: {startLine: promLine},
      })
    }
    // Stable, distinct fingerprints per service, package, version and id.
    const prints = run.results.map((r) => r.partialFingerprints['retailopsFinding/v1'])
    expect(new Set(prints).size).toBe(run.results.length)
    expect(
      (await renderSarif(result(), {projectDir: project, toolVersion: '0.1.0'})).runs[0].results.map(
        (r) => r.partialFingerprints['retailopsFinding/v1'],
      ),
    ).toEqual(prints)
  })

  it('a finding a current waiver covers is suppressed with its reason; an expired waiver suppresses nothing', async () => {
    const waived = result()
    const waiver = {
      id: 'CVE-2026-4242',
      service: 'checkout',
      reason: 'metrics are internal only',
      expires: '2099-01-01',
    }
    waived.findings = waived.findings.map((f) =>
      f.id === 'GHSA-prom-0001' ? {...f, waiver: {...waiver, service: f.service!, expired: f.service === 'cart'}} : f,
    )
    const log = await renderSarif(waived, {projectDir: project, toolVersion: '0.1.0'})
    const validate = await sarifValidator()
    expect(validate(log), JSON.stringify(validate.errors)).toBe(true)
    const prom = log.runs[0].results.filter((r) => r.ruleId === 'GHSA-prom-0001')
    expect(prom.map((r) => [r.properties.service, r.suppressions])).toEqual([
      [
        'checkout',
        [
          {
            kind: 'external',
            status: 'accepted',
            justification: 'waived for checkout until 2099-01-01: metrics are internal only',
          },
        ],
      ],
      ['cart', undefined],
    ])
  })

  it('an empty scan is valid SARIF too (code scanning then closes earlier alerts)', async () => {
    const empty = {...result(), findings: []}
    const log = await renderSarif(empty, {projectDir: project, toolVersion: '0.1.0'})
    const validate = await sarifValidator()
    expect(validate(log), JSON.stringify(validate.errors)).toBe(true)
    expect(log.runs[0].results).toEqual([])
  })

  it('the schema check is not a formality: a result without a message is refused', async () => {
    const log = await renderSarif(result(), {projectDir: project, toolVersion: '0.1.0'})
    delete (log.runs[0].results[0] as {message?: unknown}).message
    const validate = await sarifValidator()
    expect(validate(log)).toBe(false)
  })

  it('finds a scoped package in the lockfile, and line 1 when it is not there', async () => {
    const lock = await readFile(path.join(ROOT, 'services', 'package-lock.json'), 'utf8')
    expect(lockfileLine(lock, '@opentelemetry/api')).toBeGreaterThan(1)
    expect(lockfileLine(lock, 'not-installed')).toBe(1)
    // A nested copy is found by the path the SBOM names, not by its first entry of that name.
    const nested = [
      '{',
      '  "packages": {',
      '    "node_modules/a": {',
      '    },',
      '    "node_modules/b/node_modules/a": {',
      '    }',
      '  }',
      '}',
    ].join('\n')
    expect(lockfileLine(nested, 'a')).toBe(3)
    expect(lockfileLine(nested, 'a', ['node_modules/b/node_modules/a'])).toBe(5)
    expect(lockfileLine(nested, 'a', ['node_modules/c/node_modules/a'])).toBe(3)
  })
})
