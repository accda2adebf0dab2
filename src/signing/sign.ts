import {sign as cryptoSign, type KeyObject} from 'node:crypto'

import {NotFoundError, RetailOpsError} from '../errors/index.js'
import {MEDIA_TYPES, type RegistryClient, sha256Digest} from '../docker/registry.js'
import type {RunContext} from '../ui/context.js'
import {keyId} from './keys.js'
import {KEY_ID_ANNOTATION, SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE, signatureTag, simpleSigningPayload} from './payload.js'

export interface Descriptor {
  mediaType: string
  size: number
  digest: string
  annotations?: Record<string, string>
}

export interface SignatureManifest {
  schemaVersion: 2
  mediaType?: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
}

export interface SignTarget {
  /** registry host[:port] */
  registry: string
  repository: string
  /** Manifest digest of the image. */
  digest: string
}

export interface SignResult {
  image: string
  digest: string
  /** `registry/repo:sha256-<hex>.sig` */
  signature: string
  /** Digest of the .sig manifest after the change. */
  signatureManifest: string
  /** How many signatures the .sig manifest now holds. */
  signatures: number
  /** false when an identical signature was already there. */
  added: boolean
  keyId: string
}

/**
 * cosign's config blob for a signature manifest: nothing reads it, but cosign writes one with
 * the payload digests as diff_ids, and so does retailops.
 */
export function signatureConfig(layers: Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{created: '0001-01-01T00:00:00Z'}],
      os: '',
      rootfs: {type: 'layers', diff_ids: layers.map((l) => l.digest)},
      config: {},
    }),
  )
}

/** ECDSA over SHA-256, DER-encoded, base64 (what cosign puts in the annotation). */
export function signPayload(payload: Buffer, privateKey: KeyObject): string {
  return cryptoSign('sha256', payload, privateKey).toString('base64')
}

/**
 * Signs an image in the registry the way `cosign sign --key` (legacy tag format) does: payload
 * blob, config blob, and the OCI manifest at `sha256-<hex>.sig`. An existing .sig manifest gets
 * one more layer, as cosign appends; an identical signature is not added twice.
 */
export async function signImage(target: SignTarget, privateKey: KeyObject, client: RegistryClient, ctx: RunContext): Promise<SignResult> {
  const {registry, repository, digest} = target
  const image = `${registry}/${repository}@${digest}`
  const head = await client.headManifest(repository, digest)
  if (!head) {
    throw new NotFoundError(`${image} does not exist in the registry; nothing to sign.`, {
      nextSteps: ['Push it first (`retailops push`), or check the digest.'],
      details: {image},
    })
  }
  const id = keyId(privateKey)
  const payload = simpleSigningPayload(`${registry}/${repository}`, digest)
  const signature = signPayload(payload, privateKey)
  const tag = signatureTag(digest)

  const existing = await client.getManifest(repository, tag, [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', '))
  const manifest: SignatureManifest = existing
    ? (existing.json as unknown as SignatureManifest)
    : {schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: {mediaType: MEDIA_TYPES.ociConfig, size: 0, digest: ''}, layers: []}
  if (existing && !Array.isArray(manifest.layers)) {
    throw new RetailOpsError('SIGNATURE', `${registry}/${repository}:${tag} exists but is not a signature manifest (no layers).`, {details: {tag}})
  }
  const payloadDigest = sha256Digest(payload)
  // ECDSA signatures are randomised: the same key signing the same payload again is a duplicate.
  const duplicate = manifest.layers.some((l) => l.digest === payloadDigest && l.annotations?.[KEY_ID_ANNOTATION] === id)
  if (duplicate) {
    ctx.out.debug(`${image}: already signed with key ${id}`)
    return {image, digest, signature: `${registry}/${repository}:${tag}`, signatureManifest: existing!.digest, signatures: manifest.layers.length, added: false, keyId: id}
  }
  if (manifest.layers.length >= 1000) {
    throw new RetailOpsError('SIGNATURE', `${registry}/${repository}:${tag} already holds 1000 signatures (cosign's limit).`)
  }

  await client.uploadBlob(repository, payload)
  const layers: Descriptor[] = [
    ...manifest.layers,
    {mediaType: SIMPLESIGNING_MEDIA_TYPE, size: payload.length, digest: payloadDigest, annotations: {[SIGNATURE_ANNOTATION]: signature, [KEY_ID_ANNOTATION]: id}},
  ]
  const config = signatureConfig(layers)
  const uploaded = await client.uploadBlob(repository, config)
  const mediaType = manifest.mediaType ?? MEDIA_TYPES.ociManifest
  const next: SignatureManifest = {
    ...manifest,
    schemaVersion: 2,
    mediaType,
    config: {mediaType: manifest.config?.mediaType || MEDIA_TYPES.ociConfig, size: uploaded.size, digest: uploaded.digest},
    layers,
  }
  const body = Buffer.from(JSON.stringify(next))
  const manifestDigest = await client.putManifest(repository, tag, body, mediaType)
  ctx.out.debug(`${image}: signature ${layers.length} written to ${tag}`)
  return {image, digest, signature: `${registry}/${repository}:${tag}`, signatureManifest: manifestDigest, signatures: layers.length, added: true, keyId: id}
}
