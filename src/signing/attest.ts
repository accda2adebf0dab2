import {createPublicKey, type KeyObject} from 'node:crypto'

import {NotFoundError, RetailOpsError} from '../errors/index.js'
import {MEDIA_TYPES, type RegistryClient, sha256Digest} from '../docker/registry.js'
import type {RunContext} from '../ui/context.js'
import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  envelopeVerifies,
  parseBundle,
  parseEnvelope,
  signStatementBundle,
  signStatementEnvelope,
  STATEMENT_TYPES,
} from './bundle.js'
import {keyId} from './keys.js'
import {KEY_ID_ANNOTATION, SIGNATURE_ANNOTATION} from './payload.js'
import {attachReferrer, findReferrers, type ReferrerManifest} from './referrers.js'
import {
  BUNDLE_CONTENT_ANNOTATION,
  BUNDLE_PREDICATE_ANNOTATION,
  type Descriptor,
  readTagManifest,
  type SignatureFormat,
  signatureConfig,
  type SignatureManifest,
  type SignTarget,
} from './sign.js'

/**
 * Attestations: an in-toto Statement v1 (subject: the image's repository and manifest digest)
 * carrying a predicate (an SBOM, a SLSA provenance), signed as DSSE with the cosign key and
 * attached to the digest as cosign attaches them:
 *  - `bundle` (cosign v3's default): a Sigstore bundle v0.3 as an OCI 1.1 referrer, annotated with
 *    its predicate type (referrers API, or the `sha256-<hex>` tag schema), read by cosign v3 and by
 *    cosign v2.6 (`verify-attestation --trusted-root <file>`, an empty root serves for a key);
 *  - `legacy` (cosign v2's default): DSSE envelopes as layers of the manifest at `sha256-<hex>.att`.
 */

/** cosign's `--type` names and the predicate types they stand for. */
export const PREDICATE_TYPES = {
  cyclonedx: 'https://cyclonedx.org/bom',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
} as const
export type PredicateName = keyof typeof PREDICATE_TYPES

export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json'
/** The annotation cosign v2 puts on a `.att` layer naming its predicate type. */
export const LEGACY_PREDICATE_ANNOTATION = 'predicateType'

/** Where cosign v2 keeps an image's attestations: the tag `sha256-<hex>.att`. */
export function attestationTag(digest: string): string {
  return `${digest.replace(':', '-')}.att`
}

/** The in-toto Statement v1 retailops signs: the subject names the repository and the digest. */
export function attestationStatement(
  dockerReference: string,
  digest: string,
  predicateType: string,
  predicate: unknown,
): Buffer {
  const [algorithm, hex] = digest.split(':')
  return Buffer.from(
    JSON.stringify({
      _type: STATEMENT_TYPES[0],
      subject: [{name: dockerReference, digest: {[algorithm]: hex}}],
      predicateType,
      predicate,
    }),
  )
}

export interface Attestation {
  predicateType: string
  predicate: unknown
}

export interface AttestResult {
  image: string
  digest: string
  predicateType: string
  format: SignatureFormat
  /** bundle: `registry/repo@sha256:…` of the referrer manifest; legacy: `registry/repo:sha256-<hex>.att`. */
  attestation: string
  /** Digest of the referrer manifest, or of the `.att` manifest after the change. */
  attestationManifest: string
  /** bundle: how the referrer is found. */
  via?: 'referrers-api' | 'tag-schema'
  /** false when the same statement signed with the same key was already there. */
  added: boolean
  keyId: string
}

/** Signs the statement and attaches it to the image in the given format (bundle by default). */
export async function attestImage(
  target: SignTarget,
  attestation: Attestation,
  privateKey: KeyObject,
  client: RegistryClient,
  ctx: RunContext,
  format: SignatureFormat = 'bundle',
): Promise<AttestResult> {
  const {registry, repository, digest} = target
  const image = `${registry}/${repository}@${digest}`
  const subject = await client.getManifest(repository, digest)
  if (!subject) {
    throw new NotFoundError(`${image} does not exist in the registry; nothing to attest.`, {
      nextSteps: ['Push it first (`retailops push`), or check the digest.'],
      details: {image},
    })
  }
  const statement = attestationStatement(
    `${registry}/${repository}`,
    digest,
    attestation.predicateType,
    attestation.predicate,
  )
  const base = {image, digest, predicateType: attestation.predicateType, keyId: keyId(privateKey)}
  return format === 'legacy'
    ? attachLegacy(client, target, statement, privateKey, ctx, base)
    : attachBundle(client, target, subject, statement, privateKey, ctx, base)
}

