import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type Docker from 'dockerode'
import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import {imageRepository, imageSources, selectImages} from '../config/resolve.js'
import {NotFoundError, RetailOpsError, UsageError} from '../errors/index.js'
import {throwIfAborted, type RunContext} from '../ui/context.js'
import {contextTar, scanContext, type ScannedContext} from './context.js'
import {assertCredentialsMayReachEngine, dockerClient, engineInfo} from './engine.js'
import {readJsonFile, SerialUpdater} from './files.js'
import {engineAuthConfig, registryCredentials} from './credentials.js'
import {BuildProgress, followJsonStream, type StepFailure} from './progress.js'
import {parseReference} from './reference.js'
import {registryClient, usesPlainHttp} from './registry.js'
import {gitRevision, imageTag, type Revision} from './revision.js'

export type BuilderChoice = 'auto' | 'buildkit' | 'classic'
export type Builder = 'buildkit' | 'classic'

export interface BuildOptions {
  project: LoadedConfig
  /** Service names; none means all. */
  services?: string[]
  /** At most this many builds at once (default: the number of CPUs, at least 2). */
  concurrency?: number
  /** Extra build arguments (`--build-arg KEY=VALUE`); they override the configuration's. */
  buildArgs?: Record<string, string>
  /** The BASE_IMAGE build argument (`--base-image`, env RETAILOPS_BASE_IMAGE). */
  baseImage?: string
  builder?: BuilderChoice
  /** Build even when nothing changed since the last successful build. */
  force?: boolean
  /** Tell the engine not to use its layer cache. */
  noCache?: boolean
  /** Re-resolve every base image in its registry (Docker Hub names too) and pull a newer one. */
  pull?: boolean
  /** Network mode of RUN steps (`docker build --network`): default, none, host. */
  network?: string
}

export interface ServiceBuild {
  service: string
  status: 'built' | 'skipped' | 'failed'
  /** `registry/repository:tag` */
  image: string
  repository: string
  tag: string
  imageId?: string
  /** Hash of the context files, Dockerfile, build arguments, target and the base images' digests. */
  buildHash: string
  /** The FROM images and the digests they resolved to. */
  baseImages: BaseImage[]
  builder?: Builder
  /** Why it was skipped, or what failed. */
  reason?: string
  /** Skipped because the registry already holds this build: its digest. */
  registryDigest?: string
  failure?: StepFailure
  /** When this service's build (or its check for an unchanged one) started. */
  startedAt: string
  /** The Dockerfile, relative to the context. */
  dockerfile: string
  /** The build arguments it was built with (configuration, --base-image, --build-arg). */
  buildArgs: Record<string, string>
  durationMs: number
}

export interface BuildResult {
  revision: Revision
  version: string
  builder: Builder
  concurrency: number
  services: ServiceBuild[]
  built: string[]
  skipped: string[]
  failed: string[]
  durationMs: number
}

/** `.retailops/build-state.json`: the last successful build of each service. */
export const BUILD_STATE = '.retailops/build-state.json'

interface BuildState {
  version: 1
  services: Record<string, BuildStateEntry>
}

export interface BuildStateEntry {
  buildHash: string
  /** Local image ID; empty when the build was found in the registry instead (see registryDigest). */
  imageId: string
  image: string
  builtAt: string
  builder: Builder
  /** Hash of everything but the base images: tells "the base changed" from "the code changed". */
  inputsHash?: string
  /** FROM image → digest it resolved to. */
  bases?: Record<string, string>
  /**
   * The registry already holds an image of this exact build (its source tag, see sourceTag): push
   * records this digest instead of pushing, and nothing is built. How a fresh CI clone knows a
   * service did not change.
   */
  registryDigest?: string
  /** The tag that build was first pushed as (its version label). */
  registryTag?: string
}

/**
 * The tag push adds to every image: `src-<build hash>_<the tag it was pushed as>`. The build hash
 * (context files, Dockerfile, build arguments, base image digests) lets a later build of the same
 * sources anywhere find the image and build nothing; the original tag keeps its version label, so
 * an unchanged service renders exactly as it is deployed.
 */
