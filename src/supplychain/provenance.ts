import {createHash, randomUUID} from 'node:crypto'
import path from 'node:path'

import type {LoadedConfig} from '../config/load.js'
import {readArtifactsLock} from '../docker/artifacts.js'
import type {BaseImage, Builder} from '../docker/build.js'
import {readJsonFile, writeJsonAtomic} from '../docker/files.js'
import {parseReference} from '../docker/reference.js'
import type {GitSource} from '../docker/revision.js'
import {ConfigError, NotFoundError, RetailOpsError} from '../errors/index.js'
import {toolVersion} from './sbom.js'

/**
 * SLSA provenance v1 (https://slsa.dev/provenance/v1) for each image retailops builds: what was
 * built (service, Dockerfile, context, build arguments, target, platform), from which sources
 * (the git repository and commit, the base image by digest, the lockfile by hash), by which
 * builder (retailops and the CI that ran it), when. `retailops build` writes the predicate to
 * `.retailops/provenance/<service>.slsa.json`; `retailops sign` attests it for the pushed digest
 * (the statement's subject), once readProvenance has matched it to that image.
 */

export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1'
/** The build type retailops' provenance documents: the parameters below, built through the Docker Engine API. */
export const RETAILOPS_BUILD_TYPE = 'https://retailops.dev/build/v1'
/** builder.id when no CI is detected (a developer's machine); the version follows the `@`. */
export const RETAILOPS_LOCAL_BUILDER = 'https://retailops.dev/builder/local'
export const PROVENANCE_DIR = '.retailops/provenance'

export interface ResourceDescriptor {
  uri?: string
  name?: string
  digest?: Record<string, string>
  annotations?: Record<string, unknown>
}

export interface SlsaProvenance {
  buildDefinition: {
    buildType: string
    externalParameters: {
      service: string
      repository: string
      context: string
      dockerfile: string
      buildArgs: Record<string, string>
      target?: string
      platform: string
      source?: {uri: string; digest: {gitCommit: string}; ref?: string}
    }
    internalParameters: {
      builder: Builder | 'registry'
      buildHash: string
      imageId?: string
      /** The registry already held this exact build (same build hash): its digest, nothing was built. */
      registryDigest?: string
      tag: string
      /** The work tree had uncommitted changes: the source is the commit plus those changes. */
      dirty: boolean
    }
    resolvedDependencies: ResourceDescriptor[]
  }
  runDetails: {
    builder: {id: string; version?: Record<string, string>}
    metadata: {invocationId: string; startedOn: string; finishedOn: string}
  }
}

export interface ProvenanceInput {
  service: string
  repository: string
  tag: string
  context: string
  dockerfile: string
  buildArgs: Record<string, string>
  target?: string
  platform: string
  builder: Builder | 'registry'
  buildHash: string
  imageId?: string
  registryDigest?: string
  bases: BaseImage[]
  source?: GitSource
  dirty: boolean
  /** The lockfile the image's npm packages come from (path shown relative to the project) and its content. */
  lockfile?: {name: string; sha256: string}
  startedOn: Date
  finishedOn: Date
  env?: NodeJS.ProcessEnv
}

/** The CI that runs the build, from its environment: builder.id and the run's invocation ID. */
export function ciBuilder(
  env: NodeJS.ProcessEnv,
  version: string,
): {id: string; invocationId: string; version: Record<string, string>} {
  if (env.GITHUB_ACTIONS === 'true') {
    const server = env.GITHUB_SERVER_URL ?? 'https://github.com'
    const run = `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}/attempts/${env.GITHUB_RUN_ATTEMPT ?? '1'}`
    return {
      // The workflow that ran the build identifies the builder (what SLSA's GitHub builders use as well).
      id: env.GITHUB_WORKFLOW_REF
        ? `${server}/${env.GITHUB_WORKFLOW_REF}`
        : `${server}/${env.GITHUB_REPOSITORY}/actions`,
      invocationId: run,
      version: {
        retailops: version,
        ...(env.RUNNER_ENVIRONMENT ? {'github-runner': env.RUNNER_ENVIRONMENT} : {}),
      },
    }
  }
  if (env.GITLAB_CI === 'true') {
    const server = env.CI_SERVER_URL ?? 'https://gitlab.com'
    return {
      id: `${server}/${env.CI_PROJECT_PATH}/-/runners/${env.CI_RUNNER_ID ?? 'unknown'}`,
      invocationId: env.CI_JOB_URL ?? `${server}/${env.CI_PROJECT_PATH}/-/jobs/${env.CI_JOB_ID}`,
      version: {retailops: version, ...(env.CI_RUNNER_VERSION ? {'gitlab-runner': env.CI_RUNNER_VERSION} : {})},
    }
  }
  return {
    id: `${RETAILOPS_LOCAL_BUILDER}@v${version}`,
    invocationId: `urn:uuid:${randomUUID()}`,
    version: {retailops: version},
  }
}

/** The source repository as a SLSA URI: `git+<url>`; in GitHub/GitLab CI the server's URL of the project. */
export function sourceUri(source: GitSource, env: NodeJS.ProcessEnv): string {
  if (env.GITHUB_ACTIONS === 'true' && env.GITHUB_REPOSITORY)
    return `git+${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}`
  if (env.GITLAB_CI === 'true' && env.CI_PROJECT_URL) return `git+${env.CI_PROJECT_URL}`
  if (source.remote) return source.remote.startsWith('git+') ? source.remote : `git+${source.remote}`
  return 'git+file:local'
}

