import {createPublicKey} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {readArtifactsLock} from '../../../src/docker/artifacts.js'
import {MEDIA_TYPES, type RegistryClient, registryClient} from '../../../src/docker/registry.js'
import {attestationTag, attestImage, DSSE_MEDIA_TYPE, PREDICATE_TYPES} from '../../../src/signing/attest.js'
import {BUNDLE_MEDIA_TYPE, COSIGN_SIGN_PREDICATE} from '../../../src/signing/bundle.js'
import {loadPrivateKey, loadPublicKey, writeKeyPair} from '../../../src/signing/keys.js'
import {referrersTag, type ReferrerManifest} from '../../../src/signing/referrers.js'
import {BUNDLE_PREDICATE_ANNOTATION, type SignatureManifest} from '../../../src/signing/sign.js'
import {verifyImageAttestations} from '../../../src/signing/verify-attestations.js'
import {RETAILOPS_BUILD_TYPE, SLSA_PROVENANCE_V1} from '../../../src/supplychain/provenance.js'
import {runCliJson} from '../../support/cli.js'
import {testContext} from '../../support/context.js'
import {ROOT} from '../../support/paths.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {
  BASE_IMAGE,
  pushMinimalImage,
  putSoleReferrer,
  REGISTRY,
  testProject,
  type TestProject,
} from '../docker/helpers.js'

const PASSWORD = 'retailops-test-passphrase'
const env = sandboxEnv()
const CYCLONEDX = PREDICATE_TYPES.cyclonedx

interface Envelope {
  payloadType: string
  payload: string
}
interface Statement {
  _type: string
  subject: {name?: string; digest: {sha256: string}}[]
  predicateType: string
  predicate: Record<string, unknown>
}
const statementOf = (e: Envelope) => JSON.parse(Buffer.from(e.payload, 'base64').toString()) as Statement

/**
 * Issue 16 items 2 and 3: `retailops sign` attaches each service image's SBOM (CycloneDX) and SLSA
 * provenance as signed in-toto attestations, as cosign v3 (bundle referrers) or cosign v2 (the
 * `.att` tag) store them; the real cosign v2.6 and v3.1 verify them with `verify-attestation`;
 * retailops verifies what `cosign attest` made with either; tampered, wrong-key and
 * other-digest attestations are refused by retailops (exit 16) and by cosign.
 */