export function sourceTag(buildHash: string, pushedTag: string): string {
  return `${sourceTagPrefix(buildHash)}${pushedTag}`.slice(0, 128)
}

function sourceTagPrefix(buildHash: string): string {
  return `src-${buildHash.slice(0, 32)}_`
}

/** An earlier push of the same build, when the registry has one; any failure to ask means "not known". */
async function pushedBuild(
  project: LoadedConfig,
  plan: {repository: string; buildHash: string},
  ctx: RunContext,
): Promise<{digest: string; tag: string} | undefined> {
  try {
    const ref = parseReference(plan.repository)
    const client = await registryClient(ref.registry, {
      insecure: usesPlainHttp(ref.registry, project.config.registry),
      signal: ctx.signal,
    })
    const prefix = sourceTagPrefix(plan.buildHash)
    const found = (await client.listTags(ref.repository)).find((t) => t.startsWith(prefix) && t.length > prefix.length)
    if (!found) return undefined
    const head = await client.headManifest(ref.repository, found)
    return head && {digest: head.digest, tag: found.slice(prefix.length)}
  } catch (error) {
    ctx.out.debug(
      `registry lookup of ${plan.repository}:${sourceTagPrefix(plan.buildHash)}* failed (${(error as Error).message}); building`,
    )
    return undefined
  }
}

/** A FROM image of a Dockerfile and what it resolved to. */
export interface BaseImage {
  /** As the Dockerfile names it, build arguments substituted. */
  ref: string
  /** Its manifest digest in its registry, or the local engine's image ID; undefined when neither knows it. */
  digest?: string
  source: 'registry' | 'local' | 'pinned' | 'unresolved'
  /** The engine's copy is missing or older than the registry's: pulled before the build. */
  pulled?: boolean
}

interface Plan {
  service: string
  repository: string
  scanned: ScannedContext
  buildArgs: Record<string, string>
  target?: string
  buildHash: string
  /** The hash without the base images. */
  inputsHash: string
  bases: BaseImage[]
  tag: string
  image: string
  /** Base images only the engine's local store has (see localOnlyImages). */
  localBases: string[]
}

/** Parses `KEY=VALUE` pairs (`--build-arg`); a bare KEY takes the value from the environment, as docker build does. */
export function parseBuildArgs(pairs: string[] = [], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    const key = eq < 0 ? pair : pair.slice(0, eq)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new UsageError(`--build-arg "${pair}" is not KEY=VALUE.`, {
        nextSteps: ['Pass build arguments as --build-arg NAME=VALUE (repeatable).'],
      })
    }
    if (eq < 0) {
      if (env[key] === undefined)
        throw new UsageError(`--build-arg ${key} has no value and ${key} is not set in the environment.`)
      out[key] = env[key]!
    } else {
      out[key] = pair.slice(eq + 1)
    }
  }
  return out
}

/**
 * The build's identity: context content, Dockerfile name, sorted build arguments and target, and
 * the digest each base image resolved to, so a base patched under the same tag is a change too.
 */
export function buildHash(input: {
  contextDigest: string
  dockerfile: string
  buildArgs: Record<string, string>
  target?: string
  bases?: Record<string, string>
}): string {
  const args = Object.keys(input.buildArgs)
    .sort()
    .map((k) => [k, input.buildArgs[k]])
  const identity: Record<string, unknown> = {
    v: 1,
    context: input.contextDigest,
    dockerfile: input.dockerfile,
    args,
    target: input.target ?? null,
  }
  if (input.bases) {
    identity.v = 2
    identity.bases = Object.keys(input.bases)
      .sort()
      .map((k) => [k, input.bases![k]])
  }
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex')
}

/** The first part of a reference names a registry (a dot, a colon or localhost), as Docker reads it. */
function namesRegistry(image: string): boolean {
  const first = image.split('/')[0]
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
}

/**
 * What a FROM image resolves to. One from a named registry (and with --pull, any, Docker Hub
 * included) is asked of its registry (HEAD of the manifest: its digest); when the engine's copy
 * is missing or another digest, the build must pull it first (`pulled`). Anything else, or a
 * registry that cannot answer, is what the local engine has (its image ID). A digest-pinned
 * reference is its own identity.
 */
