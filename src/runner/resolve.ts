import path from 'node:path'

import type {LoadedConfig} from '../config/load.js'
import {resolveFileOrEnv} from '../config/secret-ref.js'
import {ARTIFACTS_LOCK, readArtifactsLock} from '../docker/artifacts.js'
import {parseReference} from '../docker/reference.js'
import {usesPlainHttp} from '../docker/registry.js'
import {NotFoundError, toRetailOpsError, UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'

/** The artifacts lock entry `retailops runner build` records the runner image under. */
export const RUNNER_ARTIFACT = 'runner'

const BY_DIGEST = /^[^@\s]+@sha256:[0-9a-f]{64}$/

export interface RunnerImage {
  image: string
  source: 'flag' | 'config' | 'lock'
  /** verified, or (signing.required: false) why it could not be. */
  signature: 'verified' | 'unverified'
  warning?: string
}

/**
 * The image scheduled jobs run, pinned by digest: --runner-image, else runner.image, else the
 * `runner` entry of the artifacts lock. Never a tag: what a CronJob runs in two hours must be the
 * bytes verified now.
 */
export async function resolveRunnerImage(
  project: LoadedConfig,
  flag?: string,
): Promise<Omit<RunnerImage, 'signature'>> {
  if (flag !== undefined) {
    if (!BY_DIGEST.test(flag)) {
      throw new UsageError(
        `--runner-image ${flag}: scheduled jobs run an image pinned by digest, REGISTRY/REPOSITORY@sha256:…, never a tag (a tag such as :latest can point at other bytes when the job runs).`,
        {
          nextSteps: [
            'Pass the digest `retailops runner build` printed, or leave the flag out to use runner.image or the artifacts lock.',
          ],
        },
      )
    }
    return {image: flag, source: 'flag'}
  }
  if (project.config.runner?.image) return {image: project.config.runner.image, source: 'config'}
  const lock = await readArtifactsLock(project.dir)
  const locked = lock.artifacts[RUNNER_ARTIFACT]
  if (locked) return {image: locked.image, source: 'lock'}
  throw new NotFoundError(
    'No retailops runner image to schedule: runner.image is not set and the artifacts lock has no `runner` entry.',
    {
      nextSteps: [
        `Build, push and sign one: \`retailops runner build\` (it records REGISTRY/…@sha256:… as \`${RUNNER_ARTIFACT}\` in ${ARTIFACTS_LOCK}), then \`retailops sign\` it.`,
        'Or set runner.image in retailops.yaml to an image you pushed and signed, by digest: REGISTRY/REPOSITORY@sha256:….',
      ],
      details: {lock: path.join(project.dir, ARTIFACTS_LOCK)},
    },
  )
}

/**
 * Verifies the runner image's signature as deploy verifies the services' images (signing.publicKey,
 * plain HTTP only to the configured loopback registry). signing.required: a failure refuses
 * (SIGNATURE, or UNAVAILABLE when the registry cannot be asked); otherwise it is a warning.
 */
export async function verifiedRunnerImage(
  project: LoadedConfig,
  flag: string | undefined,
  ctx: RunContext,
): Promise<RunnerImage> {
  const runner = await resolveRunnerImage(project, flag)
  const {config} = project
  try {
    // Loaded on use: plans and dry runs that only name the runner image never pay for the signing engine.
    const {verifyImage} = await import('../signing/verify.js')
    await verifyImage(
      {
        image: runner.image,
        publicKey: resolveFileOrEnv(config.signing.publicKey, project.dir),
        insecure: usesPlainHttp(parseReference(runner.image).registry, config.registry),
      },
      ctx,
    )
    return {...runner, signature: 'verified'}
  } catch (error) {
    const e = toRetailOpsError(error)
    if (config.signing.required) {
      e.nextSteps.push(
        `The runner image ${runner.image} (from ${runner.source === 'flag' ? '--runner-image' : runner.source === 'config' ? 'runner.image' : ARTIFACTS_LOCK}) must verify before a CronJob runs it: sign it with \`retailops sign ${runner.image}\`.`,
      )
      throw e
    }
    const warning = `The runner image ${runner.image} is not verified (${e.message}); scheduling anyway because signing.required is false.`
    ctx.out.warn(warning)
    return {...runner, signature: 'unverified', warning}
  }
}
