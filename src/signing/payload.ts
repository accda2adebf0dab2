import {parseReference} from '../docker/reference.js'

/**
 * cosign's simple-signing payload (sigstore/sigstore pkg/signature/payload): the signature covers
 * these exact bytes. Without annotations `optional` is null, and cosign marshals the keys in
 * this order, so the bytes equal what `cosign sign` would produce.
 */

export const SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
/** retailops' own hint (ignored by cosign): which key made the signature, to tell a foreign key from a changed payload. */
export const KEY_ID_ANNOTATION = 'io.retailops.signing.key-id'
export const SIGNATURE_TYPE = 'cosign container image signature'

export interface SimpleSigning {
  critical: {
    identity: {'docker-reference': string}
    image: {'docker-manifest-digest': string}
    type: string
  }
  optional: Record<string, unknown> | null
}

export function simpleSigningPayload(
  dockerReference: string,
  digest: string,
  optional: Record<string, string> | null = null,
): Buffer {
  const doc: SimpleSigning = {
    critical: {
      identity: {'docker-reference': dockerReference},
      image: {'docker-manifest-digest': digest},
      type: SIGNATURE_TYPE,
    },
    optional: optional && Object.keys(optional).length > 0 ? optional : null,
  }
  return Buffer.from(JSON.stringify(doc))
}

export interface ParsedPayload {
  dockerReference: string
  digest: string
  optional: Record<string, unknown> | null
}

/**
 * Strict parse, as containers/image does: exactly `critical` and `optional` at the top, exactly
 * `identity`, `image` and `type` in critical, the cosign type string. Throws with the reason.
 */
export function parseSimpleSigning(bytes: Uint8Array): ParsedPayload {
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new Error('the payload is not JSON')
  }
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  const exactly = (v: Record<string, unknown>, keys: string[], where: string) => {
    const got = Object.keys(v).sort()
    if (got.join(',') !== [...keys].sort().join(','))
      throw new Error(`${where} has keys ${got.join(', ') || '(none)'}; expected ${keys.join(', ')}`)
  }
  if (!obj(doc)) throw new Error('the payload is not a JSON object')
  exactly(doc, ['critical', 'optional'], 'the payload')
  const {critical, optional} = doc
  if (!obj(critical)) throw new Error('critical is not an object')
  exactly(critical, ['identity', 'image', 'type'], 'critical')
  if (critical.type !== SIGNATURE_TYPE)
    throw new Error(`critical.type is "${String(critical.type)}", not "${SIGNATURE_TYPE}"`)
  const {identity, image} = critical
  if (!obj(identity) || typeof identity['docker-reference'] !== 'string')
    throw new Error('critical.identity.docker-reference is missing')
  exactly(identity, ['docker-reference'], 'critical.identity')
  if (!obj(image) || typeof image['docker-manifest-digest'] !== 'string')
    throw new Error('critical.image.docker-manifest-digest is missing')
  exactly(image, ['docker-manifest-digest'], 'critical.image')
  if (optional !== null && !obj(optional)) throw new Error('optional is neither null nor an object')
  return {dockerReference: identity['docker-reference'], digest: image['docker-manifest-digest'], optional: optional}
}

/** Where cosign keeps an image's signatures: the tag `sha256-<hex>.sig` in the same repository. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`
}

/** Docker Hub's registry has several names; everything else compares as written. */
function canonicalRegistry(registry: string): string {
  return registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? 'docker.io' : registry
}

/**
 * Whether a payload's docker-reference (a repository, optionally with a tag or digest, as
 * containers/image may write it) names this registry and repository.
 */
export function sameRepository(dockerReference: string, registry: string, repository: string): boolean {
  let ref
  try {
    ref = parseReference(dockerReference)
  } catch {
    return false
  }
  return canonicalRegistry(ref.registry) === canonicalRegistry(registry) && ref.repository === repository
}
