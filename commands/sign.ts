import {Args, Flags} from '@oclif/core'

import {signImages, type SignImagesResult} from '../src/signing/images.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Sign extends RetailOpsCommand<typeof Sign> {
  static override summary = 'Sign pushed images with the cosign key (cosign-compatible signatures stored in the registry).'
  static override description = [
    'Signs each service\'s digest from .retailops/artifacts.lock.json (or the given REGISTRY/REPO@sha256:… references) with ECDSA P-256,',
    'stored as cosign does at the tag sha256-<digest>.sig. The key passphrase comes from the variable named by signing.passwordEnv',
    '(default COSIGN_PASSWORD), or a prompt at a terminal. Exit code 6 for a wrong passphrase.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION', 'SIGNATURE'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'COSIGN_PASSWORD=… <%= config.bin %> <%= command.id %> checkout --json',
    '<%= config.bin %> <%= command.id %> 127.0.0.1:5000/shop/catalog@sha256:… --key cosign.key',
    'COSIGN_PRIVATE_KEY="$(cat cosign.key)" COSIGN_PASSWORD=… <%= config.bin %> <%= command.id %> --key env://COSIGN_PRIVATE_KEY --json',
  ]
  static override strict = false
  static override args = {target: Args.string({description: 'Services or REGISTRY/REPO@sha256:DIGEST references (default: every service in the lock).'})}
  static override flags = {
    key: Flags.string({description: 'Encrypted cosign private key: a file, or env://NAME for a variable holding its contents (default: signing.key in retailops.yaml).'}),
  }

  async run(): Promise<SignImagesResult> {
    const project = await this.loadProject().catch((error: {exit?: string}) => {
      if (error.exit === 'NOT_FOUND' && this.flags.key) return undefined
      throw error
    })
    const {argv} = await this.parse(Sign)
    const passwordEnv = project?.config.signing.passwordEnv ?? 'COSIGN_PASSWORD'
    const prompt = this.interactive
      ? async (message: string) => (await import('@inquirer/prompts')).password({message, mask: true})
      : undefined
    const result = await signImages({project, targets: argv as string[], key: this.flags.key, passphrase: {env: passwordEnv, prompt}}, this.ctx)
    for (const i of result.images) this.log(`${i.added ? '✔ signed' : '= already signed'}  ${i.service ? `${i.service}  ` : ''}${i.image} → ${i.signature}`)
    return result
  }
}
