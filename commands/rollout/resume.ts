import {Args} from '@oclif/core'

import {timeoutMs} from '../../src/deploy/engine.js'
import {resumeRollout, type ActionResult} from '../../src/rollout/control.js'
import {controlDeps, formatAction} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {driveTimeoutFlag, stateSkipVerifyFlag} from '../_base/flags.js'

export default class RolloutResume extends RetailOpsCommand<typeof RolloutResume> {
  static override summary = 'Continue a rollout whose CLI stopped (killed, cancelled CI job) from where its state says.'
  static override description = `Waits for a dead driver's lease to expire, takes it over, and drives the rollout (and the services released with it) on. A paused rollout waits for \`rollout promote\`, not resume. The stored state passes the checks of a fresh deploy first (signatures, policy, routing; exit 25 otherwise); the namespace is always the command's.`

  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION', 'REFUSED', 'ROLLOUT_ABORTED', 'ROLLOUT_PAUSED', 'ROLLOUT_INCONCLUSIVE', 'ROLLOUT_TIMED_OUT', 'TRAFFIC_NOT_RETURNED', 'STATE_UNTRUSTED', 'INTERRUPTED'] as const
  static override examples = ['<%= config.bin %> <%= command.id %> checkout']
  static override args = {service: Args.string({description: 'Service.', required: true})}
  static override flags = {
    timeout: driveTimeoutFlag,
    'skip-verify': stateSkipVerifyFlag,
  }

  async run(): Promise<ActionResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const result = await resumeRollout({namespace: env.namespace, service: this.args.service, timeoutMs: timeoutMs(this.flags.timeout)}, controlDeps(env, project.config, {project, skipVerify: this.flags['skip-verify']}), this.ctx)
    this.log(formatAction(result))
    this.setOutcome(result.exit)
    return result
  }
}
