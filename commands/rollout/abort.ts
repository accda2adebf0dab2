import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {abortRollout, type ActionResult} from '../../src/rollout/control.js'
import {controlDeps} from '../_base/rollout-deps.js'
import {formatAction} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {releaseEvents} from '../../src/notify/events.js'

export default class RolloutAbort extends RetailOpsCommand<typeof RolloutAbort> {
  static override summary = 'Abort a rollout: all traffic back to stable first, then the canary scaled down.'
  static override description = `Aborts the services released together with it too. Works whether or not a CLI still drives the rollout (after a kill -9 it restores a consistent state). Traffic back to stable is a precondition, read back before anything is removed: if it fails, the canary is kept, the state records why, and the exit is 24 (traffic may still reach the canary); run abort again once the cause is fixed. Exit 0 once every rollout of the release is aborted. An abort is never refused by a release gate; when one is closed (freeze window, exhausted error budget of a revenue-critical service) it is recorded as forced, with --reason.`

  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'REFUSED',
    'ROLLOUT_HELD',
    'ROLLOUT_ABORTED',
    'TRAFFIC_NOT_RETURNED',
    'STATE_UNTRUSTED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['rollout.*'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> checkout',
    '<%= config.bin %> <%= command.id %> checkout --reason "payments latency"',
  ]
  static override args = {service: Args.string({description: 'Service.', required: true})}
  static override flags = {reason: Flags.string({description: 'Why (recorded in the rollout state and history).'})}

  async run(): Promise<ActionResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const result = await abortRollout(
      {namespace: env.namespace, service: this.args.service, reason: this.flags.reason},
      controlDeps(env, project.config, {project}),
      this.ctx,
    )
    this.log(formatAction(result))
    this.setOutcome(result.exit)
    return result
  }
}
