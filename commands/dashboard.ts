import * as Flags from '@oclif/core/flags'

import {parseDuration} from '../src/config/duration.js'
import {startDashboard} from '../src/dashboard/server.js'
import {UsageError} from '../src/errors/index.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {dashboardProviders} from './_base/dashboard-deps.js'

export interface DashboardResult {
  /** Where it listened (without the token). */
  url: string
  host: string
  port: number
  startedAt: string
  stoppedAt: string
}

export default class Dashboard extends RetailOpsCommand<typeof Dashboard> {
  static override summary =
    'Serve a live, read-only web dashboard on 127.0.0.1: rollouts, SLOs, cost, pre-warm and DR drills.'
  static override description = [
    "Reads the environment's rollouts (steps, weights, analysis measurements against their conditions, history; live, read every second and pushed to the page),",
    'SLOs with the error budget left and burn-rate charts, cost by service, tenant and node pool with findings and savings, pre-warm status per campaign,',
    'and DR drill history with RTO and RPO against the targets, from the same engines as `rollout status`, `slo`, `cost`, `prewarm` and `dr history`;',
    'a page per service joins all of it. It listens on 127.0.0.1 only; the URL it prints carries a random access token (then kept in a cookie),',
    'and every request without it is refused. Assets (uPlot, the page script) are served by the CLI: it works without internet access.',
    'Runs until Ctrl-C. With --json, the first line on stdout is a JSON object with the URL and port.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'INTERRUPTED'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --port 8088 --environment production',
    '<%= config.bin %> <%= command.id %> --json | head -1',
  ]
  static override flags = {
    port: Flags.integer({
      char: 'p',
      description: 'Port on 127.0.0.1 (default: a free one).',
      default: 0,
      min: 0,
      max: 65_535,
    }),
    'cost-window': Flags.string({
      description: 'The cost page allocates this far back, e.g. 24h or 7d.',
      default: '24h',
    }),
  }

  async run(): Promise<DashboardResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const window = this.flags['cost-window']
    const windowMs = parseDuration(window)
    if (windowMs === undefined || windowMs < 60_000)
      throw new UsageError(`--cost-window ${window}: expected a duration of at least 1m, such as 24h or 7d.`)
    const providers = dashboardProviders(project, env, {costWindow: window, costWindowMs: windowMs, out: this.ctx.out})
    const startedAt = new Date().toISOString()
    const dashboard = await startDashboard(providers, {port: this.flags.port}, this.ctx)
    if (this.jsonEnabled()) {
      // Scripts read the URL before the command ends: one line of JSON first, the envelope at the end.
      process.stdout.write(`${JSON.stringify({url: dashboard.url, host: dashboard.host, port: dashboard.port})}\n`)
    } else {
      this.log(`Dashboard for ${project.config.project} · ${env.name} (namespace ${env.namespace}):`)
      this.log(`  ${dashboard.url}`)
      this.log(
        'Read only; the link carries its access token: share it only with people who may see this environment. Ctrl-C stops it.',
      )
    }
    const signal = this.ctx.signal!
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => resolve(), {once: true})
    })
    await dashboard.close()
    return {
      url: `http://${dashboard.host}:${dashboard.port}/`,
      host: dashboard.host,
      port: dashboard.port,
      startedAt,
      stoppedAt: new Date().toISOString(),
    }
  }
}
