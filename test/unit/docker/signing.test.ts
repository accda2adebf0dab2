import {generateKeyPairSync, verify} from 'node:crypto'
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {
  decryptPrivateKey,
  encryptPrivateKey,
  generateKeyPair,
  keyId,
  parsePublicKey,
  passphrase,
  SIGSTORE_PEM_LABEL,
  writeKeyPair,
} from '../../../src/signing/keys.js'
import {parseSimpleSigning, signatureTag, simpleSigningPayload} from '../../../src/signing/payload.js'
import {signatureConfig, signPayload} from '../../../src/signing/sign.js'

const D = `sha256:${'ab'.repeat(32)}`

describe('simple-signing payload', () => {
  it('is byte-for-byte what cosign signs without annotations', () => {
    expect(simpleSigningPayload('127.0.0.1:5000/shop/catalog', D).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/shop/catalog"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`,
    )
    expect(JSON.parse(simpleSigningPayload('r/x', D, {team: 'checkout'}).toString()).optional).toEqual({
      team: 'checkout',
    })
  })

  it('parses strictly', () => {
    expect(parseSimpleSigning(simpleSigningPayload('r/x', D))).toEqual({
      dockerReference: 'r/x',
      digest: D,
      optional: null,
    })
    const bad = (o: unknown) => () => parseSimpleSigning(Buffer.from(JSON.stringify(o)))
    expect(
      bad({
        critical: {
          identity: {'docker-reference': 'x'},
          image: {'docker-manifest-digest': D},
          type: 'cosign container image signature',
        },
      }),
    ).toThrow(/keys/)
    expect(
      bad({
        critical: {
          identity: {'docker-reference': 'x'},
          image: {'Docker-manifest-digest': D},
          type: 'cosign container image signature',
        },
        optional: null,
      }),
    ).toThrow(/docker-manifest-digest/)
    expect(
      bad({
        critical: {identity: {'docker-reference': 'x'}, image: {'docker-manifest-digest': D}, type: 'other'},
        optional: null,
      }),
    ).toThrow(/type/)
    expect(() => parseSimpleSigning(Buffer.from('not json'))).toThrow(/not JSON/)
  })

  it('puts signatures at sha256-<hex>.sig', () => {
    expect(signatureTag(D)).toBe(`sha256-${'ab'.repeat(32)}.sig`)
  })

  it('writes a config whose diff_ids are the payload digests', () => {
    expect(JSON.parse(signatureConfig([{mediaType: 'x', size: 1, digest: D}]).toString()).rootfs).toEqual({
      type: 'layers',
      diff_ids: [D],
    })
  })
})

describe('cosign key format', () => {
  it('round-trips: generate, decrypt with the passphrase, sign, verify with the public key', () => {
    const pair = generateKeyPair('correct horse')
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/)
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    const body = JSON.parse(Buffer.from(pair.privateKeyPem.split('\n').slice(1, -2).join(''), 'base64').toString())
    expect(body.kdf).toMatchObject({name: 'scrypt', params: {N: 32768, r: 8, p: 1}})
    expect(Buffer.from(body.kdf.salt, 'base64')).toHaveLength(32)
    expect(body.cipher.name).toBe('nacl/secretbox')
    expect(Buffer.from(body.cipher.nonce, 'base64')).toHaveLength(24)

    const key = decryptPrivateKey(pair.privateKeyPem, 'correct horse')
    const pub = parsePublicKey(pair.publicKeyPem)
    const payload = simpleSigningPayload('r/x', D)
    const sig = signPayload(payload, key)
    expect(verify('sha256', payload, pub, Buffer.from(sig, 'base64'))).toBe(true)
    expect(keyId(key)).toBe(keyId(pub))
  })

  it('refuses a wrong passphrase with PERMISSION', () => {
    const pair = generateKeyPair('right')
    expect(() => decryptPrivateKey(pair.privateKeyPem, 'wrong', 'cosign.key')).toThrow(
      expect.objectContaining({
        exit: 'PERMISSION',
        message: 'Wrong passphrase for cosign.key: it could not be decrypted.',
      }),
    )
  })

  it('reads the older COSIGN label and N=65536, rejects other KDF parameters and non-P-256 keys', () => {
    const {privateKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
    const der = privateKey.export({format: 'der', type: 'pkcs8'})
    const legacy = encryptPrivateKey(der, 'pw', 'ENCRYPTED COSIGN PRIVATE KEY')
    expect(keyId(decryptPrivateKey(legacy, 'pw'))).toBe(keyId(privateKey))

    const tweak = (pem: string, fn: (o: {kdf: {params: {N: number}}}) => void) => {
      const lines = pem.trim().split('\n')
      const o = JSON.parse(Buffer.from(lines.slice(1, -1).join(''), 'base64').toString())
      fn(o)
      return `${lines[0]}\n${Buffer.from(JSON.stringify(o)).toString('base64')}\n${lines.at(-1)}\n`
    }
    expect(() =>
      decryptPrivateKey(
        tweak(legacy, (o) => (o.kdf.params.N = 1024)),
        'pw',
      ),
    ).toThrow(/unsupported scrypt parameters/)

    const rsa = generateKeyPairSync('rsa', {modulusLength: 2048}).privateKey.export({format: 'der', type: 'pkcs8'})
    expect(() => decryptPrivateKey(encryptPrivateKey(rsa, 'pw'), 'pw')).toThrow(/ECDSA P-256/)
    expect(() =>
      decryptPrivateKey('-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n', 'pw'),
    ).toThrow(/not an encrypted cosign private key/)
    expect(() => parsePublicKey(legacy)).toThrow(/private key/)
    expect(SIGSTORE_PEM_LABEL).toBe('ENCRYPTED SIGSTORE PRIVATE KEY')
  })

  it('writes cosign.key with mode 600 and refuses to overwrite without force', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-keys-'))
    const keyPath = path.join(dir, 'cosign.key')
    const publicKeyPath = path.join(dir, 'cosign.pub')
    const first = await writeKeyPair({keyPath, publicKeyPath, passphrase: 'pw'})
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600)
    await expect(writeKeyPair({keyPath, publicKeyPath, passphrase: 'pw'})).rejects.toMatchObject({exit: 'USAGE'})
    const again = await writeKeyPair({keyPath, publicKeyPath, passphrase: 'pw', force: true})
    expect(again.overwritten).toBe(true)
    expect(again.keyId).not.toBe(first.keyId)
    expect(keyId(decryptPrivateKey(await readFile(keyPath, 'utf8'), 'pw'))).toBe(again.keyId)
    await rm(dir, {recursive: true, force: true})
  })

  it('takes the passphrase from the named variable, and never prompts when it may not', async () => {
    process.env.RO_TEST_PW = 'from-env'
    expect(await passphrase({env: 'RO_TEST_PW'}, 'k')).toBe('from-env')
    delete process.env.RO_TEST_PW
    await expect(passphrase({env: 'RO_TEST_PW'}, 'k')).rejects.toMatchObject({
      exit: 'USAGE',
      message: expect.stringContaining('RO_TEST_PW is not set'),
    })
    expect(await passphrase({env: 'RO_TEST_PW', prompt: async () => 'typed'}, 'k')).toBe('typed')
  })
})
