import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {type DestroyResult, destroyPreview} from '../../src/env/manage.js'
import {previewNamespace} from '../../src/env/names.js'
import {renderDestroyed} from '../../src/env/render.js'
import {durationFlag} from '../../src/config/duration.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class EnvDestroy extends RetailOpsCommand<typeof EnvDestroy> {
  static override summary = 'Delete a preview environment: its namespace and everything in it, nothing else.'
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> pr-142',
    '<%= config.bin %> <%= command.id %> pr-142 --no-wait',
  ]
  static override args = {name: Args.string({description: 'Preview name.', required: true})}
  static override flags = {
    wait: Flags.boolean({
      description: 'Wait until the namespace is gone (--no-wait to return at once).',
      default: true,
      allowNo: true,
    }),
    timeout: Flags.string({description: 'How long to wait for the namespace to go.', default: '5m'}),
  }

  async run(): Promise<DestroyResult> {
    const project = await this.loadProject()
    previewNamespace(project.config.project, this.args.name)
    const result = await destroyPreview(
      {
        project,
        env: this.target(project),
        name: this.args.name,
        wait: this.flags.wait,
        timeoutMs: durationFlag('timeout', this.flags.timeout),
      },
      this.ctx,
    )
    this.log(renderDestroyed(result))
    return result
  }
}
