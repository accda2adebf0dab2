import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {type HistoryResult, readHistory, showDrill} from '../../src/dr/cluster-history.js'
import {renderDrillSummary, renderHistory, renderSchedules, renderTrends} from '../../src/dr/render.js'
import {writeHistoryReport} from '../../src/dr/history-report.js'
import type {DrillRecord} from '../../src/dr/types.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class DrHistory extends RetailOpsCommand<typeof DrHistory> {
  static override summary = 'List past restore drills and the scheduled ones, or show one.'
  static override description = [
    "Reads the drill records kept in .retailops/drills/ next to retailops.yaml and those drills that ran in the cluster kept in ConfigMaps in the environment's namespace,",
    'newest first, and lists the drills scheduled there (`dr drill --schedule`) with their next run. With a drill id, shows that drill (--json: its whole record);',
    'one kept in the cluster is copied into .retailops/drills/<id>/ first.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --datastore orders-db --limit 5',
    '<%= config.bin %> <%= command.id %> 20260509-120301-7f3a --json',
    '<%= config.bin %> <%= command.id %> --no-cluster',
    '<%= config.bin %> <%= command.id %> --datastore orders-db --limit 50 --html drills.html',
  ]
  static override args = {id: Args.string({description: 'A drill id: show that drill.'})}
  static override flags = {
    limit: Flags.integer({description: 'At most this many drills.', default: 20, min: 1}),
    service: Flags.string({description: 'Only drills that covered this service.'}),
    datastore: Flags.string({description: 'Only drills that covered this datastore.'}),
    status: Flags.string({
      description: 'Only drills that ended so.',
      options: ['passed', 'target-missed', 'validation-failed', 'error', 'interrupted'],
    }),
    html: Flags.string({
      description:
        "Also write an HTML report of each datastore's RTO and RPO over the drills listed (line charts against the targets) to this file.",
    }),
    cluster: Flags.boolean({
      description:
        "Also read the drills kept and scheduled in the environment's namespace (--no-cluster: only the files here).",
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<HistoryResult | DrillRecord> {
    const project = await this.loadProject()
    const environment = this.target(project)
    if (this.args.id) {
      const record = await showDrill({project, environment, id: this.args.id, cluster: this.flags.cluster}, this.ctx)
      this.log(renderDrillSummary(record))
      return record
    }
    const result = await readHistory(
      {
        project,
        environment,
        cluster: this.flags.cluster,
        filter: {
          limit: this.flags.limit,
          service: this.flags.service,
          datastore: this.flags.datastore,
          status: this.flags.status,
        },
      },
      this.ctx,
    )
    for (const file of result.unreadable) this.warnUser(`${file} is not a readable drill record; skipped.`)
    this.log(renderHistory(result.drills))
    const trends = renderTrends(result.trends)
    if (trends) this.log(`\n${trends}`)
    if (this.flags.html) {
      await writeHistoryReport(this.flags.html, result.trends, project.config.project)
      this.log(`\nTrend report: ${this.flags.html}`)
    }
    const schedules = renderSchedules(result.scheduled)
    if (schedules) this.log(`\n${schedules}`)
    return result
  }
}
