import * as Flags from '@oclif/core/flags'

import {renderSleep, renderSleepSchedule} from '../src/sleep/render.js'
import {scheduleSleep, type SleepScheduleResult, unscheduleSleep} from '../src/sleep/schedule.js'
import {refuseProduction, type SleepResult, sleepEnvironment} from '../src/sleep/sleep.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {runnerImageFlag} from './_base/flags.js'

export type SleepCommandResult =
  | SleepResult
  | ({action: 'schedule'} & SleepScheduleResult)
  | {action: 'unschedule'; environment: string; removed: string[]}

export default class Sleep extends RetailOpsCommand<typeof Sleep> {
  static override summary = "Scale a non-production environment's workloads to zero, now or outside working hours."
  static override description = [
    "Saves every Deployment's replicas and every HPA's minReplicas and maxReplicas of the project in the environment's namespaces (its own and its dedicated-namespace tenants')",
    'in the ConfigMap retailops-sleep-state, before changing anything (sleeping again never overwrites what was saved), then scales the Deployments to 0.',
    'HPAs stay in place: the HPA controller does not scale a target at 0 replicas, and resumes when `retailops wake` puts the replicas back exactly as saved.',
    'KEDA ScaledObjects are paused at 0 replicas (autoscaling.keda.sh/paused-replicas) first, since KEDA would scale a Deployment at 0 back up; their annotation as it was is saved too.',
    'Production environments (environments.<name>.production not false) are refused.',
    '--at "DAYS SLEEP-WAKE" instead creates two CronJobs that run `retailops sleep` and `retailops wake` in the cluster at those times (--timezone), with the runner image by digest.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'SIGNATURE',
    'DEPLOY_FAILED',
    'REFUSED',
    'PRODUCTION_REFUSED',
    'WAKE_INCOMPLETE',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> --environment staging',
    '<%= config.bin %> <%= command.id %> --environment staging --at "Mon-Fri 20:00-07:00" --timezone Europe/Berlin',
    '<%= config.bin %> <%= command.id %> --environment staging --unschedule',
    '<%= config.bin %> wake --environment staging',
  ]
  static override flags = {
    at: Flags.string({
      description:
        'DAYS SLEEP-WAKE: put the environment to sleep at SLEEP and wake it at WAKE on those days, e.g. "Mon-Fri 20:00-07:00" (asleep weeknights and the weekend), "daily 22:00-06:00".',
      exclusive: ['unschedule'],
    }),
    timezone: Flags.string({
      description: 'IANA time zone of --at (default Etc/UTC), e.g. Europe/Berlin.',
      aliases: ['time-zone'],
      dependsOn: ['at'],
    }),
    'runner-image': runnerImageFlag('Runner image the sleep and wake CronJobs run', {dependsOn: ['at']}),
    unschedule: Flags.boolean({
      description:
        "Delete the environment's sleep and wake CronJobs and their permissions (an asleep environment stays asleep: wake it).",
    }),
  }

  async run(): Promise<SleepCommandResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const f = this.flags
    if (f.unschedule) {
      refuseProduction(env, 'sleep --unschedule')
      const removed = await unscheduleSleep(project, env)
      this.log(removed.length ? `Removed ${removed.join(', ')}.` : `No sleep schedule for ${env.name}.`)
      return {action: 'unschedule', environment: env.name, removed}
    }
    if (f.at !== undefined) {
      const schedule = await scheduleSleep(
        {project, env, at: f.at, timeZone: f.timezone, runnerImage: f['runner-image']},
        this.ctx,
      )
      this.log(renderSleepSchedule(schedule))
      return {action: 'schedule', ...schedule}
    }
    const result = await sleepEnvironment({project, env}, this.ctx)
    this.log(renderSleep(result))
    return result
  }
}
