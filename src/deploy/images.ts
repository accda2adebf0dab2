import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {imageRepository} from '../config/resolve.js'
import type {RetailOpsConfig} from '../config/schema.js'
import {ConfigError, UsageError} from '../errors/index.js'

/** Where `retailops push` records what it pushed, relative to retailops.yaml. */
export const ARTIFACTS_LOCK = '.retailops/artifacts.lock.json'

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

/**
 * Reads the artifacts lock defensively: `{"services": {"<name>": {"image": "host/repo@sha256:..."}}}`
 * is the agreed minimum; `{repository, digest}`, `ref` and `tag`/`version` are accepted too, so a
 * richer lock from `retailops push` keeps working. A missing lock is not an error here (policy
 * reports the tag fallback); an unreadable one is.
 */
export async function readArtifactsLock(dir: string): Promise<Record<string, LockedImage>> {
  const file = path.join(dir, ARTIFACTS_LOCK)
  if (!existsSync(file)) return {}
  let data: unknown
  try {
    data = JSON.parse(await readFile(file, 'utf8'))
  } catch (error) {
    throw new ConfigError([{file, path: '', message: `not valid JSON (${(error as Error).message}); run \`retailops push\` again to rewrite it`}])
  }
  // retailops push writes {lockfileVersion, artifacts: {...}}; {services: {...}} is the older agreed minimum.
  const services = (data as {artifacts?: unknown})?.artifacts ?? (data as {services?: unknown})?.services
  if (!services || typeof services !== 'object') return {}
  const out: Record<string, LockedImage> = {}
  for (const [name, raw] of Object.entries(services as Record<string, unknown>)) {
    const entry = (typeof raw === 'string' ? {image: raw} : raw) as Record<string, unknown>
    if (!entry || typeof entry !== 'object') continue
    const str = (k: string) => (typeof entry[k] === 'string' ? (entry[k] as string) : undefined)
    let image = str('image') ?? str('ref') ?? str('reference')
    const digest = str('digest') ?? (image ? digestOf(image) : undefined)
    const repository = str('repository') ?? str('repo')
    if (image && !digestOf(image) && digest && !image.includes('@')) image = `${image.replace(/:[^:/]+$/, '')}@${digest}`
    if (!image && repository && digest) image = `${repository}@${digest}`
    if (!image) continue
    out[name] = {image, digest: digestOf(image) ?? digest, version: str('version') ?? str('tag')}
  }
  return out
}

/** Parses repeated `--image SERVICE=REF` flags, checking service names. */
export function parseImageOverrides(values: string[] = [], config: RetailOpsConfig): Record<string, string> {
  const out: Record<string, string> = {}
  for (const v of values) {
    const eq = v.indexOf('=')
    if (eq <= 0 || eq === v.length - 1) throw new UsageError(`--image ${v}: expected SERVICE=REF, e.g. checkout=127.0.0.1:5000/shop/checkout@sha256:…`)
    const service = v.slice(0, eq)
    if (!config.services[service]) {
      throw new UsageError(`--image ${v}: "${service}" is not a service`, {nextSteps: [`Known services: ${Object.keys(config.services).join(', ')}.`]})
    }
    out[service] = v.slice(eq + 1)
  }
  return out
}

/** The image each service deploys: --image, then the lock, then repository:version (which policy rejects as a tag). */
export function resolveImages(config: RetailOpsConfig, services: string[], lock: Record<string, LockedImage>, overrides: Record<string, string> = {}): Record<string, ResolvedImage> {
  const out: Record<string, ResolvedImage> = {}
  for (const service of services) {
    const flag = overrides[service]
    if (flag) {
      out[service] = {service, ref: flag, digest: digestOf(flag), version: tagOf(flag), source: 'flag'}
      continue
    }
    const locked = lock[service]
    if (locked) {
      out[service] = {service, ref: locked.image, digest: locked.digest, version: locked.version ?? tagOf(locked.image), source: 'lock'}
      continue
    }
    out[service] = {service, ref: `${imageRepository(config, service)}:${config.version}`, version: config.version, source: 'default'}
  }
  return out
}

function tagOf(ref: string): string | undefined {
  const noDigest = ref.replace(/@.*$/, '')
  const m = /:([^:/]+)$/.exec(noDigest)
  return m?.[1]
}
