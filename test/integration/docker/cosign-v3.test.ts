import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadConfig, type LoadedConfig} from '../../../src/config/load.js'
import {MEDIA_TYPES, type RegistryClient, registryClient, sha256Digest} from '../../../src/docker/registry.js'
import {BUNDLE_MEDIA_TYPE, COSIGN_SIGN_PREDICATE, INTOTO_PAYLOAD_TYPE} from '../../../src/signing/bundle.js'
import {signImages, verifyImages} from '../../../src/signing/images.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {signatureTag} from '../../../src/signing/payload.js'
import {OCI_EMPTY_DESCRIPTOR, referrersTag, type ReferrerManifest} from '../../../src/signing/referrers.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {pushMinimalImage} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'
import {randomName} from '../../support/names.js'

const PASSWORD = 'retailops-test-passphrase'
const env = sandboxEnv()
const REGISTRY = env.registry

interface Index {
  manifests: {mediaType: string; digest: string; size: number; artifactType?: string}[]
}

/**
 * Issue 16 item 1: cosign v3 (bundles as OCI 1.1 referrers; the sandbox registry, Debian's
 * distribution 2.8, has no referrers API, so the `sha256-<hex>` tag schema) and cosign v2 (the
 * legacy `.sig` tag), both directions, with the real binaries: every signature either cosign makes
 * with its defaults verifies in retailops, every signature retailops makes verifies in each cosign
 * that reads its format, and tampered, wrong-key, other-digest and other-repository signatures are
 * refused by retailops and by both cosigns alike.
 */
