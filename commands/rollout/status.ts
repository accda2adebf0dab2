import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {timeoutMs} from '../../src/config/duration.js'
import {KubeObjects} from '../../src/kubernetes/objects.js'
import {rolloutStatus, type RolloutStatus} from '../../src/rollout/status.js'
import {formatStatuses} from '../../src/rollout/format.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class RolloutStatusCommand extends RetailOpsCommand<typeof RolloutStatusCommand> {
  static override summary = 'Show where rollouts are; the exit code reflects the phase.'
  static override description = `Reads the rollout state from the cluster (any machine sees the same). With --watch, waits until every rollout is promoted, aborted, timed out, or waits for a person, and ends with its exit code. A rollout detached to a Job (\`deploy --detach\`) shows the Job's state; when that Job fails or is deleted (or any driver stops renewing its lease) before the rollout ends, --watch stops with exit 14 and the next step, \`rollout resume\`.`

  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'ROLLOUT_ORPHANED',
    'ROLLOUT_ABORTED',
    'ROLLOUT_PAUSED',
    'ROLLOUT_INCONCLUSIVE',
    'ROLLOUT_TIMED_OUT',
    'TRAFFIC_NOT_RETURNED',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout --watch --timeout 15m',
    '<%= config.bin %> <%= command.id %> checkout --json',
  ]
  static override strict = false
  static override args = {services: Args.string({description: 'Services (default: every rollout in the namespace).'})}
  static override flags = {
    watch: Flags.boolean({char: 'w', description: 'Wait until each rollout ends or waits for a person.'}),
    timeout: Flags.string({description: 'With --watch: give up after this long (exit 23).'}),
  }

  async run(): Promise<{rollouts: RolloutStatus[]; timedOut: boolean}> {
    const project = await this.loadProject()
    const env = this.target(project)
    const result = await rolloutStatus(
      {
        namespace: env.namespace,
        services: this.positionals,
        watch: this.flags.watch,
        timeoutMs: timeoutMs(this.flags.timeout),
        onUpdate: (r) => this.flags.watch && this.log(formatStatuses(r) + '\n'),
      },
      // Reading needs the cluster only: not the metrics provider or release gates of rollout-deps.ts,
      // whose modules (src/slo's status, the start's metrics) it would load on every run.
      {kube: new KubeObjects({context: env.context, kubeconfig: env.kubeconfig})},
      this.ctx,
    )
    if (!this.flags.watch) this.log(formatStatuses(result.rollouts))
    this.setOutcome(result.exit)
    return {rollouts: result.rollouts, timedOut: result.timedOut}
  }
}
