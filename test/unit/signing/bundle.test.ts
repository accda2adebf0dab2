import {createPublicKey, generateKeyPairSync} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  envelopeVerifies,
  INTOTO_PAYLOAD_TYPE,
  parseBundle,
  parseStatement,
  publicKeyHint,
  signatureStatement,
  signStatementBundle,
} from '../../../src/signing/bundle.js'

const DIGEST = `sha256:${'ab'.repeat(32)}`
const keys = () => generateKeyPairSync('ec', {namedCurve: 'P-256'})

describe('Sigstore bundles (cosign v3 format) through sigstore-js', () => {
  it('signs a statement that names the digest and the repository, as a v0.3 DSSE bundle with the key hint', () => {
    const {privateKey, publicKey} = keys()
    const bundle = signStatementBundle(signatureStatement('127.0.0.1:5000/shop/checkout', DIGEST), privateKey)
    expect(bundle.mediaType).toBe(BUNDLE_MEDIA_TYPE)
    expect(bundle.verificationMaterial).toMatchObject({publicKey: {hint: publicKeyHint(publicKey)}})
    const parsed = parseBundle(Buffer.from(JSON.stringify(bundle)))
    expect(parsed.payloadType).toBe(INTOTO_PAYLOAD_TYPE)
    expect(envelopeVerifies(parsed, publicKey)).toBe(true)
    expect(parseStatement(parsed.payloadType, parsed.payload)).toEqual({
      type: 'https://in-toto.io/Statement/v1',
      predicateType: COSIGN_SIGN_PREDICATE,
      subjects: [{name: '127.0.0.1:5000/shop/checkout', digest: {sha256: 'ab'.repeat(32)}}],
      predicate: {},
    })
  })

  it('does not verify with another key, nor after the statement changed', () => {
    const {privateKey, publicKey} = keys()
    const bundle = signStatementBundle(signatureStatement('r/x', DIGEST), privateKey)
    expect(envelopeVerifies(parseBundle(Buffer.from(JSON.stringify(bundle))), keys().publicKey)).toBe(false)
    const changed = {
      ...bundle,
      dsseEnvelope: {
        ...bundle.dsseEnvelope!,
        payload: Buffer.from(signatureStatement('r/y', DIGEST)).toString('base64'),
      },
    }
    expect(envelopeVerifies(parseBundle(Buffer.from(JSON.stringify(changed))), publicKey)).toBe(false)
    expect(envelopeVerifies(parseBundle(Buffer.from(JSON.stringify(bundle))), createPublicKey(privateKey))).toBe(true)
  })

  it('rejects what is not a DSSE bundle or not an in-toto statement, naming why', () => {
    expect(() => parseBundle(Buffer.from('nope'))).toThrow(/not JSON/)
    expect(() => parseBundle(Buffer.from(JSON.stringify({mediaType: BUNDLE_MEDIA_TYPE})))).toThrow(
      /not a valid Sigstore bundle/,
    )
    expect(() => parseStatement('text/plain', Buffer.from('{}'))).toThrow(/payloadType/)
    expect(() =>
      parseStatement(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify({_type: 'x', subject: [], predicateType: 'p'}))),
    ).toThrow(/not an in-toto Statement/)
    expect(() =>
      parseStatement(
        INTOTO_PAYLOAD_TYPE,
        Buffer.from(JSON.stringify({_type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'p'})),
      ),
    ).toThrow(/no subject/)
  })
})
