import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scryptSync,
} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import nacl from 'tweetnacl'

import {NotFoundError, PermissionError, RetailOpsError, UsageError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'
import {writeFileAtomic} from '../docker/files.js'
import {isEnvReference, readEnvReference} from '../config/secret-ref.js'

/**
 * cosign's key formats. The private key is PKCS#8 DER, encrypted as go-securesystemslib's
 * `encrypted` JSON (scrypt KDF, NaCl secretbox = XSalsa20-Poly1305), base64 in a PEM block
 * labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (what `cosign generate-key-pair` writes; the older
 * `ENCRYPTED COSIGN PRIVATE KEY` label is read too). The public key is a PEM `PUBLIC KEY` (SPKI).
 */

export const SIGSTORE_PEM_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY'
export const COSIGN_PEM_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY'

/** securesystemslib's legacy parameters: every cosign version decrypts them. */
export const SCRYPT_WRITE = {N: 32_768, r: 8, p: 1} as const
/** What current securesystemslib accepts on decryption (legacy, standard, OWASP). */
const SCRYPT_READ_N = new Set([32_768, 65_536, 131_072])

interface EncryptedKeyJson {
  kdf: {name: string; params: {N: number; r: number; p: number}; salt: string}
  cipher: {name: string; nonce: string}
  ciphertext: string
}

export interface KeyPairPem {
  privateKeyPem: string
  publicKeyPem: string
}

function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

function unpem(text: string): {label: string; der: Buffer} | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n-----END \1-----/.exec(text)
  if (!m) return undefined
  return {label: m[1], der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64')}
}

function scryptKey(passphrase: string, salt: Buffer, params: {N: number; r: number; p: number}): Buffer {
  // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is too small for N ≥ 32768.
  return scryptSync(Buffer.from(passphrase, 'utf8'), salt, 32, {
    ...params,
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  })
}

/** Encrypts PKCS#8 DER as cosign does and wraps it in the SIGSTORE PEM block. */
export function encryptPrivateKey(pkcs8: Buffer, passphrase: string, label = SIGSTORE_PEM_LABEL): string {
  const salt = randomBytes(32)
  const nonce = randomBytes(24)
  const key = scryptKey(passphrase, salt, SCRYPT_WRITE)
  const ciphertext = Buffer.from(nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(key)))
  const json: EncryptedKeyJson = {
    kdf: {name: 'scrypt', params: {...SCRYPT_WRITE}, salt: salt.toString('base64')},
    cipher: {name: 'nacl/secretbox', nonce: nonce.toString('base64')},
    ciphertext: ciphertext.toString('base64'),
  }
  return pem(label, Buffer.from(JSON.stringify(json)))
}

/** Decrypts a cosign private key: wrong passphrase → PERMISSION; anything malformed → USAGE. */
export function decryptPrivateKey(text: string, passphrase: string, source = 'the private key'): KeyObject {
  const block = unpem(text)
  if (!block)
    throw new UsageError(`${source} is not a PEM file.`, {
      nextSteps: ['Use a key written by `retailops keys generate` or `cosign generate-key-pair`.'],
    })
  if (block.label !== SIGSTORE_PEM_LABEL && block.label !== COSIGN_PEM_LABEL) {
    throw new UsageError(`${source} is a PEM "${block.label}", not an encrypted cosign private key.`, {
      nextSteps: [
        'Import it first with `cosign import-key-pair --key FILE`, or generate one with `retailops keys generate`.',
      ],
    })
  }
  let json: EncryptedKeyJson
  try {
    json = JSON.parse(block.der.toString('utf8')) as EncryptedKeyJson
  } catch {
    throw new UsageError(`${source} is damaged: its PEM body is not the encrypted-key JSON cosign writes.`)
  }
  const params = json.kdf?.params
  if (json.kdf?.name !== 'scrypt' || json.cipher?.name !== 'nacl/secretbox') {
    throw new UsageError(
      `${source} uses kdf "${json.kdf?.name}" / cipher "${json.cipher?.name}"; cosign keys use scrypt and nacl/secretbox.`,
    )
  }
  if (!params || !SCRYPT_READ_N.has(params.N) || params.r !== 8 || params.p !== 1) {
    throw new UsageError(
      `${source} has unsupported scrypt parameters (N=${params?.N}, r=${params?.r}, p=${params?.p}).`,
    )
  }
  const nonce = Buffer.from(json.cipher.nonce, 'base64')
  if (nonce.length !== 24) throw new UsageError(`${source} is damaged: the secretbox nonce is not 24 bytes.`)
  const key = scryptKey(passphrase, Buffer.from(json.kdf.salt, 'base64'), params)
  const opened = nacl.secretbox.open(
    new Uint8Array(Buffer.from(json.ciphertext, 'base64')),
    new Uint8Array(nonce),
    new Uint8Array(key),
  )
  if (!opened) {
    throw new PermissionError(`Wrong passphrase for ${source}: it could not be decrypted.`, {
      nextSteps: [
        'Set the passphrase variable named by signing.passwordEnv (default COSIGN_PASSWORD) to the passphrase the key was created with.',
      ],
      details: {key: source},
    })
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({key: Buffer.from(opened), format: 'der', type: 'pkcs8'})
  } catch (error) {
    throw new UsageError(
      `${source} decrypted, but its content is not a PKCS#8 private key: ${(error as Error).message}`,
    )
  }
  assertP256(privateKey, source)
  return privateKey
}

