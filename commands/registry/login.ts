import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {REGISTRY_PASSWORD_ENV, REGISTRY_USERNAME_ENV} from '../../src/docker/credentials.js'
import {registryLogin, type RegistryLoginResult} from '../../src/docker/login.js'
import {UsageError} from '../../src/errors/index.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class RegistryLogin extends RetailOpsCommand<typeof RegistryLogin> {
  static override summary = 'Log in to an OCI registry for push, sign and verify, without a Docker config file.'
  static override description = [
    "Checks the credentials against the registry first (a refusal exits 6 and stores nothing), then keeps them in retailops' own file",
    '($XDG_CONFIG_HOME/retailops/auth.json, else ~/.config/retailops/auth.json, or RETAILOPS_AUTH_FILE; mode 0600). The username comes from',
    '--username or REGISTRY_USERNAME, the password from --password-stdin or REGISTRY_PASSWORD, or prompts at a terminal.',
    'In CI there is no need to log in: REGISTRY_USERNAME and REGISTRY_PASSWORD are read directly by every command.',
    'Lookup order: those variables, this file, then the Docker config (credential helpers and auths).',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'echo "$TOKEN" | <%= config.bin %> <%= command.id %> registry.example.com --username ci --password-stdin',
    'REGISTRY_USERNAME=ci REGISTRY_PASSWORD=… <%= config.bin %> <%= command.id %> 127.0.0.1:5000 --json',
  ]
  // Piped stdin is the password here; no argument is ever read from it (commands/_base/base-command.ts).
  static override args = {
    registry: Args.string({description: 'host[:port] of the registry (default: registry.url in retailops.yaml).'}),
  }
  static override flags = {
    username: Flags.string({char: 'u', description: `Account name (default: ${REGISTRY_USERNAME_ENV}).`}),
    'password-stdin': Flags.boolean({
      description: `Read the password from standard input (default: ${REGISTRY_PASSWORD_ENV}).`,
    }),
  }

  async run(): Promise<RegistryLoginResult> {
    // stdin first: once other work has run, a short piped input may already have been drained.
    let password = this.flags['password-stdin'] ? await readStdin() : process.env[REGISTRY_PASSWORD_ENV]
    const project = this.args.registry ? undefined : await this.loadProject()
    const registry = this.args.registry ?? project!.config.registry.url
    const insecure = project?.config.registry.insecure
    let username = this.flags.username ?? process.env[REGISTRY_USERNAME_ENV]
    if (this.interactive) {
      const {input, password: ask} = await import('@inquirer/prompts')
      username ??= await input({message: `Username for ${registry}:`})
      password ??= await ask({message: `Password for ${registry}:`, mask: true})
    }
    this.requireFlags([
      ...(username ? [] : [{flag: 'username', description: `the account name (or set ${REGISTRY_USERNAME_ENV})`}]),
      ...(password !== undefined
        ? []
        : [{flag: 'password-stdin', description: `pipe the password in (or set ${REGISTRY_PASSWORD_ENV})`}]),
    ])
    const result = await registryLogin({registry, insecure, username: username!, password: password!}, this.ctx)
    this.log(
      `Login for ${result.registry} stored in ${result.file}${result.verified ? '' : ' (not checked: the registry asks for no credentials)'}.`,
    )
    return result
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new UsageError('--password-stdin needs the password piped in, not a terminal.', {
      nextSteps: ['echo "$PASSWORD" | retailops registry login … --password-stdin'],
    })
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  // Like docker login: one trailing newline (from echo) is not part of the password.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}
