import * as Flags from '@oclif/core/flags'

import {type SweepResult, sweepPreviews} from '../../src/env/manage.js'
import {renderSweepSchedule, renderSwept} from '../../src/env/render.js'
import {scheduleSweep, type SweepScheduleResult, unscheduleSweep} from '../../src/env/schedule.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {runnerImageFlag} from '../_base/flags.js'

export default class EnvSweep extends RetailOpsCommand<typeof EnvSweep> {
  static override summary =
    'Delete every expired preview environment of the project (and only those); or schedule that in the cluster.'
  static override description = [
    "Deletes the namespace of each of this project's previews whose expiry has passed; previews with time left, and any whose expiry cannot be read, are kept.",
    "--schedule CRON instead creates a CronJob in the environment's namespace that runs the sweep with the runner image by digest (verified first),",
    'as a ServiceAccount that may only delete namespaces of this project’s previews (a ValidatingAdmissionPolicy enforces what RBAC cannot).',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'SIGNATURE',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --schedule "*/15 * * * *"',
    '<%= config.bin %> <%= command.id %> --unschedule',
  ]
  static override flags = {
    'dry-run': Flags.boolean({
      description: 'List what would be deleted; delete nothing.',
      exclusive: ['schedule', 'unschedule'],
    }),
    schedule: Flags.string({
      description:
        'Instead of sweeping now, create a CronJob that sweeps on this cron schedule (five fields, or @hourly, @daily, …).',
      exclusive: ['unschedule'],
    }),
    'time-zone': Flags.string({
      description: 'IANA time zone of --schedule (default Etc/UTC).',
      dependsOn: ['schedule'],
    }),
    'runner-image': runnerImageFlag('Runner image the sweep CronJob runs', {dependsOn: ['schedule']}),
    unschedule: Flags.boolean({description: "Delete the sweep's CronJob, its configuration and its permissions."}),
  }

  async run(): Promise<
    | ({action: 'sweep'} & SweepResult)
    | ({action: 'schedule'} & SweepScheduleResult)
    | {action: 'unschedule'; removed: string[]}
  > {
    const project = await this.loadProject()
    const env = this.target(project)
    const f = this.flags
    if (f.unschedule) {
      const removed = await unscheduleSweep(project, env)
      this.log(removed.length ? `Removed ${removed.join(', ')}.` : 'No scheduled sweep.')
      return {action: 'unschedule', removed}
    }
    if (f.schedule !== undefined) {
      const s = await scheduleSweep(
        {project, env, cron: f.schedule, timeZone: f['time-zone'], runnerImage: f['runner-image']},
        this.ctx,
      )
      this.log(renderSweepSchedule(s))
      return {action: 'schedule', ...s}
    }
    const result = await sweepPreviews({project, env, dryRun: f['dry-run']}, this.ctx)
    this.log(renderSwept(result))
    return {action: 'sweep', ...result}
  }
}
