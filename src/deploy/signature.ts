import type {KeyObject} from 'node:crypto'

import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import {resolveFileOrEnv} from '../config/secret-ref.js'
import {parseReference} from '../docker/reference.js'
import {usesPlainHttp} from '../docker/registry.js'
import {toRetailOpsError} from '../errors/index.js'
import {containerImages} from '../kubernetes/pods.js'
import type {SignatureResult, SignatureStatus} from '../kubernetes/policy.js'
import type {KubeObject} from '../kubernetes/resources.js'
import type {SignatureError} from '../signing/verify.js'
import type {RunContext} from '../ui/context.js'
import {digestOf} from './images.js'
import {ANNOTATION} from '../kubernetes/labels.js'

/**
 * The hook deploy calls to verify image signatures before anything is applied. The default is
 * the signing engine's in-process cosign-format verifier (src/signing/verify.ts) with
 * signing.publicKey; a caller (a strategy, a test) may pass another.
 */
export type ImageVerifier = (images: string[], ctx: RunContext) => Promise<Record<string, SignatureResult>>

/** How a refusal from the signing engine counts for policy. */
export function signatureStatusOf(error: unknown): SignatureStatus {
  // By name: the signing engine is loaded only when an image is verified (render never loads it).
  if (error instanceof Error && error.name === 'SignatureError') {
    return (error as SignatureError).check === 'unsigned' ? 'unsigned' : 'invalid'
  }
  const e = toRetailOpsError(error)
  if (e.exit === 'UNAVAILABLE' || e.exit === 'PERMISSION' || e.exit === 'CONFIG' || e.exit === 'USAGE')
    return 'unavailable'
  // NOT_FOUND (the digest is not in the registry) and anything else: it cannot be trusted.
  return 'invalid'
}

export function defaultImageVerifier(project: LoadedConfig): ImageVerifier {
  const keyFile = resolveFileOrEnv(project.config.signing.publicKey, project.dir)
  return async (images, ctx) => {
    const out: Record<string, SignatureResult> = {}
    // Loaded here, not at the top: tweetnacl and sigstore cost ~80 ms that render and dry paths never need.
    const [{loadPublicKey}, {verifyImage}] = await Promise.all([
      import('../signing/keys.js'),
      import('../signing/verify.js'),
    ])
    let key: KeyObject
    try {
      key = await loadPublicKey(keyFile)
    } catch (error) {
      const message = `cannot read the public key ${keyFile}: ${toRetailOpsError(error).message} (create one with \`retailops keys generate\`)`
      for (const image of images) out[image] = {image, status: 'unavailable', message}
      return out
    }
    const limit = pLimit(4)
    await Promise.all(
      [...new Set(images)].map((image) =>
        limit(async () => {
          try {
            // Plain HTTP only to the configured loopback registry, never to every registry an image names.
            const verified = await verifyImage(
              {image, publicKey: key, insecure: usesPlainHttp(parseReference(image).registry, project.config.registry)},
              ctx,
            )
            out[image] = {image, status: 'verified', repositoryBound: verified.repositoryBound}
          } catch (error) {
            out[image] = {image, status: signatureStatusOf(error), message: toRetailOpsError(error).message}
          }
        }),
      ),
    )
    return out
  }
}

export type SignatureVerification = 'verified' | 'skipped' | 'failed' | 'not-applicable'

export interface RenderedImageVerification {
  /**
   * A result for every image pinned by digest in any container, init container or ephemeral
   * container of any pod template of the objects; pass it to checkPolicy as `signatures`, which
   * then refuses every image without a `verified` result (tags included) when signing is required.
   */
  signatures: Record<string, SignatureResult>
  /** Images referenced by tag only: never verifiable (policy's image-digest rule refuses them). */
  tagged: string[]
  verification: SignatureVerification
}

export interface VerifyRenderedImagesOptions {
  project: LoadedConfig
  /** --skip-verify: every image is recorded as `skipped` (policy warns), nothing is fetched. */
  skipVerify?: boolean
  verifyImages?: ImageVerifier
}

/**
 * THE entry point for "verify every image these objects would run": deploy's policy step, and
 * anything that re-applies templates read back from the cluster (rollout resume, abort, undo),
 * call it before applying and give its `signatures` to checkPolicy. It walks every pod template
 * (Deployment, Job, CronJob, StatefulSet, DaemonSet, Pod…), every container list, whether or not
 * the image came from the artifacts lock, and records the outcome on each workload object
 * (annotation retailops.dev/signature-verification: verified only when all its images are).
 */
export async function verifyRenderedImages(
  objects: KubeObject[],
  options: VerifyRenderedImagesOptions,
  ctx: RunContext,
): Promise<RenderedImageVerification> {
  const used = containerImages(objects)
  const digests = [...new Set(used.map((c) => c.image).filter((image) => digestOf(image)))]
  const tagged = [...new Set(used.map((c) => c.image).filter((image) => !digestOf(image)))]
  let signatures: Record<string, SignatureResult> = {}
  if (options.skipVerify) {
    ctx.out.warn(
      `SIGNATURE VERIFICATION SKIPPED (--skip-verify) for ${digests.length} image${digests.length === 1 ? '' : 's'}: unsigned or tampered images would deploy. This is recorded on each workload (${ANNOTATION.signature}: skipped).`,
    )
    signatures = Object.fromEntries(digests.map((image) => [image, {image, status: 'skipped' as const}]))
  } else if (digests.length > 0) {
    const task = ctx.out.task(`Verifying ${digests.length} image signature${digests.length === 1 ? '' : 's'}`)
    const got = await (options.verifyImages ?? defaultImageVerifier(options.project))(digests, ctx)
    // Only answers for the images asked about count; one the verifier left out stays unverified.
    for (const image of digests) if (got[image]) signatures[image] = got[image]
    const bad = digests.filter((image) => signatures[image]?.status !== 'verified')
    if (bad.length > 0) task.fail(`${bad.length} of ${digests.length} images not verified`)
    else task.succeed(`${digests.length} image signature${digests.length === 1 ? '' : 's'} verified`)
  }
  const verification: SignatureVerification = options.skipVerify
    ? 'skipped'
    : digests.length === 0 && tagged.length === 0
      ? 'not-applicable'
      : tagged.length === 0 && digests.every((image) => signatures[image]?.status === 'verified')
        ? 'verified'
        : 'failed'
  const byObject = new Map<KubeObject, string[]>()
  for (const c of used) byObject.set(c.object, [...(byObject.get(c.object) ?? []), c.image])
  for (const [object, images] of byObject) {
    const status = options.skipVerify
      ? 'skipped'
      : images.every((image) => signatures[image]?.status === 'verified')
        ? 'verified'
        : 'unverified'
    object.metadata.annotations = {...object.metadata.annotations, [ANNOTATION.signature]: status}
  }
  return {signatures, tagged, verification}
}
