import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import type {Tier} from '../../src/config/schema.js'
import {TIERS} from '../../src/config/vocabulary.js'
import {addService, type AddServiceResult} from '../../src/scaffold/service-add.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class ServiceAdd extends RetailOpsCommand<typeof ServiceAdd> {
  static override summary = 'Add a service from the skeleton and register it in retailops.yaml.'
  static override exitCodes = ['OK', 'USAGE', 'CONFIG'] as const
  static override examples = ['<%= config.bin %> <%= command.id %> recommendations --tier tolerant --rps-per-pod 300']
  static override args = {name: Args.string({description: 'Service name (a DNS label).', required: true})}
  static override flags = {
    tier: Flags.string({description: 'Service tier.', options: [...TIERS], default: 'operational'}),
    port: Flags.integer({description: 'Container port.', default: 8080, min: 1, max: 65_535}),
    'rps-per-pod': Flags.integer({description: 'Requests per second one pod carries at the latency SLO.', min: 1}),
    force: Flags.boolean({description: 'Overwrite an existing service of that name.'}),
  }

  async run(): Promise<AddServiceResult> {
    const project = await this.loadProject()
    const result = await addService(
      project,
      {
        name: this.args.name,
        tier: this.flags.tier as Tier,
        port: this.flags.port,
        rpsPerPod: this.flags['rps-per-pod'],
        force: this.flags.force,
      },
      this.ctx,
    )
    this.log(`Created ${result.files.join(', ')}.`)
    return result
  }
}
