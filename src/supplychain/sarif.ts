import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import type {Finding} from './match.js'
import type {ScanResult} from './scan.js'
import type {Severity} from './severity.js'

// SARIF 2.1.0 (OASIS), as GitHub code scanning reads it: one rule per vulnerability id with help
// text and a `security-severity` (GitHub's severity comes from that number: >= 9.0 critical, 7.0
// high, 4.0 medium, above 0 low), one result per service, package and vulnerability, located at the
// package's entry in the lockfile it was installed from.

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json'

export interface SarifLog {
  $schema: string
  version: '2.1.0'
  runs: SarifRun[]
}

interface SarifMessage {
  text: string
  markdown?: string
}

interface SarifRule {
  id: string
  name: string
  shortDescription: SarifMessage
  fullDescription: SarifMessage
  help: SarifMessage
  helpUri: string
  defaultConfiguration: {level: SarifLevel}
  properties: {'security-severity'?: string; tags: string[]; precision: 'very-high'}
}

type SarifLevel = 'error' | 'warning' | 'note'

interface SarifResult {
  ruleId: string
  ruleIndex: number
  level: SarifLevel
  message: SarifMessage
  locations: {
    physicalLocation: {
      artifactLocation: {uri: string; uriBaseId: string}
      region: {startLine: number}
    }
  }[]
  partialFingerprints: Record<string, string>
  /** A finding a current waiver covers: suppressed (code scanning shows it as dismissed), with the waiver's reason. */
  suppressions?: {kind: 'external'; status: 'accepted'; justification: string}[]
  properties: Record<string, unknown>
}

interface SarifRun {
  tool: {driver: {name: string; version: string; semanticVersion: string; rules: SarifRule[]}}
  automationDetails: {id: string}
  results: SarifResult[]
  properties: Record<string, unknown>
}

/**
 * The number GitHub turns into a severity: the CVSS base score when there is one; a database's own
 * word or an unknown rating gets the middle of its range (unknown as high: code scanning has no
 * "unknown", and nothing rated it harmless).
 */
function securitySeverity(f: Finding): string | undefined {
  if (f.score !== undefined) return f.score.toFixed(1)
  const middle: Record<Severity, string | undefined> = {
    critical: '9.5',
    high: '8.0',
    medium: '5.5',
    low: '2.0',
    none: undefined,
    unknown: '8.0',
  }
  return middle[f.severity]
}

function level(severity: Severity): SarifLevel {
  if (severity === 'critical' || severity === 'high' || severity === 'unknown') return 'error'
  if (severity === 'medium') return 'warning'
  return 'note'
}

function advisoryUrl(f: Finding): string {
  return f.references.find((r) => r.includes(f.id)) ?? `https://osv.dev/vulnerability/${encodeURIComponent(f.id)}`
}

function severityText(f: Finding): string {
  if (f.score !== undefined) return `${f.severity} (CVSS ${f.score.toFixed(1)}, ${f.vector})`
  if (f.severitySource === 'database_specific') return `${f.severity} (the database's rating; no CVSS vector)`
  return 'unknown (no CVSS vector and no rating in the record)'
}

function fixText(f: Finding): string {
  if (f.fixedIn.length > 0) return `Upgrade ${f.package} to ${f.fixedIn.join(' or ')} or later.`
  if (f.lastAffected) return `No fixed version is recorded; ${f.lastAffected} is the last affected one.`
  return 'No fixed version is known: remove the package or accept the risk with a waiver.'
}

