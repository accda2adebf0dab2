import {createHash} from 'node:crypto'
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {gzipSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDeploy} from '../../../src/deploy/engine.js'
import {registryClient} from '../../../src/docker/registry.js'
import {kubeClients} from '../../../src/kubernetes/client.js'
import {decryptPrivateKey, generateKeyPair} from '../../../src/signing/keys.js'
import {signImage} from '../../../src/signing/sign.js'
import {baseConfig, CONTEXT, kubeProject, projectNs, SECURE_SERVICE, type KubeProject} from './helpers.js'
import {testContext} from '../../support/context.js'
import {sandboxEnv} from '../../support/sandbox.js'

const REGISTRY = sandboxEnv().registry

/**
 * Signature verification through the signing engine, against the sandbox registry: an image
 * pushed but not signed is refused by policy; once signed with the project's key it deploys and
 * the Deployment records `verified`.
 */
describe('deploy verifies image signatures (sandbox registry)', () => {
  let t: KubeProject
  let image: string
  let digest: string
  const passphrase = 'test-passphrase'
  const keys = generateKeyPair(passphrase)

  beforeAll(async () => {
    t = kubeProject()
    t.config = baseConfig(t, {catalog: SECURE_SERVICE})
    t.writeConfig()
    mkdirSync(path.join(t.dir, '.retailops'), {recursive: true})
    writeFileSync(path.join(t.dir, '.retailops/cosign.pub'), keys.publicKeyPem)
    // A minimal image of our own (one empty layer), pushed by digest.
    const repository = `${t.name}/catalog`
    const client = await registryClient(REGISTRY, {insecure: true})
    const tar = Buffer.alloc(1024)
    const layer = await client.uploadBlob(repository, gzipSync(tar))
    const config = await client.uploadBlob(
      repository,
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          config: {},
          rootfs: {type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`]},
        }),
      ),
    )
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
      layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer}],
    }
    digest = await client.putManifest(repository, 'test', Buffer.from(JSON.stringify(manifest)), manifest.mediaType)
    image = `${REGISTRY}/${repository}@${digest}`
    // What `retailops push` records.
    writeFileSync(
      path.join(t.dir, '.retailops/artifacts.lock.json'),
      JSON.stringify({
        lockfileVersion: 1,
        artifacts: {
          catalog: {
            repository: `${REGISTRY}/${repository}`,
            digest,
            image,
            tag: 'test',
            pushedAt: new Date().toISOString(),
          },
        },
      }),
    )
  })
  afterAll(async () => t.cleanup())

  it('refuses the unsigned image, naming it, and applies nothing', async () => {
    const r = await runDeploy({project: await t.load()}, testContext())
    expect(r.images.map((i) => [i.ref, i.source])).toEqual([[image, 'lock']])
    expect(r.outcome).toBe('POLICY')
    expect(r.signatures).toEqual([expect.objectContaining({image, status: 'unsigned'})])
    const finding = r.policy.findings.find((f) => f.rule === 'signature')!
    expect(finding).toMatchObject({severity: 'error', object: `Deployment ${projectNs(t)}/catalog`})
    expect(finding.message).toMatch(/has no valid signature/)
    expect(r.apply.objects).toEqual([])
  })

  it('deploys it once signed, and records the verification on the Deployment', async () => {
    const key = decryptPrivateKey(keys.privateKeyPem, passphrase)
    await signImage(
      {registry: REGISTRY, repository: `${t.name}/catalog`, digest},
      key,
      await registryClient(REGISTRY, {insecure: true}),
      testContext(),
    )
    const r = await runDeploy({project: await t.load()}, testContext())
    expect(r.signatureVerification).toBe('verified')
    expect({
      outcome: r.outcome,
      failed: r.apply.failed,
      rollouts: r.rollouts.filter((x) => x.phase !== 'complete'),
    }).toEqual({outcome: 'OK', failed: [], rollouts: []})
    const d = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    expect(d.metadata?.annotations?.['retailops.dev/signature-verification']).toBe('verified')
    expect(d.spec?.template.spec?.containers[0].image).toBe(image)
  })
})
