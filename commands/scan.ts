import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {durationFlag} from '../src/config/duration.js'
import {writeReport} from '../src/report/index.js'
import {renderScan} from '../src/supplychain/render.js'
import {renderSarif} from '../src/supplychain/sarif.js'
import {scan, type ScanResult} from '../src/supplychain/scan.js'
import {type KnownSeverity, SEVERITIES, type Threshold, THRESHOLDS} from '../src/supplychain/severity.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Scan extends RetailOpsCommand<typeof Scan> {
  static override summary =
    "Match the images' SBOMs against an OSV vulnerability database; table, --json, SARIF, --fail-on."
  static override description = [
    "Reads each service's CycloneDX SBOM (what `retailops build` writes, bound to the pushed digest) or the --sbom files, and matches",
    'their npm packages against an OSV database: a folder of OSV JSON records, or the ecosystem zip OSV publishes, from --db or',
    'supplyChain.vulnerabilityDatabase. Ranges are evaluated as the OSV schema specifies (introduced, fixed, last_affected, limit, and',
    "the versions list), in npm's semantic-version order; withdrawn records are ignored. Severity comes from the record's CVSS v4, v3",
    "or v2 vector (base score, CVSS's ranges), else the database's own rating (GHSA's database_specific.severity), else unknown.",
    '--fail-on SEVERITY exits 26 when a finding is at or above it; unknown severities count as critical unless --unknown-as says',
    'otherwise. A database with bad records exits 27 naming them, never a clean result. The database cannot be fetched by retailops:',
    `download it where there is internet access (curl -fsSL -o osv-npm.zip https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip)`,
    'and cache or commit it for CI; scan warns when its newest record is older than --max-db-age (supplyChain.vulnerabilityDatabaseMaxAge, default 7d).',
    'The first read of a zip also indexes it by package ($RETAILOPS_CACHE_DIR/osv, else $XDG_CACHE_HOME/retailops/osv or ~/.cache/retailops/osv):',
    'later scans and deploys of the same, unchanged file read only their packages from the index.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'VULNERABILITIES_FOUND',
    'VULNERABILITY_DATABASE_INVALID',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> --db osv-npm.zip',
    '<%= config.bin %> <%= command.id %> checkout payments --fail-on high',
    '<%= config.bin %> <%= command.id %> --fail-on critical --sarif retailops-scan.sarif --json',
    '<%= config.bin %> <%= command.id %> --sbom image.cdx.json --db ./osv/',
  ]
  static override strict = false
  static override args = {
    services: Args.string({
      description: 'Services whose SBOMs to scan (default: every service, unless --sbom is given).',
    }),
  }
  static override flags = {
    sbom: Flags.string({
      description: 'Scan this CycloneDX JSON SBOM (repeatable); works without retailops.yaml.',
      helpValue: '<file>',
      multiple: true,
    }),
    db: Flags.string({
      description:
        'OSV database: a folder of OSV JSON records or the OSV ecosystem zip (default: supplyChain.vulnerabilityDatabase).',
      helpValue: '<path>',
    }),
    'fail-on': Flags.string({
      description: 'Exit 26 (VULNERABILITIES_FOUND) when a finding is at or above this severity.',
      options: [...THRESHOLDS],
    }),
    'unknown-as': Flags.string({
      description: 'How --fail-on rates findings whose records give no severity.',
      options: [...SEVERITIES],
      default: 'critical',
    }),
    'max-db-age': Flags.string({
      description:
        "Warn when the database's newest record is older than this (default: supplyChain.vulnerabilityDatabaseMaxAge, 7d).",
      helpValue: '<duration>',
    }),
    sarif: Flags.string({
      description: 'Also write the findings as SARIF 2.1.0 (GitHub code scanning) to this file.',
      helpValue: '<file>',
    }),
  }

  async run(): Promise<ScanResult & {sarif?: string}> {
    const f = this.flags
    const maxAgeMs = durationFlag('max-db-age', f['max-db-age'])
    const project = await this.loadProject().catch((error: {exit?: string}) => {
      if (error.exit === 'NOT_FOUND' && f.sbom && this.positionals.length === 0) return undefined
      throw error
    })
    const result = await scan(
      {
        project,
        services: this.positionals.filter(Boolean),
        sbomFiles: f.sbom ?? [],
        database: f.db,
        maxAgeMs,
        failOn: f['fail-on'] as Threshold | undefined,
        unknownAs: f['unknown-as'] as KnownSeverity,
      },
      this.ctx,
    )
    let sarif: string | undefined
    if (f.sarif) {
      const log = await renderSarif(result, {projectDir: project?.dir, toolVersion: this.config.version})
      sarif = await writeReport(f.sarif, `${JSON.stringify(log, null, 2)}\n`)
      this.ctx.out.info(`SARIF written to ${sarif}`)
    }
    this.log(renderScan(result))
    if (result.gate && !result.gate.pass) this.setOutcome('VULNERABILITIES_FOUND')
    return {...result, ...(sarif ? {sarif} : {})}
  }
}
