import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {timeoutMs} from '../../src/deploy/engine.js'
import {promoteRollout, type ActionResult} from '../../src/rollout/control.js'
import {controlDeps} from '../_base/rollout-deps.js'
import {formatAction} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {driveTimeoutFlag, stateSkipVerifyFlag, DRIVE_EXIT_CODES} from '../_base/flags.js'
import {releaseEvents} from '../../src/notify/events.js'

export default class RolloutPromote extends RetailOpsCommand<typeof RolloutPromote> {
  static override summary =
    'Skip the current pause or analysis (or accept an inconclusive one); --full skips every remaining step.'
  static override description = `--full skips the remaining analysis, so for a revenue-critical service it is gated like a release: refused (exit 12) inside a campaign's freeze window or with an exhausted error budget, unless --force-release --reason (recorded). When another CLI drives the rollout, it acts on the request at once. Otherwise this command drives the rollout (and the services released with it) until it is promoted, aborted, or waits again. What it applies from the stored state passes the checks of a fresh deploy first (signatures, policy, routing; exit 25 otherwise); promotion changes the stable Deployment's template and keeps its labels, strategy and live replica count.`

  static override exitCodes = DRIVE_EXIT_CODES
  static override releaseEvents = releaseEvents(['rollout.*', 'release.refused.*'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> checkout',
    '<%= config.bin %> <%= command.id %> checkout --full',
  ]
  static override args = {service: Args.string({description: 'Service.', required: true})}
  static override flags = {
    'skip-verify': stateSkipVerifyFlag,
    full: Flags.boolean({description: 'Skip every remaining step, pause and analysis: go to 100 % and promote.'}),
    timeout: driveTimeoutFlag,
    'force-release': Flags.boolean({
      description:
        'With --full: promote a revenue-critical service despite a freeze window or an exhausted error budget (needs --reason; recorded).',
      dependsOn: ['full'],
    }),
    reason: Flags.string({
      description: 'Why the promotion is forced (recorded in the rollout state, its history and on the Deployment).',
      dependsOn: ['force-release'],
    }),
  }

  async run(): Promise<ActionResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const result = await promoteRollout(
      {
        namespace: env.namespace,
        service: this.args.service,
        full: this.flags.full,
        timeoutMs: timeoutMs(this.flags.timeout),
        force: this.flags['force-release'] ? {reason: this.flags.reason} : undefined,
      },
      controlDeps(env, project.config, {project, skipVerify: this.flags['skip-verify']}),
      this.ctx,
    )
    this.log(formatAction(result))
    this.setOutcome(result.exit)
    return result
  }
}
