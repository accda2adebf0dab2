import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {type ExtendResult, extendPreview} from '../../src/env/manage.js'
import {parseTtl} from '../../src/env/names.js'
import {renderExtended} from '../../src/env/render.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class EnvExtend extends RetailOpsCommand<typeof EnvExtend> {
  static override summary = 'Give a preview environment more time: it expires --ttl from now.'
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'REFUSED',
    'INTERRUPTED',
  ] as const
  static override examples = ['<%= config.bin %> <%= command.id %> pr-142 --ttl 8h']
  static override args = {name: Args.string({description: 'Preview name.', required: true})}
  static override flags = {
    ttl: Flags.string({description: 'New time to live, from now (1m to 30d).', required: true}),
  }

  async run(): Promise<ExtendResult> {
    const project = await this.loadProject()
    const ttlMs = parseTtl(this.flags.ttl)
    const result = await extendPreview({project, env: this.target(project), name: this.args.name, ttlMs}, this.ctx)
    this.log(renderExtended(result))
    return result
  }
}
