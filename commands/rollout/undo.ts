import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {undoRollout, type UndoResult} from '../../src/rollout/control.js'
import {controlDeps} from '../_base/rollout-deps.js'
import {formatUndo} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {stateSkipVerifyFlag} from '../_base/flags.js'
import {releaseEvents} from '../../src/notify/events.js'

export default class RolloutUndo extends RetailOpsCommand<typeof RolloutUndo> {
  static override summary = 'Go back to the previous stable version (aborts a rollout in progress).'
  static override description = `During a rollout: aborts it (blue-green switches the active Service back at once while the old colour is up). After a promotion: the Deployment gets the previous stable pod template back, or that of history entry --to-revision. Going back to the previous version is always possible (an incident during a freeze); when a release gate is closed (freeze window, exhausted error budget of a revenue-critical service) it is recorded as forced, in the history and on the Deployment. --to-revision is a release like any other and is refused by a closed gate unless --force-release --reason. Only the template (and the version label and image annotation describing it) changes: labels, strategy and replicas stay exactly as they are. The stored template passes signature and policy checks as on a deploy first (exit 25 otherwise).`

  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'REFUSED',
    'ROLLOUT_HELD',
    'TRAFFIC_NOT_RETURNED',
    'STATE_UNTRUSTED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['release.refused.*'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> checkout',
    '<%= config.bin %> <%= command.id %> checkout --to-revision 3',
  ]
  static override args = {service: Args.string({description: 'Service.', required: true})}
  static override flags = {
    'to-revision': Flags.integer({
      description: 'History entry (from `rollout history`) whose version to go back to.',
      min: 1,
    }),
    'skip-verify': stateSkipVerifyFlag,
    'force-release': Flags.boolean({
      description:
        'With --to-revision: go to that version despite a freeze window or an exhausted error budget (needs --reason; recorded).',
    }),
    reason: Flags.string({
      description: 'Why (recorded in the history and on the Deployment).',
      dependsOn: ['force-release'],
    }),
  }

  async run(): Promise<UndoResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const result = await undoRollout(
      {
        namespace: env.namespace,
        service: this.args.service,
        toRevision: this.flags['to-revision'],
        force: this.flags['force-release'] ? {reason: this.flags.reason} : undefined,
      },
      controlDeps(env, project.config, {project, skipVerify: this.flags['skip-verify']}),
      this.ctx,
    )
    this.log(formatUndo(result))
    this.setOutcome(result.exit)
    return result
  }
}
