import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {timeoutMs} from '../../src/config/duration.js'
import {controlDeps} from '../_base/rollout-deps.js'
import {writeReport} from '../../src/report/index.js'
import {renderRolloutHtml} from '../../src/rollout/report.js'
import {renderTree, rolloutTree, watchTree, type Health, type RolloutTree} from '../../src/rollout/tree.js'
import {makeChalk} from '../../src/ui/terminal.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class RolloutGet extends RetailOpsCommand<typeof RolloutGet> {
  static override summary = 'Show a rollout as a tree: revisions, ReplicaSets, pods and analysis runs.'
  static override description =
    'Like `kubectl argo rollouts get rollout`. With --watch the tree is redrawn on every change of the state, ReplicaSets or pods (Kubernetes watches) until the rollout ends or waits for a person. The exit code reflects the phase, as for `rollout status`.'
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'ROLLOUT_ABORTED',
    'ROLLOUT_PAUSED',
    'ROLLOUT_INCONCLUSIVE',
    'ROLLOUT_TIMED_OUT',
    'TRAFFIC_NOT_RETURNED',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> checkout',
    '<%= config.bin %> <%= command.id %> checkout --watch',
    '<%= config.bin %> <%= command.id %> checkout --html rollout-checkout.html',
  ]
  static override args = {service: Args.string({description: 'Service.', required: true})}
  static override flags = {
    watch: Flags.boolean({
      char: 'w',
      description: 'Redraw on every change until the rollout ends or waits for a person.',
    }),
    timeout: Flags.string({description: 'With --watch: stop after this long.'}),
    html: Flags.string({
      description:
        'Also write a self-contained HTML report of the analysis runs (counts, tests, p-values, effect sizes, thresholds) to this file.',
    }),
  }

  async run(): Promise<RolloutTree> {
    const project = await this.loadProject()
    const env = this.target(project)
    const {kube} = controlDeps(env, project.config)
    const c = makeChalk()
    const colours: Record<Health, (s: string) => string> = {
      healthy: c.green,
      progressing: c.cyan,
      paused: c.yellow,
      degraded: c.red,
      inconclusive: c.yellow,
      'scaled-down': c.dim,
      unknown: c.dim,
    }
    const draw = (tree: RolloutTree) => {
      if (this.jsonEnabled()) return
      if (this.flags.watch && process.stdout.isTTY) process.stdout.write('\u001B[2J\u001B[H')
      this.log(renderTree(tree, {icon: (h, s) => colours[h](s)}))
      if (this.flags.watch && !process.stdout.isTTY) this.log('')
    }
    const tree = this.flags.watch
      ? await watchTree(kube, env.namespace, this.args.service, draw, this.ctx, {
          timeoutMs: timeoutMs(this.flags.timeout),
        })
      : await rolloutTree(kube, env.namespace, this.args.service)
    if (!this.flags.watch) draw(tree)
    kube.close()
    if (this.flags.html) {
      const file = await writeReport(this.flags.html, renderRolloutHtml(tree, new Date()))
      this.ctx.out.info(`HTML report written to ${file}`)
    }
    this.setOutcome(tree.status.exit)
    return tree
  }
}
