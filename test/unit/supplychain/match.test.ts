import semver from 'semver'
import {describe, expect, it} from 'vitest'

import {
  type CycloneDxBom,
  inRange,
  matchAffected,
  matchVulnerabilities,
  npmComponents,
} from '../../../src/supplychain/match.js'
import {osvDatabase, type OsvAffected, type OsvRange, type OsvRecord} from '../../../src/supplychain/osv.js'

const v = (text: string) => semver.parse(text)!
const semverRange = (...events: OsvRange['events']): OsvRange => ({type: 'SEMVER', events})
const affects = (range: OsvRange, version: string) => inRange(v(version), range)

describe('OSV range evaluation (the schema evaluation algorithm, npm semver order)', () => {
  it('introduced "0" affects every version below the fix, and not the fix or anything above', () => {
    const r = semverRange({introduced: '0'}, {fixed: '1.2.3'})
    expect(affects(r, '0.0.1')).toBe(true)
    expect(affects(r, '1.2.2')).toBe(true)
    expect(affects(r, '1.2.3')).toBe(false)
    expect(affects(r, '1.3.0')).toBe(false)
    expect(affects(r, '10.0.0')).toBe(false)
  })

  it('an unfixed vulnerability (introduced only) affects from introduced on', () => {
    expect(affects(semverRange({introduced: '0'}), '99.0.0')).toBe(true)
    const r = semverRange({introduced: '2.0.0'})
    expect(affects(r, '1.9.9')).toBe(false)
    expect(affects(r, '2.0.0')).toBe(true)
    expect(affects(r, '5.0.0')).toBe(true)
  })

  it('several introduced/fixed pairs in one range are separate intervals', () => {
    const r = semverRange({introduced: '1.0.0'}, {fixed: '1.0.2'}, {introduced: '3.0.0'}, {fixed: '3.2.5'})
    expect(
      ['0.9.0', '1.0.0', '1.0.1', '1.0.2', '2.5.0', '3.0.0', '3.2.4', '3.2.5', '4.0.0'].map((x) => affects(r, x)),
    ).toEqual([false, true, true, false, false, true, true, false, false])
  })

  it('events are evaluated in version order, whatever order the record lists them in', () => {
    const r = semverRange({fixed: '3.2.5'}, {introduced: '3.0.0'}, {fixed: '1.0.2'}, {introduced: '1.0.0'})
    expect(affects(r, '1.0.1')).toBe(true)
    expect(affects(r, '2.0.0')).toBe(false)
    expect(affects(r, '3.1.0')).toBe(true)
  })

  it('last_affected includes that version and nothing above it', () => {
    const r: OsvRange = {type: 'ECOSYSTEM', events: [{introduced: '0'}, {last_affected: '2.1.214'}]}
    expect(affects(r, '2.1.213')).toBe(true)
    expect(affects(r, '2.1.214')).toBe(true)
    expect(affects(r, '2.1.215')).toBe(false)
  })

  it('limit bounds the range from above; "*" is no bound', () => {
    const limited = semverRange({introduced: '0'}, {limit: '2.0.0'})
    expect(affects(limited, '1.9.9')).toBe(true)
    expect(affects(limited, '2.0.0')).toBe(false)
    expect(affects(semverRange({introduced: '0'}, {limit: '*'}), '9.9.9')).toBe(true)
    // With several limits, being below any one of them is enough.
    const two = semverRange({introduced: '1.0.0'}, {limit: '1.5.0'}, {limit: '3.0.0'})
    expect(affects(two, '2.0.0')).toBe(true)
    expect(affects(two, '3.0.0')).toBe(false)
  })

  it('prereleases sort before their release (SemVer 2.0 precedence)', () => {
    const beforeFix = semverRange({introduced: '0'}, {fixed: '2.0.0'})
    expect(affects(beforeFix, '2.0.0-rc.1')).toBe(true)
    const fromRelease = semverRange({introduced: '2.0.0'}, {fixed: '2.0.1'})
    expect(affects(fromRelease, '2.0.0-beta.3')).toBe(false)
    expect(affects(fromRelease, '2.0.1-alpha.0')).toBe(true)
    const prereleaseFix = semverRange({introduced: '2.0.0-alpha.1'}, {fixed: '2.0.0-rc.2'})
    expect(affects(prereleaseFix, '2.0.0-alpha.0')).toBe(false)
    expect(affects(prereleaseFix, '2.0.0-rc.1')).toBe(true)
    expect(affects(prereleaseFix, '2.0.0-rc.2')).toBe(false)
    expect(affects(prereleaseFix, '2.0.0-rc.10')).toBe(false)
    expect(affects(prereleaseFix, '2.0.0')).toBe(false)
  })

  it('GIT ranges are not evaluated (they need the repository), the versions list still is', () => {
    const a: OsvAffected = {
      package: {ecosystem: 'npm', name: 'x'},
      ranges: [{type: 'GIT', repo: 'https://example.invalid/x.git', events: [{introduced: '0'}]}],
      versions: ['1.0.0'],
    }
    expect(matchAffected('1.0.0', a)).toEqual({fixedIn: []})
    expect(matchAffected('1.0.1', a)).toBeUndefined()
  })

  it('a listed version matches exactly (build metadata aside); ranges and versions are either-or', () => {
    const a: OsvAffected = {
      package: {ecosystem: 'npm', name: 'x'},
      versions: ['0.1.3', '0.2.0+build.5'],
      ranges: [{type: 'SEMVER', events: [{introduced: '1.0.0'}, {fixed: '1.0.4'}]}],
    }
    expect(matchAffected('0.1.3', a)).toBeDefined()
    expect(matchAffected('0.2.0', a)).toBeDefined()
    expect(matchAffected('0.1.4', a)).toBeUndefined()
    expect(matchAffected('1.0.3', a)).toEqual({fixedIn: ['1.0.4']})
  })

  it('reports the nearest fix above the installed version in each range that holds it', () => {
    const a: OsvAffected = {
      package: {ecosystem: 'npm', name: 'x'},
      ranges: [
        {type: 'ECOSYSTEM', events: [{introduced: '0'}, {fixed: '4.17.21'}]},
        {type: 'ECOSYSTEM', events: [{introduced: '5.0.0'}, {fixed: '5.0.3'}]},
      ],
    }
    expect(matchAffected('4.17.20', a)).toEqual({fixedIn: ['4.17.21']})
    expect(matchAffected('5.0.1', a)).toEqual({fixedIn: ['5.0.3']})
    expect(matchAffected('4.17.21', a)).toBeUndefined()
    const lastAffected: OsvAffected = {
      package: {ecosystem: 'npm', name: 'x'},
      ranges: [{type: 'ECOSYSTEM', events: [{introduced: '0'}, {last_affected: '1.0.2'}]}],
    }
    expect(matchAffected('1.0.2', lastAffected)).toEqual({fixedIn: [], lastAffected: '1.0.2'})
  })
})

