import {createHash, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject} from 'node:crypto'

import {
  assertBundle,
  type Bundle,
  BUNDLE_V03_MEDIA_TYPE,
  bundleFromJSON,
  bundleToJSON,
  envelopeFromJSON,
  envelopeToJSON,
  type SerializedBundle,
  type SerializedEnvelope,
} from '@sigstore/bundle'
import {dsse} from '@sigstore/core'

/**
 * The signature format cosign v3 writes by default: an in-toto Statement (predicate
 * https://sigstore.dev/cosign/sign/v1, empty) in a DSSE envelope, in a Sigstore bundle v0.3,
 * key-based and offline (no certificate, no transparency-log entry, no timestamp). The bundle
 * and DSSE formats come from sigstore-js (@sigstore/bundle builds, serialises and validates the
 * bundle; @sigstore/core computes DSSE's pre-authentication encoding).
 */

export const BUNDLE_MEDIA_TYPE = BUNDLE_V03_MEDIA_TYPE
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1'
export const STATEMENT_TYPES = ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']

/** cosign's public-key hint: base64 of SHA-256 over the key's DER SubjectPublicKeyInfo. */
export function publicKeyHint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return createHash('sha256')
    .update(pub.export({format: 'der', type: 'spki'}))
    .digest('base64')
}

/**
 * The statement retailops signs: what cosign v3 signs, plus the subject's `name`, the repository
 * the signature is made for (cosign leaves it out and ignores it; retailops checks it when present,
 * so a signature copied to another repository does not count there).
 */
export function signatureStatement(dockerReference: string, digest: string): Buffer {
  const [algorithm, hex] = digest.split(':')
  return Buffer.from(
    JSON.stringify({
      _type: STATEMENT_TYPES[0],
      subject: [{name: dockerReference, digest: {[algorithm]: hex}}],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  )
}

/** Signs a statement as DSSE (ECDSA P-256 / SHA-256 over the PAE, DER) and wraps it in a v0.3 bundle, as JSON. */
export function signStatementBundle(statement: Buffer, privateKey: KeyObject): SerializedBundle {
  const signature = cryptoSign('sha256', dsse.preAuthEncoding(INTOTO_PAYLOAD_TYPE, statement), privateKey)
  return bundleToJSON(toBundle(statement, signature, publicKeyHint(privateKey)))
}

/** Signs a statement as a bare DSSE envelope (what cosign v2 stores in a `.att` layer), as JSON. */
export function signStatementEnvelope(statement: Buffer, privateKey: KeyObject): SerializedEnvelope {
  const signature = cryptoSign('sha256', dsse.preAuthEncoding(INTOTO_PAYLOAD_TYPE, statement), privateKey)
  return envelopeToJSON({
    payloadType: INTOTO_PAYLOAD_TYPE,
    payload: statement,
    signatures: [{keyid: '', sig: signature}],
  })
}

/** Parses a bare DSSE envelope (a cosign v2 `.att` layer); throws with the reason. */
export function parseEnvelope(bytes: Uint8Array): ParsedBundle {
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new Error('the DSSE envelope is not JSON')
  }
  let envelope
  try {
    envelope = envelopeFromJSON(json)
  } catch (error) {
    throw new Error(`not a DSSE envelope (${(error as Error).message})`, {cause: error})
  }
  if (!envelope.payloadType || envelope.signatures.length === 0) throw new Error('the DSSE envelope has no signature')
  return {
    payloadType: envelope.payloadType,
    payload: Buffer.from(envelope.payload),
    signatures: envelope.signatures.map((s) => Buffer.from(s.sig)),
  }
}

function toBundle(statement: Buffer, signature: Buffer, hint: string): Bundle {
  // What cosign v3 writes for a key: the hint in verificationMaterial, an empty keyid in the envelope.
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial: {
      content: {$case: 'publicKey', publicKey: {hint}},
      tlogEntries: [],
      timestampVerificationData: {rfc3161Timestamps: []},
    },
    content: {
      $case: 'dsseEnvelope',
      dsseEnvelope: {payloadType: INTOTO_PAYLOAD_TYPE, payload: statement, signatures: [{keyid: '', sig: signature}]},
    },
  }
}

export interface ParsedBundle {
  /** The bundle, when the envelope came in one. */
  bundle?: Bundle
  payloadType: string
  payload: Buffer
  signatures: Buffer[]
  /** verificationMaterial.publicKey.hint, when the bundle names a key. */
  hint?: string
}

/** Parses and validates a bundle (sigstore-js); throws with the reason. Only DSSE bundles are signatures retailops reads. */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new Error('the bundle is not JSON')
  }
  let bundle: Bundle
  try {
    bundle = bundleFromJSON(json)
    assertBundle(bundle)
  } catch (error) {
    throw new Error(`not a valid Sigstore bundle (${(error as Error).message})`, {cause: error})
  }
  if (bundle.content.$case !== 'dsseEnvelope')
    throw new Error(`the bundle holds a ${bundle.content.$case}, not a DSSE envelope`)
  const envelope = bundle.content.dsseEnvelope
  const material = bundle.verificationMaterial.content
  return {
    bundle,
    payloadType: envelope.payloadType,
    payload: Buffer.from(envelope.payload),
    signatures: envelope.signatures.map((s) => Buffer.from(s.sig)),
    hint: material.$case === 'publicKey' && material.publicKey.hint ? material.publicKey.hint : undefined,
  }
}

/** Whether some signature of the envelope verifies with the key over DSSE's PAE. */
export function envelopeVerifies(parsed: ParsedBundle, publicKey: KeyObject): boolean {
  const pae = dsse.preAuthEncoding(parsed.payloadType, parsed.payload)
  return parsed.signatures.some((sig) => {
    try {
      return cryptoVerify('sha256', pae, publicKey, sig)
    } catch {
      return false
    }
  })
}

export interface ParsedStatement {
  type: string
  predicateType: string
  subjects: {name?: string; digest: Record<string, string>}[]
  predicate: unknown
}

/** Parses an in-toto Statement (v1 or v0.1); throws with the reason. */
export function parseStatement(payloadType: string, payload: Buffer): ParsedStatement {
  if (payloadType !== INTOTO_PAYLOAD_TYPE)
    throw new Error(`the envelope's payloadType is ${payloadType}, not ${INTOTO_PAYLOAD_TYPE}`)
  let doc: {_type?: unknown; subject?: unknown; predicateType?: unknown; predicate?: unknown}
  try {
    doc = JSON.parse(payload.toString('utf8')) as typeof doc
  } catch {
    throw new Error('the statement is not JSON')
  }
  if (typeof doc !== 'object' || doc === null) throw new Error('the statement is not a JSON object')
  if (!STATEMENT_TYPES.includes(String(doc._type)))
    throw new Error(`_type is "${String(doc._type)}", not an in-toto Statement`)
  if (typeof doc.predicateType !== 'string') throw new Error('predicateType is missing')
  if (!Array.isArray(doc.subject) || doc.subject.length === 0) throw new Error('the statement has no subject')
  const subjects = doc.subject.map((s: {name?: unknown; digest?: unknown}) => {
    if (typeof s !== 'object' || s === null || typeof s.digest !== 'object' || s.digest === null)
      throw new Error('a subject has no digest')
    return {
      name: typeof s.name === 'string' && s.name !== '' ? s.name : undefined,
      digest: s.digest as Record<string, string>,
    }
  })
  return {type: String(doc._type), predicateType: doc.predicateType, subjects, predicate: doc.predicate}
}
