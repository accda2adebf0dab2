import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {UsageError} from '../src/errors/index.js'
import {writeReport} from '../src/report/index.js'
import {renderSloHtml, renderSloTable} from '../src/slo/render.js'
import {prometheusUrlFor, type SloReport, sloStatus} from '../src/slo/status.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {prometheusFlag} from './_base/flags.js'
import {releaseEvents} from '../src/notify/events.js'

export default class Slo extends RetailOpsCommand<typeof Slo> {
  static override summary =
    'SLO status: SLI over each SLO window, error budget left, multi-window burn rates, and a release gate.'
  static override description = [
    'For each SLO in retailops.yaml (availability, latency and ratio SLIs such as checkout success), queries Prometheus in parallel for the SLI over the SLO window,',
    "the error budget remaining, and burn rates on the SRE workbook's pairs (1h/5m and 6h/30m page; 1d/2h and 3d/6h ticket).",
    'Status is ok, ticket, page, exhausted, or no-data (missing data is never shown as met). --gate exits 50 when a budget is exhausted or a page-level burn is on.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'SLO_GATE', 'INTERRUPTED'] as const
  static override releaseEvents = releaseEvents(['slo.gate-closed'])
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout payments --gate',
    '<%= config.bin %> <%= command.id %> --html slo-report.html',
    '<%= config.bin %> <%= command.id %> --json --at 2026-11-27T12:00:00Z',
  ]
  static override strict = false
  static override args = {
    services: Args.string({description: 'Services to report on (default: all with SLOs).'}),
  }
  static override flags = {
    gate: Flags.boolean({
      description: 'Exit 50 (SLO_GATE) when an error budget is exhausted or a page-level burn is on.',
    }),
    'fail-on-missing': Flags.boolean({description: 'With --gate, also fail when an SLO has no data.'}),
    html: Flags.string({description: 'Also write a self-contained HTML report (burn timeline, charts) to this file.'}),
    at: Flags.string({description: 'Evaluate at this time (RFC 3339) instead of now.'}),
    prometheus: prometheusFlag,
    concurrency: Flags.integer({description: 'Queries in flight at once.', default: 8, min: 1, max: 64}),
    'all-namespaces': Flags.boolean({
      description: "Count every namespace's series, not only the environment's namespace (label `namespace`).",
    }),
  }

  async run(): Promise<SloReport> {
    const project = await this.loadProject()
    const env = this.target(project)
    const f = this.flags
    const services = this.positionals.filter(Boolean)
    let at: Date | undefined
    if (f.at) {
      at = new Date(f.at)
      if (Number.isNaN(at.getTime()))
        throw new UsageError(`--at ${f.at}: expected an RFC 3339 time such as 2026-11-27T12:00:00Z.`)
    }
    const report = await sloStatus(
      {
        config: project.config,
        prometheusUrl: prometheusUrlFor(f.prometheus ?? env.prometheus),
        services,
        at,
        concurrency: f.concurrency,
        history: Boolean(f.html),
        failOnMissing: f['fail-on-missing'],
        namespace: f['all-namespaces'] ? undefined : env.namespace,
        announceGate: f.gate,
      },
      this.ctx,
    )
    if (f.html) {
      const file = await writeReport(f.html, renderSloHtml(report))
      this.ctx.out.info(`HTML report written to ${file}`)
    }
    this.log(renderSloTable(report))
    if (f.gate && !report.gate.pass) this.setOutcome('SLO_GATE')
    return report
  }
}