export async function resolveBaseImage(
  docker: Docker,
  image: string,
  options: {
    pull?: boolean
    insecure?: (registry: string) => boolean
    signal?: AbortSignal
    warn?: (message: string) => void
  },
): Promise<BaseImage> {
  let ref: ReturnType<typeof parseReference>
  try {
    ref = parseReference(image)
  } catch {
    return {ref: image, source: 'unresolved'}
  }
  if (ref.digest) return {ref: image, digest: ref.digest, source: 'pinned'}
  const local = await docker
    .getImage(image)
    .inspect()
    .catch(() => undefined)
  if (namesRegistry(image) || options.pull) {
    try {
      const client = await registryClient(ref.registry, {
        insecure: options.insecure?.(ref.registry),
        signal: options.signal,
      })
      const head = await client.headManifest(ref.repository, ref.tag ?? 'latest')
      if (head) {
        const repo = `${ref.registry}/${ref.repository}`
        const localDigests = (local?.RepoDigests ?? [])
          .filter((d) => repositoryOf(d) === repo)
          .map((d) => d.slice(d.indexOf('@') + 1))
        return {ref: image, digest: head.digest, source: 'registry', pulled: !localDigests.includes(head.digest)}
      }
      options.warn?.(`Base image ${image} is not in ${ref.registry}; using the local engine's copy.`)
    } catch (error) {
      options.warn?.(
        `Base image ${image}: ${ref.registry} could not be asked (${(error as Error).message.split('\n')[0]}); using the local engine's copy.`,
      )
    }
  }
  if (local) return {ref: image, digest: local.Id, source: 'local'}
  return {ref: image, source: 'unresolved'}
}

/** docker pull, with Docker's credentials for the registry. */
async function pullImage(docker: Docker, image: string, signal?: AbortSignal): Promise<void> {
  const ref = parseReference(image)
  const auth = await registryCredentials(ref.registry)
  assertCredentialsMayReachEngine(ref.registry, Boolean(auth))
  const stream = await docker.pull(image, {authconfig: engineAuthConfig(auth, ref.registry), abortSignal: signal})
  let failure: string | undefined
  await followJsonStream(stream, (event) => {
    if (event.error) failure = String(event.error)
  })
  if (failure) throw new Error(failure)
}

let builderDecision: Promise<Builder> | undefined

/** Which builder `auto` uses on this engine: BuildKit from API 1.39 on Linux, unless a BuildKit build already failed to start here. */
export async function resolveBuilder(choice: BuilderChoice = 'auto'): Promise<Builder> {
  if (choice !== 'auto') {
    if (choice === 'buildkit') {
      const info = await engineInfo()
      if (!info.buildkit)
        throw new UsageError(
          `The Docker Engine (API ${info.apiVersion}) has no BuildKit API; use --builder classic or auto.`,
        )
    }
    return choice
  }
  builderDecision ??= engineInfo().then((info) => (info.buildkit && info.os === 'linux' ? 'buildkit' : 'classic'))
  return builderDecision
}

/** Errors that mean "BuildKit could not start here", as opposed to a failing build step. */
function buildkitUnavailable(message: string): boolean {
  return /no active sessions|session|buildkit.*not (enabled|supported)|not implemented|unsupported builder|builder version/i.test(
    message,
  )
}

/** BuildKit's RUN needs the engine's default bridge network; an engine started with --bridge=none has none (the classic builder copes). */
function buildkitNetworkMissing(message: string): boolean {
  return /network bridge not found/i.test(message)
}

/**
 * The images a Dockerfile's FROM lines name, with ARG defaults and build arguments substituted
 * (stage names and `scratch` left out).
 */
