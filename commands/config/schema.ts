import {writeFile} from 'node:fs/promises'

import * as Flags from '@oclif/core/flags'

import {jsonSchema} from '../../src/config/schema.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class ConfigSchema extends RetailOpsCommand<typeof ConfigSchema> {
  static override summary = 'Print the JSON Schema of retailops.yaml (for editor completion).'
  static override exitCodes = ['OK', 'USAGE'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> > retailops.schema.json',
    '<%= config.bin %> <%= command.id %> --output retailops.schema.json',
  ]
  static override flags = {output: Flags.string({char: 'o', description: 'Write to this file instead of stdout.'})}
  static override enableJsonFlag = false

  async run(): Promise<void> {
    const text = `${JSON.stringify(jsonSchema(), null, 2)}\n`
    if (this.flags.output) await writeFile(this.flags.output, text)
    else process.stdout.write(text)
  }
}
