import {UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {removeRegistryLogin, retailopsAuthPath, storeRegistryLogin} from './credentials.js'
import {isLoopbackRegistry, RegistryClient} from './registry.js'

export interface RegistryLoginOptions {
  /** host[:port] */
  registry: string
  insecure?: boolean
  username: string
  password: string
}

export interface RegistryLoginResult {
  registry: string
  username: string
  /** The file the login was stored in (mode 0600). */
  file: string
  /** false when the registry let anonymous requests through, so the password was not tested. */
  verified: boolean
}

const HOST = /^(localhost|\[[0-9a-f:]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:\d{1,5})?$/i

/** host[:port], or USAGE naming what is wrong (a scheme or a path is a common slip). */
export function registryHost(value: string): string {
  const host = value.trim().replace(/\/+$/, '')
  if (/^[a-z]+:\/\//i.test(host) || host.includes('/') || !HOST.test(host)) {
    throw new UsageError(`"${value}" is not a registry host: give host[:port] without a scheme or path.`, {
      nextSteps: ['For example: retailops registry login 127.0.0.1:5000, or registry.example.com.'],
    })
  }
  return host === 'docker.io' || host === 'index.docker.io' ? 'docker.io' : host
}

/**
 * Checks the credentials against the registry (GET /v2/ answering its challenge, Basic or Bearer)
 * and only then stores them: a refused login is PERMISSION and changes nothing.
 */
export async function registryLogin(options: RegistryLoginOptions, ctx: RunContext): Promise<RegistryLoginResult> {
  const registry = registryHost(options.registry)
  if (!options.username)
    throw new UsageError('The username is empty.', {nextSteps: ['Pass --username or set REGISTRY_USERNAME.']})
  if (!options.password)
    throw new UsageError('The password is empty.', {
      nextSteps: ['Pipe it to --password-stdin or set REGISTRY_PASSWORD.'],
    })
  let challenged = false
  const client = new RegistryClient({
    registry: registry === 'docker.io' ? 'registry-1.docker.io' : registry,
    insecure: Boolean(options.insecure) || isLoopbackRegistry(registry),
    signal: ctx.signal,
    credentials: async () => {
      challenged = true
      return {username: options.username, password: options.password, serveraddress: registry}
    },
  })
  const task = ctx.out.task(`Logging in to ${registry} as ${options.username}`)
  try {
    await client.ping()
  } catch (error) {
    task.fail(`${registry} refused the login`)
    throw error
  }
  const file = await storeRegistryLogin(registry, options.username, options.password)
  task.succeed(`Logged in to ${registry} as ${options.username}`)
  if (!challenged) ctx.out.warn(`${registry} did not ask for credentials, so they were stored without being checked.`)
  return {registry, username: options.username, file, verified: challenged}
}

export interface RegistryLogoutResult {
  registry: string
  file: string
  removed: boolean
}

export async function registryLogout(registry: string): Promise<RegistryLogoutResult> {
  const host = registryHost(registry)
  return {registry: host, file: retailopsAuthPath(), removed: await removeRegistryLogin(host)}
}