describe('SBOM and SLSA provenance attestations, both ways with cosign v2 and v3 (sandbox registry)', () => {
  let p: TestProject
  let client: RegistryClient
  const digests: Record<string, string> = {}
  const minimal = (r: string) => `${REGISTRY}/${p.name}/${r}@${digests[r]}`
  const cosignEnv = {
    COSIGN_PASSWORD: PASSWORD,
    COSIGN_YES: 'true',
    TUF_ROOT: path.join(os.tmpdir(), 'retailops-cosign-tuf'),
    HOME: os.tmpdir(),
  }
  /** `cosign verify-attestation` v3.1: key-based, no transparency log. */
  const cosign3VerifyAtt = (pub: string, type: string, img: string) =>
    execa(
      env.cosign3,
      [
        'verify-attestation',
        '--key',
        pub,
        '--type',
        type,
        '--insecure-ignore-tlog',
        '--allow-insecure-registry',
        '--allow-http-registry',
        img,
      ],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
  /** cosign v2.6 reads bundle referrers given a trusted root; an empty one serves for a key (and keeps it offline). */
  const cosign2VerifyAtt = (pub: string, type: string, img: string, trustedRoot = true) =>
    execa(
      env.cosign,
      [
        'verify-attestation',
        '--key',
        pub,
        '--type',
        type,
        '--insecure-ignore-tlog',
        '--allow-insecure-registry',
        ...(trustedRoot ? ['--trusted-root', 'empty-trusted-root.json'] : []),
        img,
      ],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
  const cosign3Attest = (key: string, type: string, predicate: string, img: string) =>
    execa(
      env.cosign3,
      [
        'attest',
        '--key',
        key,
        '--type',
        type,
        '--predicate',
        predicate,
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--allow-insecure-registry',
        '--allow-http-registry',
        '-y',
        img,
      ],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
  const cosign2Attest = (key: string, type: string, predicate: string, img: string) =>
    execa(
      env.cosign,
      [
        'attest',
        '--key',
        key,
        '--type',
        type,
        '--predicate',
        predicate,
        '--tlog-upload=false',
        '--allow-insecure-registry',
        '-y',
        img,
      ],
      {cwd: p.dir, env: cosignEnv, reject: false},
    )
  const ourPub = () => path.join(p.dir, '.retailops/cosign.pub')
  const ourKey = async () => {
    process.env.RETAILOPS_TEST_PASSWORD = PASSWORD
    try {
      return await loadPrivateKey(path.join(p.dir, '.retailops/cosign.key'), {env: 'RETAILOPS_TEST_PASSWORD'})
    } finally {
      delete process.env.RETAILOPS_TEST_PASSWORD
    }
  }
  const pushed = async (service: string) => (await readArtifactsLock(p.dir)).artifacts[service]

  beforeAll(async () => {
    const dockerfile = (svc: string) =>
      `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\nWORKDIR /app\nCOPY ${svc}/ ./${svc}/\nCMD ["node", "${svc}/main.js"]\n`
    p = await testProject(
      {shop: {context: 'svc', dockerfile: 'shop/Dockerfile'}, depot: {context: 'svc', dockerfile: 'depot/Dockerfile'}},
      {
        'svc/shop/Dockerfile': dockerfile('shop'),
        'svc/shop/main.js': 'console.log("shop")\n',
        'svc/depot/Dockerfile': dockerfile('depot'),
        'svc/depot/main.js': 'console.log("depot")\n',
        'svc/package-lock.json': await readFile(path.join(ROOT, 'services/package-lock.json'), 'utf8'),
        'empty-trusted-root.json': JSON.stringify({
          mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
        }),
      },
    )
    await p.write({
      'retailops.yaml': `${await readFile(path.join(p.dir, 'retailops.yaml'), 'utf8')}signing:\n  key: .retailops/cosign.key\n  publicKey: .retailops/cosign.pub\n`,
    })
    await writeKeyPair({
      keyPath: path.join(p.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(p.dir, '.retailops/cosign.pub'),
      passphrase: PASSWORD,
    })
    for (const [bin, prefix] of [
      [env.cosign3, 'v3'],
      [env.cosign, 'v2'],
    ]) {
      const g = await execa(bin, ['generate-key-pair', '--output-key-prefix', prefix], {
        cwd: p.dir,
        env: cosignEnv,
        reject: false,
      })
      expect(g.exitCode, g.stderr).toBe(0)
    }
    const build = await runCliJson(['build', '--base-image', BASE_IMAGE], {cwd: p.dir})
    expect(build.exitCode, build.stderr).toBe(0)
    const push = await runCliJson(['push'], {cwd: p.dir})
    expect(push.exitCode, push.stderr).toBe(0)
    client = await registryClient(REGISTRY, {insecure: true})
    for (const r of [
      'v3att',
      'v2att',
      'tampered',
      'tamperedlegacy',
      'wrongkey',
      'source',
      'otherdigest',
      'otherlegacy',
    ])
      digests[r] = await pushMinimalImage(client, `${p.name}/${r}`, `${p.name}-${r}`)
  }, 300_000)

  afterAll(async () => {
    await p?.cleanup()
  })

  it('retailops sign attaches the SBOM and the provenance as bundle referrers; cosign v3 and v2 verify-attestation accept both', async () => {
    const signed = await runCliJson(['sign', 'shop'], {cwd: p.dir, env: {COSIGN_PASSWORD: PASSWORD}})
    expect(signed.exitCode, signed.stderr).toBe(0)
    const shop = await pushed('shop')
    const [img] = signed.doc.result.images
    expect(img.attestations.map((a: {predicateType: string}) => a.predicateType)).toEqual([
      CYCLONEDX,
      SLSA_PROVENANCE_V1,
    ])
    expect(img.attestations.every((a: {format: string; added: boolean}) => a.format === 'bundle' && a.added)).toBe(true)

    // Read back from the registry: the referrers index (tag schema) lists the signature and both attestations.
    const idx = (await client.getManifest(`${p.name}/shop`, referrersTag(shop.digest), MEDIA_TYPES.ociIndex))!
    const entries = (idx.json as unknown as {manifests: {digest: string}[]}).manifests
    expect(entries).toHaveLength(3)
    const predicates = []
    for (const e of entries) {
      const m = (await client.getManifest(`${p.name}/shop`, e.digest))!.json as unknown as ReferrerManifest
      expect(m.subject?.digest).toBe(shop.digest)
      predicates.push(m.annotations?.[BUNDLE_PREDICATE_ANNOTATION])
    }
    expect(predicates.sort()).toEqual([CYCLONEDX, COSIGN_SIGN_PREDICATE, SLSA_PROVENANCE_V1].sort())
    // No legacy tags were written.
    expect(await client.headManifest(`${p.name}/shop`, attestationTag(shop.digest))).toBeUndefined()

    const sbomFile = JSON.parse(await readFile(path.join(p.dir, '.retailops/sbom/shop.cdx.json'), 'utf8'))
    for (const run of [cosign3VerifyAtt, cosign2VerifyAtt]) {
      const sbom = await run(ourPub(), 'cyclonedx', shop.image)
      expect(sbom.exitCode, sbom.stderr).toBe(0)
      const s = statementOf(JSON.parse(sbom.stdout.trim().split('\n')[0]) as Envelope)
      expect(s).toMatchObject({
        _type: 'https://in-toto.io/Statement/v1',
        predicateType: CYCLONEDX,
        subject: [{name: `${REGISTRY}/${p.name}/shop`, digest: {sha256: shop.digest.slice(7)}}],
      })
      expect(s.predicate).toEqual(sbomFile)
      expect((s.predicate.metadata as {component: {version: string}}).component.version).toBe(shop.digest)

      const prov = await run(ourPub(), 'slsaprovenance1', shop.image)
      expect(prov.exitCode, prov.stderr).toBe(0)
      const ps = statementOf(JSON.parse(prov.stdout.trim().split('\n')[0]) as Envelope)
      expect(ps.predicateType).toBe(SLSA_PROVENANCE_V1)
      expect(ps.predicate).toMatchObject({
        buildDefinition: {
          buildType: RETAILOPS_BUILD_TYPE,
          externalParameters: {service: 'shop', dockerfile: 'shop/Dockerfile', buildArgs: {BASE_IMAGE}},
          internalParameters: {imageId: shop.imageId},
        },
        runDetails: {builder: {id: expect.stringMatching(/^https:\/\//)}},
      })
    }
    // Signing again adds nothing.
    const again = await runCliJson(['sign', 'shop'], {cwd: p.dir, env: {COSIGN_PASSWORD: PASSWORD}})
    expect(again.doc.result.images[0].attestations.map((a: {added: boolean}) => a.added)).toEqual([false, false])
    const after = (await client.getManifest(`${p.name}/shop`, referrersTag(shop.digest), MEDIA_TYPES.ociIndex))!
    expect((after.json as unknown as {manifests: unknown[]}).manifests).toHaveLength(3)

    // retailops verify lists them and requires both.
    const v = await runCliJson(
      ['verify', 'shop', '--require-attestation', 'cyclonedx', '--require-attestation', 'slsaprovenance1'],
      {cwd: p.dir},
    )
    expect(v.exitCode, v.stderr).toBe(0)
    expect(
      v.doc.result.images[0].attestations.verified.map((a: {predicateType: string}) => a.predicateType).sort(),
    ).toEqual([CYCLONEDX, SLSA_PROVENANCE_V1].sort())
  })

  it('--signature-format legacy writes the .att tag (cosign v2 layout); cosign v2 (no trusted root) and v3 accept both types', async () => {
    const signed = await runCliJson(['sign', 'depot', '--signature-format', 'legacy'], {
      cwd: p.dir,
      env: {COSIGN_PASSWORD: PASSWORD},
    })
    expect(signed.exitCode, signed.stderr).toBe(0)
    const depot = await pushed('depot')
    const att = (await client.getManifest(`${p.name}/depot`, attestationTag(depot.digest), MEDIA_TYPES.ociManifest))!
    const layers = (att.json as unknown as SignatureManifest).layers
    expect(layers.map((l) => [l.mediaType, l.annotations?.predicateType])).toEqual([
      [DSSE_MEDIA_TYPE, CYCLONEDX],
      [DSSE_MEDIA_TYPE, SLSA_PROVENANCE_V1],
    ])
    // No referrers were written for it.
    expect(
      await client.getManifest(`${p.name}/depot`, referrersTag(depot.digest), MEDIA_TYPES.ociIndex),
    ).toBeUndefined()
    for (const type of ['cyclonedx', 'slsaprovenance1']) {
      const v2 = await cosign2VerifyAtt(ourPub(), type, depot.image, false)
      expect(v2.exitCode, v2.stderr).toBe(0)
      const v3 = await cosign3VerifyAtt(ourPub(), type, depot.image)
      expect(v3.exitCode, v3.stderr).toBe(0)
    }
    const v = await verifyImageAttestations(
      {image: depot.image, publicKey: ourPub(), types: ['cyclonedx', 'slsaprovenance1'], insecure: true},
      testContext(),
    )
    expect(v.attestations.map((a) => a.format)).toEqual(['legacy', 'legacy'])
  })

  it('retailops verifies what `cosign attest` made, v3 (bundle referrer) and v2 (.att tag), SBOM and provenance, and refuses them with another key', async () => {
    const sbom = {bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: [{type: 'library', name: 'x'}]}
    const provenance = {
      buildDefinition: {buildType: 'https://example.test/build/v1', externalParameters: {}},
      runDetails: {builder: {id: 'https://example.test/builder'}},
    }
    await writeFile(path.join(p.dir, 'sbom.json'), JSON.stringify(sbom))
    await writeFile(path.join(p.dir, 'prov.json'), JSON.stringify(provenance))
    for (const [run, key, r] of [
      [cosign3Attest, 'v3.key', 'v3att'],
      [cosign2Attest, 'v2.key', 'v2att'],
    ] as const) {
      expect((await run(key, 'cyclonedx', 'sbom.json', minimal(r))).exitCode).toBe(0)
      const pr = await run(key, 'slsaprovenance1', 'prov.json', minimal(r))
      expect(pr.exitCode, pr.stderr).toBe(0)
    }
    const v3 = await verifyImageAttestations(
      {
        image: minimal('v3att'),
        publicKey: path.join(p.dir, 'v3.pub'),
        types: ['cyclonedx', 'slsaprovenance1'],
        insecure: true,
      },
      testContext(),
    )
    expect(v3.byType[CYCLONEDX][0]).toMatchObject({format: 'bundle', predicate: sbom})
    expect(v3.byType[SLSA_PROVENANCE_V1][0]).toMatchObject({format: 'bundle', predicate: provenance})
    const v2 = await verifyImageAttestations(
      {
        image: minimal('v2att'),
        publicKey: path.join(p.dir, 'v2.pub'),
        types: ['cyclonedx', 'slsaprovenance1'],
        insecure: true,
      },
      testContext(),
    )
    expect(v2.byType[CYCLONEDX][0]).toMatchObject({format: 'legacy', predicate: sbom})
    expect(v2.byType[SLSA_PROVENANCE_V1][0]).toMatchObject({format: 'legacy', predicate: provenance})
    // cosign's statements name the repository, so they are bound to it as ours are.
    expect(v2.byType[CYCLONEDX][0].subjectName).toBe(`${REGISTRY}/${p.name}/v2att`)

    for (const r of ['v3att', 'v2att']) {
      await expect(
        verifyImageAttestations(
          {image: minimal(r), publicKey: ourPub(), types: ['cyclonedx'], insecure: true},
          testContext(),
        ),
      ).rejects.toMatchObject({exit: 'ATTESTATION', check: 'wrong-key', predicateType: CYCLONEDX})
    }
    // The CLI: an image signed with the project key whose only SBOM attestation is by another key: exit 16.
    const unsigned = await runCliJson(['verify', minimal('v3att'), '--key', ourPub()], {cwd: p.dir})
    expect(unsigned.exitCode).toBe(9)
    expect(unsigned.doc.error.message).toContain('is not signed')
    const sign = await runCliJson(['sign', minimal('v3att'), '--key', '.retailops/cosign.key'], {
      cwd: p.dir,
      env: {COSIGN_PASSWORD: PASSWORD},
    })
    expect(sign.exitCode, sign.stderr).toBe(0)
    expect(sign.doc.result.images[0].attestations).toEqual([])
    const cli = await runCliJson(
      ['verify', minimal('v3att'), '--key', ourPub(), '--require-attestation', 'cyclonedx'],
      {
        cwd: p.dir,
      },
    )
    expect(cli.exitCode).toBe(16)
    expect(cli.doc.error.details).toMatchObject({check: 'wrong-key', predicateType: CYCLONEDX})
  })

  it('refuses a tampered attestation (bundle and .att): the statement changed after signing; cosign v3 and v2 refuse it too', async () => {
    const key = await ourKey()
    const target = (r: string) => ({registry: REGISTRY, repository: `${p.name}/${r}`, digest: digests[r]})
    const att = {predicateType: CYCLONEDX, predicate: {bomFormat: 'CycloneDX', specVersion: '1.6', version: 1}}
    const tamper = (payload: string) => {
      const s = JSON.parse(Buffer.from(payload, 'base64').toString()) as Statement
      s.predicate = {...s.predicate, components: [{type: 'library', name: 'trojan'}]}
      return Buffer.from(JSON.stringify(s)).toString('base64')
    }
    // bundle: rewrite the referrer's bundle blob, the manifest and the index entry
    const b = await attestImage(target('tampered'), att, key, client, testContext(), 'bundle')
    const repo = `${p.name}/tampered`
    const m = (await client.getManifest(repo, b.attestationManifest))!.json as unknown as ReferrerManifest
    const bundle = JSON.parse((await client.getBlob(repo, m.layers[0].digest)).toString())
    bundle.dsseEnvelope.payload = tamper(bundle.dsseEnvelope.payload)
    const up = await client.uploadBlob(repo, Buffer.from(JSON.stringify(bundle)))
    const body = Buffer.from(JSON.stringify({...m, layers: [{...m.layers[0], digest: up.digest, size: up.size}]}))
    await putSoleReferrer(client, repo, digests.tampered, body, BUNDLE_MEDIA_TYPE)
    await expect(
      verifyImageAttestations(
        {image: minimal('tampered'), publicKey: ourPub(), types: ['cyclonedx'], insecure: true},
        testContext(),
      ),
    ).rejects.toMatchObject({
      exit: 'ATTESTATION',
      check: 'tampered-payload',
      message: expect.stringContaining('changed after signing'),
    })
    expect((await cosign3VerifyAtt(ourPub(), 'cyclonedx', minimal('tampered'))).exitCode).not.toBe(0)
    expect((await cosign2VerifyAtt(ourPub(), 'cyclonedx', minimal('tampered'))).exitCode).not.toBe(0)

    // legacy: rewrite the .att layer's envelope
    await attestImage(target('tamperedlegacy'), att, key, client, testContext(), 'legacy')
    const lrepo = `${p.name}/tamperedlegacy`
    const tag = attestationTag(digests.tamperedlegacy)
    const lm = (await client.getManifest(lrepo, tag, MEDIA_TYPES.ociManifest))!.json as unknown as SignatureManifest
    const envelope = JSON.parse((await client.getBlob(lrepo, lm.layers[0].digest)).toString()) as Envelope
    envelope.payload = tamper(envelope.payload)
    const lup = await client.uploadBlob(lrepo, Buffer.from(JSON.stringify(envelope)))
    const lbody = Buffer.from(JSON.stringify({...lm, layers: [{...lm.layers[0], digest: lup.digest, size: lup.size}]}))
    await client.putManifest(lrepo, tag, lbody, MEDIA_TYPES.ociManifest)
    await expect(
      verifyImageAttestations(
        {image: minimal('tamperedlegacy'), publicKey: ourPub(), types: ['cyclonedx'], insecure: true},
        testContext(),
      ),
    ).rejects.toMatchObject({exit: 'ATTESTATION', check: 'tampered-payload'})
    expect((await cosign2VerifyAtt(ourPub(), 'cyclonedx', minimal('tamperedlegacy'), false)).exitCode).not.toBe(0)
    expect((await cosign3VerifyAtt(ourPub(), 'cyclonedx', minimal('tamperedlegacy'))).exitCode).not.toBe(0)
  })

  it('refuses an attestation copied onto another digest (other-digest), bundle and .att; cosign refuses it too', async () => {
    const key = await ourKey()
    expect(createPublicKey(key).export({format: 'pem', type: 'spki'})).toBe(
      (await loadPublicKey(ourPub())).export({format: 'pem', type: 'spki'}),
    )
    const target = (r: string) => ({registry: REGISTRY, repository: `${p.name}/${r}`, digest: digests[r]})
    const att = {predicateType: CYCLONEDX, predicate: {bomFormat: 'CycloneDX', specVersion: '1.6', version: 1}}
    // bundle: source's valid attestation re-attached as a referrer of otherdigest (subject rewritten)
    const b = await attestImage(target('source'), att, key, client, testContext(), 'bundle')
    const m = (await client.getManifest(`${p.name}/source`, b.attestationManifest))!.json as unknown as ReferrerManifest
    const to = `${p.name}/otherdigest`
    await client.uploadBlob(to, await client.getBlob(`${p.name}/source`, m.layers[0].digest))
    await client.uploadBlob(to, Buffer.from('{}'))
    const body = Buffer.from(JSON.stringify({...m, subject: {...m.subject!, digest: digests.otherdigest}}))
    await putSoleReferrer(client, to, digests.otherdigest, body, BUNDLE_MEDIA_TYPE)
    const cli = await runCliJson(
      ['verify', minimal('otherdigest'), '--key', ourPub(), '--attestations', '--require-attestation', 'cyclonedx'],
      {cwd: p.dir},
    )
    expect(cli.exitCode).toBe(9) // no signature at all outranks the attestation
    await expect(
      verifyImageAttestations(
        {image: minimal('otherdigest'), publicKey: ourPub(), types: ['cyclonedx'], insecure: true},
        testContext(),
      ),
    ).rejects.toMatchObject({
      exit: 'ATTESTATION',
      check: 'other-digest',
      message: expect.stringContaining(`for sha256:${digests.source.slice(7)}`),
    })
    expect((await cosign3VerifyAtt(ourPub(), 'cyclonedx', minimal('otherdigest'))).exitCode).not.toBe(0)
    expect((await cosign2VerifyAtt(ourPub(), 'cyclonedx', minimal('otherdigest'))).exitCode).not.toBe(0)

    // legacy: source's .att layers copied to otherlegacy's .att tag
    await attestImage(target('source'), att, key, client, testContext(), 'legacy')
    const lm = (await client.getManifest(`${p.name}/source`, attestationTag(digests.source), MEDIA_TYPES.ociManifest))!
    const lto = `${p.name}/otherlegacy`
    const sm = lm.json as unknown as SignatureManifest
    for (const d of [sm.config, ...sm.layers])
      await client.uploadBlob(lto, await client.getBlob(`${p.name}/source`, d.digest))
    await client.putManifest(lto, attestationTag(digests.otherlegacy), lm.body, MEDIA_TYPES.ociManifest)
    await expect(
      verifyImageAttestations(
        {image: minimal('otherlegacy'), publicKey: ourPub(), types: ['cyclonedx'], insecure: true},
        testContext(),
      ),
    ).rejects.toMatchObject({exit: 'ATTESTATION', check: 'other-digest'})
    expect((await cosign2VerifyAtt(ourPub(), 'cyclonedx', minimal('otherlegacy'), false)).exitCode).not.toBe(0)
    expect((await cosign3VerifyAtt(ourPub(), 'cyclonedx', minimal('otherlegacy'))).exitCode).not.toBe(0)
  })

  it('refuses an attestation signed with another key (wrong-key), and cosign v3 refuses ours with its key', async () => {
    expect((await cosign3Attest('v3.key', 'cyclonedx', 'sbom.json', minimal('wrongkey'))).exitCode).toBe(0)
    await expect(
      verifyImageAttestations(
        {image: minimal('wrongkey'), publicKey: ourPub(), types: ['cyclonedx'], insecure: true},
        testContext(),
      ),
    ).rejects.toMatchObject({
      exit: 'ATTESTATION',
      check: 'wrong-key',
      message: expect.stringContaining('not signed by the key'),
    })
    expect((await cosign3VerifyAtt(ourPub(), 'cyclonedx', minimal('wrongkey'))).exitCode).not.toBe(0)
    const shop = await pushed('shop')
    expect((await cosign3VerifyAtt(path.join(p.dir, 'v3.pub'), 'cyclonedx', shop.image)).exitCode).not.toBe(0)
  })
  it('refuses to sign when the SBOM and provenance belong to a newer build than the pushed image: nothing is written (exit 4); --no-attest signs alone', async () => {
    const shop = await pushed('shop')
    const indexEntries = async () =>
      (
        (await client.getManifest(`${p.name}/shop`, referrersTag(shop.digest), MEDIA_TYPES.ociIndex))!
          .json as unknown as {
          manifests: {digest: string}[]
        }
      ).manifests.map((m) => m.digest)
    const before = await indexEntries()
    await p.write({'svc/shop/main.js': 'console.log("shop v2")\n'})
    const build = await runCliJson(['build', 'shop', '--base-image', BASE_IMAGE], {cwd: p.dir})
    expect(build.exitCode, build.stderr).toBe(0)
    const sign = await runCliJson(['sign', 'shop', '--signature-format', 'legacy'], {
      cwd: p.dir,
      env: {COSIGN_PASSWORD: PASSWORD},
    })
    expect(sign.exitCode).toBe(4)
    expect(sign.doc.error.message).toContain('not the pushed image')
    // Nothing was written: no legacy .sig or .att appeared, the referrers are those of before.
    expect(await client.headManifest(`${p.name}/shop`, attestationTag(shop.digest))).toBeUndefined()
    expect(await client.headManifest(`${p.name}/shop`, `${shop.digest.replace(':', '-')}.sig`)).toBeUndefined()
    expect(await indexEntries()).toEqual(before)
    const only = await runCliJson(['sign', 'shop', '--no-attest'], {cwd: p.dir, env: {COSIGN_PASSWORD: PASSWORD}})
    expect(only.exitCode, only.stderr).toBe(0)
    expect(only.doc.result.images[0]).toMatchObject({added: false, attestations: []})
    const bad = await runCliJson(['verify', 'shop', '--require-attestation', 'spdx-ish'], {cwd: p.dir})
    expect(bad.exitCode).toBe(2)
    expect(bad.doc.error.message).toContain('Unknown attestation type "spdx-ish"')
  })
})
