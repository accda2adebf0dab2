import * as Flags from '@oclif/core/flags'

import {planOnly} from '../../src/dr/plan-only.js'
import {allowSourceServerReason, type DrillPlan} from '../../src/dr/plan.js'
import {renderDrillPlan} from '../../src/dr/render.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {drillSelectionFlags} from '../_base/flags.js'

export default class DrPlan extends RetailOpsCommand<typeof DrPlan> {
  static override summary =
    'Show what a restore drill would do, with its targets and checks, without touching anything.'
  static override description = [
    'Reads retailops.yaml and the environment only: no connection is opened and nothing is written.',
    "Lists each selected datastore's source, the drill target it would create, its steps, RTO and RPO targets and validations, the recoverability checks,",
    'and every problem that would stop the drill before its first write.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'REFUSED'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --tier revenue-critical --json',
  ]
  static override flags = {
    ...drillSelectionFlags,
    recoverability: Flags.boolean({description: 'Include the recoverability checks.', default: true, allowNo: true}),
  }

  async run(): Promise<DrillPlan> {
    const project = await this.loadProject()
    const plan = planOnly({
      project,
      environment: this.target(project),
      filters: {tiers: this.flags.tier, services: this.flags.service, datastores: this.flags.datastore},
      recoverability: this.flags.recoverability,
      allowSourceServer: allowSourceServerReason(this.flags['allow-source-server']),
    })
    this.log(renderDrillPlan(plan))
    if (plan.problems.length > 0) this.setOutcome('CONFIG')
    else if (plan.refusals.length > 0) this.setOutcome('REFUSED')
    return plan
  }
}
