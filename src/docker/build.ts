import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type Docker from 'dockerode'
import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import {imageRepository, selectServices} from '../config/resolve.js'
import {NotFoundError, RetailOpsError, UsageError} from '../errors/index.js'
import {throwIfAborted, type RunContext} from '../ui/context.js'
import {contextTar, scanContext, type ScannedContext} from './context.js'
import {dockerClient, engineInfo} from './engine.js'
import {readJsonFile, SerialUpdater} from './files.js'
import {BuildProgress, followJsonStream, type StepFailure} from './progress.js'
import {parseReference} from './reference.js'
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
  /** Always pull a newer base image. */
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
  /** Hash of the context files, Dockerfile, build arguments and target. */
  buildHash: string
  builder?: Builder
  /** Why it was skipped, or what failed. */
  reason?: string
  failure?: StepFailure
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
  services: Record<string, {buildHash: string; imageId: string; image: string; builtAt: string; builder: Builder}>
}

interface Plan {
  service: string
  repository: string
  scanned: ScannedContext
  buildArgs: Record<string, string>
  target?: string
  buildHash: string
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
      throw new UsageError(`--build-arg "${pair}" is not KEY=VALUE.`, {nextSteps: ['Pass build arguments as --build-arg NAME=VALUE (repeatable).']})
    }
    if (eq < 0) {
      if (env[key] === undefined) throw new UsageError(`--build-arg ${key} has no value and ${key} is not set in the environment.`)
      out[key] = env[key]!
    } else {
      out[key] = pair.slice(eq + 1)
    }
  }
  return out
}

/** The build's identity: context content, Dockerfile name, sorted build arguments and target. */
export function buildHash(input: {contextDigest: string; dockerfile: string; buildArgs: Record<string, string>; target?: string}): string {
  const args = Object.keys(input.buildArgs)
    .sort()
    .map((k) => [k, input.buildArgs[k]])
  return createHash('sha256')
    .update(JSON.stringify({v: 1, context: input.contextDigest, dockerfile: input.dockerfile, args, target: input.target ?? null}))
    .digest('hex')
}

let builderDecision: Promise<Builder> | undefined

/** Which builder `auto` uses on this engine: BuildKit from API 1.39 on Linux, unless a BuildKit build already failed to start here. */
export async function resolveBuilder(choice: BuilderChoice = 'auto'): Promise<Builder> {
  if (choice !== 'auto') {
    if (choice === 'buildkit') {
      const info = await engineInfo()
      if (!info.buildkit) throw new UsageError(`The Docker Engine (API ${info.apiVersion}) has no BuildKit API; use --builder classic or auto.`)
    }
    return choice
  }
  builderDecision ??= engineInfo().then((info) => (info.buildkit && info.os === 'linux' ? 'buildkit' : 'classic'))
  return builderDecision
}

/** Errors that mean "BuildKit could not start here", as opposed to a failing build step. */
function buildkitUnavailable(message: string): boolean {
  return /no active sessions|session|buildkit.*not (enabled|supported)|not implemented|unsupported builder|builder version/i.test(message)
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
  const subst = (v: string) => v.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?/g, (_, k: string, dflt?: string) => buildArgs[k] ?? args[k] ?? dflt ?? '')
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
    const info = await docker.getImage(image).inspect().catch(() => undefined)
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
 * re-tagged. Failures are per service: the others still build.
 */
