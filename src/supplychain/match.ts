import {PackageURL} from 'packageurl-js'
import semver from 'semver'

import {
  NPM,
  parseNpmVersion,
  type OsvAffected,
  type OsvDatabase,
  type OsvEvent,
  type OsvRange,
  type OsvRecord,
} from './osv.js'
import {displayRank, rate, type Severity, type SeveritySource} from './severity.js'
import type {Waiver} from './waivers.js'

/** The part of a CycloneDX BOM (JSON, 1.4 and later) matching reads. */
export interface CycloneDxComponent {
  type?: string
  name?: string
  group?: string
  version?: string
  purl?: string
  'bom-ref'?: string
  properties?: {name: string; value: string}[]
  components?: CycloneDxComponent[]
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX'
  specVersion: string
  metadata?: {component?: CycloneDxComponent}
  components?: CycloneDxComponent[]
}

/** One vulnerability in one installed package. Carries service and id, so a waiver filter can drop it. */
export interface Finding {
  /** The service whose SBOM holds the package (absent for an SBOM scanned on its own). */
  service?: string
  package: string
  version: string
  purl: string
  /** OSV id (GHSA-…, MAL-…, CVE-…). */
  id: string
  /** Other ids of the same vulnerability, CVE ids among them. */
  aliases: string[]
  summary?: string
  severity: Severity
  /** CVSS base score, when a vector scored. */
  score?: number
  vector?: string
  severitySource: SeveritySource
  /** Where the lockfile installs it (`node_modules/…`, CycloneDX's npm package path), when the SBOM says. */
  paths?: string[]
  /** Versions that fix it, above the installed one (empty: no fix is known). */
  fixedIn: string[]
  /** The last affected version, when the record gives one instead of a fix. */
  lastAffected?: string
  /** Advisory and other reference URLs. */
  references: string[]
  modified: string
  published?: string
  /** The waiver (supplyChain.policy.waivers) that covers it for its service; an expired one waives nothing. */
  waiver?: Waiver & {expired: boolean}
}

export interface NpmComponent {
  name: string
  version: string
  purl: string
  /** `node_modules/…` paths of this name@version (CycloneDX npm taxonomy: cdx:npm:package:path). */
  paths: string[]
}

/** CycloneDX's npm taxonomy: where a package sits under node_modules. */
const NPM_PATH_PROPERTY = 'cdx:npm:package:path'

/** Every npm component of a BOM (nested components included), once per name@version. */
export function npmComponents(bom: CycloneDxBom): {components: NpmComponent[]; other: string[]} {
  const seen = new Map<string, NpmComponent>()
  const other: string[] = []
  const walk = (list: CycloneDxComponent[] | undefined) => {
    for (const c of list ?? []) {
      walk(c.components)
      if (!c.purl) {
        other.push(c.name ?? c['bom-ref'] ?? '(unnamed component)')
        continue
      }
      let purl: PackageURL
      try {
        purl = PackageURL.fromString(c.purl)
      } catch {
        other.push(c.purl)
        continue
      }
      if (purl.type !== NPM) {
        other.push(c.purl)
        continue
      }
      const name = purl.namespace ? `${purl.namespace}/${purl.name}` : purl.name
      const version = purl.version ?? c.version
      if (!version) {
        other.push(c.purl)
        continue
      }
      const key = `${name}@${version}`
      const entry = seen.get(key) ?? {name, version, purl: c.purl, paths: []}
      seen.set(key, entry)
      for (const p of c.properties ?? [])
        if (p.name === NPM_PATH_PROPERTY && !entry.paths.includes(p.value)) entry.paths.push(p.value)
    }
  }
  walk(bom.components)
  return {components: [...seen.values()], other}
}

function eventVersion(e: OsvEvent): string {
  return Object.values(e)[0]
}

/** "0" sorts before every version; a limit containing "*" after every version. */
function eventOrder(a: OsvEvent, b: OsvEvent): number {
  const key = (e: OsvEvent): semver.SemVer | number => {
    if ('introduced' in e && e.introduced === '0') return -Infinity
    if ('limit' in e && e.limit.includes('*')) return Infinity
    return parseNpmVersion(eventVersion(e)) ?? Infinity
  }
  const ka = key(a)
  const kb = key(b)
  if (typeof ka !== 'number' && typeof kb !== 'number') return semver.compare(ka, kb)
  const na = typeof ka === 'number' ? ka : 0
  const nb = typeof kb === 'number' ? kb : 0
  return na === nb ? 0 : na < nb ? -1 : 1
}

function compare(v: semver.SemVer, bound: string): number {
  const b = parseNpmVersion(bound)
  // Validated when the database was loaded; a bound that does not parse never matches silently.
  if (!b) throw new Error(`unparsable npm version bound ${bound}`)
  return semver.compare(v, b)
}

/** The OSV schema's BeforeLimits: no limit events is an implicit "*". */
function beforeLimits(v: semver.SemVer, r: OsvRange): boolean {
  const limits = r.events.filter((e): e is {limit: string} => 'limit' in e)
  if (limits.length === 0) return true
  return limits.some((e) => e.limit.includes('*') || compare(v, e.limit) < 0)
}