function baseDependency(base: BaseImage): ResourceDescriptor {
  const [algorithm, hex] = (base.digest ?? '').split(':')
  let uri = base.ref
  try {
    const ref = parseReference(base.ref)
    uri = `oci://${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}`
  } catch {
    // kept as written
  }
  return {
    uri,
    name: base.ref,
    ...(hex ? {digest: {[algorithm]: hex}} : {}),
    annotations: {role: 'base-image', resolvedFrom: base.source},
  }
}

/** The SLSA provenance v1 predicate of one image build. */
export async function generateProvenance(input: ProvenanceInput): Promise<SlsaProvenance> {
  const env = input.env ?? process.env
  const version = await toolVersion()
  const builder = ciBuilder(env, version)
  const source =
    input.source &&
    ({
      uri: sourceUri(input.source, env),
      digest: {gitCommit: input.source.commit},
      ...(input.source.ref ? {ref: input.source.ref} : {}),
    } as const)
  const resolvedDependencies: ResourceDescriptor[] = [
    ...(source
      ? [{uri: source.uri, digest: source.digest, ...(source.ref ? {annotations: {ref: source.ref}} : {})}]
      : []),
    ...input.bases.map(baseDependency),
    ...(input.lockfile
      ? [{uri: `file:${input.lockfile.name}`, name: 'package-lock.json', digest: {sha256: input.lockfile.sha256}}]
      : []),
  ]
  return {
    buildDefinition: {
      buildType: RETAILOPS_BUILD_TYPE,
      externalParameters: {
        service: input.service,
        repository: input.repository,
        context: input.context,
        dockerfile: input.dockerfile,
        buildArgs: input.buildArgs,
        ...(input.target ? {target: input.target} : {}),
        platform: input.platform,
        ...(source ? {source} : {}),
      },
      internalParameters: {
        builder: input.builder,
        buildHash: input.buildHash,
        ...(input.imageId ? {imageId: input.imageId} : {}),
        ...(input.registryDigest ? {registryDigest: input.registryDigest} : {}),
        tag: input.tag,
        dirty: input.dirty,
      },
      resolvedDependencies,
    },
    runDetails: {
      builder: {id: builder.id, version: builder.version},
      metadata: {
        invocationId: builder.invocationId,
        startedOn: input.startedOn.toISOString(),
        finishedOn: input.finishedOn.toISOString(),
      },
    },
  }
}

export function provenancePath(projectDir: string, service: string): string {
  return path.join(projectDir, PROVENANCE_DIR, `${service}.slsa.json`)
}

export async function writeProvenance(projectDir: string, service: string, p: SlsaProvenance): Promise<string> {
  const file = provenancePath(projectDir, service)
  await writeJsonAtomic(file, p)
  return file
}

export async function readProvenanceFile(projectDir: string, service: string): Promise<SlsaProvenance | undefined> {
  const file = provenancePath(projectDir, service)
  const doc = await readJsonFile<SlsaProvenance>(file).catch((error: Error) => {
    throw new ConfigError([
      {file, path: '', message: `not valid JSON (${error.message}); run \`retailops build ${service}\` again`},
    ])
  })
  if (doc && doc.buildDefinition?.buildType !== RETAILOPS_BUILD_TYPE) {
    throw new ConfigError([
      {
        file,
        path: 'buildDefinition.buildType',
        message: `is not ${RETAILOPS_BUILD_TYPE}; run \`retailops build ${service}\``,
      },
    ])
  }
  return doc
}

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex')
}

/**
 * The provenance of a service's pushed image: the one build wrote for the engine image the push
 * came from (or for the digest the registry already held). Another build's is refused.
 */
export async function readProvenance(
  project: LoadedConfig,
  service: string,
): Promise<{file: string; provenance: SlsaProvenance; digest?: string}> {
  const file = provenancePath(project.dir, service)
  const provenance = await readProvenanceFile(project.dir, service)
  if (!provenance) {
    throw new NotFoundError(`No provenance for ${service} (${path.relative(project.dir, file)}).`, {
      nextSteps: [`Run \`retailops build ${service}\`: it writes the provenance of each image it builds.`],
      details: {service, file, absent: true},
    })
  }
  const pushed = (await readArtifactsLock(project.dir)).artifacts[service]
  if (!pushed) return {file, provenance}
  const internal = provenance.buildDefinition.internalParameters
  const matches =
    (internal.registryDigest !== undefined && internal.registryDigest === pushed.digest) ||
    (internal.imageId !== undefined && internal.imageId === pushed.imageId)
  if (!matches) {
    throw new RetailOpsError(
      'NOT_FOUND',
      `The provenance of ${service} describes ${internal.registryDigest ?? internal.imageId ?? 'another image'}, not the pushed image ${pushed.image}.`,
      {
        nextSteps: [`Build and push it again: \`retailops build ${service} && retailops push ${service}\`.`],
        details: {service, file, pushed: pushed.image},
      },
    )
  }
  return {file, provenance, digest: pushed.digest}
}
