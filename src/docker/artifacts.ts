import path from 'node:path'

import type {LoadedConfig} from '../config/load.js'
import {selectImages} from '../config/resolve.js'
import {ConfigError, NotFoundError} from '../errors/index.js'
import {readJsonFile, SerialUpdater} from './files.js'
import {isDigest} from './reference.js'

/**
 * `.retailops/artifacts.lock.json`: service → the exact image that was completely pushed,
 * `registry/repository@sha256:…`. Deploys read images from here, by digest, never by tag.
 */

export const ARTIFACTS_LOCK = '.retailops/artifacts.lock.json'

export interface ArtifactEntry {
  /** `registry/repository`, without tag or digest. */
  repository: string
  /** Manifest digest as read back from the registry. */
  digest: string
  /** `registry/repository@sha256:…`: what deploys use. */
  image: string
  /** The tag that was pushed (informational; never used to deploy). */
  tag: string
  pushedAt: string
  /** Local image ID (config digest) the push came from. */
  imageId?: string
}

export interface ArtifactsLock {
  lockfileVersion: 1
  artifacts: Record<string, ArtifactEntry>
}

export function artifactsLockPath(projectDir: string): string {
  return path.join(projectDir, ARTIFACTS_LOCK)
}

const emptyLock = (): ArtifactsLock => ({lockfileVersion: 1, artifacts: {}})

export async function readArtifactsLock(projectDir: string): Promise<ArtifactsLock> {
  const file = artifactsLockPath(projectDir)
  const lock = await readJsonFile<ArtifactsLock>(file).catch((error: Error) => {
    throw new ConfigError([
      {file, path: '', message: `not valid JSON (${error.message}); delete it and run \`retailops push\` again`},
    ])
  })
  if (!lock) return emptyLock()
  for (const [service, entry] of Object.entries(lock.artifacts ?? {})) {
    if (!entry || !isDigest(entry.digest) || entry.image !== `${entry.repository}@${entry.digest}`) {
      throw new ConfigError([
        {
          file,
          path: `artifacts.${service}`,
          message: 'is not a repository@sha256 digest entry; run `retailops push` again',
        },
      ])
    }
  }
  return {lockfileVersion: 1, artifacts: lock.artifacts ?? {}}
}

/** Records completely pushed images, one atomic write each (temporary file + rename). */
export function artifactsLockWriter(projectDir: string): {
  record(service: string, entry: ArtifactEntry): Promise<void>
} {
  const updater = new SerialUpdater<ArtifactsLock>(artifactsLockPath(projectDir), emptyLock)
  return {
    async record(service, entry) {
      if (!isDigest(entry.digest)) throw new Error(`refusing to record ${service} without a digest`)
      await updater.update((lock) => {
        lock.artifacts = {...lock.artifacts, [service]: entry}
        lock.lockfileVersion = 1
      })
    },
  }
}

/**
 * The pushed image of each service, by digest, for deploy and the other features: throws
 * NOT_FOUND naming the services that were never pushed.
 */
export async function resolveArtifacts(
  project: LoadedConfig,
  services?: string[],
): Promise<Record<string, ArtifactEntry>> {
  const names = selectImages(project.config, services)
  const lock = await readArtifactsLock(project.dir)
  const missing = names.filter((s) => !lock.artifacts[s])
  if (missing.length > 0) {
    throw new NotFoundError(`No pushed image for ${missing.join(', ')} in ${ARTIFACTS_LOCK}.`, {
      nextSteps: [`Run \`retailops build ${missing.join(' ')} && retailops push ${missing.join(' ')}\` first.`],
      details: {missing, lock: artifactsLockPath(project.dir)},
    })
  }
  return Object.fromEntries(names.map((s) => [s, lock.artifacts[s]]))
}

/** One service's pushed image (`registry/repository@sha256:…`). */
export async function resolveArtifact(project: LoadedConfig, service: string): Promise<ArtifactEntry> {
  return (await resolveArtifacts(project, [service]))[service]
}
