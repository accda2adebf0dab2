import {mkdir} from 'node:fs/promises'
import {homedir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {PermissionError, UsageError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'
import {readJsonFile, writeFileAtomic} from './files.js'

/** What the Docker Engine's X-Registry-Auth and a registry's token endpoint take. */
export interface RegistryAuth {
  username?: string
  password?: string
  /** OAuth refresh token (a credential helper answering Username "<token>"). */
  identitytoken?: string
  serveraddress: string
}

interface DockerConfigFile {
  auths?: Record<string, {auth?: string; username?: string; password?: string; identitytoken?: string}>
  credsStore?: string
  credHelpers?: Record<string, string>
}

export interface CredentialOptions {
  /** Folder holding config.json; default $DOCKER_CONFIG, else ~/.docker. */
  configDir?: string
}

/** Docker Hub's historical key in config.json. */
const DOCKER_HUB = 'https://index.docker.io/v1/'

function normalizeHost(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/.*$/, '')
}

export function dockerConfigPath(options: CredentialOptions = {}): string {
  return path.join(options.configDir ?? process.env.DOCKER_CONFIG ?? path.join(homedir(), '.docker'), 'config.json')
}

/** The variables a CI job sets instead of a Docker config file. */
export const REGISTRY_USERNAME_ENV = 'REGISTRY_USERNAME'
export const REGISTRY_PASSWORD_ENV = 'REGISTRY_PASSWORD'

/**
 * Where `retailops registry login` keeps credentials: a file of retailops' own (mode 0600 in a
 * 0700 folder), in the Docker config's `auths` shape, so a CI job or a laptop without Docker's
 * CLI can log in without touching ~/.docker. RETAILOPS_AUTH_FILE overrides the location.
 */
export function retailopsAuthPath(): string {
  if (process.env.RETAILOPS_AUTH_FILE) return process.env.RETAILOPS_AUTH_FILE
  return path.join(process.env.XDG_CONFIG_HOME ?? path.join(homedir(), '.config'), 'retailops', 'auth.json')
}

/** REGISTRY_USERNAME and REGISTRY_PASSWORD, when set (both or neither: one alone is USAGE). */
export function environmentCredentials(registry: string): RegistryAuth | undefined {
  const username = process.env[REGISTRY_USERNAME_ENV]
  const password = process.env[REGISTRY_PASSWORD_ENV]
  if (!username && !password) return undefined
  if (!username || !password) {
    const missing = username ? REGISTRY_PASSWORD_ENV : REGISTRY_USERNAME_ENV
    throw new UsageError(
      `${username ? REGISTRY_USERNAME_ENV : REGISTRY_PASSWORD_ENV} is set but ${missing} is not: registry credentials from the environment need both.`,
      {
        nextSteps: [
          `Set ${missing} as well (in CI: map the secret ${missing}), or unset the other to use \`retailops registry login\` / the Docker config.`,
        ],
        details: {missing},
      },
    )
  }
  registerSecret(password)
  return {username, password, serveraddress: registry === 'docker.io' ? DOCKER_HUB : registry}
}

function authFromEntry(
  entry: NonNullable<DockerConfigFile['auths']>[string],
  serverKey: string,
): RegistryAuth | undefined {
  if (entry.identitytoken) {
    registerSecret(entry.identitytoken)
    return {identitytoken: entry.identitytoken, serveraddress: serverKey}
  }
  let {username, password} = entry
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    username = decoded.slice(0, colon)
    password = decoded.slice(colon + 1)
  }
  if (!username && !password) return undefined
  registerSecret(password)
  registerSecret(entry.auth)
  return {username, password, serveraddress: serverKey}
}

function findEntry<T>(map: Record<string, T> | undefined, host: string): T | undefined {
  return Object.entries(map ?? {}).find(([k]) => normalizeHost(k) === host)?.[1]
}

/** Where the credentials for a registry came from (doctor and `registry login` report it). */
export type CredentialSource = 'environment' | 'retailops' | 'docker'

/**
 * Credentials for a registry host, most explicit first: REGISTRY_USERNAME/REGISTRY_PASSWORD, then
 * `retailops registry login`'s file, then the Docker CLI's lookup (`credHelpers[host]`, the
 * `credsStore` helper, `auths[host]` as base64 user:password or an identity token). Helpers are
 * run as `docker-credential-<name> get` with the server address on stdin. Undefined when none.
 */
export async function registryCredentials(
  registry: string,
  options: CredentialOptions = {},
): Promise<RegistryAuth | undefined> {
  return (await locateRegistryCredentials(registry, options))?.auth
}

