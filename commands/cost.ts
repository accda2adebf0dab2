import * as Flags from '@oclif/core/flags'

import {parseDuration} from '../src/config/duration.js'
import {AGGREGATIONS, type CostReport, parseAggregation, runCost, type UsageMode} from '../src/cost/cost.js'
import {renderCostCsv, renderCostHtml, renderCostTable} from '../src/cost/render.js'
import {UsageError} from '../src/errors/index.js'
import {writeReport} from '../src/report/index.js'
import {redact} from '../src/ui/secrets.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {prometheusFlag} from './_base/flags.js'

export default class Cost extends RetailOpsCommand<typeof Cost> {
  static override summary =
    "Allocate the cluster's cost to services, tenants, tiers, namespaces and node pools, with idle cost, efficiency and savings."
  static override description = [
    "OpenCost's model: each container costs max(request, usage) × the hourly CPU and RAM price of its node's pool (prices.pools, prices.instanceTypes, prices.default; spot nodes get prices.spotDiscount)",
    'for the hours it ran in the window. Usage comes from Prometheus (container_cpu_usage_seconds_total, container_memory_working_set_bytes) or the metrics API when present, else requests are used; the report says which.',
    'Node cost not allocated is idle: shown as __idle__, or shared with --share-idle. Findings from the cost table (always-on excess capacity, overprovisioned requests and node pools,',
    'idle non-production namespaces, batch work on on-demand nodes) come with an estimated monthly saving.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --window 7d --by namespace,service',
    '<%= config.bin %> <%= command.id %> --by tenant --share-idle',
    '<%= config.bin %> <%= command.id %> --format csv > cost.csv',
    '<%= config.bin %> <%= command.id %> --window 7d --html cost-report.html',
    '<%= config.bin %> <%= command.id %> --by label:team --json',
  ]
  static override flags = {
    window: Flags.string({char: 'w', description: 'How far back to allocate, e.g. 24h or 7d.', default: '24h'}),
    by: Flags.string({
      description: `Aggregation of the main table, comma-separated: ${AGGREGATIONS.join(', ')}, or label:<key>.`,
      default: 'service',
    }),
    'share-idle': Flags.boolean({
      description: 'Share idle cost onto the allocations instead of showing it as __idle__.',
    }),
    'share-split': Flags.string({
      description: "How --share-idle splits idle: weighted by each allocation's CPU and RAM cost, or even.",
      options: ['weighted', 'even'],
      default: 'weighted',
    }),
    usage: Flags.string({
      description: 'Usage source: auto (Prometheus, then the metrics API, then requests), or force one.',
      options: ['auto', 'prometheus', 'metrics-api', 'requests'],
      default: 'auto',
    }),
    format: Flags.string({
      description: 'Output on stdout: a table, or CSV of the allocations.',
      options: ['table', 'csv'],
      default: 'table',
    }),
    html: Flags.string({description: 'Also write a self-contained HTML report with charts to this file.'}),
    'node-selector': Flags.string({
      char: 'l',
      description: 'Only nodes matching this label selector (and the pods on them), e.g. retailops.dev/pool=general.',
    }),
    prometheus: prometheusFlag,
  }

  async run(): Promise<CostReport> {
    const project = await this.loadProject()
    const env = this.target(project)
    const f = this.flags
    const windowMs = parseDuration(f.window)
    if (windowMs === undefined || windowMs < 60_000)
      throw new UsageError(`--window ${f.window}: expected a duration of at least 1m, such as 24h or 7d.`)
    const by = parseAggregation([f.by])
    const report = await runCost(
      {
        config: project.config,
        kube: {context: env.context, kubeconfig: env.kubeconfig},
        prometheusUrl: f.prometheus ?? env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL,
        windowMs,
        window: f.window,
        by,
        shareIdle: f['share-idle'] ? (f['share-split'] as 'weighted' | 'even') : 'none',
        usage: f.usage as UsageMode,
        namespace: f.namespace,
        nodeSelector: f['node-selector'],
      },
      this.ctx,
    )
    if (f.html) {
      const file = await writeReport(f.html, renderCostHtml(report))
      this.ctx.out.info(`HTML report written to ${file}`)
    }
    if (f.format === 'csv') {
      if (!this.jsonEnabled()) process.stdout.write(redact(renderCostCsv(report)))
    } else {
      this.log(renderCostTable(report))
    }
    return report
  }
}
