import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {runDiff, type ObjectDiff} from '../src/deploy/engine.js'
import {formatDiffs, formatPolicy} from '../src/deploy/format.js'
import type {DeployTargetSummary} from '../src/deploy/engine.js'
import type {PolicyReport} from '../src/kubernetes/policy.js'
import type {ScalingProvider} from '../src/config/schema.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {renderFlags} from './_base/flags.js'

export default class Diff extends RetailOpsCommand<typeof Diff> {
  static override summary = 'Show what deploy would change: live objects against a server-side dry-run apply.'
  static override description = `Each rendered object is applied with dryRun=All (admission, defaulting and field ownership run; nothing is stored) and compared with the live object, without managedFields, status and resourceVersion. Objects prune would delete are listed too. Exit code 0 whether or not there are changes; --json has the count in result.changed.`

  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'DEPLOY_FAILED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout --tenant acme',
    '<%= config.bin %> <%= command.id %> --json | jq .result.changed',
  ]

  static override strict = false
  static override args = {services: Args.string({description: 'Services to compare (default: all).'})}
  static override flags = {
    ...renderFlags,
    prune: Flags.boolean({description: 'Include objects prune would delete.', default: true, allowNo: true}),
  }

  async run(): Promise<{
    environment: string
    targets: DeployTargetSummary[]
    policy: PolicyReport
    diffs: ObjectDiff[]
    changed: number
  }> {
    const project = await this.loadProject()
    const result = await runDiff(
      {
        project,
        env: this.target(project),
        services: this.positionals,
        tenant: this.flags.tenant,
        scalingProvider: this.flags['scaling-provider'] as ScalingProvider | undefined,
        images: this.flags.image,
        prune: this.flags.prune,
      },
      this.ctx,
    )
    if (result.policy.errors > 0) this.ctx.out.info(formatPolicy(result.policy))
    this.log(formatDiffs(result.diffs))
    return result
  }
}
