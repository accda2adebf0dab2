import {type KeyObject, verify as cryptoVerify} from 'node:crypto'

import {RetailOpsError} from '../errors/index.js'
import {MEDIA_TYPES, type RegistryClient, registryClient, sha256Digest} from '../docker/registry.js'
import {parseReference} from '../docker/reference.js'
import type {RunContext} from '../ui/context.js'
import {keyId, loadPublicKey} from './keys.js'
import {
  KEY_ID_ANNOTATION,
  parseSimpleSigning,
  sameRepository,
  SIGNATURE_ANNOTATION,
  SIMPLESIGNING_MEDIA_TYPE,
  signatureTag,
} from './payload.js'
import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  envelopeVerifies,
  type ParsedBundle,
  parseBundle,
  parseStatement,
  publicKeyHint,
} from './bundle.js'
import {findReferrers, type ReferrerManifest} from './referrers.js'
import {BUNDLE_PREDICATE_ANNOTATION, type SignatureFormat, type SignatureManifest} from './sign.js'

/** Which check refused the image. */
export type SignatureCheck = 'unsigned' | 'wrong-key' | 'tampered-payload' | 'other-digest' | 'other-repository'

export interface LayerFinding {
  /** Which signature: its index among all found (bundles first, then the .sig layers). */
  layer: number
  format: SignatureFormat
  /** Where it is stored: a referrer manifest (`registry/repo@sha256:…`) or the .sig tag. */
  source: string
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
  /** The format of the signature that verified: a Sigstore bundle (cosign v3) or a legacy .sig layer. */
  format: SignatureFormat
  /** Where that signature lives: `registry/repo@sha256:…` (bundle referrer) or `registry/repo:sha256-<hex>.sig`. */
  signature: string
  /** How many signatures were found (bundles and .sig layers), and which one verified. */
  signatures: number
  verifiedLayer: number
  keyId: string
  /**
   * The repository the verified signature names (legacy: critical.identity.docker-reference; bundle:
   * the statement subject's name). It is always this image's repository when present. cosign v3's
   * own bundles name none: then undefined, and repositoryBound is false.
   */
  dockerReference?: string
  repositoryBound: boolean
}

export interface VerifyTarget {
  registry: string
  repository: string
  digest: string
}

interface Candidate {
  format: SignatureFormat
  source: string
  check: (index: number) => Promise<LayerFinding & {dockerReference?: string}>
}

/**
 * Verifies cosign key-based signatures of one image in both formats, as `cosign verify --key
 * --insecure-ignore-tlog` (v2 and v3) does: Sigstore bundles among the image's OCI 1.1 referrers
 * (referrers API or the `sha256-<hex>` tag schema), and simple-signing layers at `sha256-<hex>.sig`.
 * One must carry an ECDSA P-256 / SHA-256 signature that verifies with the public key, over
 * content that names this manifest digest and, when it names a repository, this repository
 * (cosign ignores the repository; retailops does not). Refusals, each its own message: unsigned,
 * another key, a changed payload, another digest, another repository.
 */
