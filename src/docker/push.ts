import path from 'node:path'

import type Docker from 'dockerode'
import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import {imageRepository, selectImages} from '../config/resolve.js'
import {type ExitCodeName, NotFoundError, RetailOpsError} from '../errors/index.js'
import {throwIfAborted, type RunContext} from '../ui/context.js'
import {ARTIFACTS_LOCK, type ArtifactEntry, artifactsLockWriter} from './artifacts.js'
import {BUILD_STATE, type BuildStateEntry, sourceTag} from './build.js'
import {engineAuthConfig, registryCredentials} from './credentials.js'
import {assertCredentialsMayReachEngine, dockerClient, engineInfo} from './engine.js'
import {readJsonFile} from './files.js'
import {followJsonStream, PushProgress} from './progress.js'
import {parseReference} from './reference.js'
import {registryClient, usesPlainHttp} from './registry.js'

export interface PushOptions {
  project: LoadedConfig
  services?: string[]
  concurrency?: number
}

export interface ServicePush {
  service: string
  /** unchanged: the registry already held this build (see build's source tag); its digest was recorded, nothing pushed. */
  status: 'pushed' | 'unchanged' | 'failed'
  /** `registry/repository:tag` that was pushed. */
  source: string
  /** `registry/repository@sha256:…` (pushed only). */
  image?: string
  digest?: string
  reason?: string
  /** The exit code this failure maps to: PERMISSION (credentials refused), UNAVAILABLE (unreachable) or PUSH_FAILED. */
  exit?: ExitCodeName
  durationMs: number
}

export interface PushResult {
  registry: string
  lock: string
  services: ServicePush[]
  pushed: string[]
  unchanged: string[]
  failed: string[]
  /** The worst failure's exit code name, when any failed. */
  exit?: ExitCodeName
}

interface BuildStateFile {
  services?: Record<string, BuildStateEntry>
}

/** How a push error reads → which exit code. */
export function classifyPushError(message: string): ExitCodeName {
  if (/unauthorized|authentication required|denied|forbidden|\b40[13]\b|insufficient_scope/i.test(message))
    return 'PERMISSION'
  if (
    /connection refused|no such host|i\/o timeout|dial tcp|tls handshake|server gave http response|no route to host|network is unreachable|EOF$/i.test(
      message,
    )
  )
    return 'UNAVAILABLE'
  return 'PUSH_FAILED'
}

const SEVERITY: ExitCodeName[] = ['PERMISSION', 'UNAVAILABLE', 'PUSH_FAILED']

/**
 * Pushes each service's last built image through the Docker Engine with the registry credentials
 * from the Docker config, reads the manifest digest back from the registry, and records
 * `service → repository@digest` in the artifacts lock only once that is confirmed. A failed push
 * leaves the lock as it was for that service.
 */
