import {readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import path from 'node:path'

import type Docker from 'dockerode'

import {isLoopbackHost} from '../config/loopback.js'
import {RefusedError, UnavailableError, UsageError} from '../errors/index.js'

let client: Docker | undefined
let endpoint: EngineEndpoint | undefined

/** Where the engine is and how it is reached: what dockerode is given, and what push may send it. */
export interface EngineEndpoint {
  options: Docker.DockerOptions
  /** "unix:///var/run/docker.sock", "tcp://host:2376 (TLS)", for messages. */
  describe: string
  /**
   * Whether the connection leaves this machine unencrypted (tcp:// to a non-loopback host without
   * DOCKER_TLS_VERIFY): push then refuses to hand the engine registry credentials.
   */
  cleartextRemote: boolean
}

/**
 * The Docker Engine named by DOCKER_HOST, as the Docker CLI reads it: unix:// (or unset: the
 * default socket), or tcp:// with TLS when DOCKER_TLS_VERIFY is set to anything non-empty (the
 * CLI's rule): ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH (default ~/.docker), the
 * server certificate verified against that CA, default port 2376 (2375 without TLS).
 */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  const host = env.DOCKER_HOST
  if (!host || host.startsWith('unix://')) {
    const socketPath = host ? host.slice('unix://'.length) : '/var/run/docker.sock'
    return {options: {socketPath}, describe: `unix://${socketPath}`, cleartextRemote: false}
  }
  if (!host.startsWith('tcp://')) {
    throw new UsageError(`DOCKER_HOST=${host} is not supported: use unix:///path/to/docker.sock or tcp://host:port.`, {
      details: {DOCKER_HOST: host},
    })
  }
  const url = new URL(host.replace(/^tcp:/, 'http:'))
  const tls = Boolean(env.DOCKER_TLS_VERIFY)
  if (!tls) {
    return {
      options: {host: url.hostname, port: Number(url.port || 2375), protocol: 'http'},
      describe: `tcp://${url.host} (no TLS)`,
      cleartextRemote: !isLoopbackHost(url.host),
    }
  }
  const certPath = env.DOCKER_CERT_PATH || path.join(env.HOME || homedir(), '.docker')
  const read = (file: string) => {
    const full = path.join(certPath, file)
    try {
      return readFileSync(full)
    } catch (error) {
      throw new UnavailableError(
        `DOCKER_TLS_VERIFY is set, but ${full} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
        {
          nextSteps: [
            `Put the engine's CA (ca.pem) and this client's certificate and key (cert.pem, key.pem) in ${certPath}, or set DOCKER_CERT_PATH to the folder holding them.`,
          ],
          details: {DOCKER_HOST: host, DOCKER_CERT_PATH: certPath, file: full},
        },
      )
    }
  }
  return {
    options: {
      host: url.hostname,
      port: Number(url.port || 2376),
      protocol: 'https',
      ca: read('ca.pem'),
      cert: read('cert.pem'),
      key: read('key.pem'),
    },
    describe: `tcp://${url.hostname}:${url.port || 2376} (TLS, certificates from ${certPath})`,
    cleartextRemote: false,
  }
}

/** The Docker Engine named by DOCKER_HOST (unix socket, or tcp with the TLS settings of DOCKER_TLS_VERIFY and DOCKER_CERT_PATH). */
export async function dockerClient(): Promise<Docker> {
  if (client) return client
  const {default: DockerCtor} = await import('dockerode')
  endpoint = engineEndpoint()
  client = new DockerCtor(endpoint.options)
  return client
}

/**
 * The engine receives registry credentials in its X-Registry-Auth header (push, base image pulls):
 * over plain TCP to another machine they would travel in the clear, so that is refused.
 */
export function assertCredentialsMayReachEngine(registry: string, hasCredentials: boolean): void {
  const engine = currentEngineEndpoint()
  if (!hasCredentials || !engine.cleartextRemote) return
  throw new RefusedError(
    `Refusing to hand registry credentials for ${registry} to the Docker Engine at ${engine.describe}: the connection is unencrypted.`,
    {
      nextSteps: [
        'Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) for the tcp:// engine, or use a local engine (unix socket).',
      ],
      details: {registry, engine: engine.describe},
    },
  )
}

/** How the engine dockerClient() talks to is reached. */
export function currentEngineEndpoint(): EngineEndpoint {
  endpoint ??= engineEndpoint()
  return endpoint
}

export interface EngineInfo {
  version: string
  apiVersion: string
  os: string
  arch: string
  /** BuildKit is usable through the API from v1.39 on (version=2 on /build). */
  buildkit: boolean
}

export async function engineInfo(): Promise<EngineInfo> {
  const docker = await dockerClient()
  try {
    const v = await docker.version()
    return {
      version: v.Version,
      apiVersion: v.ApiVersion,
      os: v.Os,
      arch: v.Arch,
      buildkit: compareApi(v.ApiVersion, '1.39') >= 0,
    }
  } catch (error) {
    throw new UnavailableError(
      `Cannot reach the Docker Engine at ${currentEngineEndpoint().describe}: ${(error as Error).message}`,
      {
        nextSteps: [
          'Start Docker (for the local sandbox: `bash scripts/sandbox.sh up`), or set DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for a tcp:// engine).',
        ],
        cause: error,
      },
    )
  }
}

export function compareApi(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number)
  const [bm, bn] = b.split('.').map(Number)
  return am === bm ? an - bn : am - bm
}
