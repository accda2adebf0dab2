import {makeChalk} from '../ui/terminal.js'
import {renderTable} from '../ui/table.js'
import type {Finding} from './match.js'
import type {ScanResult} from './scan.js'
import type {Severity} from './severity.js'

const ORDER: Severity[] = ['unknown', 'critical', 'high', 'medium', 'low', 'none']

function severityCell(f: Finding): string {
  const c = makeChalk()
  const text = f.score === undefined ? f.severity : `${f.severity} ${f.score.toFixed(1)}`
  if (f.severity === 'critical' || f.severity === 'high') return c.red(text)
  if (f.severity === 'medium' || f.severity === 'unknown') return c.yellow(text)
  return text
}

function fixedCell(f: Finding): string {
  if (f.fixedIn.length > 0) return f.fixedIn.join(', ')
  return f.lastAffected ? `none (last affected ${f.lastAffected})` : 'none'
}

/** The terminal rendering of `retailops scan`: findings table, then counts, database age and the gate. */
export function renderScan(result: ScanResult): string {
  const lines: string[] = []
  const db = result.database
  if (result.findings.length > 0) {
    lines.push(
      renderTable(result.findings, [
        {header: 'SERVICE', value: (f) => f.service ?? '–'},
        {header: 'PACKAGE', value: (f) => f.package},
        {header: 'INSTALLED', value: (f) => f.version},
        {header: 'VULNERABILITY', value: (f) => f.id},
        {header: 'ALIASES', value: (f) => f.aliases.join(', ') || '–'},
        {header: 'SEVERITY', value: severityCell},
        {header: 'FIXED IN', value: fixedCell},
        ...(result.findings.some((f) => f.waiver)
          ? [
              {
                header: 'WAIVED',
                value: (f: Finding) =>
                  f.waiver ? (f.waiver.expired ? `expired ${f.waiver.expires}` : `until ${f.waiver.expires}`) : '–',
              },
            ]
          : []),
      ]),
      '',
    )
  }
  const packages = result.targets.reduce((n, t) => n + t.packages, 0)
  const scanned = result.targets.map((t) => t.service ?? t.sbomFile).join(', ')
  const counts = ORDER.filter((s) => result.counts[s] > 0).map((s) => `${result.counts[s]} ${s}`)
  lines.push(
    result.findings.length === 0
      ? `No known vulnerabilities in ${packages} npm package${packages === 1 ? '' : 's'} of ${scanned}.`
      : `${result.findings.length} vulnerabilit${result.findings.length === 1 ? 'y' : 'ies'} (${counts.join(', ')}) in ${packages} npm package${packages === 1 ? '' : 's'} of ${scanned}.`,
  )
  const notScanned = result.targets.flatMap((t) => t.notScanned)
  if (notScanned.length > 0)
    lines.push(
      `Not matched (not npm packages; the OSV npm database does not cover them): ${[...new Set(notScanned)].join(', ')}.`,
    )
  lines.push(
    `Database: ${db.path} (${db.format}, ${db.records} record${db.records === 1 ? '' : 's'}, ${db.withdrawn} withdrawn; newest record ${db.newestRecord}, ${db.age} old${db.stale ? `, STALE: over ${db.maxAge}` : ''}).`,
  )
  if (result.gate) {
    const c = makeChalk()
    lines.push(
      result.gate.pass
        ? c.green(`--fail-on ${result.gate.failOn}: passed (nothing at or above ${result.gate.failOn}).`)
        : c.red(
            `--fail-on ${result.gate.failOn}: ${result.gate.failing} finding${result.gate.failing === 1 ? '' : 's'} at or above ${result.gate.failOn} (unknown severities count as ${result.gate.unknownAs}).`,
          ),
    )
    if (result.gate.waived > 0)
      lines.push(
        `${result.gate.waived} finding${result.gate.waived === 1 ? '' : 's'} at or above ${result.gate.failOn} waived (${result.waiversFile}).`,
      )
  }
  for (const w of result.expiredWaivers)
    lines.push(
      makeChalk().yellow(`Expired waiver: ${w.id} for ${w.service} expired on ${w.expires}; it waives nothing.`),
    )
  return lines.join('\n')
}