function rule(f: Finding): SarifRule {
  const title = f.summary ?? `${f.id} in ${f.package}`
  const ids = [f.id, ...f.aliases].join(', ')
  const text = [
    `${title}`,
    `Identifiers: ${ids}.`,
    `Severity: ${severityText(f)}.`,
    fixText(f),
    ...f.references.slice(0, 5).map((r) => `See ${r}`),
  ].join('\n')
  const markdown = [
    `**${title}**`,
    '',
    `Identifiers: ${[f.id, ...f.aliases].map((i) => `\`${i}\``).join(', ')}`,
    '',
    `Severity: ${severityText(f)}`,
    '',
    fixText(f),
    '',
    ...f.references.slice(0, 5).map((r) => `- ${r}`),
  ].join('\n')
  const severity = securitySeverity(f)
  return {
    id: f.id,
    name: `vulnerable-dependency/${f.id}`,
    shortDescription: {text: `${f.id}: ${title}`.slice(0, 1024)},
    fullDescription: {text: f.summary ?? `${f.id} affects the npm package ${f.package}.`},
    help: {text, markdown},
    helpUri: advisoryUrl(f),
    defaultConfiguration: {level: level(f.severity)},
    properties: {
      ...(severity ? {'security-severity': severity} : {}),
      tags: ['security', 'vulnerability', 'dependency', `severity:${f.severity}`],
      precision: 'very-high',
    },
  }
}

/**
 * The line of the package's entry in an npm lockfile (v2/v3 `"node_modules/<name>": {`): the path
 * the SBOM names when it has one (a nested copy), else the first entry of that name; else 1.
 */
export function lockfileLine(lockText: string | undefined, pkg: string, paths: string[] = []): number {
  if (!lockText) return 1
  const lines = lockText.split('\n')
  const find = (test: (line: string) => boolean) =>
    lines.findIndex((line) => line.trimStart().startsWith('"') && test(line))
  let at = paths.length > 0 ? find((line) => line.includes(`"${paths[0]}": {`)) : -1
  if (at < 0) at = find((line) => line.includes(`node_modules/${pkg}": {`))
  return at >= 0 ? at + 1 : 1
}

/** The folder SARIF paths are relative to: the git repository's top (what code scanning checks out), else the project. */
export function repositoryRoot(dir: string): string {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, '.git'))) return d
    if (path.dirname(d) === d) return path.resolve(dir)
  }
}

export interface SarifOptions {
  /** The project folder (lockfiles in the result are relative to it); default the working directory. */
  projectDir?: string
  toolVersion: string
}

/** The scan result as a SARIF 2.1.0 log for GitHub code scanning (and any other SARIF reader). */
export async function renderSarif(result: ScanResult, options: SarifOptions): Promise<SarifLog> {
  const projectDir = path.resolve(options.projectDir ?? process.cwd())
  const root = repositoryRoot(projectDir)
  const lockTexts = new Map<string, string | undefined>()
  for (const t of result.targets) {
    if (!t.lockfile || lockTexts.has(t.lockfile)) continue
    lockTexts.set(t.lockfile, await readFile(path.resolve(projectDir, t.lockfile), 'utf8').catch(() => undefined))
  }
  const rules: SarifRule[] = []
  const ruleIndex = new Map<string, number>()
  const results: SarifResult[] = []
  for (const f of result.findings) {
    let index = ruleIndex.get(f.id)
    if (index === undefined) {
      index = rules.push(rule(f)) - 1
      ruleIndex.set(f.id, index)
    }
    const target = result.targets.find((t) => t.service === f.service && (f.service || !t.service))
    const file = target?.lockfile ?? target?.sbomFile ?? 'package-lock.json'
    const uri = path.relative(root, path.resolve(projectDir, file)).split(path.sep).join('/')
    const where = f.service ? `service ${f.service}` : (target?.sbomFile ?? 'the SBOM')
    results.push({
      ruleId: f.id,
      ruleIndex: index,
      level: level(f.severity),
      message: {
        text: `${f.package}@${f.version} in ${where} is affected by ${[f.id, ...f.aliases].join(' / ')} (${f.severity}). ${fixText(f)}`,
      },
      locations: [
        {
          physicalLocation: {
            artifactLocation: {uri, uriBaseId: '%SRCROOT%'},
            region: {
              startLine: target?.lockfile ? lockfileLine(lockTexts.get(target.lockfile), f.package, f.paths) : 1,
            },
          },
        },
      ],
      partialFingerprints: {
        'retailopsFinding/v1': createHash('sha256')
          .update([f.service ?? '', f.package, f.version, f.id].join('\0'))
          .digest('hex'),
      },
      properties: {
        service: f.service,
        package: f.package,
        installedVersion: f.version,
        purl: f.purl,
        fixedIn: f.fixedIn,
        aliases: f.aliases,
        severity: f.severity,
        ...(f.waiver ? {waiver: f.waiver} : {}),
      },
      ...(f.waiver && !f.waiver.expired
        ? {
            suppressions: [
              {
                kind: 'external' as const,
                status: 'accepted' as const,
                justification: `waived for ${f.waiver.service} until ${f.waiver.expires}: ${f.waiver.reason}`,
              },
            ],
          }
        : {}),
    })
  }
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'retailops',
            version: options.toolVersion,
            semanticVersion: options.toolVersion,
            rules,
          },
        },
        automationDetails: {id: 'retailops-scan/'},
        results,
        properties: {
          database: result.database.path,
          databaseNewestRecord: result.database.newestRecord,
          databaseStale: result.database.stale,
        },
      },
    ],
  }
}