export async function verifySignatures(
  target: VerifyTarget,
  publicKey: KeyObject,
  client: RegistryClient,
): Promise<VerifiedImage> {
  const {registry, repository, digest} = target
  const image = `${registry}/${repository}@${digest}`
  const tag = signatureTag(digest)
  const legacyWhere = `${registry}/${repository}:${tag}`
  const id = keyId(publicKey)
  const hint = publicKeyHint(publicKey)
  const signHint = [`Sign it: \`retailops sign SERVICE\` (or \`cosign sign --key cosign.key ${image}\`).`]

  const candidates: Candidate[] = []
  const referrers = await findReferrers(client, repository, digest)
  for (const d of referrers.descriptors) {
    if (d.artifactType !== undefined && d.artifactType !== BUNDLE_MEDIA_TYPE) continue
    const predicate = d.annotations?.[BUNDLE_PREDICATE_ANNOTATION]
    if (predicate !== undefined && predicate !== COSIGN_SIGN_PREDICATE) continue // an attestation, not a signature
    const source = `${registry}/${repository}@${d.digest}`
    candidates.push({
      format: 'bundle',
      source,
      check: (i) => checkBundle(client, {...target, index: i, source, manifestDigest: d.digest, publicKey, hint}),
    })
  }
  const legacy = await client.getManifest(
    repository,
    tag,
    [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', '),
  )
  const layers = ((legacy?.json as unknown as SignatureManifest | undefined)?.layers ?? []).filter(
    (l) => l.mediaType === SIMPLESIGNING_MEDIA_TYPE,
  )
  for (const layer of layers) {
    candidates.push({
      format: 'legacy',
      source: legacyWhere,
      check: (i) => checkLegacyLayer(client, {...target, index: i, layer, publicKey, id}),
    })
  }
  const base = {image, digest, signature: candidates[0]?.source ?? legacyWhere, keyId: id}
  if (candidates.length === 0) {
    throw new SignatureError(
      'unsigned',
      `${image} is not signed: no signature bundle among its referrers (${referrers.where}) and no signature at ${legacyWhere}.`,
      {...base, referrers: referrers.where},
      signHint,
    )
  }

  const findings: (LayerFinding & {dockerReference?: string})[] = []
  for (const [i, c] of candidates.entries()) findings.push(await c.check(i))
  const ok = findings.filter((f) => f.check === 'ok')
  const chosen = ok.find((f) => f.dockerReference !== undefined) ?? ok[0]
  if (chosen) {
    return {
      image,
      digest,
      format: chosen.format,
      signature: chosen.source,
      signatures: candidates.length,
      verifiedLayer: chosen.layer,
      keyId: id,
      dockerReference: chosen.dockerReference,
      repositoryBound: chosen.dockerReference !== undefined,
    }
  }

  const details = {...base, signatures: candidates.length, layers: findings.map(({dockerReference: _d, ...f}) => f)}
  const pick = (check: SignatureCheck) => findings.find((f) => f.check === check)
  const otherRepository = pick('other-repository')
  if (otherRepository) {
    const named = otherRepository.dockerReference
    throw new SignatureError(
      'other-repository',
      `${image} is refused: its signature is valid for this digest but was made for ${named} (${otherRepository.format === 'legacy' ? 'critical.identity.docker-reference' : "the statement subject's name"}), not for ${registry}/${repository}. A signature only vouches for the repository it names.`,
      {...details, signedRepository: named},
      [
        `Sign the image in the repository it is deployed from: \`retailops sign ${image}\`, after checking that this content belongs there.`,
      ],
    )
  }
  const otherDigest = pick('other-digest')
  if (otherDigest) {
    const named = /for (sha256:[0-9a-f]+)/.exec(otherDigest.reason)?.[1]
    throw new SignatureError(
      'other-digest',
      `${image} is refused: its signature is valid but was made for another image (${named}), not for ${digest}.`,
      {...details, signedDigest: named},
      ['A signature copied from another image never counts. Sign this digest: `retailops sign SERVICE`.'],
    )
  }
  const tampered = pick('tampered-payload')
  if (tampered) {
    throw new SignatureError(
      'tampered-payload',
      `${image} is refused: its signature payload was changed after signing (${tampered.reason}).`,
      details,
      ['Treat the registry content as tampered with; re-push from a trusted build and sign again.'],
    )
  }
  const wrongKey = pick('wrong-key')
  if (wrongKey) {
    throw new SignatureError(
      'wrong-key',
      `${image} is refused: it is signed, but not by the key ${id} (${candidates.length} signature${candidates.length === 1 ? '' : 's'}, none verifies with it).`,
      details,
      [
        "Verify with the public key that matches the signing key (signing.publicKey or --key), or sign it with this project's key.",
      ],
    )
  }
  throw new SignatureError(
    'unsigned',
    `${image} is not signed: ${findings.map((f) => f.reason).join('; ')}.`,
    details,
    signHint,
  )
}