describe('cosign v3 and v2 both ways: Sigstore bundles as OCI referrers and the legacy .sig tag (sandbox registry)', () => {
  let dir: string
  let project: LoadedConfig
  let client: RegistryClient
  const name = randomName('t-cosign')
  const repo = (r: string) => `${name}/${r}`
  const digests: Record<string, string> = {}
  const image = (r: string) => `${REGISTRY}/${repo(r)}@${digests[r]}`
  const cosignEnv = {
    COSIGN_PASSWORD: PASSWORD,
    COSIGN_YES: 'true',
    TUF_ROOT: path.join(os.tmpdir(), 'retailops-cosign-tuf'),
    HOME: os.tmpdir(),
  }
  const registryFlags = ['--allow-http-registry', '--allow-insecure-registry']
  /** cosign v3 with its defaults for an offline key: no transparency log, no signing config. */
  const cosign3Sign = (key: string, img: string) =>
    execa(
      env.cosign3,
      ['sign', '--key', key, '--tlog-upload=false', '--use-signing-config=false', ...registryFlags, '-y', img],
      {cwd: dir, env: cosignEnv, reject: false},
    )
  const cosign3Verify = (pub: string, img: string) =>
    execa(env.cosign3, ['verify', '--key', pub, '--insecure-ignore-tlog', ...registryFlags, img], {
      cwd: dir,
      env: cosignEnv,
      reject: false,
    })
  const cosign2Sign = (key: string, img: string) =>
    execa(env.cosign, ['sign', '--key', key, '--tlog-upload=false', '--allow-insecure-registry', '-y', img], {
      cwd: dir,
      env: cosignEnv,
      reject: false,
    })
  /**
   * cosign v2.6 reads bundle referrers too, but then wants a trusted root; offline and key-based, an
   * empty one (written in beforeAll) serves, and keeps cosign from reaching for the public TUF CDN.
   */
  const cosign2Verify = (pub: string, img: string) =>
    execa(
      env.cosign,
      [
        'verify',
        '--key',
        pub,
        '--insecure-ignore-tlog',
        '--allow-insecure-registry',
        '--trusted-root',
        'empty-trusted-root.json',
        img,
      ],
      {cwd: dir, env: cosignEnv, reject: false},
    )
  const verify = (r: string, key = '.retailops/cosign.pub') =>
    verifyImages({project, targets: [image(r)], key: path.join(dir, key)}, testContext())
  const index = async (r: string) =>
    (await client.getManifest(repo(r), referrersTag(digests[r]), MEDIA_TYPES.ociIndex))?.json as unknown as
      Index | undefined

  beforeAll(async () => {
    expect(
      env.cosign3,
      'RETAILOPS_COSIGN3 is not set: `eval "$(bash scripts/sandbox.sh env)"` from a checkout whose sandbox.sh exports it (scripts/build-binaries.sh cosign3 builds it)',
    ).not.toBe('')
    dir = await mkdtemp(path.join(os.tmpdir(), 't-cosign-'))
    await writeFile(
      path.join(dir, 'empty-trusted-root.json'),
      JSON.stringify({mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1'}),
    )
    await writeFile(
      path.join(dir, 'retailops.yaml'),
      `project: ${name}\nregistry: {url: "${REGISTRY}", insecure: true}\nservices:\n  catalog: {tier: tolerant}\n`,
    )
    project = await loadConfig(path.join(dir, 'retailops.yaml'))
    await writeKeyPair({
      keyPath: path.join(dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(dir, '.retailops/cosign.pub'),
      passphrase: PASSWORD,
    })
    // Key pairs made by each cosign itself.
    expect(
      (
        await execa(env.cosign3, ['generate-key-pair', '--output-key-prefix', 'v3'], {
          cwd: dir,
          env: cosignEnv,
          reject: false,
        })
      ).exitCode,
    ).toBe(0)
    expect(
      (
        await execa(env.cosign, ['generate-key-pair', '--output-key-prefix', 'v2'], {
          cwd: dir,
          env: cosignEnv,
          reject: false,
        })
      ).exitCode,
    ).toBe(0)
    client = await registryClient(REGISTRY, {insecure: true})
    for (const r of [
      'v3signed',
      'v2signed',
      'ours',
      'ourslegacy',
      'both',
      'tampered',
      'wrongkey',
      'otherdigest',
      'source',
      'copy',
      'cli',
    ]) {
      digests[r] = await pushMinimalImage(client, repo(r), `${name}-${r}`)
    }
    process.env.COSIGN_PASSWORD = PASSWORD
  }, 120_000)

  afterAll(async () => {
    delete process.env.COSIGN_PASSWORD
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('the registry has no referrers API: cosign v3 writes a bundle referrer under the sha256-<hex> tag schema, as observed', async () => {
    const r = await cosign3Sign('v3.key', image('v3signed'))
    expect(r.exitCode, r.stderr).toBe(0)
    expect(await client.getReferrers(repo('v3signed'), digests.v3signed)).toBeUndefined()
    const idx = (await index('v3signed'))!
    expect(idx.manifests).toEqual([
      expect.objectContaining({mediaType: MEDIA_TYPES.ociManifest, artifactType: BUNDLE_MEDIA_TYPE}),
    ])
    const m = (await client.getManifest(repo('v3signed'), idx.manifests[0].digest))!.json as unknown as ReferrerManifest
    expect(m.config).toMatchObject(OCI_EMPTY_DESCRIPTOR)
    expect(m.layers).toEqual([expect.objectContaining({mediaType: BUNDLE_MEDIA_TYPE})])
    expect(m.subject?.digest).toBe(digests.v3signed)
    expect(m.annotations).toMatchObject({
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE,
    })
    const bundle = JSON.parse((await client.getBlob(repo('v3signed'), m.layers[0].digest)).toString()) as {
      dsseEnvelope: {payloadType: string; payload: string}
    }
    expect(bundle.dsseEnvelope.payloadType).toBe(INTOTO_PAYLOAD_TYPE)
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString()) as {
      predicateType: string
      subject: {name?: string; digest: {sha256: string}}[]
    }
    expect(statement.predicateType).toBe(COSIGN_SIGN_PREDICATE)
    expect(statement.subject[0]).toMatchObject({digest: {sha256: digests.v3signed.slice(7)}})
    expect(statement.subject[0].name).toBeUndefined()
    // No legacy .sig was written.
    expect(await client.headManifest(repo('v3signed'), signatureTag(digests.v3signed))).toBeUndefined()
  })

  it('retailops verifies what cosign v3 signed with its defaults (a bundle that names no repository)', async () => {
    const v = await verify('v3signed', 'v3.pub')
    expect(v.images[0]).toMatchObject({
      image: image('v3signed'),
      format: 'bundle',
      signatures: 1,
      repositoryBound: false,
    })
    expect(v.images[0].dockerReference).toBeUndefined()
    // …and refuses it with another key.
    await expect(verify('v3signed')).rejects.toMatchObject({exit: 'SIGNATURE', check: 'wrong-key'})
  })

  it('retailops verifies what cosign v2 signed with its defaults (the legacy .sig tag)', async () => {
    const r = await cosign2Sign('v2.key', image('v2signed'))
    expect(r.exitCode, r.stderr).toBe(0)
    expect(await client.headManifest(repo('v2signed'), signatureTag(digests.v2signed))).toBeDefined()
    const v = await verify('v2signed', 'v2.pub')
    expect(v.images[0]).toMatchObject({
      format: 'legacy',
      repositoryBound: true,
      dockerReference: `${REGISTRY}/${repo('v2signed')}`,
    })
  })

  it('retailops writes what cosign v3 writes by default; cosign v3 verifies it, and so does cosign v2 given a trusted root', async () => {
    const signed = await signImages(
      {project, targets: [image('ours')], passphrase: {env: 'COSIGN_PASSWORD'}},
      testContext(),
    )
    expect(signed.format).toBe('bundle')
    expect(signed.images[0]).toMatchObject({format: 'bundle', added: true, via: 'tag-schema', signatures: 1})
    // The same layout as cosign's, read back from the registry.
    const idx = (await index('ours'))!
    expect(idx.manifests).toEqual([
      expect.objectContaining({
        mediaType: MEDIA_TYPES.ociManifest,
        artifactType: BUNDLE_MEDIA_TYPE,
        digest: signed.images[0].signatureManifest,
      }),
    ])
    const m = (await client.getManifest(repo('ours'), idx.manifests[0].digest))!.json as unknown as ReferrerManifest
    expect(m).toMatchObject({
      artifactType: BUNDLE_MEDIA_TYPE,
      config: {...OCI_EMPTY_DESCRIPTOR, artifactType: BUNDLE_MEDIA_TYPE},
      subject: {digest: digests.ours, mediaType: MEDIA_TYPES.ociManifest},
    })
    expect(await client.headManifest(repo('ours'), signatureTag(digests.ours))).toBeUndefined()

    const v3 = await cosign3Verify('.retailops/cosign.pub', image('ours'))
    expect(v3.stderr).toContain('The signatures were verified against the specified public key')
    expect(v3.exitCode, v3.stderr).toBe(0)
    expect(
      (JSON.parse(v3.stdout) as {critical: {image: {'docker-manifest-digest': string}}}[])[0].critical.image[
        'docker-manifest-digest'
      ],
    ).toBe(digests.ours)
    const v2 = await cosign2Verify('.retailops/cosign.pub', image('ours'))
    expect(v2.exitCode, v2.stderr).toBe(0)
    expect(v2.stderr).toContain('The signatures were verified against the specified public key')
    // Signing again with the same key adds nothing.
    const again = await signImages(
      {project, targets: [image('ours')], passphrase: {env: 'COSIGN_PASSWORD'}},
      testContext(),
    )
    expect(again.images[0]).toMatchObject({added: false, signatures: 1})
    expect((await index('ours'))!.manifests).toHaveLength(1)
  })

  it('--signature-format legacy (signing.format: legacy) writes the .sig tag; cosign v2 and cosign v3 both verify it', async () => {
    const signed = await signImages(
      {project, targets: [image('ourslegacy')], format: 'legacy', passphrase: {env: 'COSIGN_PASSWORD'}},
      testContext(),
    )
    expect(signed.images[0]).toMatchObject({
      format: 'legacy',
      signature: `${REGISTRY}/${repo('ourslegacy')}:${signatureTag(digests.ourslegacy)}`,
    })
    expect(await index('ourslegacy')).toBeUndefined()
    for (const run of [cosign2Verify, cosign3Verify]) {
      const r = await run('.retailops/cosign.pub', image('ourslegacy'))
      expect(r.exitCode, r.stderr).toBe(0)
    }
    expect((await verify('ourslegacy')).images[0]).toMatchObject({format: 'legacy', repositoryBound: true})
  })

  it('cosign v3, retailops and cosign v2 sign the same image: one index plus the .sig; retailops accepts each key, cosign each bundle key', async () => {
    await signImages({project, targets: [image('both')], passphrase: {env: 'COSIGN_PASSWORD'}}, testContext())
    const r = await cosign3Sign('v3.key', image('both'))
    expect(r.exitCode, r.stderr).toBe(0)
    expect((await index('both'))!.manifests).toHaveLength(2)
    // And retailops appends after cosign: a cosign v2 .sig too, for good measure.
    expect((await cosign2Sign('v2.key', image('both'))).exitCode).toBe(0)
    for (const pub of ['.retailops/cosign.pub', 'v3.pub']) {
      const c = await cosign3Verify(pub, image('both'))
      expect(c.exitCode, `${pub}: ${c.stderr}`).toBe(0)
    }
    // cosign (either) looks only at the bundles once an image has any: the .sig made by cosign v2's
    // key is not seen there. retailops reads both formats and accepts it (below).
    for (const run of [cosign2Verify, cosign3Verify]) {
      const c = await run('v2.pub', image('both'))
      expect(c.exitCode).not.toBe(0)
      expect(c.stderr).toMatch(/no matching attestations|accepted signatures do not match threshold/)
    }
    const v2Only = await cosign2Verify('v2.pub', image('v2signed'))
    expect(v2Only.exitCode, v2Only.stderr).toBe(0)
    for (const pub of ['.retailops/cosign.pub', 'v3.pub', 'v2.pub']) {
      const v = await verify('both', pub)
      expect(v.images[0].signatures).toBe(3)
    }
    expect((await verify('both')).images[0]).toMatchObject({format: 'bundle', repositoryBound: true})
    expect((await verify('both', 'v2.pub')).images[0]).toMatchObject({format: 'legacy'})
  })

  /** Rewrites the one bundle referrer of an image: `change` edits the bundle JSON; the manifest and the index follow. */
  async function rewriteBundle(
    r: string,
    change: (bundle: {dsseEnvelope: {payload: string; signatures: {sig: string}[]}}) => void,
  ): Promise<void> {
    const [subject, into] = [digests[r], r]
    const idx = (await index(r))!
    const m = (await client.getManifest(repo(r), idx.manifests[0].digest))!.json as unknown as ReferrerManifest
    const bundle = JSON.parse((await client.getBlob(repo(r), m.layers[0].digest)).toString())
    change(bundle)
    const blob = Buffer.from(JSON.stringify(bundle))
    const up = await client.uploadBlob(repo(into), blob)
    await client.uploadBlob(repo(into), Buffer.from('{}'))
    const next = {
      ...m,
      layers: [{...m.layers[0], digest: up.digest, size: up.size}],
      subject: {...m.subject!, digest: subject},
    }
    const body = Buffer.from(JSON.stringify(next))
    await client.putManifest(repo(into), sha256Digest(body), body, MEDIA_TYPES.ociManifest)
    const index_ = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          size: body.length,
          digest: sha256Digest(body),
          artifactType: BUNDLE_MEDIA_TYPE,
        },
      ],
    }
    await client.putManifest(
      repo(into),
      referrersTag(subject),
      Buffer.from(JSON.stringify(index_)),
      MEDIA_TYPES.ociIndex,
    )
  }

  it('refuses a bundle whose statement was changed after signing (tampered-payload); cosign v3 and v2 refuse it too', async () => {
    await signImages({project, targets: [image('tampered')], passphrase: {env: 'COSIGN_PASSWORD'}}, testContext())
    await rewriteBundle('tampered', (b) => {
      const statement = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString())
      statement.predicate = {approved: 'yes'}
      b.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64')
    })
    await expect(verify('tampered')).rejects.toMatchObject({
      exit: 'SIGNATURE',
      check: 'tampered-payload',
      message: expect.stringContaining('changed after signing'),
    })
    expect((await cosign3Verify('.retailops/cosign.pub', image('tampered'))).exitCode).not.toBe(0)
    expect((await cosign2Verify('.retailops/cosign.pub', image('tampered'))).exitCode).not.toBe(0)
  })

  it('refuses a bundle by another key (wrong-key), whether retailops or cosign v3 made it', async () => {
    expect((await cosign3Sign('v3.key', image('wrongkey'))).exitCode).toBe(0)
    await expect(verify('wrongkey')).rejects.toMatchObject({
      exit: 'SIGNATURE',
      check: 'wrong-key',
      message: expect.stringContaining('is signed, but not by the key'),
    })
    expect((await cosign3Verify('v2.pub', image('wrongkey'))).exitCode).not.toBe(0)
    expect((await cosign2Verify('.retailops/cosign.pub', image('wrongkey'))).exitCode).not.toBe(0)
  })

  it('refuses a valid bundle made for another digest, listed for this one (other-digest); cosign v3 and v2 refuse it too', async () => {
    // `source`'s bundle (statement for source's digest) re-attached to otherdigest, subject rewritten.
    await signImages({project, targets: [image('source')], passphrase: {env: 'COSIGN_PASSWORD'}}, testContext())
    const fromIdx = (await index('source'))!
    const m = (await client.getManifest(repo('source'), fromIdx.manifests[0].digest))!
      .json as unknown as ReferrerManifest
    await client.uploadBlob(repo('otherdigest'), await client.getBlob(repo('source'), m.layers[0].digest))
    await client.uploadBlob(repo('otherdigest'), Buffer.from('{}'))
    const body = Buffer.from(JSON.stringify({...m, subject: {...m.subject!, digest: digests.otherdigest}}))
    await client.putManifest(repo('otherdigest'), sha256Digest(body), body, MEDIA_TYPES.ociManifest)
    await client.putManifest(
      repo('otherdigest'),
      referrersTag(digests.otherdigest),
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.ociIndex,
          manifests: [
            {
              mediaType: MEDIA_TYPES.ociManifest,
              size: body.length,
              digest: sha256Digest(body),
              artifactType: BUNDLE_MEDIA_TYPE,
            },
          ],
        }),
      ),
      MEDIA_TYPES.ociIndex,
    )
    await expect(verify('otherdigest')).rejects.toMatchObject({
      exit: 'SIGNATURE',
      check: 'other-digest',
      details: expect.objectContaining({signedDigest: digests.source}),
    })
    expect((await cosign3Verify('.retailops/cosign.pub', image('otherdigest'))).exitCode).not.toBe(0)
    expect((await cosign2Verify('.retailops/cosign.pub', image('otherdigest'))).exitCode).not.toBe(0)
  })

  it('refuses a bundle copied with its image into another repository (other-repository), which cosign accepts', async () => {
    await signImages({project, targets: [image('source')], passphrase: {env: 'COSIGN_PASSWORD'}}, testContext())
    // The same image bytes under `copy`, with source's referrer index and bundle copied along.
    const src = (await client.getManifest(repo('source'), digests.source))!
    const img = src.json as unknown as ReferrerManifest
    for (const d of [img.config, ...img.layers])
      await client.uploadBlob(repo('copy'), await client.getBlob(repo('source'), d.digest))
    await client.putManifest(repo('copy'), 'copied', src.body, src.mediaType)
    const idx = (await client.getManifest(repo('source'), referrersTag(digests.source), MEDIA_TYPES.ociIndex))!
    for (const entry of (idx.json as unknown as Index).manifests) {
      const ref = (await client.getManifest(repo('source'), entry.digest))!
      for (const d of (ref.json as unknown as ReferrerManifest).layers)
        await client.uploadBlob(repo('copy'), await client.getBlob(repo('source'), d.digest))
      await client.uploadBlob(repo('copy'), Buffer.from('{}'))
      await client.putManifest(repo('copy'), entry.digest, ref.body, MEDIA_TYPES.ociManifest)
    }
    await client.putManifest(repo('copy'), referrersTag(digests.source), idx.body, MEDIA_TYPES.ociIndex)
    const copied = `${REGISTRY}/${repo('copy')}@${digests.source}`
    await expect(
      verifyImages({project, targets: [copied], key: path.join(dir, '.retailops/cosign.pub')}, testContext()),
    ).rejects.toMatchObject({
      exit: 'SIGNATURE',
      check: 'other-repository',
      details: expect.objectContaining({signedRepository: `${REGISTRY}/${repo('source')}`}),
    })
    // cosign ignores the repository a signature names: it accepts the copy (which is why retailops checks).
    expect((await cosign3Verify('.retailops/cosign.pub', copied)).exitCode).toBe(0)
  })

  it('the CLI: sign --signature-format and signing.format choose the layout; verify --json names the format', async () => {
    const cli = (args: string[]) =>
      runCli([...args, '--config', path.join(dir, 'retailops.yaml')], {
        cwd: dir,
        env: {COSIGN_PASSWORD: PASSWORD, NO_COLOR: '1'},
      })
    const legacy = await cli(['sign', image('cli'), '--signature-format', 'legacy', '--json'])
    expect(legacy.exitCode, legacy.stderr).toBe(0)
    expect(JSON.parse(legacy.stdout).result).toMatchObject({
      format: 'legacy',
      images: [{format: 'legacy', added: true}],
    })
    expect(await client.headManifest(repo('cli'), signatureTag(digests.cli))).toBeDefined()
    expect(await index('cli')).toBeUndefined()
    const bad = await cli(['sign', image('cli'), '--signature-format', 'cosign4', '--json'])
    expect(bad.exitCode).toBe(2)
    const verified = await cli(['verify', image('cli'), '--json'])
    expect(verified.exitCode, verified.stderr).toBe(0)
    expect(JSON.parse(verified.stdout).result.images[0]).toMatchObject({format: 'legacy', repositoryBound: true})
    // signing.format: legacy in retailops.yaml is the default for `sign`; --signature-format bundle overrides it.
    await writeFile(
      path.join(dir, 'retailops.yaml'),
      `project: ${name}\nregistry: {url: "${REGISTRY}", insecure: true}\nsigning: {format: legacy}\nservices:\n  catalog: {tier: tolerant}\n`,
    )
    const byConfig = await cli(['sign', image('cli'), '--json'])
    expect(JSON.parse(byConfig.stdout).result).toMatchObject({
      format: 'legacy',
      images: [{format: 'legacy', added: false}],
    })
    const bundled = await cli(['sign', image('cli'), '--signature-format', 'bundle', '--json'])
    expect(JSON.parse(bundled.stdout).result).toMatchObject({
      format: 'bundle',
      images: [{format: 'bundle', added: true}],
    })
    expect((await index('cli'))!.manifests).toHaveLength(1)
  })
})