const record = (id: string, affected: OsvAffected[], extra: Partial<OsvRecord> = {}): OsvRecord => ({
  id,
  modified: '2026-12-01T00:00:00Z',
  affected,
  ...extra,
})

const bom = (...purls: string[]): CycloneDxBom => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  metadata: {component: {type: 'application', name: 'shop/checkout', purl: 'pkg:oci/checkout@sha256%3Aabc'}},
  components: purls.map((purl) => ({type: 'library', name: purl, purl})),
})

describe('matchVulnerabilities', () => {
  const db = osvDatabase(
    [
      record(
        'GHSA-aaaa-bbbb-cccc',
        [
          {
            package: {ecosystem: 'npm', name: '@opentelemetry/api'},
            ranges: [semverRange({introduced: '0'}, {fixed: '1.11.0'})],
          },
        ],
        {
          aliases: ['CVE-2026-0001'],
          summary: 'Prototype pollution',
          severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'}],
        },
      ),
      // The same name in another ecosystem is another package.
      record('PYSEC-2026-1', [{package: {ecosystem: 'PyPI', name: 'tdigest'}, versions: ['0.1.3']}]),
      record('GHSA-wwww-xxxx-yyyy', [{package: {ecosystem: 'npm', name: 'tdigest'}, versions: ['0.1.3']}], {
        withdrawn: '2026-11-30T00:00:00Z',
      }),
      record('MAL-2026-77', [{package: {ecosystem: 'npm', name: 'tdigest'}, versions: ['0.1.3']}]),
      record('GHSA-not-this-version', [
        {package: {ecosystem: 'npm', name: 'bintrees'}, ranges: [semverRange({introduced: '0'}, {fixed: '1.0.2'})]},
      ]),
    ],
    {},
    {now: new Date('2026-12-06T00:00:00Z')},
  )

  it('finds what affects the installed versions, with aliases, severity and fix; withdrawn and other ecosystems are ignored', () => {
    const found = matchVulnerabilities(
      bom(
        'pkg:npm/%40opentelemetry/api@1.10.0',
        'pkg:npm/tdigest@0.1.3',
        'pkg:npm/bintrees@1.0.2',
        'pkg:oci/node@sha256%3Aabc',
      ),
      db,
      {service: 'checkout'},
    )
    expect(found.map((f) => [f.service, f.package, f.version, f.id, f.severity, f.fixedIn])).toEqual([
      ['checkout', 'tdigest', '0.1.3', 'MAL-2026-77', 'unknown', []],
      ['checkout', '@opentelemetry/api', '1.10.0', 'GHSA-aaaa-bbbb-cccc', 'critical', ['1.11.0']],
    ])
    expect(found[1]).toMatchObject({aliases: ['CVE-2026-0001'], score: 9.8, severitySource: 'CVSS_V3'})
  })

  it('reads nested components once per name@version and leaves non-npm components out', () => {
    const nested: CycloneDxBom = {
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      components: [
        {
          name: 'a',
          purl: 'pkg:npm/a@1.0.0',
          properties: [{name: 'cdx:npm:package:path', value: 'node_modules/a'}],
          components: [
            {name: 'b', purl: 'pkg:npm/b@2.0.0'},
            {
              name: 'a',
              purl: 'pkg:npm/a@1.0.0',
              properties: [{name: 'cdx:npm:package:path', value: 'node_modules/b/node_modules/a'}],
            },
          ],
        },
        {name: 'node', purl: 'pkg:oci/node@sha256%3Aabc'},
        {name: 'no-purl'},
      ],
    }
    const {components, other} = npmComponents(nested)
    expect(components.map((c) => `${c.name}@${c.version}`).sort()).toEqual(['a@1.0.0', 'b@2.0.0'])
    expect(components.find((c) => c.name === 'a')!.paths.sort()).toEqual([
      'node_modules/a',
      'node_modules/b/node_modules/a',
    ])
    expect(other).toEqual(['pkg:oci/node@sha256%3Aabc', 'no-purl'])
  })
})
