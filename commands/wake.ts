import {renderSleep} from '../src/sleep/render.js'
import {type SleepResult, wakeEnvironment} from '../src/sleep/sleep.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Wake extends RetailOpsCommand<typeof Wake> {
  static override summary = 'Wake an environment `retailops sleep` scaled to zero, exactly as it was.'
  static override description = [
    "Reads the values `retailops sleep` saved in each namespace's ConfigMap retailops-sleep-state (written before it changed anything, so this works after a crash half-way too),",
    "puts every HPA's minReplicas and maxReplicas, every KEDA ScaledObject's pause annotation and every Deployment's replicas back exactly as they were, verifies, and only then deletes the saved state.",
    'Waking an environment that is not asleep changes nothing and says so. Production environments are refused.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'PRODUCTION_REFUSED',
    'WAKE_INCOMPLETE',
    'INTERRUPTED',
  ] as const
  static override examples = ['<%= config.bin %> <%= command.id %> --environment staging']

  async run(): Promise<SleepResult> {
    const project = await this.loadProject()
    const result = await wakeEnvironment({project, env: this.target(project)}, this.ctx)
    this.log(renderSleep(result))
    return result
  }
}
