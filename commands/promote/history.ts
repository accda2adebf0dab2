import * as Flags from '@oclif/core/flags'

import {promotionHistory, type PromotionHistory} from '../../src/promote/records.js'
import {renderPromotionHistory} from '../../src/promote/render.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class PromoteHistory extends RetailOpsCommand<typeof PromoteHistory> {
  static override summary =
    'List the promotions recorded in an environment (what was promoted into it, from where, by whom, checks and outcome).'
  static override description =
    "Reads the promotion records `retailops promote` keeps in the environment's namespace (ConfigMaps retailops-promotion-<id>), newest first: refused, failed and in-progress promotions too. --json gives every record whole: digests, source, who, when, each check and its result, the outcome."
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'UNAVAILABLE', 'PERMISSION'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> --environment production',
    '<%= config.bin %> <%= command.id %> --environment production --limit 5 --json',
  ]
  static override flags = {
    limit: Flags.integer({description: 'At most this many promotions.', default: 20, min: 1}),
  }

  async run(): Promise<PromotionHistory> {
    const project = await this.loadProject()
    const history = await promotionHistory(this.target(project), this.flags.limit)
    this.log(renderPromotionHistory(history.promotions, history.namespace))
    return history
  }
}
