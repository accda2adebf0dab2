import {imageRepository, imageSources} from '../config/resolve.js'
import type {RetailOpsConfig} from '../config/schema.js'
import {readArtifactsLock} from '../docker/artifacts.js'
import {UsageError} from '../errors/index.js'

export interface ResolvedImage {
  service: string
  /** What goes into the pod spec: host/repo@sha256:... or, when nothing better is known, host/repo:tag. */
  ref: string
  digest?: string
  /** Tag or version pushed, when the lock says; used for app.kubernetes.io/version. */
  version?: string
  source: 'lock' | 'flag' | 'default'
}

export interface LockedImage {
  image: string
  digest?: string
  version?: string
}

const DIGEST = /@(sha256:[a-f0-9]{64})$/

export function digestOf(ref: string): string | undefined {
  return DIGEST.exec(ref)?.[1]
}

/** The images `retailops push` recorded in .retailops/artifacts.lock.json (read by src/docker/artifacts.ts), by service. */
export async function lockedImages(dir: string): Promise<Record<string, LockedImage>> {
  const lock = await readArtifactsLock(dir)
  return Object.fromEntries(
    Object.entries(lock.artifacts).map(([service, a]) => [service, {image: a.image, digest: a.digest, version: a.tag}]),
  )
}

/** Parses repeated `--image NAME=REF` flags, checking service and job names. */
export function parseImageOverrides(values: string[] = [], config: RetailOpsConfig): Record<string, string> {
  const out: Record<string, string> = {}
  for (const v of values) {
    const eq = v.indexOf('=')
    if (eq <= 0 || eq === v.length - 1)
      throw new UsageError(`--image ${v}: expected SERVICE=REF, e.g. checkout=127.0.0.1:5000/shop/checkout@sha256:…`)
    const service = v.slice(0, eq)
    if (!imageSources(config)[service]) {
      throw new UsageError(`--image ${v}: "${service}" is neither a service nor a job`, {
        nextSteps: [
          `Known services: ${Object.keys(config.services).join(', ')}.`,
          ...(Object.keys(config.jobs).length ? [`Known jobs: ${Object.keys(config.jobs).join(', ')}.`] : []),
        ],
      })
    }
    out[service] = v.slice(eq + 1)
  }
  return out
}

/** The image each service deploys: --image, then the lock, then repository:version (which policy rejects as a tag). */
export function resolveImages(
  config: RetailOpsConfig,
  services: string[],
  lock: Record<string, LockedImage>,
  overrides: Record<string, string> = {},
): Record<string, ResolvedImage> {
  const out: Record<string, ResolvedImage> = {}
  for (const service of services) {
    const flag = overrides[service]
    if (flag) {
      out[service] = {service, ref: flag, digest: digestOf(flag), version: tagOf(flag), source: 'flag'}
      continue
    }
    const locked = lock[service]
    if (locked) {
      out[service] = {
        service,
        ref: locked.image,
        digest: locked.digest,
        version: locked.version ?? tagOf(locked.image),
        source: 'lock',
      }
      continue
    }
    out[service] = {
      service,
      ref: `${imageRepository(config, service)}:${config.version}`,
      version: config.version,
      source: 'default',
    }
  }
  return out
}

function tagOf(ref: string): string | undefined {
  const noDigest = ref.replace(/@.*$/, '')
  const m = /:([^:/]+)$/.exec(noDigest)
  return m?.[1]
}