export async function buildImages(options: BuildOptions, ctx: RunContext): Promise<BuildResult> {
  const started = Date.now()
  const {config, dir} = options.project
  const services = selectServices(config, options.services)
  const concurrency = options.concurrency ?? Math.max(2, os.availableParallelism())
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a whole number of at least 1 (got ${concurrency}).`)

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
      const b = config.services[s].build
      return scanFor(path.resolve(dir, b.context), b.dockerfile ?? `${s}/Dockerfile`).catch((error: unknown) => error as Error)
    }),
  ])
  const missing = scanned.map((s, i) => (s instanceof Error ? `${services[i]}: ${s.message}` : undefined)).filter(Boolean) as string[]
  if (missing.length > 0) {
    const first = scanned.find((s) => s instanceof Error) as Error
    if (!(first instanceof RetailOpsError)) throw first
    throw new NotFoundError(missing.length === 1 ? missing[0] : `Cannot build ${missing.length} services:\n  ${missing.join('\n  ')}`, {
      nextSteps: first.nextSteps,
      details: {problems: missing},
    })
  }
  const builder = await resolveBuilder(options.builder)
  ctx.out.debug(`Docker Engine ${info.version} (API ${info.apiVersion}); builder ${builder}`)

  const docker = await dockerClient()
  const plans: Plan[] = await Promise.all(services.map(async (service, i) => {
    const s = config.services[service]
    const sc = scanned[i] as ScannedContext
    const buildArgs = {...s.build.args, ...(options.baseImage ? {BASE_IMAGE: options.baseImage} : {}), ...options.buildArgs}
    const hash = buildHash({contextDigest: sc.digest, dockerfile: sc.dockerfile, buildArgs, target: s.build.target})
    const full = imageRepository(config, service)
    const tag = imageTag(config.version, revision, hash)
    const dockerfileText = await readFile(sc.entries.find((e) => e.name === sc.dockerfile)!.source, 'utf8')
    const localBases = builder === 'buildkit' ? await localOnlyImages(docker, baseImages(dockerfileText, buildArgs)) : []
    return {service, repository: full, scanned: sc, buildArgs, target: s.build.target, buildHash: hash, tag, image: `${full}:${tag}`, localBases}
  }))

  const stateFile = path.join(dir, BUILD_STATE)
  const state = (await readJsonFile<BuildState>(stateFile).catch(() => undefined)) ?? {version: 1, services: {}}
  const stateWriter = new SerialUpdater<BuildState>(stateFile, () => ({version: 1, services: {}}))

  const limit = pLimit(concurrency)
  const results = await Promise.all(
    plans.map((plan) =>
      limit(async (): Promise<ServiceBuild> => {
        const t0 = Date.now()
        const base = {service: plan.service, image: plan.image, repository: plan.repository, tag: plan.tag, buildHash: plan.buildHash}
        if (ctx.signal?.aborted) return {...base, status: 'failed', reason: 'interrupted before it started', durationMs: 0}
        const previous = state.services[plan.service]
        if (!options.force && previous?.buildHash === plan.buildHash) {
          const image = await docker.getImage(previous.imageId).inspect().catch(() => undefined)
          if (image) {
            if (!image.RepoTags?.includes(plan.image)) {
              await docker.getImage(previous.imageId).tag({repo: plan.repository, tag: plan.tag})
              await stateWriter.update((s) => {
                s.services[plan.service] = {...s.services[plan.service], image: plan.image}
              })
            }
            ctx.out.stream(plan.service, `unchanged since ${previous.builtAt}: ${previous.imageId.slice(0, 19)} tagged ${plan.image}`)
            return {...base, status: 'skipped', imageId: previous.imageId, builder: previous.builder, reason: 'context, Dockerfile and build arguments unchanged', durationMs: Date.now() - t0}
          }
        }
        const task = ctx.out.task(`Building ${plan.service} → ${plan.image}`)
        let used = builder
        if (used === 'buildkit' && options.builder !== 'buildkit' && plan.localBases.length > 0) {
          ctx.out.stream(plan.service, `classic builder: ${plan.localBases.join(', ')} exists only in the engine's local store, which BuildKit does not read`)
          used = 'classic'
        }
        let outcome = await runBuild(docker, plan, used, options, ctx)
        if (used === 'buildkit' && options.builder !== 'buildkit' && outcome.failure) {
          const unresolved = /load metadata for (\S+)/.exec(outcome.failure.step ?? '')?.[1]
          const exists = unresolved ? await docker.getImage(unresolved.replace(/^docker\.io\/(library\/)?/, '')).inspect().then(() => true, () => false) : false
          const noNetwork = !options.network && buildkitNetworkMissing(outcome.failure.message)
          if ((!outcome.started && buildkitUnavailable(outcome.failure.message)) || exists || noNetwork) {
            ctx.out.stream(plan.service, `BuildKit failed (${outcome.failure.message}); retrying with the classic builder`)
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
        task.succeed(`Built ${plan.service} → ${plan.image} (${outcome.imageId.slice(7, 19)})`)
        await stateWriter.update((s) => {
          s.services[plan.service] = {buildHash: plan.buildHash, imageId: outcome.imageId!, image: plan.image, builtAt: new Date().toISOString(), builder: used}
        })
        return {...base, status: 'built', imageId: outcome.imageId, builder: used, durationMs}
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

interface RunOutcome {
  imageId?: string
  failure?: StepFailure
  /** The engine accepted the build and sent progress. */
  started: boolean
}

async function runBuild(docker: Docker, plan: Plan, builder: Builder, options: BuildOptions, ctx: RunContext): Promise<RunOutcome> {
  const progress = new BuildProgress((line) => ctx.out.stream(plan.service, line))
  let started = false
  try {
    const stream = await docker.buildImage(contextTar(plan.scanned) as unknown as NodeJS.ReadableStream, {
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
