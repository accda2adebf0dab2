import * as Flags from '@oclif/core/flags'

import {runRestore} from '../../src/capacity/prewarm.js'
import {renderRestore} from '../../src/capacity/render.js'
import type {RestoreResult} from '../../src/capacity/restore.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {releaseEvents} from '../../src/notify/events.js'

export default class PrewarmRestore extends RetailOpsCommand<typeof PrewarmRestore> {
  static override summary =
    'Put back exactly what `retailops prewarm` changed for a campaign, and remove its placeholders.'
  static override description = [
    'Reads the values saved in the ConfigMap retailops-prewarm-<campaign> (written before the pre-warm changed anything, so this works after a crash half-way too),',
    "puts back each HPA's minReplicas, maxReplicas and behavior exactly as they were (removing fields that were absent), deletes the placeholder Deployments and the",
    'PriorityClass the pre-warm created, verifies, and only then deletes the saved state. Running it again is a no-op that says so.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'DEPLOY_FAILED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['prewarm.restored'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> --campaign black-friday',
    '<%= config.bin %> <%= command.id %> --campaign black-friday --namespace shop --json',
  ]
  static override flags = {
    campaign: Flags.string({char: 'c', description: 'Campaign whose pre-warm is undone.', required: true}),
    unschedule: Flags.boolean({
      description: "Also delete the campaign's CronJobs (the scheduled restore passes this).",
    }),
  }

  async run(): Promise<RestoreResult & {unscheduled?: string[]}> {
    const project = await this.loadProject()
    const result = await runRestore(
      {project, env: this.target(project), campaign: this.flags.campaign, unschedule: this.flags.unschedule},
      this.ctx,
    )
    this.log(renderRestore(result))
    if (result.unscheduled?.length) this.log(`Removed ${result.unscheduled.join(', ')}.`)
    return result
  }
}
