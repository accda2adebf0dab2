import path from 'node:path'

import * as Flags from '@oclif/core/flags'

import {envReferenceName} from '../../src/config/secret-ref.js'
import {UsageError} from '../../src/errors/index.js'
import {checkKeyTargets, type GenerateKeysResult, passphrase, writeKeyPair} from '../../src/signing/keys.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class KeysGenerate extends RetailOpsCommand<typeof KeysGenerate> {
  static override summary = 'Create a cosign-compatible signing key pair (encrypted cosign.key and cosign.pub).'
  static override description = [
    'Writes the paths signing.key and signing.publicKey of retailops.yaml (or ./cosign.key and ./cosign.pub outside a project).',
    'The passphrase comes from the variable named by signing.passwordEnv (default COSIGN_PASSWORD), or is asked for at a terminal.',
    'Existing keys are never replaced without --force.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG'] as const
  static override examples = [
    'COSIGN_PASSWORD=… <%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --key ci/cosign.key --public-key ci/cosign.pub --force',
  ]
  static override flags = {
    key: Flags.string({description: 'Where to write the encrypted private key.'}),
    'public-key': Flags.string({description: 'Where to write the public key.'}),
    force: Flags.boolean({
      description: 'Replace an existing key pair (images signed with it stop verifying with the new one).',
    }),
  }

  async run(): Promise<GenerateKeysResult> {
    const project = await this.loadProject().catch((error: {exit?: string}) => {
      if (error.exit === 'NOT_FOUND') return undefined
      throw error
    })
    const base = project?.dir ?? process.cwd()
    for (const [flag, configured] of [
      ['key', project?.config.signing.key],
      ['public-key', project?.config.signing.publicKey],
    ] as const) {
      const variable = envReferenceName(this.flags[flag] ?? configured)
      if (variable) {
        throw new UsageError(
          `The ${flag === 'key' ? 'signing key' : 'public key'} is ${this.flags[flag] ?? configured}: a key pair is written to files, not to a variable.`,
          {
            nextSteps: [
              `Pass --${flag} FILE, then store that file's contents in the CI secret ${variable} and delete the file.`,
            ],
          },
        )
      }
    }
    const keyPath = path.resolve(this.flags.key ?? path.join(base, project?.config.signing.key ?? 'cosign.key'))
    const publicKeyPath = path.resolve(
      this.flags['public-key'] ?? path.join(base, project?.config.signing.publicKey ?? 'cosign.pub'),
    )
    checkKeyTargets(keyPath, publicKeyPath, this.flags.force)
    const env = project?.config.signing.passwordEnv ?? 'COSIGN_PASSWORD'
    const prompt = this.interactive
      ? async (message: string) => {
          const {password} = await import('@inquirer/prompts')
          const first = await password({message, mask: true})
          const again = await password({message: 'Repeat the passphrase:', mask: true})
          if (first !== again) throw new UsageError('The passphrases differ; nothing was written.')
          return first
        }
      : undefined
    const secret = await passphrase({env, prompt}, 'the new key')
    if (secret === '') this.warnUser(`The key is encrypted with an empty passphrase (${env} is empty).`)
    const result = await writeKeyPair({keyPath, publicKeyPath, passphrase: secret, force: this.flags.force})
    this.log(
      `Private key written to ${result.key} (mode 600, keep it secret)\nPublic key written to ${result.publicKey}\nKey id ${result.keyId}`,
    )
    return result
  }
}