export function baseImages(dockerfile: string, buildArgs: Record<string, string>): string[] {
  const args: Record<string, string> = {}
  const stages = new Set<string>()
  const images: string[] = []
  const lines = dockerfile.replace(/\\\r?\n/g, ' ').split(/\r?\n/)
  const subst = (v: string) =>
    v.replace(
      /\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?/g,
      (_, k: string, dflt?: string) => buildArgs[k] ?? args[k] ?? dflt ?? '',
    )
  for (const raw of lines) {
    const line = raw.trim()
    const arg = /^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?/i.exec(line)
    if (arg) {
      args[arg[1]] = (arg[2] ?? '').replace(/^["']|["']$/g, '')
      continue
    }
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line)
    if (from) {
      const image = subst(from[1])
      if (image && image !== 'scratch' && !stages.has(image)) images.push(image)
      if (from[2]) stages.add(from[2])
    }
  }
  return [...new Set(images)]
}

function repositoryOf(image: string): string | undefined {
  try {
    const ref = parseReference(image)
    return `${ref.registry}/${ref.repository}`
  } catch {
    return undefined
  }
}

/**
 * BuildKit in Docker 20.10 resolves every FROM image in a registry, never in the engine's local
 * image store; an image that was built or loaded locally (no RepoDigests) is invisible to it.
 * Such a build goes to the classic builder, which uses the local store.
 */
async function localOnlyImages(docker: Docker, images: string[]): Promise<string[]> {
  const out: string[] = []
  for (const image of images) {
    const info = await docker
      .getImage(image)
      .inspect()
      .catch(() => undefined)
    if (!info) continue
    // RepoDigests name the registries the image was pulled from or pushed to; BuildKit looks under the image's own name.
    const wanted = repositoryOf(image)
    if (!(info.RepoDigests ?? []).some((d) => repositoryOf(d) === wanted)) out.push(image)
  }
  return out
}

/**
 * Builds the services' images: contexts made and hashed by retailops, bounded parallelism,
 * progress streamed per service, and a service whose context, Dockerfile and build arguments
 * hash the same as its last successful build (whose image still exists) is not rebuilt, only
 * re-tagged; nor is one whose build the registry already holds under its source tag (a fresh
 * clone in CI). Failures are per service: the others still build.
 */
export async function buildImages(options: BuildOptions, ctx: RunContext): Promise<BuildResult> {
  const started = Date.now()
  const {config, dir} = options.project
  const services = selectImages(config, options.services)
  const sources = imageSources(config)
  const concurrency = options.concurrency ?? Math.max(2, os.availableParallelism())
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`--concurrency must be a whole number of at least 1 (got ${concurrency}).`)

  // Everything is read and validated before the first build: a missing Dockerfile stops the run here.
  const scans = new Map<string, Promise<ScannedContext>>()
  const scanFor = (context: string, dockerfile: string) => {
    const key = `${context}\0${dockerfile}`
    if (!scans.has(key)) scans.set(key, scanContext({context, dockerfile}))
    return scans.get(key)!
  }
  const [revision, info, ...scanned] = await Promise.all([
    gitRevision(dir),
    engineInfo(),
    ...services.map((s) => {
      const b = sources[s].build
      return scanFor(path.resolve(dir, b.context), b.dockerfile ?? `${s}/Dockerfile`).catch(
        (error: unknown) => error as Error,
      )
    }),
  ])
  const missing = scanned
    .map((s, i) => (s instanceof Error ? `${services[i]}: ${s.message}` : undefined))
    .filter(Boolean) as string[]
  if (missing.length > 0) {
    const first = scanned.find((s) => s instanceof Error) as Error
    if (!(first instanceof RetailOpsError)) throw first
    throw new NotFoundError(
      missing.length === 1 ? missing[0] : `Cannot build ${missing.length} services:\n  ${missing.join('\n  ')}`,
      {
        nextSteps: first.nextSteps,
        details: {problems: missing},
      },
    )
  }
  const builder = await resolveBuilder(options.builder)
  ctx.out.debug(`Docker Engine ${info.version} (API ${info.apiVersion}); builder ${builder}`)

  const docker = await dockerClient()
  // Each base image is resolved once per run, however many services use it.
  const resolved = new Map<string, Promise<BaseImage>>()
  const resolve = (image: string) => {
    if (!resolved.has(image)) {
      resolved.set(
        image,
        resolveBaseImage(docker, image, {
          pull: options.pull,
          insecure: (registry) => usesPlainHttp(registry, config.registry),
          signal: ctx.signal,
          warn: (m) => ctx.out.warn(m),
        }),
      )
    }
    return resolved.get(image)!
  }
  const plans: Plan[] = await Promise.all(
    services.map(async (service, i) => {
      const s = sources[service]
      const sc = scanned[i] as ScannedContext
      const buildArgs = {
        ...s.build.args,
        ...(options.baseImage ? {BASE_IMAGE: options.baseImage} : {}),
        ...options.buildArgs,
      }
      const dockerfileText = await readFile(sc.entries.find((e) => e.name === sc.dockerfile)!.source, 'utf8')
      const froms = baseImages(dockerfileText, buildArgs)
      const bases = await Promise.all(froms.map(resolve))
      const inputs = {contextDigest: sc.digest, dockerfile: sc.dockerfile, buildArgs, target: s.build.target}
      const hash = buildHash({
        ...inputs,
        bases: Object.fromEntries(bases.map((b) => [b.ref, b.digest ?? 'unresolved'])),
      })
      const full = imageRepository(config, service)
      const tag = imageTag(config.version, revision, hash)
      const localBases = builder === 'buildkit' ? await localOnlyImages(docker, froms) : []
      return {
        service,
        repository: full,
        scanned: sc,
        buildArgs,
        target: s.build.target,
        buildHash: hash,
        inputsHash: buildHash(inputs),
        bases,
        tag,
        image: `${full}:${tag}`,
        localBases,
      }
    }),
  )

  const stateFile = path.join(dir, BUILD_STATE)
  const state = (await readJsonFile<BuildState>(stateFile).catch(() => undefined)) ?? {version: 1, services: {}}
  const stateWriter = new SerialUpdater<BuildState>(stateFile, () => ({version: 1, services: {}}))

  const limit = pLimit(concurrency)
  const pulls = new Map<string, Promise<void>>()
  const results = await Promise.all(
    plans.map((plan) =>
      limit(async (): Promise<ServiceBuild> => {
        const t0 = Date.now()
        const base = {
          service: plan.service,
          image: plan.image,
          repository: plan.repository,
          tag: plan.tag,
          buildHash: plan.buildHash,
          baseImages: plan.bases,
          startedAt: new Date(t0).toISOString(),
          dockerfile: plan.scanned.dockerfile,
          buildArgs: plan.buildArgs,
        }
        if (ctx.signal?.aborted)
          return {...base, status: 'failed', reason: 'interrupted before it started', durationMs: 0}
        const previous = state.services[plan.service]
        if (!options.force && previous?.buildHash === plan.buildHash && previous.imageId) {
          const image = await docker
            .getImage(previous.imageId)
            .inspect()
            .catch(() => undefined)
          if (image) {
            if (!image.RepoTags?.includes(plan.image)) {
              await docker.getImage(previous.imageId).tag({repo: plan.repository, tag: plan.tag})
              await stateWriter.update((s) => {
                s.services[plan.service] = {...s.services[plan.service], image: plan.image}
              })
            }
            ctx.out.stream(
              plan.service,
              `unchanged since ${previous.builtAt}: ${previous.imageId.slice(0, 19)} tagged ${plan.image}`,
            )
            return {
              ...base,
              status: 'skipped',
              imageId: previous.imageId,
              builder: previous.builder,
              reason: 'context, Dockerfile, build arguments and base images unchanged',
              durationMs: Date.now() - t0,
            }
          }
        }
        if (!options.force) {
          const pushed = await pushedBuild(options.project, plan, ctx)
          if (pushed) {
            const {digest} = pushed
            const image = `${plan.repository}@${digest}`
            await stateWriter.update((s) => {
              s.services[plan.service] = {
                buildHash: plan.buildHash,
                imageId: '',
                image,
                builtAt: new Date().toISOString(),
                builder: previous?.builder ?? builder,
                inputsHash: plan.inputsHash,
                bases: Object.fromEntries(plan.bases.map((b) => [b.ref, b.digest ?? 'unresolved'])),
                registryDigest: digest,
                registryTag: pushed.tag,
              }
            })
            ctx.out.stream(plan.service, `unchanged: the registry already has this build as ${image}`)
            return {
              ...base,
              status: 'skipped',
              image,
              registryDigest: digest,
              reason: `already pushed as ${image} (same context, Dockerfile, build arguments and base images)`,
              durationMs: Date.now() - t0,
            }
          }
        }
        // Only the base moved: say so (a patched base under the same tag is the usual cause).
        const changedBases =
          previous?.inputsHash === plan.inputsHash && previous.buildHash !== plan.buildHash
            ? plan.bases.filter((b) => previous.bases?.[b.ref] !== (b.digest ?? 'unresolved'))
            : []
        const why =
          changedBases.length > 0
            ? `rebuilt: base image changed (${changedBases.map((b) => `${b.ref} ${short(previous.bases?.[b.ref])} → ${short(b.digest)}`).join(', ')})`
            : undefined
        const task = ctx.out.task(`Building ${plan.service} → ${plan.image}${why ? ` (${why})` : ''}`)
        // The engine builds FROM its own copy: a stale or missing one is pulled first.
        for (const b of plan.bases.filter((x) => x.pulled)) {
          const pulling = pulls.get(b.ref) ?? pullImage(docker, b.ref, ctx.signal)
          pulls.set(b.ref, pulling)
          try {
            await pulling
            ctx.out.stream(plan.service, `pulled ${b.ref} (${short(b.digest)})`)
          } catch (error) {
            const message = `could not pull the base image ${b.ref}: ${(error as Error).message}`
            task.fail(`${plan.service}: ${message}`)
            return {
              ...base,
              status: 'failed',
              reason: message,
              failure: {message, output: []},
              durationMs: Date.now() - t0,
            }
          }
        }
        let used = builder
        if (used === 'buildkit' && options.builder !== 'buildkit' && plan.localBases.length > 0) {
          ctx.out.stream(
            plan.service,
            `classic builder: ${plan.localBases.join(', ')} exists only in the engine's local store, which BuildKit does not read`,
          )
          used = 'classic'
        }
        let outcome = await runBuild(docker, plan, used, options, ctx)
        if (used === 'buildkit' && options.builder !== 'buildkit' && outcome.failure) {
          const unresolved = /load metadata for (\S+)/.exec(outcome.failure.step ?? '')?.[1]
          const exists = unresolved
            ? await docker
                .getImage(unresolved.replace(/^docker\.io\/(library\/)?/, ''))
                .inspect()
                .then(
                  () => true,
                  () => false,
                )
            : false
          const noNetwork = !options.network && buildkitNetworkMissing(outcome.failure.message)
          if ((!outcome.started && buildkitUnavailable(outcome.failure.message)) || exists || noNetwork) {
            ctx.out.stream(
              plan.service,
              `BuildKit failed (${outcome.failure.message}); retrying with the classic builder`,
            )
            if (!outcome.started || noNetwork) builderDecision = Promise.resolve('classic')
            used = 'classic'
            outcome = await runBuild(docker, plan, used, options, ctx)
          }
        }
        const durationMs = Date.now() - t0
        if (outcome.failure || !outcome.imageId) {
          const failure = outcome.failure ?? {message: 'the engine reported no image ID', output: []}
          task.fail(`${plan.service}: ${failure.message}`)
          return {...base, status: 'failed', builder: used, failure, reason: failure.message, durationMs}
        }
        task.succeed(`Built ${plan.service} → ${plan.image} (${outcome.imageId.slice(7, 19)})${why ? `: ${why}` : ''}`)
        await stateWriter.update((s) => {
          s.services[plan.service] = {
            buildHash: plan.buildHash,
            imageId: outcome.imageId!,
            image: plan.image,
            builtAt: new Date().toISOString(),
            builder: used,
            inputsHash: plan.inputsHash,
            bases: Object.fromEntries(plan.bases.map((b) => [b.ref, b.digest ?? 'unresolved'])),
          }
        })
        return {
          ...base,
          status: 'built',
          imageId: outcome.imageId,
          builder: used,
          ...(why ? {reason: why} : {}),
          durationMs,
        }
      }),
    ),
  )
  throwIfAborted(ctx.signal)
  return {
    revision,
    version: config.version,
    builder,
    concurrency,
    services: results,
    built: results.filter((r) => r.status === 'built').map((r) => r.service),
    skipped: results.filter((r) => r.status === 'skipped').map((r) => r.service),
    failed: results.filter((r) => r.status === 'failed').map((r) => r.service),
    durationMs: Date.now() - started,
  }
}