export async function locateRegistryCredentials(
  registry: string,
  options: CredentialOptions = {},
): Promise<{auth: RegistryAuth; source: CredentialSource} | undefined> {
  const host = normalizeHost(registry === 'docker.io' ? DOCKER_HUB : registry)
  const serverKey = registry === 'docker.io' ? DOCKER_HUB : registry

  const fromEnv = environmentCredentials(registry)
  if (fromEnv) return {auth: fromEnv, source: 'environment'}

  const own = await readJsonFile<DockerConfigFile>(retailopsAuthPath()).catch(() => undefined)
  const ownEntry = findEntry(own?.auths, host)
  const fromOwn = ownEntry && authFromEntry(ownEntry, serverKey)
  if (fromOwn) return {auth: fromOwn, source: 'retailops'}

  const file = dockerConfigPath(options)
  const config = (await readJsonFile<DockerConfigFile>(file).catch(() => undefined)) ?? {}
  const helper = findEntry(config.credHelpers, host) ?? config.credsStore
  if (helper) {
    const fromHelper = await runCredentialHelper(helper, serverKey)
    if (fromHelper) return {auth: fromHelper, source: 'docker'}
  }
  const entry = findEntry(config.auths, host)
  const fromDocker = entry && authFromEntry(entry, serverKey)
  return fromDocker ? {auth: fromDocker, source: 'docker'} : undefined
}

/** Stores a login in retailops' own file (0600 in a 0700 folder), replacing that registry's entry. */
export async function storeRegistryLogin(registry: string, username: string, password: string): Promise<string> {
  const file = retailopsAuthPath()
  await mkdir(path.dirname(file), {recursive: true, mode: 0o700})
  const current = (await readJsonFile<DockerConfigFile>(file)) ?? {}
  const auths = Object.fromEntries(
    Object.entries(current.auths ?? {}).filter(([k]) => normalizeHost(k) !== normalizeHost(registry)),
  )
  auths[registry] = {auth: Buffer.from(`${username}:${password}`).toString('base64')}
  await writeFileAtomic(file, `${JSON.stringify({...current, auths}, null, 2)}\n`, 0o600)
  return file
}

/** Removes a registry's entry from retailops' own file; false when there was none. */
export async function removeRegistryLogin(registry: string): Promise<boolean> {
  const file = retailopsAuthPath()
  const current = await readJsonFile<DockerConfigFile>(file)
  const auths = current?.auths ?? {}
  const kept = Object.fromEntries(Object.entries(auths).filter(([k]) => normalizeHost(k) !== normalizeHost(registry)))
  if (Object.keys(kept).length === Object.keys(auths).length) return false
  await writeFileAtomic(file, `${JSON.stringify({...current, auths: kept}, null, 2)}\n`, 0o600)
  return true
}

export async function runCredentialHelper(helper: string, server: string): Promise<RegistryAuth | undefined> {
  const bin = `docker-credential-${helper}`
  try {
    const r = await execa(bin, ['get'], {input: server, timeout: 30_000})
    const answer = JSON.parse(r.stdout) as {Username?: string; Secret?: string}
    registerSecret(answer.Secret)
    if (answer.Username === '<token>') return {identitytoken: answer.Secret, serveraddress: server}
    return {username: answer.Username, password: answer.Secret, serveraddress: server}
  } catch (error) {
    const e = error as {code?: string; stdout?: string; stderr?: string; message: string}
    const text = `${e.stdout ?? ''} ${e.stderr ?? ''}`
    if (/credentials not found/i.test(text)) return undefined
    if (e.code === 'ENOENT') {
      throw new PermissionError(
        `The Docker credential helper ${bin} named in ${dockerConfigPath()} is not installed.`,
        {
          nextSteps: [`Install ${bin}, or remove "${helper}" from credsStore/credHelpers in the Docker config.`],
          details: {helper: bin, registry: server},
        },
      )
    }
    throw new PermissionError(
      `The Docker credential helper ${bin} failed for ${server}: ${(e.stderr || e.message).split('\n')[0]}`,
      {
        nextSteps: [
          `Run \`${bin} get\` by hand with "${server}" on stdin to see what it needs, or \`docker login ${server}\` again.`,
        ],
        details: {helper: bin, registry: server},
      },
    )
  }
}

/** The engine's X-Registry-Auth: dockerode base64url-encodes this object. Always an object (an empty one when anonymous). */
export function engineAuthConfig(auth: RegistryAuth | undefined, registry: string): Record<string, string> {
  if (!auth) return {serveraddress: registry}
  if (auth.identitytoken) return {identitytoken: auth.identitytoken, serveraddress: auth.serveraddress}
  return {username: auth.username ?? '', password: auth.password ?? '', serveraddress: auth.serveraddress}
}
