import {type KeyObject, verify as cryptoVerify} from 'node:crypto'

import {RetailOpsError} from '../errors/index.js'
import {MEDIA_TYPES, type RegistryClient, registryClient, sha256Digest} from '../docker/registry.js'
import {parseReference} from '../docker/reference.js'
import type {RunContext} from '../ui/context.js'
import {keyId, loadPublicKey} from './keys.js'
import {KEY_ID_ANNOTATION, parseSimpleSigning, sameRepository, SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE, signatureTag} from './payload.js'
import type {SignatureManifest} from './sign.js'

/** Which check refused the image. */
export type SignatureCheck = 'unsigned' | 'wrong-key' | 'tampered-payload' | 'other-digest' | 'other-repository'

export interface LayerFinding {
  layer: number
  check: SignatureCheck | 'ok'
  reason: string
}

/** A refused image: exit code SIGNATURE (9); `details.check` says which check failed. */
export class SignatureError extends RetailOpsError {
  readonly check: SignatureCheck

  constructor(check: SignatureCheck, message: string, details: Record<string, unknown>, nextSteps: string[]) {
    super('SIGNATURE', message, {details: {check, ...details}, nextSteps})
    this.check = check
  }
}

export interface VerifiedImage {
  image: string
  digest: string
  /** `registry/repo:sha256-<hex>.sig` */
  signature: string
  /** How many signatures the .sig manifest holds, and which one verified. */
  signatures: number
  verifiedLayer: number
  keyId: string
  /** docker-reference in the verified payload: always this image's repository (cosign ignores it; retailops does not). */
  dockerReference: string
}

export interface VerifyTarget {
  registry: string
  repository: string
  digest: string
}

/**
 * Verifies cosign key-based signatures of one image (legacy `.sig` tag format, as `cosign verify
 * --key --insecure-ignore-tlog` does): some simplesigning layer must carry an ECDSA P-256 /
 * SHA-256 signature that verifies with the public key over the payload's exact bytes, and that
 * payload must name this manifest digest. Refusals, each its own message: unsigned, another key,
 * a changed payload, a payload for another digest.
 */