export async function pushImages(options: PushOptions, ctx: RunContext): Promise<PushResult> {
  const {config, dir} = options.project
  const services = selectImages(config, options.services)
  const state = (await readJsonFile<BuildStateFile>(path.join(dir, BUILD_STATE)).catch(() => undefined)) ?? {}
  const unbuilt = services.filter((s) => !state.services?.[s])
  if (unbuilt.length > 0) {
    throw new NotFoundError(`No built image for ${unbuilt.join(', ')}.`, {
      nextSteps: [`Run \`retailops build ${unbuilt.join(' ')}\` first.`],
      details: {unbuilt},
    })
  }
  await engineInfo()
  const docker = await dockerClient()
  const sources = await Promise.all(
    services.map(async (service) => {
      const entry = state.services![service]
      const expected = imageRepository(config, service)
      const ref = parseReference(entry.image)
      if (`${ref.registry}/${ref.repository}` !== expected) {
        throw new RetailOpsError(
          'USAGE',
          `${service} was last built as ${entry.image}, but retailops.yaml now names ${expected}.`,
          {
            nextSteps: [`Run \`retailops build ${service}\` again.`],
          },
        )
      }
      if (entry.registryDigest)
        return {
          service,
          source: entry.image,
          ref,
          imageId: undefined,
          buildHash: entry.buildHash,
          registryDigest: entry.registryDigest,
          registryTag: entry.registryTag,
        }
      const image = await docker
        .getImage(entry.image)
        .inspect()
        .catch(() => undefined)
      if (!image) {
        throw new NotFoundError(`The image ${entry.image} of ${service} is no longer in the Docker Engine.`, {
          nextSteps: [`Run \`retailops build ${service}\` again.`],
        })
      }
      return {
        service,
        source: entry.image,
        ref,
        imageId: image.Id,
        buildHash: entry.buildHash,
        registryDigest: undefined as string | undefined,
        registryTag: undefined as string | undefined,
      }
    }),
  )

  // Reachability and credentials are checked before anything is pushed.
  const registry = config.registry.url
  const client = await registryClient(registry, {
    insecure: usesPlainHttp(registry, config.registry),
    signal: ctx.signal,
  })
  await client.ping(sources[0]?.ref.repository, true)
  const credentials = await registryCredentials(registry)
  assertCredentialsMayReachEngine(registry, Boolean(credentials))
  const auth = engineAuthConfig(credentials, registry)

  const lock = artifactsLockWriter(dir)
  const limit = pLimit(options.concurrency ?? 3)
  const results = await Promise.all(
    sources.map((s) =>
      limit(async (): Promise<ServicePush> => {
        const t0 = Date.now()
        if (ctx.signal?.aborted)
          return {
            service: s.service,
            status: 'failed',
            source: s.source,
            reason: 'interrupted before it started',
            exit: 'INTERRUPTED',
            durationMs: 0,
          }
        const task = ctx.out.task(`Pushing ${s.source}`)
        const fail = (reason: string, exit: ExitCodeName = classifyPushError(reason)): ServicePush => {
          task.fail(`${s.service}: ${reason}`)
          return {service: s.service, status: 'failed', source: s.source, reason, exit, durationMs: Date.now() - t0}
        }
        if (s.registryDigest) {
          // Built and pushed before (a fresh CI clone of unchanged sources): record what the registry holds.
          const held = await client
            .headManifest(s.ref.repository, s.registryDigest)
            .catch((error: RetailOpsError) => error)
          if (held instanceof Error) return fail(held.message, held.exit ?? 'PUSH_FAILED')
          if (!held)
            return fail(
              `the registry no longer has ${s.source}; run \`retailops build ${s.service} --force\``,
              'PUSH_FAILED',
            )
          const entry: ArtifactEntry = {
            repository: `${s.ref.registry}/${s.ref.repository}`,
            digest: s.registryDigest,
            image: s.source,
            tag: s.registryTag ?? s.ref.tag ?? 'unknown',
            pushedAt: new Date().toISOString(),
          }
          await lock.record(s.service, entry)
          task.succeed(`Unchanged ${entry.image} (already in the registry)`)
          return {
            service: s.service,
            status: 'unchanged',
            source: s.source,
            image: entry.image,
            digest: s.registryDigest,
            durationMs: Date.now() - t0,
          }
        }
        const progress = new PushProgress((line) => ctx.out.stream(s.service, line))
        try {
          await followPush(docker, s.source, s.ref.tag!, auth, progress, ctx.signal)
        } catch (error) {
          throwIfAborted(ctx.signal)
          const e = error as {json?: {message?: string}; message: string}
          return fail(e.json?.message ?? e.message)
        }
        if (progress.outcome.failure) return fail(progress.outcome.failure)
        let head
        try {
          head = await client.headManifest(s.ref.repository, s.ref.tag!)
        } catch (error) {
          const e = error as RetailOpsError
          return fail(`pushed, but reading the digest back failed: ${e.message}`, e.exit ?? 'PUSH_FAILED')
        }
        if (!head)
          return fail(
            `the engine reported success, but the registry has no ${s.ref.repository}:${s.ref.tag}`,
            'PUSH_FAILED',
          )
        if (progress.outcome.digest && progress.outcome.digest !== head.digest) {
          return fail(
            `the engine pushed ${progress.outcome.digest}, but the registry's ${s.ref.tag} is now ${head.digest} (another push of the same tag?)`,
            'PUSH_FAILED',
          )
        }
        try {
          // The source tag lets a later build of the same sources (another clone, a CI runner) find this image instead of rebuilding it.
          const manifest = await client.getManifest(s.ref.repository, head.digest)
          if (manifest)
            await client.putManifest(
              s.ref.repository,
              sourceTag(s.buildHash, s.ref.tag!),
              manifest.body,
              manifest.mediaType,
            )
        } catch (error) {
          ctx.out.warn(
            `${s.service}: pushed, but tagging it ${sourceTag(s.buildHash, s.ref.tag!)} failed (${(error as Error).message}); the next build in a fresh clone rebuilds it.`,
          )
        }
        const entry: ArtifactEntry = {
          repository: `${s.ref.registry}/${s.ref.repository}`,
          digest: head.digest,
          image: `${s.ref.registry}/${s.ref.repository}@${head.digest}`,
          tag: s.ref.tag!,
          pushedAt: new Date().toISOString(),
          imageId: s.imageId,
        }
        await lock.record(s.service, entry)
        task.succeed(`Pushed ${entry.image}`)
        return {
          service: s.service,
          status: 'pushed',
          source: s.source,
          image: entry.image,
          digest: head.digest,
          durationMs: Date.now() - t0,
        }
      }),
    ),
  )
  throwIfAborted(ctx.signal)
  const failed = results.filter((r) => r.status === 'failed')
  return {
    registry,
    lock: path.join(dir, ARTIFACTS_LOCK),
    services: results,
    pushed: results.filter((r) => r.status === 'pushed').map((r) => r.service),
    unchanged: results.filter((r) => r.status === 'unchanged').map((r) => r.service),
    failed: failed.map((r) => r.service),
    exit: failed.length === 0 ? undefined : (SEVERITY.find((x) => failed.some((f) => f.exit === x)) ?? 'PUSH_FAILED'),
  }
}

