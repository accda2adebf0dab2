import {Flags} from '@oclif/core'

import {runDrill} from '../../src/dr/drill.js'
import {allowSourceServerReason} from '../../src/dr/plan.js'
import {renderDrillSummary} from '../../src/dr/render.js'
import type {DrillRecord} from '../../src/dr/types.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {drillSelectionFlags} from '../_base/flags.js'

export default class DrDrill extends RetailOpsCommand<typeof DrDrill> {
  static override summary = 'Run a restore drill: restore backups into isolated targets, validate them, and measure RTO and RPO against the tier targets.'
  static override description = [
    'Every selected datastore is restored into a drill-named target (retailops_drill_<id>_<name> databases, retailops-drill-<id>-<name> namespaces, new AWS resources) that never overlaps a source,',
    'validated, and cleaned up even when the drill fails or is interrupted. RTO runs from the drill\'s start to the validated copy; RPO from the restored data\'s newest point to the start.',
    'The recoverability checks (images pullable by digest, Secrets and ConfigMaps present, topic and search-index definitions kept) run alongside.',
    'The record and Markdown and HTML reports go to .retailops/drills/<id>/.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION', 'REFUSED', 'DR_TARGET_MISSED', 'DR_VALIDATION_FAILED', 'INTERRUPTED'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --tier revenue-critical --json',
    '<%= config.bin %> <%= command.id %> --service orders --datastore orders-db --no-recoverability',
  ]
  static override flags = {
    ...drillSelectionFlags,
    recoverability: Flags.boolean({description: 'Run the recoverability checks (images, Secrets, ConfigMaps, topics, search indexes).', default: true, allowNo: true}),
    concurrency: Flags.integer({description: 'Datastores restored at once.', default: 4, min: 1, max: 16}),
  }

  async run(): Promise<DrillRecord> {
    const project = await this.loadProject()
    const record = await runDrill(
      {
        project,
        environment: this.target(project),
        filters: {tiers: this.flags.tier, services: this.flags.service, datastores: this.flags.datastore},
        recoverability: this.flags.recoverability,
        concurrency: this.flags.concurrency,
        allowSourceServer: allowSourceServerReason(this.flags['allow-source-server']),
      },
      this.ctx,
    )
    this.log(renderDrillSummary(record))
    if (record.exit !== 'OK') this.setOutcome(record.exit)
    return record
  }
}