function short(digest: string | undefined): string {
  if (!digest || digest === 'unresolved') return 'unresolved'
  return digest.replace(/^sha256:/, '').slice(0, 12)
}

interface RunOutcome {
  imageId?: string
  failure?: StepFailure
  /** The engine accepted the build and sent progress. */
  started: boolean
}

async function runBuild(
  docker: Docker,
  plan: Plan,
  builder: Builder,
  options: BuildOptions,
  ctx: RunContext,
): Promise<RunOutcome> {
  const progress = new BuildProgress((line) => ctx.out.stream(plan.service, line))
  let started = false
  try {
    const stream = await docker.buildImage(contextTar(plan.scanned), {
      t: plan.image,
      dockerfile: plan.scanned.dockerfile,
      buildargs: plan.buildArgs,
      target: plan.target,
      labels: {'io.retailops.service': plan.service, 'io.retailops.build-hash': plan.buildHash},
      rm: true,
      forcerm: true,
      nocache: options.noCache ?? false,
      pull: options.pull ? 'true' : undefined,
      networkmode: options.network,
      version: builder === 'buildkit' ? '2' : '1',
      abortSignal: ctx.signal,
    } as Docker.ImageBuildOptions)
    await followJsonStream(stream, (event) => {
      started = true
      progress.handle(event)
    })
    progress.finish()
  } catch (error) {
    throwIfAborted(ctx.signal)
    const e = error as {statusCode?: number; json?: {message?: string}; message: string}
    const message = e.json?.message ?? e.message
    progress.handle({error: message})
  }
  return {imageId: progress.failure ? undefined : progress.imageId, failure: progress.failure, started}
}

