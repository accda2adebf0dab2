import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {pushImages, type PushResult} from '../src/docker/push.js'
import {makeChalk, renderTable} from '../src/ui/index.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Push extends RetailOpsCommand<typeof Push> {
  static override summary = 'Push the built images and record their digests in .retailops/artifacts.lock.json.'
  static override description = [
    'Credentials come from ~/.docker/config.json (auths, credsStore, credHelpers). The manifest digest is read back from the registry,',
    'and a service enters the lock only once its push is complete. Exit code 6 when the registry refuses the credentials,',
    '5 when it cannot be reached, 8 for any other push failure.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'PUSH_FAILED',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout --json',
  ]
  static override strict = false
  static override args = {service: Args.string({description: 'Services to push (default: all).'})}
  static override flags = {
    concurrency: Flags.integer({description: 'Pushes at once.', min: 1, max: 16, default: 3}),
  }

  async run(): Promise<PushResult> {
    const project = await this.loadProject()
    const result = await pushImages(
      {project, services: this.positionals, concurrency: this.flags.concurrency},
      this.ctx,
    )
    const c = makeChalk()
    this.log(
      renderTable(result.services, [
        {header: 'SERVICE', value: (r) => r.service},
        {
          header: 'STATUS',
          value: (r) =>
            r.status === 'pushed' ? c.green('pushed') : r.status === 'unchanged' ? c.dim('unchanged') : c.red('FAILED'),
        },
        {header: 'IMAGE', value: (r) => r.image ?? r.source},
        {header: 'TIME', value: (r) => `${(r.durationMs / 1000).toFixed(1)}s`, align: 'right'},
      ]),
    )
    for (const f of result.services.filter((r) => r.status === 'failed'))
      this.log(`${c.red('✖')} ${f.service}: ${f.reason}`)
    this.log(
      `\n${result.pushed.length} pushed${result.unchanged.length ? `, ${result.unchanged.length} unchanged (already in the registry)` : ''} and locked in ${result.lock}${result.failed.length ? `; ${result.failed.length} failed (not in the lock)` : ''}.`,
    )
    if (result.exit) this.setOutcome(result.exit)
    return result
  }
}
