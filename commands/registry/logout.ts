import * as Args from '@oclif/core/args'

import {registryLogout, type RegistryLogoutResult} from '../../src/docker/login.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class RegistryLogout extends RetailOpsCommand<typeof RegistryLogout> {
  static override summary = 'Forget the login `retailops registry login` stored for a registry.'
  static override description =
    "Removes the registry's entry from retailops' own credentials file; the Docker config is never touched."
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> registry.example.com',
  ]
  static override args = {
    registry: Args.string({description: 'host[:port] (default: registry.url in retailops.yaml).'}),
  }

  async run(): Promise<RegistryLogoutResult> {
    const registry = this.args.registry ?? (await this.loadProject()).config.registry.url
    const result = await registryLogout(registry)
    this.log(
      result.removed
        ? `Removed the login for ${result.registry} from ${result.file}.`
        : `No login for ${result.registry} in ${result.file}; nothing changed.`,
    )
    return result
  }
}
