import {homedir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'

import {PermissionError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'
import {readJsonFile} from './files.js'

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

/**
 * Credentials for a registry host, as the Docker CLI finds them: `credHelpers[host]`, then the
 * `credsStore` helper, then `auths[host]` (base64 user:password or an identity token). Helpers are
 * run as `docker-credential-<name> get` with the server address on stdin. Undefined when none.
 */
export async function registryCredentials(registry: string, options: CredentialOptions = {}): Promise<RegistryAuth | undefined> {
  const file = dockerConfigPath(options)
  const config = (await readJsonFile<DockerConfigFile>(file).catch(() => undefined)) ?? {}
  const host = normalizeHost(registry === 'docker.io' ? DOCKER_HUB : registry)
  const serverKey = registry === 'docker.io' ? DOCKER_HUB : registry

  const helper = Object.entries(config.credHelpers ?? {}).find(([k]) => normalizeHost(k) === host)?.[1] ?? config.credsStore
  if (helper) {
    const fromHelper = await runCredentialHelper(helper, serverKey)
    if (fromHelper) return fromHelper
  }
  const entry = Object.entries(config.auths ?? {}).find(([k]) => normalizeHost(k) === host)?.[1]
  if (!entry) return undefined
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
      throw new PermissionError(`The Docker credential helper ${bin} named in ${dockerConfigPath()} is not installed.`, {
        nextSteps: [`Install ${bin}, or remove "${helper}" from credsStore/credHelpers in the Docker config.`],
        details: {helper: bin, registry: server},
      })
    }
    throw new PermissionError(`The Docker credential helper ${bin} failed for ${server}: ${(e.stderr || e.message).split('\n')[0]}`, {
      nextSteps: [`Run \`${bin} get\` by hand with "${server}" on stdin to see what it needs, or \`docker login ${server}\` again.`],
      details: {helper: bin, registry: server},
    })
  }
}

/** The engine's X-Registry-Auth: dockerode base64url-encodes this object. Always an object (an empty one when anonymous). */
export function engineAuthConfig(auth: RegistryAuth | undefined, registry: string): Record<string, string> {
  if (!auth) return {serveraddress: registry}
  if (auth.identitytoken) return {identitytoken: auth.identitytoken, serveraddress: auth.serveraddress}
  return {username: auth.username ?? '', password: auth.password ?? '', serveraddress: auth.serveraddress}
}
