import {existsSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, realpath, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {LoadedConfig} from '../config/load.js'
import {imageRepository} from '../config/resolve.js'
import {RUNNER_ARTIFACT} from './resolve.js'
import {type ArtifactEntry, artifactsLockPath, artifactsLockWriter, readArtifactsLock} from '../docker/artifacts.js'
import {buildFromContext, type Builder} from '../docker/build.js'
import {type ContextEntry, scanContext, type ScannedContext} from '../docker/context.js'
import {pushTaggedImage} from '../docker/push.js'
import {parseReference} from '../docker/reference.js'
import {registryClient, usesPlainHttp} from '../docker/registry.js'
import {sanitizeTag} from '../docker/revision.js'
import {NotFoundError, UsageError} from '../errors/index.js'
import {packageRoot} from '../assets/paths.js'
import {readTemplate, renderTemplate} from '../assets/templates.js'
import {signImages, verifyImages} from '../signing/images.js'
import type {PassphraseSource} from '../signing/keys.js'
import type {RunContext} from '../ui/context.js'

/** The runner's repository beside the services' (`<registry>/<prefix or project>/retailops-runner`). */
export const RUNNER_REPOSITORY_NAME = 'retailops-runner'

/** What the image holds from the package: the CLI, its manifest, schema and templates. */
const PACKAGE_ENTRIES = ['package.json', 'bin/run.js', 'dist', 'templates', 'oclif.manifest.json', 'schema']

/**
 * The runner's build context: the package's own files (PACKAGE_ENTRIES) and its production
 * dependencies. A checkout's package-lock.json marks devDependencies (`dev: true`): TypeScript,
 * the test runner and the like stay out, so the image has no compiler. An installed package has
 * no lock and only production dependencies in node_modules already. node_modules is scanned at
 * its real path (it may be a symlink to a shared install) and placed under node_modules/.
 */
export async function runnerContext(
  root: string,
  dockerfile: string,
): Promise<{scanned: ScannedContext; devPackages: number}> {
  const lockFile = path.join(root, 'package-lock.json')
  const dev: string[] = []
  if (existsSync(lockFile)) {
    const lock = JSON.parse(await readFile(lockFile, 'utf8')) as {packages?: Record<string, {dev?: boolean}>}
    for (const [key, entry] of Object.entries(lock.packages ?? {}))
      if (key.startsWith('node_modules/') && entry.dev) dev.push(key.slice('node_modules/'.length))
  }
  const ignoreFile = `${dockerfile}.dockerignore`
  await writeFile(ignoreFile, `${['*', ...PACKAGE_ENTRIES.map((e) => `!${e}`), 'dist/**/*.tsbuildinfo'].join('\n')}\n`)
  const own = await scanContext({context: root, dockerfile})
  // Links to executables (tsc among them), npm's bookkeeping and caches stay out too.
  await writeFile(ignoreFile, `${['.*', '**/.bin', ...dev].join('\n')}\n`)
  const modules = await scanContext({context: await realpath(path.join(root, 'node_modules')), dockerfile})
  const dependencies = modules.entries.filter((e) => e.name !== modules.dockerfile)
  // A scope folder whose packages are all devDependencies (@esbuild, @vitest) is left out too.
  const used = dependencies.filter(
    (e) =>
      e.type !== 'directory' || dependencies.some((f) => f.type !== 'directory' && f.name.startsWith(`${e.name}/`)),
  )
  const entries: ContextEntry[] = [
    ...own.entries,
    // `retailops` on PATH in the image (the Dockerfile puts bin/ there), as npm links a package's bin.
    {name: 'bin/retailops', type: 'symlink' as const, mode: 0o777, size: 0, source: '', linkname: 'run.js'},
    {name: 'node_modules', type: 'directory' as const, mode: 0o755, size: 0, source: modules.dir},
    ...used.map((e) => ({...e, name: `node_modules/${e.name}`})),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const h = createHash('sha256')
  // The Dockerfile's generated name follows its (temporary) path: hashed by content only, so the
  // same package files give the same digest, and tag, on every build.
  for (const e of entries)
    h.update(
      `${e.type}\0${e.name === own.dockerfile ? 'Dockerfile' : e.name}\0${e.mode.toString(8)}\0${e.sha256 ?? e.linkname ?? ''}\n`,
    )
  return {scanned: {...own, entries, digest: h.digest('hex')}, devPackages: dev.length}
}

export interface RunnerBuildOptions {
  project: LoadedConfig
  /** BASE_IMAGE: a Node 24 image (default node:24-slim; the sandbox's RETAILOPS_BASE_IMAGE). */
  baseImage?: string
  /** Private key (file or env://NAME); default signing.key. */
  key?: string
  /** Public key to verify with; default signing.publicKey. */
  publicKey?: string
  passphrase: PassphraseSource
  /** Build even when the lock's runner was built from the same package files and still verifies. */
  force?: boolean
}

export interface RunnerBuildResult {
  /** `registry/repository@sha256:…`: what CronJobs and Jobs run. */
  image: string
  digest: string
  tag: string
  imageId: string
  /** none: the lock's runner was current (upToDate). */
  builder: Builder | 'none'
  version: string
  keyId: string
  signatureAdded: boolean
  lock: string
  /** Files in the context; devDependencies left out. */
  files: number
  devPackagesExcluded: number
  /** Pipelines in the project that now run this image (their marked image line rewritten, or already it). */
  pinned: string[]
  /**
   * True when nothing was built: the lock's runner has this package's version and context digest
   * in its tag, the registry still serves that digest under the tag, and it verifies.
   */
  upToDate: boolean
}

/**
 * Builds the runner image from this package (the CLI, templates, production dependencies), pushes
 * it, signs it with the project's key, verifies the signature with the public key, and only then
 * records it in the artifacts lock under `runner`: what scheduled jobs and detached rollouts run,
 * by digest.
 */
export async function buildRunnerImage(options: RunnerBuildOptions, ctx: RunContext): Promise<RunnerBuildResult> {
  const root = packageRoot()
  if (!existsSync(path.join(root, 'dist', 'commands')) || !existsSync(path.join(root, 'oclif.manifest.json'))) {
    throw new NotFoundError(`${root} has no built CLI (dist/, oclif.manifest.json).`, {
      nextSteps: ['In a checkout, run `npm run build` first; an installed retailops is built already.'],
    })
  }
  if (!existsSync(path.join(root, 'node_modules', '@oclif', 'core'))) {
    throw new NotFoundError(
      `${root}/node_modules has no @oclif/core: the runner image copies the CLI's installed dependencies.`,
      {nextSteps: ['Run `npm ci` in the checkout first.']},
    )
  }
  const {version} = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {version: string}
  const {config} = options.project
  const repository = imageRepository({...config, services: {}}, RUNNER_REPOSITORY_NAME)
  if (options.baseImage === '') throw new UsageError('--base-image is empty.')
  const staging = await mkdtemp(path.join(os.tmpdir(), 'retailops-runner-'))
  try {
    const dockerfile = path.join(staging, 'Dockerfile')
    await writeFile(dockerfile, renderTemplate(await readTemplate('runner/Dockerfile.tmpl'), {version}))
    const {scanned, devPackages} = await runnerContext(root, dockerfile)
    const tag = sanitizeTag(`${version}-${scanned.digest.slice(0, 12)}`)
    const image = `${repository}:${tag}`
    const buildArgs: Record<string, string> = options.baseImage ? {BASE_IMAGE: options.baseImage} : {}
    const common = {
      tag,
      version,
      lock: artifactsLockPath(options.project.dir),
      files: scanned.entries.length,
      devPackagesExcluded: devPackages,
    }

    if (!options.force) {
      const current = await currentRunner(options, repository, tag, ctx)
      if (current)
        return {
          ...common,
          ...current,
          pinned: await pinPipelines(options.project.dir, current.image, version, ctx),
          upToDate: true,
        }
    }

    const building = ctx.out.task(`Building the runner image ${image}`)
    const built = await buildFromContext({name: RUNNER_REPOSITORY_NAME, scanned, image, buildArgs}, ctx).catch(
      (error: Error) => {
        building.fail(error.message)
        throw error
      },
    )
    building.succeed(`Built ${image} (${built.imageId.slice(7, 19)}, ${scanned.entries.length} files)`)

    const pushing = ctx.out.task(`Pushing ${image}`)
    const pushed = await pushTaggedImage(
      image,
      {insecure: usesPlainHttp(parseReference(image).registry, config.registry)},
      ctx,
    ).catch((error: Error) => {
      pushing.fail(error.message)
      throw error
    })
    pushing.succeed(`Pushed ${pushed.image}`)

    const signed = await signImages(
      {project: options.project, targets: [pushed.image], key: options.key, passphrase: options.passphrase},
      ctx,
    )
    const verified = await verifyImages(
      {project: options.project, targets: [pushed.image], key: options.publicKey},
      ctx,
    )

    const entry: ArtifactEntry = {
      repository,
      digest: pushed.digest,
      image: pushed.image,
      tag,
      pushedAt: new Date().toISOString(),
      imageId: built.imageId,
    }
    await artifactsLockWriter(options.project.dir).record(RUNNER_ARTIFACT, entry)
    const pinned = await pinPipelines(options.project.dir, pushed.image, version, ctx)
    return {
      ...common,
      image: pushed.image,
      digest: pushed.digest,
      imageId: built.imageId,
      builder: built.builder,
      keyId: verified.keyId,
      signatureAdded: signed.images[0]?.added ?? false,
      pinned,
      upToDate: false,
    }
  } finally {
    await rm(staging, {recursive: true, force: true})
  }
}

/**
 * The lock's runner when it was built from exactly these files (the tag carries the version and
 * the context digest), the registry still serves that digest under the tag, and its signature
 * verifies with the project's public key: building again would only produce the same files
 * under a new digest (image builds are not byte-reproducible) and force every CronJob to follow.
 */
async function currentRunner(options: RunnerBuildOptions, repository: string, tag: string, ctx: RunContext) {
  const locked = (await readArtifactsLock(options.project.dir)).artifacts[RUNNER_ARTIFACT]
  if (!locked || locked.repository !== repository || locked.tag !== tag) return undefined
  const {registry, repository: name} = parseReference(locked.image)
  const client = await registryClient(registry, {
    insecure: usesPlainHttp(registry, options.project.config.registry),
    signal: ctx.signal,
  })
  const head = await client.headManifest(name, tag)
  if (head?.digest !== locked.digest) return undefined
  const verified = await verifyImages(
    {project: options.project, targets: [locked.image], key: options.publicKey},
    ctx,
  ).catch(() => undefined)
  if (!verified) return undefined
  ctx.out.info(
    `The runner ${locked.image} (${tag}) was built from these files and verifies; nothing to build (--force builds anyway).`,
  )
  return {
    image: locked.image,
    digest: locked.digest,
    imageId: locked.imageId ?? '',
    builder: 'none' as const,
    keyId: verified.images[0].keyId,
    signatureAdded: false,
  }
}

/** Pipelines `retailops init` writes that run in the runner image; the image line carries RUNNER_IMAGE_MARKER. */
const PIPELINES = ['.gitlab-ci.yml']
export const RUNNER_IMAGE_MARKER = '# retailops runner image'
const MARKED_LINE = /^(\s*(?:name|image):[ \t]*)\S[^\n]*?([ \t]+# retailops runner image)\b[^\n]*$/m

/**
 * Pins the runner image, by digest, on the marked image line of the project's pipelines (the GitLab
 * jobs run in it), so the pipeline runs exactly the bytes just verified. Only that line changes;
 * a pipeline without the marker (written by hand, or edited away) is left alone and named.
 */
export async function pinPipelines(dir: string, image: string, version: string, ctx: RunContext): Promise<string[]> {
  const pinned: string[] = []
  for (const file of PIPELINES) {
    const p = path.join(dir, file)
    if (!existsSync(p)) continue
    const text = await readFile(p, 'utf8')
    if (!MARKED_LINE.test(text)) {
      ctx.out.warn(
        `${file} has no image line marked "${RUNNER_IMAGE_MARKER}"; set its jobs' image to ${image} yourself.`,
      )
      continue
    }
    const next = text.replace(
      MARKED_LINE,
      (_, lead: string, marker: string) =>
        `${lead}${image}${marker} (retailops ${version}): pinned by \`retailops runner build\``,
    )
    if (next !== text) {
      await writeFile(p, next)
      ctx.out.info(`Pinned ${image} in ${file}: commit it.`)
    }
    pinned.push(file)
  }
  return pinned
}