export async function verifySignatures(target: VerifyTarget, publicKey: KeyObject, client: RegistryClient): Promise<VerifiedImage> {
  const {registry, repository, digest} = target
  const image = `${registry}/${repository}@${digest}`
  const tag = signatureTag(digest)
  const where = `${registry}/${repository}:${tag}`
  const id = keyId(publicKey)
  const base = {image, digest, signature: where, keyId: id}
  const signHint = [`Sign it: \`retailops sign SERVICE\` (or \`cosign sign --key cosign.key ${image}\`).`]

  const manifest = await client.getManifest(repository, tag, [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', '))
  if (!manifest) {
    throw new SignatureError('unsigned', `${image} is not signed: there is no signature at ${where}.`, base, signHint)
  }
  const layers = ((manifest.json as unknown as SignatureManifest).layers ?? []).filter((l) => l.mediaType === SIMPLESIGNING_MEDIA_TYPE)
  if (layers.length === 0) {
    throw new SignatureError('unsigned', `${image} is not signed: ${where} holds no cosign simple-signing layer.`, base, signHint)
  }

  const findings: LayerFinding[] = []
  for (const [i, layer] of layers.entries()) {
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION]
    if (!signature) {
      findings.push({layer: i, check: 'unsigned', reason: `layer ${i} has no ${SIGNATURE_ANNOTATION} annotation`})
      continue
    }
    const payload = await client.getBlob(repository, layer.digest)
    if (sha256Digest(payload) !== layer.digest) {
      findings.push({layer: i, check: 'tampered-payload', reason: `layer ${i}: the payload blob does not hash to its descriptor's digest ${layer.digest}`})
      continue
    }
    let ok = false
    try {
      ok = cryptoVerify('sha256', payload, publicKey, Buffer.from(signature, 'base64'))
    } catch {
      ok = false
    }
    if (!ok) {
      const claimed = layer.annotations?.[KEY_ID_ANNOTATION]
      if (claimed === id) {
        findings.push({layer: i, check: 'tampered-payload', reason: `layer ${i} was signed with this key, but its payload no longer matches the signature`})
      } else if (claimed) {
        findings.push({layer: i, check: 'wrong-key', reason: `layer ${i} was signed with another key (${claimed})`})
      } else {
        let malformed: string | undefined
        try {
          parseSimpleSigning(payload)
        } catch (error) {
          malformed = (error as Error).message
        }
        findings.push(
          malformed
            ? {layer: i, check: 'tampered-payload', reason: `layer ${i}: the signature does not verify and the payload is malformed (${malformed})`}
            : {layer: i, check: 'wrong-key', reason: `layer ${i}: the signature does not verify with key ${id}`},
        )
      }
      continue
    }
    let parsed
    try {
      parsed = parseSimpleSigning(payload)
    } catch (error) {
      findings.push({layer: i, check: 'tampered-payload', reason: `layer ${i}: the signed payload is not a cosign simple-signing document (${(error as Error).message})`})
      continue
    }
    if (parsed.digest !== digest) {
      findings.push({layer: i, check: 'other-digest', reason: `layer ${i}: a valid signature, but for ${parsed.digest}`})
      continue
    }
    if (!sameRepository(parsed.dockerReference, registry, repository)) {
      findings.push({layer: i, check: 'other-repository', reason: `layer ${i}: a valid signature of this digest, but made for ${parsed.dockerReference}`})
      continue
    }
    return {...base, signatures: layers.length, verifiedLayer: i, dockerReference: parsed.dockerReference}
  }

  const details = {...base, signatures: layers.length, layers: findings}
  const pick = (check: SignatureCheck) => findings.find((f) => f.check === check)
  const otherRepository = pick('other-repository')
  if (otherRepository) {
    const named = /made for (\S+)$/.exec(otherRepository.reason)?.[1]
    throw new SignatureError('other-repository', `${image} is refused: its signature is valid for this digest but was made for ${named} (critical.identity.docker-reference), not for ${registry}/${repository}. A signature only vouches for the repository it names.`, {...details, signedRepository: named}, [
      `Sign the image in the repository it is deployed from: \`retailops sign ${image}\`, after checking that this content belongs there.`,
    ])
  }
  const otherDigest = pick('other-digest')
  if (otherDigest) {
    const named = /for (sha256:[0-9a-f]+)/.exec(otherDigest.reason)?.[1]
    throw new SignatureError('other-digest', `${image} is refused: its signature is valid but was made for another image (${named}), not for ${digest}.`, {...details, signedDigest: named}, [
      'A signature copied from another image never counts. Sign this digest: `retailops sign SERVICE`.',
    ])
  }
  const tampered = pick('tampered-payload')
  if (tampered) {
    throw new SignatureError('tampered-payload', `${image} is refused: its signature payload was changed after signing (${tampered.reason}).`, details, [
      'Treat the registry content as tampered with; re-push from a trusted build and sign again.',
    ])
  }
  const wrongKey = pick('wrong-key')
  if (wrongKey) {
    throw new SignatureError('wrong-key', `${image} is refused: it is signed, but not by the key ${id} (${layers.length} signature${layers.length === 1 ? '' : 's'}, none verifies with it).`, details, [
      'Verify with the public key that matches the signing key (signing.publicKey or --key), or sign it with this project\'s key.',
    ])
  }
  throw new SignatureError('unsigned', `${image} is not signed: ${where} has no signature annotation.`, details, signHint)
}

export interface VerifyImageOptions {
  /** `registry/repo@sha256:…` (a tag is resolved to its digest first). */
  image: string
  /** Public key: a KeyObject or a PEM file path. */
  publicKey: KeyObject | string
  /** Plain HTTP to this registry: only a loopback registry the configuration names (usesPlainHttp); unset, a loopback registry named by the caller. */
  insecure?: boolean
}

/**
 * The check deploy runs before it applies anything: throws SignatureError (exit 9) unless a
 * signature by the key verifies for exactly this digest.
 */
export async function verifyImage(options: VerifyImageOptions, ctx: RunContext): Promise<VerifiedImage> {
  const ref = parseReference(options.image)
  const key = typeof options.publicKey === 'string' ? await loadPublicKey(options.publicKey) : options.publicKey
  const client = await registryClient(ref.registry, {insecure: options.insecure, signal: ctx.signal})
  let digest = ref.digest
  if (!digest) {
    const head = await client.headManifest(ref.repository, ref.tag ?? 'latest')
    if (!head) throw new RetailOpsError('NOT_FOUND', `${options.image} does not exist in the registry.`, {details: {image: options.image}})
    digest = head.digest
    ctx.out.warn(`${options.image} is a tag; verifying the digest it points to now (${digest}). Deploy by digest.`)
  } else if (!(await client.headManifest(ref.repository, digest))) {
    throw new RetailOpsError('NOT_FOUND', `${options.image} does not exist in the registry.`, {details: {image: options.image}})
  }
  const verified = await verifySignatures({registry: ref.registry, repository: ref.repository, digest}, key, client)
  ctx.out.debug(`${verified.image}: signature ${verified.verifiedLayer + 1}/${verified.signatures} verified with ${verified.keyId}`)
  return verified
}
