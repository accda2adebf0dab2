import type Docker from 'dockerode'

import {UnavailableError} from '../errors/index.js'

let client: Docker | undefined

/** The Docker Engine named by DOCKER_HOST (unix socket or tcp), else the default socket. */
export async function dockerClient(): Promise<Docker> {
  if (client) return client
  const {default: DockerCtor} = await import('dockerode')
  const host = process.env.DOCKER_HOST
  if (!host || host.startsWith('unix://')) {
    client = new DockerCtor({socketPath: host ? host.slice('unix://'.length) : '/var/run/docker.sock'})
  } else {
    const url = new URL(host.replace(/^tcp:/, 'http:'))
    client = new DockerCtor({host: url.hostname, port: Number(url.port || 2375), protocol: 'http'})
  }
  return client
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
    return {version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch, buildkit: compareApi(v.ApiVersion, '1.39') >= 0}
  } catch (error) {
    throw new UnavailableError(`Cannot reach the Docker Engine at ${process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'}: ${(error as Error).message}`, {
      nextSteps: ['Start Docker (for the local sandbox: `bash scripts/sandbox.sh up`), or set DOCKER_HOST.'],
      cause: error,
    })
  }
}

export function compareApi(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number)
  const [bm, bn] = b.split('.').map(Number)
  return am === bm ? an - bn : am - bm
}
