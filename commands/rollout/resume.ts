import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {timeoutMs} from '../../src/deploy/engine.js'
import {resumeRollout, type ActionResult} from '../../src/rollout/control.js'
import {LEASE_TTL_SECONDS} from '../../src/rollout/store.js'
import {controlDeps} from '../_base/rollout-deps.js'
import {formatAction} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {driveTimeoutFlag, stateSkipVerifyFlag, DRIVE_EXIT_CODES} from '../_base/flags.js'
import {releaseEvents} from '../../src/notify/events.js'

export default class RolloutResume extends RetailOpsCommand<typeof RolloutResume> {
  static override summary = 'Continue a rollout whose CLI stopped (killed, cancelled CI job) from where its state says.'
  static override description = `Waits for a dead driver's lease to expire (${LEASE_TTL_SECONDS}s after its last renewal), takes it by compare-and-swap, and drives the rollout (and the services released with it) on. A paused rollout waits for \`rollout promote\`, not resume. A rollout detached to a Job (\`deploy --detach\`) whose Job failed or was deleted is taken over at once, without waiting for its lease (recorded in the rollout state). Exactly one CLI drives a rollout: when another one takes it first, this one is refused (exit 13) naming it. --take-over --reason takes a lease that is still renewed (a hung job) at once; who, when and why are recorded in the rollout state, and the other CLI stops at its next write. The stored state passes the checks of a fresh deploy first (signatures, policy, routing; exit 25 otherwise); the namespace is always the command's.`

  static override exitCodes = DRIVE_EXIT_CODES
  static override releaseEvents = releaseEvents(['rollout.*'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> checkout',
    '<%= config.bin %> <%= command.id %> checkout --take-over --reason "CI runner 7 hangs"',
  ]
  static override args = {service: Args.string({description: 'Service.', required: true})}
  static override flags = {
    timeout: driveTimeoutFlag,
    'skip-verify': stateSkipVerifyFlag,
    'take-over': Flags.boolean({
      description:
        'Take the lease from a CLI that still renews it (a hung job) without waiting for it to expire (needs --reason; recorded).',
    }),
    reason: Flags.string({
      description: 'Why the lease is taken over (recorded in the rollout state).',
      dependsOn: ['take-over'],
    }),
  }

  async run(): Promise<ActionResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const takeOver = this.flags['take-over'] ? {reason: this.flags.reason} : undefined
    const result = await resumeRollout(
      {namespace: env.namespace, service: this.args.service, timeoutMs: timeoutMs(this.flags.timeout), takeOver},
      controlDeps(env, project.config, {project, skipVerify: this.flags['skip-verify']}),
      this.ctx,
    )
    this.log(formatAction(result))
    this.setOutcome(result.exit)
    return result
  }
}
