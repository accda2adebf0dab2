import * as Flags from '@oclif/core/flags'

import {listPreviews, type PreviewInfo} from '../../src/env/manage.js'
import {renderPreviews} from '../../src/env/render.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {addCostSoFar} from '../_base/preview-cost.js'

export default class EnvList extends RetailOpsCommand<typeof EnvList> {
  static override summary = "List the project's preview environments with owner, age, TTL left and cost so far."
  static override description = [
    "Lists the namespaces labelled as this project's previews in the environment's cluster, oldest first.",
    "Cost so far is what the cost engine (as `retailops cost` computes it, from pod requests priced by node pool) allocates to each preview's namespace since it was created.",
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'UNAVAILABLE', 'PERMISSION', 'INTERRUPTED'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --no-cost --json',
  ]
  static override flags = {
    cost: Flags.boolean({
      description: 'Compute each preview’s cost so far (--no-cost skips it).',
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<{previews: PreviewInfo[]; currency: string}> {
    const project = await this.loadProject()
    const env = this.target(project)
    const now = new Date()
    const previews = await listPreviews({project, env, now})
    const currency = this.flags.cost
      ? (await addCostSoFar(previews, project, env, this.ctx, now)).currency
      : project.config.prices.currency
    this.log(renderPreviews(previews, currency))
    return {previews, currency}
  }
}