async function checkBundle(
  client: RegistryClient,
  c: VerifyTarget & {index: number; source: string; manifestDigest: string; publicKey: KeyObject; hint: string},
): Promise<LayerFinding & {dockerReference?: string}> {
  const at = {layer: c.index, format: 'bundle' as const, source: c.source}
  const what = `bundle ${c.manifestDigest.slice(7, 19)}`
  const manifest = await client.getManifest(c.repository, c.manifestDigest, MEDIA_TYPES.ociManifest)
  if (!manifest) return {...at, check: 'unsigned', reason: `${what}: the referrer manifest is listed but missing`}
  const m = manifest.json as unknown as ReferrerManifest
  const annotated = m.annotations?.[BUNDLE_PREDICATE_ANNOTATION]
  // An attestation (cosign's index entries carry no annotations; the manifest does): not a signature, whoever signed it.
  if (annotated !== undefined && annotated !== COSIGN_SIGN_PREDICATE)
    return {...at, check: 'unsigned', reason: `${what}: a ${annotated} attestation, not a signature`}
  if (m.subject?.digest !== undefined && m.subject.digest !== c.digest) {
    return {...at, check: 'other-digest', reason: `${what}: a referrer of another image, for ${m.subject.digest}`}
  }
  const layer = (m.layers ?? []).find((l) => l.mediaType === BUNDLE_MEDIA_TYPE)
  if (!layer) return {...at, check: 'unsigned', reason: `${what}: no ${BUNDLE_MEDIA_TYPE} layer`}
  const blob = await client.getBlob(c.repository, layer.digest)
  if (sha256Digest(blob) !== layer.digest)
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what}: the bundle blob does not hash to its descriptor's digest ${layer.digest}`,
    }
  let parsed: ParsedBundle
  try {
    parsed = parseBundle(blob)
  } catch (error) {
    return {...at, check: 'tampered-payload', reason: `${what}: ${(error as Error).message}`}
  }
  if (!envelopeVerifies(parsed, c.publicKey)) {
    if (parsed.hint && parsed.hint !== c.hint)
      return {...at, check: 'wrong-key', reason: `${what} was signed with another key (hint ${parsed.hint})`}
    if (parsed.hint === c.hint)
      return {
        ...at,
        check: 'tampered-payload',
        reason: `${what} was signed with this key, but its statement no longer matches the signature`,
      }
    try {
      parseStatement(parsed.payloadType, parsed.payload)
    } catch (error) {
      return {
        ...at,
        check: 'tampered-payload',
        reason: `${what}: the signature does not verify and the statement is malformed (${(error as Error).message})`,
      }
    }
    return {...at, check: 'wrong-key', reason: `${what}: the signature does not verify with this key`}
  }
  let statement
  try {
    statement = parseStatement(parsed.payloadType, parsed.payload)
  } catch (error) {
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what}: the signed content is not an in-toto statement (${(error as Error).message})`,
    }
  }
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE)
    return {...at, check: 'unsigned', reason: `${what}: a ${statement.predicateType} attestation, not a signature`}
  const [algorithm, hex] = c.digest.split(':')
  const mine = statement.subjects.filter((s) => s.digest[algorithm] === hex)
  if (mine.length === 0) {
    const other = statement.subjects[0]?.digest?.[algorithm]
    return {
      ...at,
      check: 'other-digest',
      reason: `${what}: a valid signature, but for ${algorithm}:${other ?? '(no sha256)'}`,
    }
  }
  const named = mine.find((s) => s.name !== undefined)
  if (named && !mine.some((s) => s.name !== undefined && sameRepository(s.name, c.registry, c.repository))) {
    return {
      ...at,
      check: 'other-repository',
      reason: `${what}: a valid signature of this digest, but made for ${named.name}`,
      dockerReference: named.name,
    }
  }
  return {...at, check: 'ok', reason: `${what} verified`, dockerReference: named?.name}
}

async function checkLegacyLayer(
  client: RegistryClient,
  c: VerifyTarget & {index: number; layer: SignatureManifest['layers'][number]; publicKey: KeyObject; id: string},
): Promise<LayerFinding & {dockerReference?: string}> {
  const {layer} = c
  const at = {
    layer: c.index,
    format: 'legacy' as const,
    source: `${c.registry}/${c.repository}:${signatureTag(c.digest)}`,
  }
  const what = `.sig layer ${c.index}`
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION]
  if (!signature) return {...at, check: 'unsigned', reason: `${what} has no ${SIGNATURE_ANNOTATION} annotation`}
  const payload = await client.getBlob(c.repository, layer.digest)
  if (sha256Digest(payload) !== layer.digest)
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what}: the payload blob does not hash to its descriptor's digest ${layer.digest}`,
    }
  let ok: boolean
  try {
    ok = cryptoVerify('sha256', payload, c.publicKey, Buffer.from(signature, 'base64'))
  } catch {
    ok = false
  }
  if (!ok) {
    const claimed = layer.annotations?.[KEY_ID_ANNOTATION]
    if (claimed === c.id)
      return {
        ...at,
        check: 'tampered-payload',
        reason: `${what} was signed with this key, but its payload no longer matches the signature`,
      }
    if (claimed) return {...at, check: 'wrong-key', reason: `${what} was signed with another key (${claimed})`}
    try {
      parseSimpleSigning(payload)
    } catch (error) {
      return {
        ...at,
        check: 'tampered-payload',
        reason: `${what}: the signature does not verify and the payload is malformed (${(error as Error).message})`,
      }
    }
    return {...at, check: 'wrong-key', reason: `${what}: the signature does not verify with key ${c.id}`}
  }
  let parsed
  try {
    parsed = parseSimpleSigning(payload)
  } catch (error) {
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what}: the signed payload is not a cosign simple-signing document (${(error as Error).message})`,
    }
  }
  if (parsed.digest !== c.digest)
    return {...at, check: 'other-digest', reason: `${what}: a valid signature, but for ${parsed.digest}`}
  if (!sameRepository(parsed.dockerReference, c.registry, c.repository)) {
    return {
      ...at,
      check: 'other-repository',
      reason: `${what}: a valid signature of this digest, but made for ${parsed.dockerReference}`,
      dockerReference: parsed.dockerReference,
    }
  }
  return {...at, check: 'ok', reason: `${what} verified`, dockerReference: parsed.dockerReference}
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
 * The image reference's registry client, digest (a tag resolved, with a warning) and the key: what
 * verifying one image by reference needs. NOT_FOUND when the image is not in the registry.
 */
export async function resolveVerifyTarget(
  options: {image: string; publicKey: KeyObject | string; insecure?: boolean},
  ctx: RunContext,
): Promise<{target: VerifyTarget; key: KeyObject; client: RegistryClient}> {
  const ref = parseReference(options.image)
  const key = typeof options.publicKey === 'string' ? await loadPublicKey(options.publicKey) : options.publicKey
  const client = await registryClient(ref.registry, {insecure: options.insecure, signal: ctx.signal})
  let digest = ref.digest
  if (!digest) {
    const head = await client.headManifest(ref.repository, ref.tag ?? 'latest')
    if (!head)
      throw new RetailOpsError('NOT_FOUND', `${options.image} does not exist in the registry.`, {
        details: {image: options.image},
      })
    digest = head.digest
    ctx.out.warn(`${options.image} is a tag; verifying the digest it points to now (${digest}). Deploy by digest.`)
  } else if (!(await client.headManifest(ref.repository, digest))) {
    throw new RetailOpsError('NOT_FOUND', `${options.image} does not exist in the registry.`, {
      details: {image: options.image},
    })
  }
  return {target: {registry: ref.registry, repository: ref.repository, digest}, key, client}
}

/**
 * The check deploy runs before it applies anything: throws SignatureError (exit 9) unless a
 * signature by the key verifies for exactly this digest.
 */
export async function verifyImage(options: VerifyImageOptions, ctx: RunContext): Promise<VerifiedImage> {
  const {target, key, client} = await resolveVerifyTarget(options, ctx)
  const verified = await verifySignatures(target, key, client)
  ctx.out.debug(
    `${verified.image}: ${verified.format} signature ${verified.verifiedLayer + 1}/${verified.signatures} verified with ${verified.keyId}`,
  )
  return verified
}
