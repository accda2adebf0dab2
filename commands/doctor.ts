import * as Flags from '@oclif/core/flags'

import {runDoctor, type DoctorResult} from '../src/doctor/doctor.js'
import {makeChalk} from '../src/ui/terminal.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Doctor extends RetailOpsCommand<typeof Doctor> {
  static override summary = 'Check Docker, the registry, cluster access and RBAC, Prometheus, k6 and AWS credentials.'
  static override description =
    "Every check runs, in parallel, and each failure says how to fix it. Exit code 5 when any check fails. The RBAC check asks the API server (SelfSubjectAccessReview, in the environment's namespace) for every permission the project's commands need, derived from retailops.yaml and what the cluster serves: KEDA's scaledobjects when a service scales with KEDA, batch cronjobs, jobs and pods/log for jobs, gateway.networking.k8s.io httproutes for the gateway router, ingresses for nginx, quotas and limits for tenants, priorityclasses for campaigns, and what a namespace snapshot drill lists; each missing one is named with the commands that need it."
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --environment production --json',
    '<%= config.bin %> <%= command.id %> --skip k6 --json',
  ]
  static override flags = {
    skip: Flags.string({
      description:
        'Do not run this check (repeatable): config, docker, registry, cluster, rbac, prometheus, k6, signing, aws, postgres-tools.',
      multiple: true,
    }),
  }

  async run(): Promise<DoctorResult> {
    const project = await this.loadProject().catch((error: {exit?: string}) => {
      if (error.exit === 'NOT_FOUND') return undefined
      throw error
    })
    const result = await runDoctor(
      {
        project,
        environment: this.flags.environment,
        context: this.flags.context,
        namespace: this.flags.namespace,
        skip: this.flags.skip,
      },
      this.ctx,
    )
    const c = makeChalk()
    const mark = {ok: c.green('✔'), warn: c.yellow('▲'), fail: c.red('✖'), skip: c.dim('–')}
    for (const check of result.checks) {
      this.log(`${mark[check.status]} ${check.title.padEnd(20)} ${check.detail}`)
      if (check.fix && check.status !== 'ok') this.log(`  ${c.dim('fix:')} ${check.fix}`)
    }
    if (!result.ok) this.setOutcome('UNAVAILABLE')
    return result
  }
}
