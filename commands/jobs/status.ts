import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {renderJobsStatus} from '../../src/jobs/render.js'
import {jobsStatus, type JobsStatusResult} from '../../src/jobs/status.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {tenantFlag} from '../_base/flags.js'

export default class JobsStatus extends RetailOpsCommand<typeof JobsStatus> {
  static override summary = "Show jobs' last runs, failures and next scheduled run."
  static override description = [
    "Reads each job's CronJob and its Jobs (scheduled and `jobs run` ones) from the cluster: schedule and time zone, suspended or one-off, the last runs (start, duration, outcome),",
    'the newest failure with its reason, and the next time the controller starts it. Exit 36 when the newest finished run of a job shown failed, so a pipeline can check a job with it.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'JOB_FAILED',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> reconcile --environment production --json',
  ]
  static override strict = false
  static override args = {jobs: Args.string({description: 'Jobs (default: every configured job).'})}
  static override flags = {
    tenant: tenantFlag,
    limit: Flags.integer({description: 'Runs listed per job, newest first.', default: 5, min: 1}),
  }

  async run(): Promise<JobsStatusResult> {
    const project = await this.loadProject()
    const result = await jobsStatus({
      project,
      env: this.target(project),
      jobs: this.positionals,
      tenant: this.flags.tenant,
      limit: this.flags.limit,
    })
    this.log(renderJobsStatus(result))
    if (result.failing.length > 0) this.setOutcome('JOB_FAILED')
    return result
  }
}