/**
 * The OSV schema's IncludedInRanges for one range (https://ossf.github.io/osv-schema/#evaluation):
 * walk the events sorted by version; introduced sets vulnerable at or above it, fixed clears it at
 * or above, last_affected clears it above. Comparison is SemVer 2.0 precedence (npm's order), so
 * a prerelease sorts before its release: 2.0.0-rc.1 is below a fix in 2.0.0.
 */
export function inRange(v: semver.SemVer, r: OsvRange): boolean {
  if (r.type === 'GIT' || !beforeLimits(v, r)) return false
  let vulnerable = false
  for (const e of [...r.events].sort(eventOrder)) {
    if ('introduced' in e) {
      if (e.introduced === '0' || compare(v, e.introduced) >= 0) vulnerable = true
    } else if ('fixed' in e) {
      if (compare(v, e.fixed) >= 0) vulnerable = false
    } else if ('last_affected' in e) {
      if (compare(v, e.last_affected) > 0) vulnerable = false
    }
  }
  return vulnerable
}

export interface AffectedMatch {
  fixedIn: string[]
  lastAffected?: string
}

/**
 * Whether an installed npm version is affected by one `affected` entry: listed in `versions`, or
 * inside one of its SEMVER/ECOSYSTEM ranges (GIT ranges need the repository's history and are
 * not evaluated; OSV expands them into `versions`). Returns the fixes above the installed version.
 */
export function matchAffected(version: string, a: OsvAffected): AffectedMatch | undefined {
  const v = parseNpmVersion(version)
  const listed = (a.versions ?? []).some((listedVersion) => {
    if (listedVersion === version) return true
    const lv = v && parseNpmVersion(listedVersion)
    return Boolean(v && lv && semver.eq(v, lv))
  })
  const ranges = v ? (a.ranges ?? []).filter((r) => inRange(v, r)) : []
  if (!listed && ranges.length === 0) return undefined
  const fixes = new Set<string>()
  let lastAffected: string | undefined
  for (const r of ranges.length > 0 ? ranges : (a.ranges ?? []).filter((r) => r.type !== 'GIT')) {
    // The nearest fix above the installed version in each range that holds it.
    const above = r.events
      .filter((e): e is {fixed: string} => 'fixed' in e)
      .map((e) => e.fixed)
      .filter((f) => !v || compare(v, f) < 0)
      .sort((x, y) => semver.compare(parseNpmVersion(x)!, parseNpmVersion(y)!))
    if (above[0]) fixes.add(above[0])
    for (const e of r.events) if ('last_affected' in e) lastAffected ??= e.last_affected
  }
  return {fixedIn: [...fixes].sort((x, y) => semver.compare(parseNpmVersion(x)!, parseNpmVersion(y)!)), lastAffected}
}

function finding(record: OsvRecord, a: OsvAffected, c: NpmComponent, m: AffectedMatch, service?: string): Finding {
  const rating = rate(a.severity ?? record.severity, {...record.database_specific, ...a.database_specific})
  return {
    ...(service ? {service} : {}),
    package: c.name,
    version: c.version,
    purl: c.purl,
    id: record.id,
    aliases: record.aliases ?? [],
    ...(record.summary ? {summary: record.summary} : {}),
    severity: rating.severity,
    ...(rating.score === undefined ? {} : {score: rating.score, vector: rating.vector}),
    severitySource: rating.source,
    ...(c.paths.length > 0 ? {paths: c.paths} : {}),
    fixedIn: m.fixedIn,
    ...(m.lastAffected ? {lastAffected: m.lastAffected} : {}),
    references: (record.references ?? []).map((r) => r.url),
    modified: record.modified,
    ...(record.published ? {published: record.published} : {}),
  }
}

/** Highest severity first, then package, version and id: the order people read findings in. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    displayRank(b.severity) - displayRank(a.severity) ||
    (a.service ?? '').localeCompare(b.service ?? '') ||
    a.package.localeCompare(b.package) ||
    a.version.localeCompare(b.version) ||
    a.id.localeCompare(b.id)
  )
}

/**
 * Every vulnerability of the database that affects an npm component of the BOM, one finding per
 * package@version and record (withdrawn records were dropped when the database loaded). Pure: no
 * I/O, so deploy's admission policy and `retailops scan` give the same answer.
 */
export function matchVulnerabilities(bom: CycloneDxBom, db: OsvDatabase, options: {service?: string} = {}): Finding[] {
  const findings: Finding[] = []
  for (const c of npmComponents(bom).components) {
    for (const record of db.npm.get(c.name) ?? []) {
      // One finding per record: a record may list the package in more than one affected entry.
      for (const a of record.affected ?? []) {
        if (a.package?.ecosystem !== NPM || a.package.name !== c.name) continue
        const m = matchAffected(c.version, a)
        if (!m) continue
        findings.push(finding(record, a, c, m, options.service))
        break
      }
    }
  }
  return findings.sort(compareFindings)
}
