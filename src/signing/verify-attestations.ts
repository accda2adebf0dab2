import type {KeyObject} from 'node:crypto'

import {MEDIA_TYPES, type RegistryClient, sha256Digest} from '../docker/registry.js'
import {RetailOpsError, UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {
  attestationTag,
  DSSE_MEDIA_TYPE,
  isSignaturePredicate,
  LEGACY_PREDICATE_ANNOTATION,
  type PredicateName,
  PREDICATE_TYPES,
} from './attest.js'
import {
  BUNDLE_MEDIA_TYPE,
  envelopeVerifies,
  type ParsedBundle,
  parseBundle,
  parseEnvelope,
  type ParsedStatement,
  parseStatement,
  publicKeyHint,
} from './bundle.js'
import {keyId} from './keys.js'
import {KEY_ID_ANNOTATION, sameRepository} from './payload.js'
import {findReferrers, type ReferrerManifest} from './referrers.js'
import {BUNDLE_PREDICATE_ANNOTATION, type SignatureFormat, type SignatureManifest} from './sign.js'
import {resolveVerifyTarget, type VerifyTarget} from './verify.js'

/** Which check refused an attestation. */
export type AttestationCheck = 'missing' | 'wrong-key' | 'tampered-payload' | 'other-digest' | 'other-repository'

/** A refused image: exit code ATTESTATION (16); `details.check` and `details.predicateType` say which. */
export class AttestationError extends RetailOpsError {
  readonly check: AttestationCheck
  readonly predicateType?: string

  constructor(
    check: AttestationCheck,
    predicateType: string | undefined,
    message: string,
    details: Record<string, unknown>,
    nextSteps: string[],
  ) {
    super('ATTESTATION', message, {details: {check, predicateType, ...details}, nextSteps})
    this.check = check
    this.predicateType = predicateType
  }
}

/** What was found about one attestation (verified or not). */
export interface AttestationFinding {
  /** Its index among all found (bundles first, then `.att` layers). */
  index: number
  format: SignatureFormat
  /** A referrer manifest (`registry/repo@sha256:…`) or the `.att` tag. */
  source: string
  /** The signed statement's predicate type when it verified; else what the annotations claim, if anything. */
  predicateType?: string
  check: AttestationCheck | 'ok'
  reason: string
}

export interface VerifiedAttestation {
  predicateType: string
  format: SignatureFormat
  source: string
  /** The in-toto statement type (`https://in-toto.io/Statement/v1`, or v0.1 as cosign writes). */
  statementType: string
  /** The repository the subject names (cosign and retailops both name one). */
  subjectName?: string
  predicate: unknown
}

export interface VerifiedAttestations {
  image: string
  digest: string
  keyId: string
  /** Every attestation that verified with the key, for this digest and repository. */
  attestations: VerifiedAttestation[]
  /** The verified ones per predicate type. */
  byType: Record<string, VerifiedAttestation[]>
  /** Everything found, the refused ones with the check that refused them. */
  findings: AttestationFinding[]
}

/** A predicate type from cosign's `--type` name (cyclonedx, slsaprovenance1) or a URI as given. */
export function predicateTypeOf(type: string): string {
  if (type in PREDICATE_TYPES) return PREDICATE_TYPES[type as PredicateName]
  if (/^https?:\/\//.test(type)) return type
  throw new UsageError(
    `Unknown attestation type "${type}": use ${Object.keys(PREDICATE_TYPES).join(', ')} or a predicate type URI.`,
  )
}

type Checked = AttestationFinding & {verified?: VerifiedAttestation}

interface CheckContext extends VerifyTarget {
  client: RegistryClient
  publicKey: KeyObject
  hint: string
  id: string
}

/** The statement checks both formats share, once the envelope verified with the key. */
function checkStatement(
  c: CheckContext,
  at: Omit<AttestationFinding, 'check' | 'reason'>,
  what: string,
  parsed: ParsedBundle,
): Checked {
  let statement: ParsedStatement
  try {
    statement = parseStatement(parsed.payloadType, parsed.payload)
  } catch (error) {
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what}: the signed content is not an in-toto statement (${(error as Error).message})`,
    }
  }
  const typed = {...at, predicateType: statement.predicateType}
  const [algorithm, hex] = c.digest.split(':')
  const mine = statement.subjects.filter((s) => s.digest[algorithm] === hex)
  if (mine.length === 0) {
    const other = statement.subjects[0]?.digest?.[algorithm]
    return {
      ...typed,
      check: 'other-digest',
      reason: `${what}: a valid ${statement.predicateType} attestation, but for ${algorithm}:${other ?? '(no sha256)'}`,
    }
  }
  const named = mine.filter((s) => s.name !== undefined)
  const here = named.find((s) => sameRepository(s.name!, c.registry, c.repository))
  if (named.length > 0 && !here) {
    return {
      ...typed,
      check: 'other-repository',
      reason: `${what}: a valid ${statement.predicateType} attestation of this digest, but made for ${named[0].name}`,
    }
  }
  return {
    ...typed,
    check: 'ok',
    reason: `${what}: ${statement.predicateType} verified`,
    verified: {
      predicateType: statement.predicateType,
      format: at.format,
      source: at.source,
      statementType: statement.type,
      subjectName: here?.name,
      predicate: statement.predicate,
    },
  }
}

/** Signature over the envelope: wrong key or changed content, told apart by the key hint / key-id annotation when there is one. */
function checkEnvelope(
  c: CheckContext,
  at: Omit<AttestationFinding, 'check' | 'reason'>,
  what: string,
  parsed: ParsedBundle,
  claimedKey: {hint?: string; id?: string},
): Checked {
  if (envelopeVerifies(parsed, c.publicKey)) return checkStatement(c, at, what, parsed)
  const ours = claimedKey.hint === c.hint || claimedKey.id === c.id
  if (ours)
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what} was signed with this key, but its statement no longer matches the signature`,
    }
  if (claimedKey.hint || claimedKey.id)
    return {
      ...at,
      check: 'wrong-key',
      reason: `${what} was signed with another key (${claimedKey.hint ?? claimedKey.id})`,
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
  return {...at, check: 'wrong-key', reason: `${what}: the signature does not verify with key ${c.id}`}
}

async function checkBundleReferrer(
  c: CheckContext,
  index: number,
  manifestDigest: string,
): Promise<Checked | undefined> {
  const source = `${c.registry}/${c.repository}@${manifestDigest}`
  const what = `attestation bundle ${manifestDigest.slice(7, 19)}`
  const manifest = await c.client.getManifest(c.repository, manifestDigest, MEDIA_TYPES.ociManifest)
  const base = {index, format: 'bundle' as const, source}
  if (!manifest) return {...base, check: 'missing', reason: `${what}: the referrer manifest is listed but missing`}
  const m = manifest.json as unknown as ReferrerManifest
  const annotated = m.annotations?.[BUNDLE_PREDICATE_ANNOTATION]
  if (isSignaturePredicate(annotated)) return undefined // a signature, not an attestation
  const at = {...base, predicateType: annotated}
  if (m.subject?.digest !== undefined && m.subject.digest !== c.digest)
    return {...at, check: 'other-digest', reason: `${what}: a referrer of another image, ${m.subject.digest}`}
  const layer = (m.layers ?? []).find((l) => l.mediaType === BUNDLE_MEDIA_TYPE)
  if (!layer) return undefined
  const read = await readBlob(c, at, what, layer.digest, 'bundle', parseBundle)
  if ('check' in read) return read
  const parsed = read.parsed
  const checked = checkEnvelope(c, at, what, parsed, {hint: parsed.hint})
  // A bundle signature (cosign sign's statement) found without the annotation: not an attestation.
  if (isSignaturePredicate(checked.predicateType)) return undefined
  return checked
}

async function checkLegacyLayer(
  c: CheckContext,
  index: number,
  layer: SignatureManifest['layers'][number],
): Promise<Checked> {
  const source = `${c.registry}/${c.repository}:${attestationTag(c.digest)}`
  const at = {index, format: 'legacy' as const, source, predicateType: layer.annotations?.[LEGACY_PREDICATE_ANNOTATION]}
  const what = `.att layer ${layer.digest.slice(7, 19)}`
  const read = await readBlob(c, at, what, layer.digest, 'envelope', parseEnvelope)
  if ('check' in read) return read
  return checkEnvelope(c, at, what, read.parsed, {id: layer.annotations?.[KEY_ID_ANNOTATION]})
}

/** A bundle's or envelope's blob, checked against its descriptor's digest and parsed; or why it cannot be. */
async function readBlob(
  c: CheckContext,
  at: Omit<AttestationFinding, 'check' | 'reason'>,
  what: string,
  digest: string,
  kind: 'bundle' | 'envelope',
  parse: (blob: Buffer) => ParsedBundle,
): Promise<{parsed: ParsedBundle} | Checked> {
  const blob = await c.client.getBlob(c.repository, digest)
  if (sha256Digest(blob) !== digest)
    return {
      ...at,
      check: 'tampered-payload',
      reason: `${what}: the ${kind} blob does not hash to its descriptor's digest`,
    }
  try {
    return {parsed: parse(blob)}
  } catch (error) {
    return {...at, check: 'tampered-payload', reason: `${what}: ${(error as Error).message}`}
  }
}

/**
 * Every attestation of the digest, in both formats cosign writes (Sigstore bundles among the OCI
 * referrers, DSSE layers at `sha256-<hex>.att`), each checked with the key as `cosign
 * verify-attestation --key --insecure-ignore-tlog` does, plus the repository its subject names.
 * Never throws for a refused attestation: the findings say why.
 */
export async function inspectAttestations(
  target: VerifyTarget,
  publicKey: KeyObject,
  client: RegistryClient,
): Promise<VerifiedAttestations> {
  const {registry, repository, digest} = target
  const c: CheckContext = {...target, client, publicKey, hint: publicKeyHint(publicKey), id: keyId(publicKey)}
  const findings: Checked[] = []
  const referrers = await findReferrers(client, repository, digest)
  for (const d of referrers.descriptors) {
    if (d.artifactType !== undefined && d.artifactType !== BUNDLE_MEDIA_TYPE) continue
    if (isSignaturePredicate(d.annotations?.[BUNDLE_PREDICATE_ANNOTATION])) continue
    const checked = await checkBundleReferrer(c, findings.length, d.digest)
    if (checked) findings.push(checked)
  }
  const legacy = await client.getManifest(
    repository,
    attestationTag(digest),
    [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', '),
  )
  for (const layer of (legacy?.json as unknown as SignatureManifest | undefined)?.layers ?? []) {
    if (layer.mediaType !== DSSE_MEDIA_TYPE) continue
    findings.push(await checkLegacyLayer(c, findings.length, layer))
  }
  const attestations = findings.flatMap((f) => (f.verified ? [f.verified] : []))
  const byType: Record<string, VerifiedAttestation[]> = {}
  for (const a of attestations) (byType[a.predicateType] ??= []).push(a)
  return {
    image: `${registry}/${repository}@${digest}`,
    digest,
    keyId: c.id,
    attestations,
    byType,
    findings: findings.map(({verified: _v, ...f}) => f),
  }
}

const SEVERITY: AttestationCheck[] = ['other-repository', 'other-digest', 'tampered-payload', 'wrong-key', 'missing']

/**
 * Verifies the image's attestations with the key: for each of `types` (cosign names or predicate
 * URIs) at least one attestation must verify for exactly this digest (and the repository its
 * subject names). Throws AttestationError (exit 16) naming the type and the check otherwise:
 * missing, wrong-key, tampered-payload, other-digest or other-repository.
 */
export async function verifyAttestations(
  target: VerifyTarget,
  publicKey: KeyObject,
  client: RegistryClient,
  options: {types?: string[]} = {},
): Promise<VerifiedAttestations> {
  const wanted = (options.types ?? []).map(predicateTypeOf)
  const result = await inspectAttestations(target, publicKey, client)
  for (const type of wanted) {
    if (result.byType[type]?.length) continue
    // Findings of this type, and those whose type nobody can tell (not verified, no annotation).
    const related = result.findings.filter((f) => f.predicateType === type || f.predicateType === undefined)
    const check = SEVERITY.find((s) => related.some((f) => f.check === s)) ?? 'missing'
    const reasons = related.filter((f) => f.check === check).map((f) => f.reason)
    const details = {image: result.image, keyId: result.keyId, findings: result.findings}
    const attest = `Attach it: \`retailops sign SERVICE\` (after \`retailops build\`), or \`cosign attest --key cosign.key --type ${typeName(type)} --predicate FILE ${result.image}\`.`
    const messages: Record<AttestationCheck, [string, string[]]> = {
      missing: [
        `${result.image} has no ${type} attestation${result.findings.length > 0 ? ` (${result.findings.length} other attestation${result.findings.length === 1 ? '' : 's'} found)` : ''}.`,
        [attest],
      ],
      'wrong-key': [
        `${result.image} is refused: its ${type} attestation is not signed by the key ${result.keyId} (${reasons.join('; ')}).`,
        [
          "Verify with the public key that matches the signing key (signing.publicKey or --key), or attest with this project's key.",
          attest,
        ],
      ],
      'tampered-payload': [
        `${result.image} is refused: its ${type} attestation was changed after signing (${reasons.join('; ')}).`,
        ['Treat the registry content as tampered with; re-push from a trusted build and attest again.'],
      ],
      'other-digest': [
        `${result.image} is refused: its ${type} attestation was made for another image (${reasons.join('; ')}).`,
        ['An attestation copied from another image never counts. Attest this digest.', attest],
      ],
      'other-repository': [
        `${result.image} is refused: its ${type} attestation was made for another repository (${reasons.join('; ')}).`,
        ['Attest the image in the repository it is deployed from.', attest],
      ],
    }
    const [message, nextSteps] = messages[check]
    throw new AttestationError(check, type, message, details, nextSteps)
  }
  return result
}

function typeName(predicateType: string): string {
  return Object.entries(PREDICATE_TYPES).find(([, uri]) => uri === predicateType)?.[0] ?? predicateType
}

export interface VerifyImageAttestationsOptions {
  /** `registry/repo@sha256:…` (a tag is resolved to its digest, with a warning). */
  image: string
  publicKey: KeyObject | string
  types?: string[]
  insecure?: boolean
}

/** verifyAttestations for an image reference: the registry client made here. */
export async function verifyImageAttestations(
  options: VerifyImageAttestationsOptions,
  ctx: RunContext,
): Promise<VerifiedAttestations> {
  const {target, key, client} = await resolveVerifyTarget(options, ctx)
  return verifyAttestations(target, key, client, {types: options.types})
}
