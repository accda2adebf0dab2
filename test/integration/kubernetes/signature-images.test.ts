import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {renderStep, runDeploy} from '../../../src/deploy/engine.js'
import {verifyRenderedImages} from '../../../src/deploy/signature.js'
import {MEDIA_TYPES, type RegistryClient, registryClient} from '../../../src/docker/registry.js'
import {kubeClients, kubeHttp} from '../../../src/kubernetes/client.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {verifyImages} from '../../../src/signing/images.js'
import {decryptPrivateKey, generateKeyPair} from '../../../src/signing/keys.js'
import {signatureTag} from '../../../src/signing/payload.js'
import {referrersTag} from '../../../src/signing/referrers.js'
import {signImage, type SignatureManifest} from '../../../src/signing/sign.js'
import {pushMinimalImage} from '../docker/helpers.js'
import {baseConfig, CONTEXT, kubeProject, projectNs, SECURE_SERVICE, snapshot, type KubeProject} from './helpers.js'
import {testContext} from '../../support/context.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {runCli} from '../../support/cli.js'

const REGISTRY = sandboxEnv().registry

/**
 * What `cosign copy` does: the image manifest and its blobs, the legacy .sig manifest, and the
 * bundle referrers (their manifests, blobs and the `sha256-<hex>` index), into another repository.
 */
async function copyWithSignatures(client: RegistryClient, from: string, to: string, digest: string): Promise<void> {
  const copyManifest = async (ref: string, tag: string) => {
    const m = (await client.getManifest(from, ref))!
    const json = m.json as unknown as SignatureManifest
    for (const d of [json.config, ...json.layers]) await client.uploadBlob(to, await client.getBlob(from, d.digest))
    await client.putManifest(to, tag, m.body, m.mediaType)
  }
  await copyManifest(digest, 'copied')
  await copyManifest(signatureTag(digest), signatureTag(digest))
  const index = (await client.getManifest(from, referrersTag(digest), MEDIA_TYPES.ociIndex))!
  for (const entry of (index.json as {manifests: {digest: string}[]}).manifests)
    await copyManifest(entry.digest, entry.digest)
  await client.putManifest(to, referrersTag(digest), index.body, MEDIA_TYPES.ociIndex)
}

/**
 * Issue 12 item 5: every image of the rendered objects is verified, not only the lock's. An
 * overlay's init container or sidecar with an unsigned digest, a tag, or a signed digest copied
 * into another repository (its signature names the repository it was made for) is refused, and
 * the cluster is read back to show nothing was applied.
 */