async function attachBundle(
  client: RegistryClient,
  target: SignTarget,
  subject: {digest: string; mediaType: string; size: number},
  statement: Buffer,
  privateKey: KeyObject,
  ctx: RunContext,
  base: Pick<AttestResult, 'image' | 'digest' | 'predicateType' | 'keyId'>,
): Promise<AttestResult> {
  const {registry, repository, digest} = target
  const found = await findReferrers(client, repository, digest)
  // The same statement by the same key is there already: ECDSA is randomised, so compare what was signed.
  for (const d of found.descriptors) {
    if (d.artifactType !== undefined && d.artifactType !== BUNDLE_MEDIA_TYPE) continue
    if (await sameBundleStatement(client, repository, d.digest, base.predicateType, statement, privateKey)) {
      ctx.out.debug(`${base.image}: ${base.predicateType} already attested with key ${base.keyId} (${d.digest})`)
      return {
        ...base,
        format: 'bundle',
        attestation: `${registry}/${repository}@${d.digest}`,
        attestationManifest: d.digest,
        via: found.via,
        added: false,
      }
    }
  }
  const bundle = signStatementBundle(statement, privateKey)
  const attached = await attachReferrer(client, {
    repository,
    subject: {digest: subject.digest, mediaType: subject.mediaType, size: subject.size},
    artifactType: BUNDLE_MEDIA_TYPE,
    layer: {mediaType: BUNDLE_MEDIA_TYPE, content: Buffer.from(JSON.stringify(bundle))},
    annotations: {
      [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
      [BUNDLE_PREDICATE_ANNOTATION]: base.predicateType,
      'org.opencontainers.image.created': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    },
  })
  ctx.out.debug(`${base.image}: ${base.predicateType} attestation ${attached.digest} attached (${attached.via})`)
  return {
    ...base,
    format: 'bundle',
    attestation: attached.where,
    attestationManifest: attached.digest,
    via: attached.via,
    added: true,
  }
}

async function sameBundleStatement(
  client: RegistryClient,
  repository: string,
  manifestDigest: string,
  predicateType: string,
  statement: Buffer,
  privateKey: KeyObject,
): Promise<boolean> {
  try {
    const m = (await client.getManifest(repository, manifestDigest, MEDIA_TYPES.ociManifest))?.json as unknown as
      ReferrerManifest | undefined
    if (!m || (m.annotations?.[BUNDLE_PREDICATE_ANNOTATION] ?? predicateType) !== predicateType) return false
    const layer = m.layers?.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE)
    if (!layer) return false
    const blob = await client.getBlob(repository, layer.digest)
    if (sha256Digest(blob) !== layer.digest) return false
    const parsed = parseBundle(blob)
    return parsed.payload.equals(statement) && envelopeVerifies(parsed, createPublicKey(privateKey))
  } catch {
    return false
  }
}

async function attachLegacy(
  client: RegistryClient,
  target: SignTarget,
  statement: Buffer,
  privateKey: KeyObject,
  ctx: RunContext,
  base: Pick<AttestResult, 'image' | 'digest' | 'predicateType' | 'keyId'>,
): Promise<AttestResult> {
  const {registry, repository, digest} = target
  const tag = attestationTag(digest)
  const where = `${registry}/${repository}:${tag}`
  const {existing, manifest} = await readTagManifest(client, repository, tag)
  if (existing && !Array.isArray(manifest.layers)) {
    throw new RetailOpsError('ATTESTATION', `${where} exists but is not an attestation manifest (no layers).`, {
      details: {tag},
      nextSteps: [
        'Something else uses the tag cosign keeps attestations at; remove it, or attest in the bundle format.',
      ],
    })
  }
  for (const l of manifest.layers) {
    if (l.mediaType !== DSSE_MEDIA_TYPE || l.annotations?.[KEY_ID_ANNOTATION] !== base.keyId) continue
    const blob = await client.getBlob(repository, l.digest).catch(() => undefined)
    try {
      if (blob && parseEnvelope(blob).payload.equals(statement)) {
        ctx.out.debug(`${base.image}: ${base.predicateType} already attested at ${tag}`)
        return {...base, format: 'legacy', attestation: where, attestationManifest: existing!.digest, added: false}
      }
    } catch {
      // not an envelope: not the same attestation
    }
  }
  const envelope = Buffer.from(JSON.stringify(signStatementEnvelope(statement, privateKey)))
  const uploaded = await client.uploadBlob(repository, envelope)
  const layers: Descriptor[] = [
    ...manifest.layers,
    {
      mediaType: DSSE_MEDIA_TYPE,
      size: uploaded.size,
      digest: uploaded.digest,
      // What cosign v2 writes (an empty signature annotation: the signature is inside the envelope), and whose key it is.
      annotations: {
        [SIGNATURE_ANNOTATION]: '',
        [LEGACY_PREDICATE_ANNOTATION]: base.predicateType,
        [KEY_ID_ANNOTATION]: base.keyId,
      },
    },
  ]
  const config = await client.uploadBlob(repository, signatureConfig(layers))
  const mediaType = manifest.mediaType ?? MEDIA_TYPES.ociManifest
  const next: SignatureManifest = {
    ...manifest,
    schemaVersion: 2,
    mediaType,
    config: {mediaType: manifest.config?.mediaType || MEDIA_TYPES.ociConfig, size: config.size, digest: config.digest},
    layers,
  }
  const manifestDigest = await client.putManifest(repository, tag, Buffer.from(JSON.stringify(next)), mediaType)
  ctx.out.debug(`${base.image}: ${base.predicateType} attestation ${layers.length} written to ${tag}`)
  return {...base, format: 'legacy', attestation: where, attestationManifest: manifestDigest, added: true}
}

/** Whether a referrer descriptor or manifest annotation names a signature rather than an attestation. */
export function isSignaturePredicate(predicateType: string | undefined): boolean {
  return predicateType === COSIGN_SIGN_PREDICATE
}
