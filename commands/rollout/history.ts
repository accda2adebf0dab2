import * as Args from '@oclif/core/args'

import {rolloutHistory, type HistoryResult} from '../../src/rollout/control.js'
import {controlDeps} from '../_base/rollout-deps.js'
import {formatHistory} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class RolloutHistory extends RetailOpsCommand<typeof RolloutHistory> {
  static override summary = 'List the past rollouts of a service: versions, results, reasons, forced releases.'
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> checkout',
    '<%= config.bin %> <%= command.id %> checkout --json',
  ]
  static override args = {service: Args.string({description: 'Service.', required: true})}

  async run(): Promise<HistoryResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const result = await rolloutHistory(
      {namespace: env.namespace, service: this.args.service},
      controlDeps(env, project.config),
    )
    this.log(formatHistory(result))
    return result
  }
}
