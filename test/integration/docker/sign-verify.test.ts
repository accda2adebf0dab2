import {createPublicKey} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {readArtifactsLock} from '../../../src/docker/artifacts.js'
import {buildImages} from '../../../src/docker/build.js'
import {pushImages} from '../../../src/docker/push.js'
import {registryClient, sha256Digest} from '../../../src/docker/registry.js'
import {signImages, verifyImages} from '../../../src/signing/images.js'
import {decryptPrivateKey, keyId, writeKeyPair} from '../../../src/signing/keys.js'
import {signatureTag, simpleSigningPayload} from '../../../src/signing/payload.js'
import {signatureConfig, type SignatureManifest} from '../../../src/signing/sign.js'
import {verifyImage} from '../../../src/signing/verify.js'
import {BASE_IMAGE, COSIGN, REGISTRY, testProject, type TestProject} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'

const PASSWORD = 'retailops-test-passphrase'
const cosignEnv = {
  COSIGN_PASSWORD: PASSWORD,
  COSIGN_YES: 'true',
  COSIGN_EXPERIMENTAL: '0',
  TUF_ROOT: '/tmp/retailops-cosign-tuf',
}

describe('signatures: retailops and the real cosign, both ways, and every refusal', () => {
  let p: TestProject
  let lock: Awaited<ReturnType<typeof readArtifactsLock>>['artifacts']
  const image = (s: string) => lock[s].image

  beforeAll(async () => {
    const services = Object.fromEntries(
      ['alpha', 'beta', 'gamma', 'delta', 'epsilon'].map((s) => [s, {context: s, dockerfile: 'Dockerfile'}]),
    )
    const files = Object.fromEntries(
      Object.keys(services).flatMap((s) => [
        [`${s}/Dockerfile`, 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY id.txt /id.txt\n'],
        [`${s}/id.txt`, `${s}\n`],
      ]),
    )
    p = await testProject(services, files)
    await p.write({'.retailops/.keep': ''})
    process.env.COSIGN_PASSWORD = PASSWORD
    const project = await p.project()
    const built = await buildImages({project, baseImage: BASE_IMAGE}, testContext())
    expect(built.failed).toEqual([])
    const pushed = await pushImages({project}, testContext())
    expect(pushed.failed).toEqual([])
    lock = (await readArtifactsLock(p.dir)).artifacts
    // The project's key pair, made by retailops (signing.key / signing.publicKey defaults).
    await writeKeyPair({
      keyPath: path.join(p.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(p.dir, '.retailops/cosign.pub'),
      passphrase: PASSWORD,
    })
    // A pair made by cosign itself.
    await execa(COSIGN, ['generate-key-pair', '--output-key-prefix', 'cosign-made'], {cwd: p.dir, env: cosignEnv})
  })

  afterAll(async () => {
    delete process.env.COSIGN_PASSWORD
    await p?.cleanup()
  })

  it('retailops signs; `cosign verify --key` (a key retailops generated) accepts it', async () => {
    const project = await p.project()
    const signed = await signImages(
      {project, targets: ['alpha'], format: 'legacy', passphrase: {env: 'COSIGN_PASSWORD'}},
      testContext(),
    )
    expect(signed.images[0]).toMatchObject({
      image: image('alpha'),
      signature: `${REGISTRY}/${p.name}/alpha:${signatureTag(lock.alpha.digest)}`,
      signatures: 1,
      added: true,
    })
    const r = await execa(
      COSIGN,
      [
        'verify',
        '--key',
        '.retailops/cosign.pub',
        '--insecure-ignore-tlog',
        '--allow-insecure-registry',
        image('alpha'),
      ],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
    expect(r.stderr).toContain('The signatures were verified against the specified public key')
    expect(r.exitCode).toBe(0)
    const out = JSON.parse(r.stdout) as {critical: {image: {'docker-manifest-digest': string}}}[]
    expect(out[0].critical.image['docker-manifest-digest']).toBe(lock.alpha.digest)
    // And retailops' own verifier agrees.
    const v = await verifyImages({project, targets: ['alpha']}, testContext())
    expect(v.images[0].image).toBe(image('alpha'))
  })

  it('signing again appends to the .sig manifest (as cosign does) instead of replacing it; an identical signature is not added twice', async () => {
    const project = await p.project()
    const again = await signImages(
      {project, targets: ['alpha'], format: 'legacy', passphrase: {env: 'COSIGN_PASSWORD'}},
      testContext(),
    )
    expect(again.images[0]).toMatchObject({added: false, signatures: 1})
    // Another key (cosign's pair, loaded from cosign's encrypted format) adds a second layer.
    const other = await signImages(
      {
        project,
        targets: ['alpha'],
        format: 'legacy',
        key: path.join(p.dir, 'cosign-made.key'),
        passphrase: {env: 'COSIGN_PASSWORD'},
      },
      testContext(),
    )
    expect(other.images[0]).toMatchObject({added: true, signatures: 2})
    for (const pub of ['.retailops/cosign.pub', 'cosign-made.pub']) {
      const r = await execa(
        COSIGN,
        ['verify', '--key', pub, '--insecure-ignore-tlog', '--allow-insecure-registry', image('alpha')],
        {cwd: p.dir, env: cosignEnv, reject: false},
      )
      expect(r.exitCode, r.stderr).toBe(0)
    }
  })

  it("`cosign sign --key` with a cosign-generated key is accepted by retailops verify; retailops loads cosign's encrypted key", async () => {
    const pem = await readFile(path.join(p.dir, 'cosign-made.key'), 'utf8')
    expect(pem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/)
    const key = decryptPrivateKey(pem, PASSWORD)
    expect(keyId(key)).toBe(keyId(createPublicKey(await readFile(path.join(p.dir, 'cosign-made.pub'), 'utf8'))))
    const r = await execa(
      COSIGN,
      ['sign', '--key', 'cosign-made.key', '--tlog-upload=false', '--allow-insecure-registry', image('beta')],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
    expect(r.exitCode, r.stderr).toBe(0)
    const v = await verifyImage({image: image('beta'), publicKey: path.join(p.dir, 'cosign-made.pub')}, testContext())
    expect(v).toMatchObject({image: image('beta'), digest: lock.beta.digest, signatures: 1})
  })

  it('refuses an unsigned image (SIGNATURE, check unsigned)', async () => {
    await expect(verifyImages({project: await p.project(), targets: ['gamma']}, testContext())).rejects.toMatchObject({
      exit: 'SIGNATURE',
      message: `${image('gamma')} is not signed: no signature bundle among its referrers (${REGISTRY}/${p.name}/gamma:${lock.gamma.digest.replace(':', '-')}) and no signature at ${REGISTRY}/${p.name}/gamma:${signatureTag(lock.gamma.digest)}.`,
      details: expect.objectContaining({check: 'unsigned'}),
    })
  })

  it('refuses a signature by another key (check wrong-key), for retailops and cosign signatures alike', async () => {
    // beta carries only cosign-made's signature; the project's key did not sign it.
    await expect(verifyImages({project: await p.project(), targets: ['beta']}, testContext())).rejects.toMatchObject({
      exit: 'SIGNATURE',
      details: expect.objectContaining({check: 'wrong-key'}),
      message: expect.stringContaining('is signed, but not by the key'),
    })
    const project = await p.project()
    await signImages(
      {
        project,
        targets: ['delta'],
        format: 'legacy',
        key: path.join(p.dir, 'cosign-made.key'),
        passphrase: {env: 'COSIGN_PASSWORD'},
      },
      testContext(),
    )
    await expect(
      verifyImage({image: image('delta'), publicKey: path.join(p.dir, '.retailops/cosign.pub')}, testContext()),
    ).rejects.toMatchObject({details: expect.objectContaining({check: 'wrong-key'})})
  })

  it('refuses a payload changed after signing (check tampered-payload); cosign refuses it too', async () => {
    const project = await p.project()
    await signImages(
      {project, targets: ['gamma'], format: 'legacy', passphrase: {env: 'COSIGN_PASSWORD'}},
      testContext(),
    )
    const client = await registryClient(REGISTRY)
    const repo = `${p.name}/gamma`
    const tag = signatureTag(lock.gamma.digest)
    const manifest = (await client.getManifest(repo, tag))!.json as unknown as SignatureManifest
    // Keep the signature annotation, change what it signed (optional claims added).
    const forged = simpleSigningPayload(`${REGISTRY}/${repo}`, lock.gamma.digest, {approved: 'yes'})
    const up = await client.uploadBlob(repo, forged)
    manifest.layers[0] = {...manifest.layers[0], digest: up.digest, size: up.size}
    const config = await client.uploadBlob(repo, signatureConfig(manifest.layers))
    manifest.config = {...manifest.config, digest: config.digest, size: config.size}
    await client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), manifest.mediaType!)
    await expect(verifyImages({project, targets: ['gamma']}, testContext())).rejects.toMatchObject({
      exit: 'SIGNATURE',
      details: expect.objectContaining({check: 'tampered-payload'}),
      message: expect.stringContaining('payload was changed after signing'),
    })
    const r = await execa(
      COSIGN,
      [
        'verify',
        '--key',
        '.retailops/cosign.pub',
        '--insecure-ignore-tlog',
        '--allow-insecure-registry',
        image('gamma'),
      ],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
    expect(r.exitCode).not.toBe(0)
  })

  it('refuses a valid signature copied from another image (check other-digest)', async () => {
    const client = await registryClient(REGISTRY)
    const from = `${p.name}/alpha`
    const to = `${p.name}/epsilon`
    const manifest = (await client.getManifest(from, signatureTag(lock.alpha.digest)))!
      .json as unknown as SignatureManifest
    for (const layer of manifest.layers) {
      const blob = await client.getBlob(from, layer.digest)
      expect(sha256Digest(blob)).toBe(layer.digest)
      await client.uploadBlob(to, blob)
    }
    await client.uploadBlob(to, signatureConfig(manifest.layers))
    await client.putManifest(
      to,
      signatureTag(lock.epsilon.digest),
      Buffer.from(JSON.stringify(manifest)),
      manifest.mediaType!,
    )
    await expect(verifyImages({project: await p.project(), targets: ['epsilon']}, testContext())).rejects.toMatchObject(
      {
        exit: 'SIGNATURE',
        details: expect.objectContaining({check: 'other-digest', signedDigest: lock.alpha.digest}),
        message: expect.stringContaining(`made for another image (${lock.alpha.digest})`),
      },
    )
  })

  it('the CLI: verify exits 9 with details.check in --json; sign with a wrong passphrase exits 6 and writes nothing', async () => {
    const run = (args: string[], env: Record<string, string> = {}) => runCli(args, {cwd: p.dir, env})
    const verified = await run(['verify', 'alpha', '--json'])
    expect(verified.exitCode, verified.stderr).toBe(0)
    expect(JSON.parse(verified.stdout).result.images[0].image).toBe(image('alpha'))

    const refused = await run(['verify', 'gamma', '--json'])
    expect(refused.exitCode).toBe(9)
    expect(JSON.parse(refused.stdout).error).toMatchObject({code: 'SIGNATURE', details: {check: 'tampered-payload'}})

    const client = await registryClient(REGISTRY)
    const before = await client.headManifest(`${p.name}/epsilon`, signatureTag(lock.epsilon.digest))
    const wrong = await run(['sign', 'epsilon', '--json'], {COSIGN_PASSWORD: 'not the passphrase'})
    expect(wrong.exitCode).toBe(6)
    expect(JSON.parse(wrong.stdout).error.message).toContain('Wrong passphrase')
    expect((await client.headManifest(`${p.name}/epsilon`, signatureTag(lock.epsilon.digest)))!.digest).toBe(
      before!.digest,
    )

    const noPassword = await run(['sign', 'epsilon', '--json'], {COSIGN_PASSWORD: ''})
    expect(noPassword.exitCode).toBe(6)
  })
})