describe('deploy verifies every image of the rendered objects (sandbox registry and apiserver)', () => {
  let t: KubeProject
  let client: RegistryClient
  const passphrase = 'test-passphrase'
  const keys = generateKeyPair(passphrase)
  const images: Record<string, string> = {}
  const repo = (name: string) => `${t.name}/${name}`
  const ref = (name: string, digest: string) => `${REGISTRY}/${repo(name)}@${digest}`
  /** The rendered app container of a service, to build overlay containers that pass every other policy rule. */
  let appContainer: Record<string, unknown>

  const sidecarOverlay = (sidecar: string, init?: string) => [
    {
      kind: 'Deployment',
      name: 'catalog',
      patch: {
        spec: {
          template: {
            spec: {
              containers: [appContainer, {...appContainer, name: 'proxy', image: sidecar}],
              ...(init ? {initContainers: [{...withoutProbes(appContainer), name: 'migrate', image: init}]} : {}),
            },
          },
        },
      },
    },
  ]

  beforeAll(async () => {
    t = kubeProject()
    t.config = {
      ...baseConfig(t, {catalog: SECURE_SERVICE, payments: SECURE_SERVICE, checkout: SECURE_SERVICE}),
      defaultEnvironment: 'production',
    }
    ;(t.config.environments as Record<string, unknown>).staging = {cluster: 'main', namespace: projectNs(t, 'staging')}
    t.writeConfig()
    mkdirSync(path.join(t.dir, '.retailops'), {recursive: true})
    writeFileSync(path.join(t.dir, '.retailops/cosign.pub'), keys.publicKeyPem)
    client = await registryClient(REGISTRY, {insecure: true})
    const key = decryptPrivateKey(keys.privateKeyPem, passphrase)
    const digests: Record<string, string> = {}
    for (const [name, seed] of Object.entries({
      catalog: 'catalog',
      payments: 'payments',
      proxy: 'proxy',
      migrate: 'migrate',
      debugger: 'debugger',
    })) {
      digests[name] = await pushMinimalImage(client, repo(name), seed)
      images[name] = ref(name, digests[name])
      if (name !== 'debugger')
        await signImage({registry: REGISTRY, repository: repo(name), digest: digests[name]}, key, client, testContext())
    }
    // checkout's repository receives payments' image and its (valid, payments-made) signatures, in both formats.
    await signImage(
      {registry: REGISTRY, repository: repo('payments'), digest: digests.payments},
      key,
      client,
      testContext(),
      'legacy',
    )
    await copyWithSignatures(client, repo('payments'), repo('checkout'), digests.payments)
    images.checkout = ref('checkout', digests.payments)
    const lock = Object.fromEntries(
      ['catalog', 'payments', 'checkout'].map((s) => [
        s,
        {
          repository: `${REGISTRY}/${repo(s)}`,
          digest: s === 'checkout' ? digests.payments : digests[s],
          image: images[s],
          tag: 'test',
          pushedAt: new Date().toISOString(),
        },
      ]),
    )
    writeFileSync(
      path.join(t.dir, '.retailops/artifacts.lock.json'),
      JSON.stringify({lockfileVersion: 1, artifacts: lock}),
    )
    const plan = await renderStep({project: await t.load(), services: ['catalog']})
    const d = plan.targets[0].objects.find(
      (o) => o.kind === 'Deployment' && o.metadata.name === 'catalog',
    ) as KubeObject & {spec: {template: {spec: {containers: Record<string, unknown>[]}}}}
    appContainer = d.spec.template.spec.containers[0]
  })
  afterAll(async () => t.cleanup())

  const liveCatalog = async (namespace = projectNs(t)) =>
    kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({name: 'catalog', namespace})

  it('deploys an overlay whose sidecar and init container are signed, and records the verification', async () => {
    t.overlay('catalog', sidecarOverlay(images.proxy, images.migrate))
    const r = await runDeploy({project: await t.load(), services: ['catalog', 'payments']}, testContext())
    expect(r.policy.findings.filter((f) => f.severity === 'error')).toEqual([])
    expect({
      outcome: r.outcome,
      failed: r.apply.failed,
      rollouts: r.rollouts.filter((x) => x.phase !== 'complete'),
    }).toEqual({outcome: 'OK', failed: [], rollouts: []})
    expect(Object.fromEntries(r.signatures.map((s) => [s.image, s.status]))).toEqual({
      [images.catalog]: 'verified',
      [images.proxy]: 'verified',
      [images.migrate]: 'verified',
      [images.payments]: 'verified',
    })
    const d = await liveCatalog()
    expect(d.spec?.template.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['catalog', images.catalog],
      ['proxy', images.proxy],
    ])
    expect(d.spec?.template.spec?.initContainers?.map((c) => [c.name, c.image])).toEqual([['migrate', images.migrate]])
    expect(d.metadata?.annotations?.['retailops.dev/signature-verification']).toBe('verified')
  })

  it('refuses a sidecar with a digest nobody signed, and the cluster keeps exactly what it ran (CLI: exit 10, POLICY)', async () => {
    const applySet = (await liveCatalog()).metadata!.labels!['retailops.dev/applyset']
    const live = await snapshot(applySet)
    t.overlay('catalog', sidecarOverlay(images.debugger, images.migrate))
    const cli = await runCli(
      ['deploy', 'catalog', 'payments', '--json', '--config', path.join(t.dir, 'retailops.yaml')],
      {env: {RETAILOPS_KUBE_CONTEXT: CONTEXT, NO_COLOR: '1'}},
    )
    expect(cli.exitCode, cli.stderr).toBe(10)
    const doc = JSON.parse(cli.stdout) as {
      result: {
        outcome: string
        signatures: {image: string; status: string}[]
        policy: {findings: {rule: string; severity: string; message: string; object: string}[]}
        apply: {objects: unknown[]}
      }
    }
    expect(doc.result.outcome).toBe('POLICY')
    expect(doc.result.signatures.find((s) => s.image === images.debugger)?.status).toBe('unsigned')
    const finding = doc.result.policy.findings.find((f) => f.rule === 'signature')!
    expect(finding).toMatchObject({severity: 'error', object: `Deployment ${projectNs(t)}/catalog`})
    expect(finding.message).toContain(`container "proxy": image ${images.debugger} has no valid signature`)
    expect(doc.result.apply.objects).toEqual([])
    // Read back: not one object changed (resourceVersion and generation), the sidecar is still the signed one.
    expect(await snapshot(applySet)).toEqual(live)
    expect((await liveCatalog()).spec?.template.spec?.containers[1].image).toBe(images.proxy)
  })

  it('refuses an unsigned init container in a fresh namespace and creates nothing there', async () => {
    t.overlay('catalog', sidecarOverlay(images.proxy, images.debugger))
    const r = await runDeploy(
      {project: await t.load(), environment: 'staging', services: ['catalog', 'payments']},
      testContext(),
    )
    expect(r.outcome).toBe('POLICY')
    expect(r.signatures.find((s) => s.image === images.debugger)).toMatchObject({status: 'unsigned'})
    expect(r.policy.findings.find((f) => f.rule === 'signature')!.message).toContain(
      `init container "migrate": image ${images.debugger} has no valid signature`,
    )
    expect(r.apply.objects).toEqual([])
    const http = kubeHttp({context: CONTEXT})
    const ns = await http.request('GET', `/api/v1/namespaces/${projectNs(t, 'staging')}`).then(
      () => 'exists',
      (e: {statusCode?: number}) => (e.statusCode === 404 ? 'absent' : `error ${String(e.statusCode)}`),
    )
    expect(ns).toBe('absent')
    const deployments = await http.request<{items: KubeObject[]}>('GET', '/apis/apps/v1/deployments', {
      query: {labelSelector: `app.kubernetes.io/part-of=${t.name}`},
    })
    expect(deployments.items.map((d) => `${d.metadata.namespace}/${d.metadata.name}`).sort()).toEqual([
      `${projectNs(t)}/catalog`,
      `${projectNs(t)}/payments`,
    ])
  })

  it('refuses a sidecar referenced by tag: it cannot be verified', async () => {
    t.overlay('catalog', sidecarOverlay(`${REGISTRY}/${repo('proxy')}:test`))
    const r = await runDeploy({project: await t.load(), environment: 'staging', services: ['catalog']}, testContext())
    expect(r.outcome).toBe('POLICY')
    expect(r.signatureVerification).toBe('failed')
    expect(r.policy.findings.find((f) => f.rule === 'image-digest')!.message).toMatch(
      /container "proxy" uses image ".*proxy:test" by tag.*a tag cannot be verified/,
    )
    expect(r.apply.objects).toEqual([])
  })

  it("refuses payments' signed digest deployed as checkout: the signature names the payments repository", async () => {
    t.overlay('catalog', undefined)
    const r = await runDeploy({project: await t.load(), services: ['checkout']}, testContext())
    expect(r.outcome).toBe('POLICY')
    const sig = r.signatures.find((s) => s.image === images.checkout)!
    expect(sig.status).toBe('invalid')
    expect(sig.message).toContain(`was made for ${REGISTRY}/${repo('payments')}`)
    expect(sig.message).toContain('not for')
    expect(r.apply.objects).toEqual([])
    await expect(
      kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({name: 'checkout', namespace: projectNs(t)}),
    ).rejects.toMatchObject({code: 404})
    // `retailops verify` says the same, with its own check name.
    await expect(
      verifyImages({project: await t.load(), targets: [images.checkout]}, testContext()),
    ).rejects.toMatchObject({
      exit: 'SIGNATURE',
      check: 'other-repository',
      details: {signedRepository: `${REGISTRY}/${repo('payments')}`},
    })
    // The very same bytes in their own repository verify.
    const v = await verifyImages({project: await t.load(), targets: [images.payments]}, testContext())
    expect(v.images[0]).toMatchObject({dockerReference: `${REGISTRY}/${repo('payments')}`, repositoryBound: true})
  })

  it('accepts a sidecar cosign v3 signed with its defaults, warning that its signature names no repository', async () => {
    const cosign3 = sandboxEnv().cosign3
    const digest = await pushMinimalImage(client, repo('v3proxy'), 'v3proxy')
    const v3proxy = ref('v3proxy', digest)
    writeFileSync(path.join(t.dir, 'project.key'), keys.privateKeyPem)
    const signed = await execa(
      cosign3,
      [
        'sign',
        '--key',
        'project.key',
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--allow-http-registry',
        '--allow-insecure-registry',
        '-y',
        v3proxy,
      ],
      {cwd: t.dir, reject: false, env: {COSIGN_PASSWORD: passphrase, HOME: t.dir}},
    )
    expect(signed.exitCode, signed.stderr).toBe(0)
    t.overlay('catalog', sidecarOverlay(v3proxy))
    const r = await runDeploy(
      {project: await t.load(), environment: 'staging', services: ['catalog'], dryRun: true},
      testContext(),
    )
    expect(r.signatures.find((s) => s.image === v3proxy)).toMatchObject({status: 'verified', repositoryBound: false})
    expect(r.policy.ok).toBe(true)
    expect(
      r.policy.findings.filter((f) => f.rule === 'signature').map((f) => [f.severity, f.message.split(':')[0]]),
    ).toEqual([['warning', 'container "proxy"']])
    t.overlay('catalog', undefined)
  })

  it('verifyRenderedImages covers Jobs and CronJobs too (the entry point rollout resume/abort/undo share)', async () => {
    const objects = [
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: {name: 'seed', namespace: projectNs(t)},
        spec: {template: {spec: {containers: [{name: 'seed', image: images.debugger}]}}},
      },
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: {name: 'nightly', namespace: projectNs(t)},
        spec: {
          schedule: '@daily',
          jobTemplate: {
            spec: {
              template: {
                spec: {
                  initContainers: [{name: 'fetch', image: images.migrate}],
                  containers: [{name: 'run', image: images.proxy}],
                },
              },
            },
          },
        },
      },
    ] as KubeObject[]
    const r = await verifyRenderedImages(objects, {project: await t.load()}, testContext())
    expect(Object.fromEntries(Object.values(r.signatures).map((s) => [s.image, s.status]))).toEqual({
      [images.debugger]: 'unsigned',
      [images.migrate]: 'verified',
      [images.proxy]: 'verified',
    })
    expect(r.verification).toBe('failed')
    expect(objects.map((o) => o.metadata.annotations?.['retailops.dev/signature-verification'])).toEqual([
      'unverified',
      'verified',
    ])
  })
})

function withoutProbes(c: Record<string, unknown>): Record<string, unknown> {
  const {readinessProbe: _r, livenessProbe: _l, startupProbe: _s, ports: _p, ...rest} = c
  return rest
}