async function followPush(
  docker: Docker,
  image: string,
  tag: string,
  authconfig: Record<string, string>,
  progress: PushProgress,
  signal?: AbortSignal,
): Promise<void> {
  const name = image.slice(0, image.length - tag.length - 1)
  const stream = await docker
    .getImage(name)
    .push({tag, authconfig, abortSignal: signal} as Parameters<Docker.Image['push']>[0])
  await followJsonStream(stream, (event) => progress.handle(event))
}

/**
 * Pushes one tagged image (`registry/repository:tag`) through the engine with the registry's
 * credentials and reads its manifest digest back from the registry.
 */
export async function pushTaggedImage(
  image: string,
  options: {insecure?: boolean},
  ctx: RunContext,
): Promise<{digest: string; image: string}> {
  const ref = parseReference(image)
  const docker = await dockerClient()
  const client = await registryClient(ref.registry, {insecure: options.insecure, signal: ctx.signal})
  await client.ping(ref.repository, true)
  const auth = engineAuthConfig(await registryCredentials(ref.registry), ref.registry)
  const progress = new PushProgress((line) => ctx.out.stream(ref.repository, line))
  try {
    await followPush(docker, image, ref.tag!, auth, progress, ctx.signal)
  } catch (error) {
    throwIfAborted(ctx.signal)
    const e = error as {json?: {message?: string}; message: string}
    const reason = e.json?.message ?? e.message
    throw new RetailOpsError(classifyPushError(reason), `Pushing ${image} failed: ${reason}`)
  }
  if (progress.outcome.failure)
    throw new RetailOpsError(
      classifyPushError(progress.outcome.failure),
      `Pushing ${image} failed: ${progress.outcome.failure}`,
    )
  const head = await client.headManifest(ref.repository, ref.tag!)
  if (!head)
    throw new RetailOpsError(
      'PUSH_FAILED',
      `The engine reported success, but the registry has no ${ref.repository}:${ref.tag}.`,
    )
  return {digest: head.digest, image: `${ref.registry}/${ref.repository}@${head.digest}`}
}
