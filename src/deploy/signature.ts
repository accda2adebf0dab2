import path from 'node:path'

import type {KeyObject} from 'node:crypto'

import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import {toRetailOpsError} from '../errors/index.js'
import type {SignatureResult, SignatureStatus} from '../kubernetes/policy.js'
import {loadPublicKey} from '../signing/keys.js'
import {SignatureError, verifyImage} from '../signing/verify.js'
import type {RunContext} from '../ui/context.js'

/**
 * The hook deploy calls to verify image signatures before anything is applied. The default is
 * the signing engine's in-process cosign-format verifier (src/signing/verify.ts) with
 * signing.publicKey; a caller (a strategy, a test) may pass another.
 */
export type ImageVerifier = (images: string[], ctx: RunContext) => Promise<Record<string, SignatureResult>>

/** How a refusal from the signing engine counts for policy. */
export function signatureStatusOf(error: unknown): SignatureStatus {
  if (error instanceof SignatureError) return error.check === 'unsigned' ? 'unsigned' : 'invalid'
  const e = toRetailOpsError(error)
  if (e.exit === 'UNAVAILABLE' || e.exit === 'PERMISSION' || e.exit === 'CONFIG' || e.exit === 'USAGE') return 'unavailable'
  // NOT_FOUND (the digest is not in the registry) and anything else: it cannot be trusted.
  return 'invalid'
}

export function defaultImageVerifier(project: LoadedConfig): ImageVerifier {
  const keyFile = path.resolve(project.dir, project.config.signing.publicKey)
  return async (images, ctx) => {
    const out: Record<string, SignatureResult> = {}
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
            await verifyImage({image, publicKey: key, insecure: project.config.registry.insecure}, ctx)
            out[image] = {image, status: 'verified'}
          } catch (error) {
            out[image] = {image, status: signatureStatusOf(error), message: toRetailOpsError(error).message}
          }
        }),
      ),
    )
    return out
  }
}
