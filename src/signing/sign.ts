import {createPublicKey, sign as cryptoSign, type KeyObject} from 'node:crypto'

import {NotFoundError, RetailOpsError} from '../errors/index.js'
import {MEDIA_TYPES, type RegistryClient, sha256Digest} from '../docker/registry.js'
import type {RunContext} from '../ui/context.js'
import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  envelopeVerifies,
  parseBundle,
  parseStatement,
  signatureStatement,
  signStatementBundle,
} from './bundle.js'
import {keyId} from './keys.js'
import {
  KEY_ID_ANNOTATION,
  sameRepository,
  SIGNATURE_ANNOTATION,
  SIMPLESIGNING_MEDIA_TYPE,
  signatureTag,
  simpleSigningPayload,
} from './payload.js'
import {attachReferrer, findReferrers, type ReferrerManifest} from './referrers.js'

/**
 * How signatures are stored. `bundle` (the default, what cosign v3 writes): a Sigstore bundle
 * as an OCI 1.1 referrer. `legacy` (cosign v2's default; podman, CRI-O and containers/image read
 * only this): simple-signing layers at the tag `sha256-<hex>.sig`.
 */
export type SignatureFormat = 'bundle' | 'legacy'
export const SIGNATURE_FORMATS: SignatureFormat[] = ['bundle', 'legacy']

/** Annotations cosign v3 puts on a bundle referrer manifest. */
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content'
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType'

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
  format: SignatureFormat
  /** legacy: `registry/repo:sha256-<hex>.sig`; bundle: `registry/repo@sha256:…` of the referrer manifest. */
  signature: string
  /** Digest of the .sig manifest after the change, or of the bundle's referrer manifest. */
  signatureManifest: string
  /** legacy: how many signatures the .sig manifest now holds; bundle: how many signature bundles refer to the image. */
  signatures: number
  /** bundle: how the referrer is found (the registry's referrers API, or the `sha256-<hex>` tag schema). */
  via?: 'referrers-api' | 'tag-schema'
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

/**
 * The manifest at a cosign v2 tag (`.sig`, `.att`) that a new layer is appended to, or an empty
 * one when the tag does not exist yet.
 */
export async function readTagManifest(
  client: RegistryClient,
  repository: string,
  tag: string,
): Promise<{existing?: {digest: string}; manifest: SignatureManifest}> {
  const existing = await client.getManifest(
    repository,
    tag,
    [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', '),
  )
  const manifest: SignatureManifest = existing
    ? (existing.json as unknown as SignatureManifest)
    : {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: {mediaType: MEDIA_TYPES.ociConfig, size: 0, digest: ''},
        layers: [],
      }
  return {existing: existing ?? undefined, manifest}
}

/** ECDSA over SHA-256, DER-encoded, base64 (what cosign puts in the annotation). */
export function signPayload(payload: Buffer, privateKey: KeyObject): string {
  return cryptoSign('sha256', payload, privateKey).toString('base64')
}

export async function signImage(
  target: SignTarget,
  privateKey: KeyObject,
  client: RegistryClient,
  ctx: RunContext,
  format: SignatureFormat = 'bundle',
): Promise<SignResult> {
  return format === 'legacy'
    ? signImageLegacy(target, privateKey, client, ctx)
    : signImageBundle(target, privateKey, client, ctx)
}

/**
 * Signs as `cosign sign --key` v3 does by default: a DSSE in-toto statement in a Sigstore bundle,
 * attached as an OCI 1.1 referrer (referrers API, or the `sha256-<hex>` index). The statement's
 * subject also names the repository. A bundle by the same key for this digest and repository
 * already there is not added twice.
 */
