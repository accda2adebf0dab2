// `retailops scan` through the built CLI (bin/run.js), as CI runs it: SBOMs made by the CycloneDX
// library from the bundled services' real package-lock.json, OSV records this test writes for the
// package versions that lockfile really pins, the database as a folder and as a zip. No network,
// no cluster: the sandbox is not touched.
import {createWriteStream, existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import yazl from 'yazl'

import {generateSbom, writeSbom} from '../../../src/supplychain/sbom.js'
import {runCli, runCliJson} from '../../support/cli.js'
import {ROOT} from '../../support/paths.js'
import {sarifValidator} from '../../support/sarif.js'
import {tempProject, type TempProject} from '../../support/project.js'

const lock = JSON.parse(await readFile(path.join(ROOT, 'services', 'package-lock.json'), 'utf8')) as {
  packages: Record<string, {version: string; dev?: boolean}>
}
const installed = (name: string) => {
  const entry = lock.packages[`node_modules/${name}`]
  if (!entry)
    throw new Error(`services/package-lock.json no longer installs ${name}: pick another package for this test`)
  return entry.version
}
const PROM = installed('prom-client')
const TDIGEST = installed('tdigest')
const BINTREES = installed('bintrees')
const OTEL = installed('@opentelemetry/api')
const bump = (version: string) => version.replace(/(\d+)$/, (d) => String(Number(d) + 1))

const day = 86_400_000
const recent = new Date(Date.now() - 2 * day).toISOString()

/** OSV records for versions services/package-lock.json really pins. */
function records(modified = recent) {
  return {
    // prom-client: affected by a range that holds the installed version (high, CVSS 3.1 7.5).
    'GHSA-rops-prom-0001.json': {
      schema_version: '1.6.0',
      id: 'GHSA-rops-prom-0001',
      modified,
      published: modified,
      aliases: ['CVE-2026-40001'],
      summary: 'prom-client registry grows without bound',
      severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H'}],
      affected: [
        {
          package: {ecosystem: 'npm', name: 'prom-client', purl: 'pkg:npm/prom-client'},
          ranges: [{type: 'ECOSYSTEM', events: [{introduced: '0'}, {fixed: bump(PROM)}]}],
        },
      ],
      references: [{type: 'ADVISORY', url: 'https://github.com/advisories/GHSA-rops-prom-0001'}],
      database_specific: {severity: 'HIGH'},
    },
    // tdigest: a malicious-package report listing the version, with no severity at all (unknown).
    'MAL-2026-4242.json': {
      id: 'MAL-2026-4242',
      modified,
      summary: 'Malicious code in tdigest',
      affected: [{package: {ecosystem: 'npm', name: 'tdigest'}, versions: [TDIGEST]}],
    },
    // bintrees: last_affected is the installed version; GitHub's MODERATE rating only (medium).
    'GHSA-rops-bint-0003.json': {
      id: 'GHSA-rops-bint-0003',
      modified,
      aliases: ['CVE-2026-40003'],
      affected: [
        {
          package: {ecosystem: 'npm', name: 'bintrees'},
          ranges: [{type: 'SEMVER', events: [{introduced: '0'}, {last_affected: BINTREES}]}],
        },
      ],
      database_specific: {severity: 'MODERATE'},
    },
    // @opentelemetry/api: fixed in exactly the installed version, so not affected.
    'GHSA-rops-otel-0004.json': {
      id: 'GHSA-rops-otel-0004',
      modified,
      severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'}],
      affected: [
        {
          package: {ecosystem: 'npm', name: '@opentelemetry/api'},
          ranges: [{type: 'SEMVER', events: [{introduced: '0'}, {fixed: OTEL}]}],
        },
      ],
    },
    // Withdrawn: would match, must not.
    'GHSA-rops-with-0005.json': {
      id: 'GHSA-rops-with-0005',
      modified,
      withdrawn: modified,
      severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'}],
      affected: [{package: {ecosystem: 'npm', name: 'prom-client'}, versions: [PROM]}],
    },
    // Another ecosystem's package of the same name: must not match.
    'PYSEC-2026-77.json': {
      id: 'PYSEC-2026-77',
      modified,
      affected: [{package: {ecosystem: 'PyPI', name: 'prom-client'}, versions: [PROM]}],
    },
  }
}

async function writeFolder(dir: string, files: Record<string, unknown>) {
  await mkdir(path.join(dir, 'nested'), {recursive: true})
  for (const [i, [name, record]] of Object.entries(files).entries())
    await writeFile(path.join(dir, i % 2 ? 'nested' : '', name), JSON.stringify(record, null, 2))
}

async function writeZip(file: string, files: Record<string, unknown>) {
  const zip = new yazl.ZipFile()
  for (const [name, record] of Object.entries(files)) zip.addBuffer(Buffer.from(JSON.stringify(record)), name)
  zip.end()
  await pipeline(zip.outputStream, createWriteStream(file))
}

let project: TempProject
let work: string
const SERVICES = ['checkout', 'cart']

beforeAll(async () => {
  project = await tempProject(
    [
      'project: shop',
      'registry: {url: 127.0.0.1:5000, insecure: true}',
      'supplyChain:',
      '  vulnerabilityDatabase: osv/npm.zip',
      'services:',
      ...SERVICES.map((s) => `  ${s}: {port: 8080, tier: operational}`),
      '  payments: {port: 8080, tier: operational}',
      '',
    ].join('\n'),
    {'services/package-lock.json': await readFile(path.join(ROOT, 'services', 'package-lock.json'), 'utf8')},
    't-scan',
  )
  // The SBOMs `retailops build` writes, from the real lockfile (payments gets none).
  for (const service of SERVICES) {
    const sbom = await generateSbom({
      service,
      repository: `127.0.0.1:5000/shop/${service}`,
      bases: [],
      lockfile: path.join(project.dir, 'services', 'package-lock.json'),
      projectDir: project.dir,
    })
    await writeSbom(project.dir, service, sbom)
  }
  await mkdir(path.join(project.dir, 'osv'))
  await writeZip(path.join(project.dir, 'osv', 'npm.zip'), records())
  await writeFolder(path.join(project.dir, 'osv', 'folder'), records())
  work = await mkdtemp(path.join(os.tmpdir(), 't-scan-work-'))
})

afterAll(async () => {
  await project?.remove()
  if (work) await rm(work, {recursive: true, force: true})
})

const scanJson = (args: string[]) => runCliJson(['scan', ...args], {cwd: project.dir, built: true})
const summary = (findings: any[]) =>
  findings.map((f) => `${f.service} ${f.package}@${f.version} ${f.id} ${f.severity} [${f.fixedIn.join(',')}]`)

describe('retailops scan', () => {
  it("scans the services' SBOMs against the zip from retailops.yaml: real versions, withdrawn and other ecosystems ignored", async () => {
    const run = await scanJson(['checkout', 'cart'])
    expect(run.exitCode, run.stderr).toBe(0)
    const r = run.doc.result
    const expected = SERVICES.flatMap((s) => [
      `${s} tdigest@${TDIGEST} MAL-2026-4242 unknown []`,
      `${s} prom-client@${PROM} GHSA-rops-prom-0001 high [${bump(PROM)}]`,
      `${s} bintrees@${BINTREES} GHSA-rops-bint-0003 medium []`,
    ])
    expect(summary(r.findings).sort()).toEqual(expected.sort())
    // Highest first: unknown, then high, then medium.
    expect(r.findings.map((f: any) => f.severity)).toEqual(['unknown', 'unknown', 'high', 'high', 'medium', 'medium'])
    const prom = r.findings.find((f: any) => f.id === 'GHSA-rops-prom-0001')
    expect(prom).toMatchObject({
      aliases: ['CVE-2026-40001'],
      score: 7.5,
      vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H',
      severitySource: 'CVSS_V3',
      purl: `pkg:npm/prom-client@${PROM}`,
      // Where the lockfile installs it, as the SBOM records it.
      paths: ['node_modules/prom-client'],
    })
    expect(r.findings.find((f: any) => f.id === 'GHSA-rops-bint-0003')).toMatchObject({
      lastAffected: BINTREES,
      severitySource: 'database_specific',
    })
    expect(r.counts).toEqual({critical: 0, high: 2, medium: 2, low: 0, none: 0, unknown: 2})
    expect(r.database).toMatchObject({
      path: path.join('osv', 'npm.zip'),
      format: 'zip',
      records: 6,
      withdrawn: 1,
      stale: false,
    })
    expect(r.targets).toEqual(
      SERVICES.map((service) => ({
        service,
        sbomFile: path.join('.retailops', 'sbom', `${service}.cdx.json`),
        lockfile: path.join('services', 'package-lock.json'),
        packages: Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/') && !lock.packages[k].dev)
          .length,
        notScanned: [],
        uncomparable: [],
        findings: 3,
      })),
    )
    expect(r.gate).toBeUndefined()
    expect(run.doc.warnings).toEqual([])
  })

  it('gives the same findings from the folder of records (--db) as from the zip', async () => {
    const zip = await scanJson(['checkout'])
    const folder = await scanJson(['checkout', '--db', path.join('osv', 'folder')])
    expect(folder.exitCode, folder.stderr).toBe(0)
    expect(folder.doc.result.database).toMatchObject({format: 'directory', records: 6, withdrawn: 1})
    expect(summary(folder.doc.result.findings)).toEqual(summary(zip.doc.result.findings))
  })

  it('--fail-on exits 26 at or above the severity; unknown counts as critical unless --unknown-as rates it', async () => {
    const cases: [string[], number, number][] = [
      [['--fail-on', 'high'], 26, 2],
      [['--fail-on', 'critical'], 26, 1],
      [['--fail-on', 'critical', '--unknown-as', 'high'], 0, 0],
      [['--fail-on', 'high', '--unknown-as', 'low'], 26, 1],
      [['--fail-on', 'medium', '--unknown-as', 'none'], 26, 2],
      [['--fail-on', 'low'], 26, 3],
    ]
    for (const [flags, exit, failing] of cases) {
      const run = await scanJson(['checkout', ...flags])
      expect([flags.join(' '), run.exitCode]).toEqual([flags.join(' '), exit])
      expect(run.doc.status).toBe(exit)
      expect(run.doc.result.gate).toMatchObject({failOn: flags[1], pass: exit === 0, failing})
      // The findings are reported whether the gate passes or not.
      expect(run.doc.result.findings).toHaveLength(3)
    }
    const human = await runCli(['scan', 'checkout', '--fail-on', 'high'], {cwd: project.dir, built: true})
    expect(human.exitCode).toBe(26)
    expect(human.stdout).toContain('GHSA-rops-prom-0001')
    expect(human.stdout).toContain('CVE-2026-40001')
    expect(human.stdout).toContain('--fail-on high: 2 findings at or above high (unknown severities count as critical)')
  })

  it('honours the waivers deploy honours: a current waiver (by alias) passes --fail-on, an expired one is reported and does not', async () => {
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10)
    const waive = (expires: string) =>
      project.write({
        '.retailops/waivers.yaml': `waivers:\n  - {id: CVE-2026-40001, service: checkout, reason: metrics are internal only, expires: ${expires}}\n`,
      })
    try {
      await waive(day(10))
      const passed = await scanJson(['checkout', '--fail-on', 'high', '--unknown-as', 'low'])
      expect(passed.exitCode).toBe(0)
      expect(passed.doc.result.gate).toMatchObject({failing: 0, waived: 1, pass: true})
      const waived = passed.doc.result.findings.find((f: {id: string}) => f.id === 'GHSA-rops-prom-0001')
      expect(waived.waiver).toMatchObject({id: 'CVE-2026-40001', service: 'checkout', expired: false})
      // Only for its service: cart's same finding still fails.
      const cart = await scanJson(['cart', '--fail-on', 'high', '--unknown-as', 'low'])
      expect(cart.exitCode).toBe(26)

      await waive(day(-1))
      const expired = await scanJson(['checkout', '--fail-on', 'high', '--unknown-as', 'low'])
      expect(expired.exitCode).toBe(26)
      expect(expired.doc.result.gate).toMatchObject({failing: 1, waived: 0})
      expect(expired.doc.result.expiredWaivers).toEqual([
        expect.objectContaining({id: 'CVE-2026-40001', expires: day(-1)}),
      ])
      expect(JSON.stringify(expired.doc.warnings)).toMatch(/waiver of CVE-2026-40001 for checkout .* expired/)
    } finally {
      await rm(path.join(project.dir, '.retailops/waivers.yaml'), {force: true})
    }
  })

  it('writes SARIF 2.1.0 that the schema accepts, located at the lockfile entry of each package', async () => {
    const out = path.join(work, 'reports', 'scan.sarif')
    const run = await scanJson([...SERVICES, '--sarif', out])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.doc.result.sarif).toBe(out)
    const log = JSON.parse(await readFile(out, 'utf8'))
    const validate = await sarifValidator()
    expect(validate(log), JSON.stringify(validate.errors)).toBe(true)
    const [sarifRun] = log.runs
    expect(sarifRun.tool.driver.rules.map((r: any) => r.id).sort()).toEqual([
      'GHSA-rops-bint-0003',
      'GHSA-rops-prom-0001',
      'MAL-2026-4242',
    ])
    expect(
      sarifRun.tool.driver.rules.find((r: any) => r.id === 'GHSA-rops-prom-0001').properties['security-severity'],
    ).toBe('7.5')
    expect(sarifRun.results).toHaveLength(6)
    const lockLines = (await readFile(path.join(project.dir, 'services', 'package-lock.json'), 'utf8')).split('\n')
    for (const result of sarifRun.results) {
      const {uri} = result.locations[0].physicalLocation.artifactLocation
      const line = result.locations[0].physicalLocation.region.startLine
      expect(uri).toBe('services/package-lock.json')
      expect(lockLines[line - 1]).toContain(`"node_modules/${result.properties.package}": {`)
    }
  })

  it('scans a CycloneDX file with --sbom outside any project', async () => {
    const sbom = path.join(work, 'checkout.cdx.json')
    await writeFile(sbom, await readFile(path.join(project.dir, '.retailops', 'sbom', 'checkout.cdx.json')))
    const run = await runCliJson(['scan', '--sbom', sbom, '--db', path.join(project.dir, 'osv', 'npm.zip')], {
      cwd: work,
      built: true,
    })
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.doc.result.findings.map((f: any) => f.id).sort()).toEqual([
      'GHSA-rops-bint-0003',
      'GHSA-rops-prom-0001',
      'MAL-2026-4242',
    ])
    expect(run.doc.result.findings.every((f: any) => f.service === undefined)).toBe(true)
    expect(run.doc.result.targets[0]).toMatchObject({
      sbomFile: sbom,
      lockfile: path.join('services', 'package-lock.json'),
    })
  })

  it('warns when the newest record is older than the allowed age, and says how to refresh', async () => {
    const old = path.join(work, 'old.zip')
    await writeZip(old, records(new Date(Date.now() - 30 * day).toISOString()))
    const run = await scanJson(['checkout', '--db', old])
    expect(run.exitCode).toBe(0)
    expect(run.doc.result.database).toMatchObject({stale: true, maxAge: '7d'})
    expect(run.doc.result.database.age).toMatch(/^30d/)
    expect(run.doc.warnings).toEqual([expect.stringContaining('is stale: its newest record is 30d')])
    expect(run.doc.warnings[0]).toContain(
      'curl -fsSL -o osv-npm.zip https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip',
    )
    const allowed = await scanJson(['checkout', '--db', old, '--max-db-age', '45d'])
    expect(allowed.doc.result.database.stale).toBe(false)
    expect(allowed.doc.warnings).toEqual([])
  })

  it('a database with a bad record exits 27 naming the entry, and writes no SARIF', async () => {
    const bad = path.join(work, 'bad.zip')
    const files: Record<string, unknown> = records()
    files['GHSA-rops-bad-0009.json'] = {
      id: 'GHSA-rops-bad-0009',
      affected: [{package: {ecosystem: 'npm', name: 'x'}, ranges: [{type: 'SEMVER', events: [{fixed: '1.0.0'}]}]}],
    }
    await writeZip(bad, files)
    const out = path.join(work, 'bad.sarif')
    const run = await scanJson([...SERVICES, '--db', bad, '--sarif', out, '--fail-on', 'critical'])
    expect(run.exitCode).toBe(27)
    expect(run.doc.error).toMatchObject({code: 'VULNERABILITY_DATABASE_INVALID', exitCode: 27})
    expect(run.doc.error.message).toContain('bad.zip:GHSA-rops-bad-0009.json: modified:')
    expect(run.doc.error.message).toContain('has no introduced event')
    expect(run.doc.error.details.badRecords).toHaveLength(1)
    expect(existsSync(out)).toBe(false)
  })

  it('bad input: unknown service, a service without an SBOM, no database, a file that is not an SBOM', async () => {
    const unknown = await scanJson(['nosuch'])
    expect(unknown.exitCode).toBe(4)
    expect(unknown.doc.error.message).toContain('Unknown service: nosuch')

    const noSbom = await scanJson(['payments'])
    expect(noSbom.exitCode).toBe(4)
    expect(noSbom.doc.error.nextSteps.join(' ')).toContain('retailops build payments')

    const notSbom = path.join(work, 'package.json')
    await writeFile(notSbom, JSON.stringify({name: 'x', version: '1.0.0'}))
    const wrong = await runCliJson(['scan', '--sbom', notSbom, '--db', path.join(project.dir, 'osv', 'npm.zip')], {
      cwd: work,
      built: true,
    })
    expect(wrong.exitCode).toBe(2)
    expect(wrong.doc.error.message).toContain('is not a CycloneDX JSON SBOM')

    const noDb = await runCliJson(['scan', '--sbom', path.join(project.dir, '.retailops', 'sbom', 'cart.cdx.json')], {
      cwd: work,
      built: true,
    })
    expect(noDb.exitCode).toBe(2)
    expect(noDb.doc.error.message).toContain('No vulnerability database')

    const missingDb = await scanJson(['checkout', '--db', path.join(work, 'nowhere.zip')])
    expect(missingDb.exitCode).toBe(4)
    expect(missingDb.doc.error.nextSteps.join(' ')).toContain('osv-vulnerabilities.storage.googleapis.com/npm/all.zip')

    const badFlag = await scanJson(['checkout', '--fail-on', 'severe'])
    expect(badFlag.exitCode).toBe(2)
    const badAge = await scanJson(['checkout', '--max-db-age', 'a week'])
    expect(badAge.exitCode).toBe(2)
  })
})