export interface ContextBuildInput {
  /** Names the build in progress output and the io.retailops.service label. */
  name: string
  scanned: ScannedContext
  /** `registry/repository:tag` */
  image: string
  buildArgs: Record<string, string>
  builder?: BuilderChoice
}

/**
 * One image from a context retailops scanned itself (the runner image): the same builder choice,
 * local-base fallback and BuildKit retry as service builds. BUILD_FAILED with the failing step.
 */
export async function buildFromContext(
  input: ContextBuildInput,
  ctx: RunContext,
): Promise<{imageId: string; builder: Builder}> {
  const docker = await dockerClient()
  let used = await resolveBuilder(input.builder)
  const dockerfileText = await readFile(
    input.scanned.entries.find((e) => e.name === input.scanned.dockerfile)!.source,
    'utf8',
  )
  const localBases =
    used === 'buildkit' ? await localOnlyImages(docker, baseImages(dockerfileText, input.buildArgs)) : []
  if (used === 'buildkit' && input.builder !== 'buildkit' && localBases.length > 0) used = 'classic'
  const ref = parseReference(input.image)
  const plan: Plan = {
    service: input.name,
    repository: `${ref.registry}/${ref.repository}`,
    scanned: input.scanned,
    buildArgs: input.buildArgs,
    buildHash: input.scanned.digest,
    inputsHash: input.scanned.digest,
    bases: [],
    tag: ref.tag!,
    image: input.image,
    localBases,
  }
  const options = {buildArgs: input.buildArgs} as BuildOptions
  let outcome = await runBuild(docker, plan, used, options, ctx)
  if (
    used === 'buildkit' &&
    input.builder !== 'buildkit' &&
    outcome.failure &&
    ((!outcome.started && buildkitUnavailable(outcome.failure.message)) ||
      buildkitNetworkMissing(outcome.failure.message))
  ) {
    used = 'classic'
    outcome = await runBuild(docker, plan, used, options, ctx)
  }
  if (outcome.failure || !outcome.imageId) {
    const failure = outcome.failure ?? {message: 'the engine reported no image ID', output: []}
    throw new RetailOpsError(
      'BUILD_FAILED',
      `Building ${input.name} failed${failure.step ? ` at ${failure.step}` : ''}: ${failure.message}`,
      {details: {failure}},
    )
  }
  return {imageId: outcome.imageId, builder: used}
}
