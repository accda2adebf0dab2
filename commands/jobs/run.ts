import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {timeoutMs} from '../../src/config/duration.js'
import {renderJobRun} from '../../src/jobs/render.js'
import {runJob, type JobRunResult} from '../../src/jobs/run.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {tenantFlag} from '../_base/flags.js'

export default class JobsRun extends RetailOpsCommand<typeof JobsRun> {
  static override summary = 'Start a job now from its deployed CronJob and follow it to the end.'
  static override description = [
    'Creates a Job from the CronJob `retailops deploy` applied, as `kubectl create job --from=cronjob/NAME` does (its template, so the image deploy verified, by digest;',
    'annotation cronjob.kubernetes.io/instantiate: manual; the CronJob as owner), then follows it: exit 0 when it succeeds, 36 when it fails (pods failed past backoffLimit, or activeDeadlineSeconds passed, e.g. never scheduled),',
    '37 when --timeout passes first (the Job keeps running). The result names the pods, why they failed, and their last log lines. One-off jobs (no schedule) run only this way.',
    'With concurrencyPolicy Forbid a job that is already running is refused (exit 12) and nothing is created.',
    "--tenant runs a dedicated tenant's copy of the job, in its namespace (and cluster); a shared tenant's jobs run for every shared tenant at once, so --tenant refuses one (exit 2), as it refuses an unknown tenant or a job deploy does not render for the tenant (exit 4).",
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'REFUSED',
    'JOB_FAILED',
    'JOB_TIMED_OUT',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> reconcile --environment staging',
    '<%= config.bin %> <%= command.id %> search-reindex --timeout 30m --json',
    '<%= config.bin %> <%= command.id %> erp-order-sync --no-wait',
    '<%= config.bin %> <%= command.id %> reconcile --tenant acme --environment production',
  ]
  static override args = {job: Args.string({description: 'Job (a key of jobs: in retailops.yaml).', required: true})}
  static override flags = {
    tenant: tenantFlag,
    wait: Flags.boolean({
      description: 'Follow the run to its end (--no-wait: start it and return).',
      default: true,
      allowNo: true,
    }),
    timeout: Flags.string({
      description:
        "Stop following after this long (exit 37; the Job keeps running). Default: the job's activeDeadlineSeconds plus a minute.",
    }),
  }

  async run(): Promise<JobRunResult> {
    const project = await this.loadProject()
    const result = await runJob(
      {
        project,
        env: this.target(project),
        job: this.args.job,
        tenant: this.flags.tenant,
        wait: this.flags.wait,
        timeoutMs: timeoutMs(this.flags.timeout),
      },
      this.ctx,
    )
    this.log(renderJobRun(result))
    if (result.outcome === 'failed') this.setOutcome('JOB_FAILED')
    if (result.outcome === 'timed-out') this.setOutcome('JOB_TIMED_OUT')
    return result
  }
}