function assertP256(key: KeyObject, source: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const kind = key.asymmetricKeyType === 'ec' ? `EC ${key.asymmetricKeyDetails?.namedCurve}` : key.asymmetricKeyType
    throw new UsageError(
      `${source} is a ${kind} key; retailops signs and verifies with ECDSA P-256 keys (cosign's default).`,
      {
        nextSteps: ['Generate a P-256 pair with `retailops keys generate` or `cosign generate-key-pair`.'],
      },
    )
  }
}

/** A new ECDSA P-256 pair in cosign's formats. */
export function generateKeyPair(passphrase: string): KeyPairPem {
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
  const pkcs8 = privateKey.export({format: 'der', type: 'pkcs8'})
  return {privateKeyPem: encryptPrivateKey(pkcs8, passphrase), publicKeyPem: publicKeyPem(publicKey)}
}

export function publicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return pem('PUBLIC KEY', pub.export({format: 'der', type: 'spki'}))
}

/** sha256 of the SPKI DER: names a key in messages and annotations. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return `sha256:${createHash('sha256')
    .update(pub.export({format: 'der', type: 'spki'}))
    .digest('hex')}`
}

export function parsePublicKey(text: string, source = 'the public key'): KeyObject {
  const block = unpem(text)
  if (!block) throw new UsageError(`${source} is not a PEM file.`)
  if (block.label.includes('PRIVATE KEY')) {
    throw new UsageError(`${source} is a private key; verification takes the public key (cosign.pub).`)
  }
  let key: KeyObject
  try {
    key = createPublicKey({key: text, format: 'pem'})
  } catch (error) {
    throw new UsageError(`${source} is not a PEM public key: ${(error as Error).message}`)
  }
  assertP256(key, source)
  return key
}

/** A public key from a file, or from a variable (`env://NAME`, the PEM's contents). */
export async function loadPublicKey(file: string): Promise<KeyObject> {
  if (isEnvReference(file)) return parsePublicKey(readEnvReference(file, 'public key'), file)
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      throw new NotFoundError(`Public key ${file} does not exist.`, {
        nextSteps: ['Run `retailops keys generate`, or set signing.publicKey in retailops.yaml / pass --key.'],
      })
    }
    throw error
  })
  return parsePublicKey(text, file)
}

export interface PassphraseSource {
  /** The variable named by signing.passwordEnv. */
  env: string
  /** Asks a person (only when interactive); undefined means "may not prompt". */
  prompt?: (message: string) => Promise<string>
}

/** The passphrase from the environment variable, else a prompt when allowed, else USAGE naming the variable. */
export async function passphrase(source: PassphraseSource, purpose: string): Promise<string> {
  const value = process.env[source.env]
  if (value !== undefined) {
    registerSecret(value)
    return value
  }
  if (!source.prompt) {
    throw new UsageError(
      `No passphrase for ${purpose}: ${source.env} is not set and prompts are off (no TTY, CI, --json or --yes).`,
      {
        nextSteps: [`Set ${source.env} (signing.passwordEnv in retailops.yaml names the variable).`],
        details: {passwordEnv: source.env},
      },
    )
  }
  const answer = await source.prompt(`Passphrase for ${purpose}:`)
  registerSecret(answer)
  return answer
}

/**
 * The encrypted private key from a file, or from a variable holding its contents
 * (`env://COSIGN_PRIVATE_KEY`, as `cosign sign --key env://…` reads it); decrypted with the
 * passphrase from source.env (COSIGN_PASSWORD by default).
 */
export async function loadPrivateKey(file: string, source: PassphraseSource): Promise<KeyObject> {
  if (isEnvReference(file)) {
    const text = readEnvReference(file, 'signing key')
    return decryptPrivateKey(text, await passphrase(source, file), file)
  }
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') {
      throw new NotFoundError(`Signing key ${file} does not exist.`, {
        nextSteps: ['Run `retailops keys generate`, or set signing.key in retailops.yaml / pass --key.'],
      })
    }
    throw error
  })
  return decryptPrivateKey(text, await passphrase(source, file), file)
}

export interface GenerateKeysOptions {
  keyPath: string
  publicKeyPath: string
  passphrase: string
  force?: boolean
}

export interface GenerateKeysResult {
  key: string
  publicKey: string
  keyId: string
  overwritten: boolean
}

/** Refuses (USAGE) to replace an existing key file without force; returns the files that exist. */
export function checkKeyTargets(keyPath: string, publicKeyPath: string, force = false): string[] {
  const existing = [keyPath, publicKeyPath].filter((f) => existsSync(f))
  if (existing.length > 0 && !force) {
    throw new RetailOpsError(
      'USAGE',
      `${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}; not overwriting a signing key.`,
      {
        nextSteps: ['Images signed with the old key stop verifying with a new one. Pass --force to replace it anyway.'],
        details: {existing},
      },
    )
  }
  return existing
}

/** Writes cosign.key (0600) and cosign.pub; refuses to replace existing files without force. */
export async function writeKeyPair(options: GenerateKeysOptions): Promise<GenerateKeysResult> {
  const existing = checkKeyTargets(options.keyPath, options.publicKeyPath, options.force)
  const pair = generateKeyPair(options.passphrase)
  await writeFileAtomic(options.keyPath, pair.privateKeyPem, 0o600)
  await writeFileAtomic(options.publicKeyPath, pair.publicKeyPem, 0o644)
  return {
    key: path.resolve(options.keyPath),
    publicKey: path.resolve(options.publicKeyPath),
    keyId: keyId(createPublicKey(pair.publicKeyPem)),
    overwritten: existing.length > 0,
  }
}
