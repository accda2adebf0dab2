import {RetailOpsCommand} from '../_base/base-command.js'

export interface ValidateResult {
  file: string
  project: string
  services: {name: string; tier: string}[]
  environments: string[]
  tenants: number
  campaigns: string[]
  datastores: string[]
}

export default class ConfigValidate extends RetailOpsCommand<typeof ConfigValidate> {
  static override summary = 'Validate retailops.yaml and summarise it.'
  static override description =
    'Every problem is reported with its file, line and key path. Exit code 3 when the configuration is invalid.'
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --config deploy/retailops.yaml --json',
  ]

  async run(): Promise<ValidateResult> {
    const {file, config} = await this.loadProject()
    const result: ValidateResult = {
      file,
      project: config.project,
      services: Object.entries(config.services).map(([name, s]) => ({name, tier: s.tier})),
      environments: Object.keys(config.environments),
      tenants: config.tenants.length,
      campaigns: config.campaigns.map((c) => c.name),
      datastores: config.datastores.map((d) => d.name),
    }
    this.log(
      `✔ ${file} is valid: project ${result.project}, ${result.services.length} services, ${result.environments.length} environments, ${result.tenants} tenants, ${result.campaigns.length} campaigns, ${result.datastores.length} datastores.`,
    )
    return result
  }
}