export async function signImageBundle(
  target: SignTarget,
  privateKey: KeyObject,
  client: RegistryClient,
  ctx: RunContext,
): Promise<SignResult> {
  const {registry, repository, digest} = target
  const image = `${registry}/${repository}@${digest}`
  const subject = await client.getManifest(repository, digest)
  if (!subject) {
    throw new NotFoundError(`${image} does not exist in the registry; nothing to sign.`, {
      nextSteps: ['Push it first (`retailops push`), or check the digest.'],
      details: {image},
    })
  }
  const id = keyId(privateKey)
  const found = await findReferrers(client, repository, digest)
  const bundles = found.descriptors.filter(
    (d) =>
      d.artifactType === BUNDLE_MEDIA_TYPE &&
      (d.annotations?.[BUNDLE_PREDICATE_ANNOTATION] ?? COSIGN_SIGN_PREDICATE) === COSIGN_SIGN_PREDICATE,
  )
  for (const d of bundles) {
    if (await isOwnBundle(client, target, d.digest, privateKey)) {
      ctx.out.debug(`${image}: already signed with key ${id} (${d.digest})`)
      return {
        image,
        digest,
        format: 'bundle',
        signature: `${registry}/${repository}@${d.digest}`,
        signatureManifest: d.digest,
        signatures: bundles.length,
        added: false,
        keyId: id,
        via: found.via,
      }
    }
  }
  const bundle = signStatementBundle(signatureStatement(`${registry}/${repository}`, digest), privateKey)
  const attached = await attachReferrer(client, {
    repository,
    subject: {digest, mediaType: subject.mediaType, size: subject.size},
    artifactType: BUNDLE_MEDIA_TYPE,
    layer: {mediaType: BUNDLE_MEDIA_TYPE, content: Buffer.from(JSON.stringify(bundle))},
    annotations: {
      [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
      [BUNDLE_PREDICATE_ANNOTATION]: COSIGN_SIGN_PREDICATE,
      'org.opencontainers.image.created': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    },
  })
  ctx.out.debug(`${image}: signature bundle ${attached.digest} attached (${attached.via})`)
  return {
    image,
    digest,
    format: 'bundle',
    signature: attached.where,
    signatureManifest: attached.digest,
    signatures: bundles.length + 1,
    added: true,
    keyId: id,
    via: attached.via,
  }
}

/** Whether a referrer holds a signature bundle this key made for this digest and repository. */
async function isOwnBundle(
  client: RegistryClient,
  target: SignTarget,
  manifestDigest: string,
  privateKey: KeyObject,
): Promise<boolean> {
  const {registry, repository, digest} = target
  try {
    const m = await client.getManifest(repository, manifestDigest, MEDIA_TYPES.ociManifest)
    const layer = (m?.json as unknown as ReferrerManifest | undefined)?.layers?.find(
      (l) => l.mediaType === BUNDLE_MEDIA_TYPE,
    )
    if (!layer) return false
    const blob = await client.getBlob(repository, layer.digest)
    if (sha256Digest(blob) !== layer.digest) return false
    const parsed = parseBundle(blob)
    if (!envelopeVerifies(parsed, createPublicKey(privateKey))) return false
    const statement = parseStatement(parsed.payloadType, parsed.payload)
    const hex = digest.split(':')[1]
    return statement.subjects.some(
      (s) => s.digest.sha256 === hex && s.name !== undefined && sameRepository(s.name, registry, repository),
    )
  } catch {
    return false
  }
}

/**
 * Signs an image in the registry the way `cosign sign --key` (legacy tag format) does: payload
 * blob, config blob, and the OCI manifest at `sha256-<hex>.sig`. An existing .sig manifest gets
 * one more layer, as cosign appends; an identical signature is not added twice.
 */
export async function signImageLegacy(
  target: SignTarget,
  privateKey: KeyObject,
  client: RegistryClient,
  ctx: RunContext,
): Promise<SignResult> {
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

  const {existing, manifest} = await readTagManifest(client, repository, tag)
  if (existing && !Array.isArray(manifest.layers)) {
    throw new RetailOpsError(
      'SIGNATURE',
      `${registry}/${repository}:${tag} exists but is not a signature manifest (no layers).`,
      {details: {tag}},
    )
  }
  const payloadDigest = sha256Digest(payload)
  // ECDSA signatures are randomised: the same key signing the same payload again is a duplicate.
  const duplicate = manifest.layers.some((l) => l.digest === payloadDigest && l.annotations?.[KEY_ID_ANNOTATION] === id)
  if (duplicate) {
    ctx.out.debug(`${image}: already signed with key ${id}`)
    return {
      image,
      digest,
      format: 'legacy',
      signature: `${registry}/${repository}:${tag}`,
      signatureManifest: existing!.digest,
      signatures: manifest.layers.length,
      added: false,
      keyId: id,
    }
  }
  if (manifest.layers.length >= 1000) {
    throw new RetailOpsError(
      'SIGNATURE',
      `${registry}/${repository}:${tag} already holds 1000 signatures (cosign's limit).`,
    )
  }

  await client.uploadBlob(repository, payload)
  const layers: Descriptor[] = [
    ...manifest.layers,
    {
      mediaType: SIMPLESIGNING_MEDIA_TYPE,
      size: payload.length,
      digest: payloadDigest,
      annotations: {[SIGNATURE_ANNOTATION]: signature, [KEY_ID_ANNOTATION]: id},
    },
  ]
  const config = signatureConfig(layers)
  const uploaded = await client.uploadBlob(repository, config)
  const mediaType = manifest.mediaType ?? MEDIA_TYPES.ociManifest
  const next: SignatureManifest = {
    ...manifest,
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: manifest.config?.mediaType || MEDIA_TYPES.ociConfig,
      size: uploaded.size,
      digest: uploaded.digest,
    },
    layers,
  }
  const body = Buffer.from(JSON.stringify(next))
  const manifestDigest = await client.putManifest(repository, tag, body, mediaType)
  ctx.out.debug(`${image}: signature ${layers.length} written to ${tag}`)
  return {
    image,
    digest,
    format: 'legacy',
    signature: `${registry}/${repository}:${tag}`,
    signatureManifest: manifestDigest,
    signatures: layers.length,
    added: true,
    keyId: id,
  }
}
