// retailops promote against the sandbox: one project, two environments (staging and production)
// in two namespaces of the sandbox cluster, images in the sandbox registry signed (or not) with
// the project's key, the source's SLO fed by a real service process scraped by the sandbox's
// Prometheus. Every refusal is read back from the cluster: nothing in production, staging
// untouched, and the refusal recorded in production's promotion history.
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {MEDIA_TYPES, RegistryClient} from '../../../src/docker/registry.js'
import {signImages} from '../../../src/signing/images.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {KubeObjects} from '../../../src/kubernetes/objects.js'
import {StateStore} from '../../../src/rollout/store.js'
import {runCliJson} from '../../support/cli.js'
import {testContext} from '../../support/context.js'
import {randomName} from '../../support/names.js'
import {TempProject} from '../../support/project.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {generateLoad, registerTargets, runService, waitForMetrics, type ReadBack} from '../rollout/helpers.js'
import {deleteSeries} from '../slo/prometheus.js'

const sandbox = sandboxEnv()
const RUN = randomName('t-promote')
const STAGING = `${RUN}-staging`
const PRODUCTION = `${RUN}-production`
const PW = 'promote-pw'

/** Pushes a one-layer image as repo:tag; answers repo:tag@digest (a release's version is its tag). */
async function pushImage(repo: string, tag: string, content: string): Promise<string> {
  const client = new RegistryClient({registry: sandbox.registry, insecure: true})
  const layer = await client.uploadBlob(repo, Buffer.from(content))
  const config = await client.uploadBlob(
    repo,
    Buffer.from(
      JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: [layer.digest]}}),
    ),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: {mediaType: MEDIA_TYPES.ociConfig, digest: config.digest, size: config.size},
      layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size}],
    }),
  )
  const digest = await client.putManifest(repo, tag, manifest, MEDIA_TYPES.ociManifest)
  return `${sandbox.registry}/${repo}:${tag}@${digest}`
}

function config(
  soak: string,
  order = ['staging', 'production'],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...extra,
    project: 'shop',
    registry: {url: sandbox.registry, insecure: true},
    // Deploys do not insist on signatures here (the unsigned case reaches staging); promote always verifies them.
    signing: {required: false},
    clusters: {sandbox: {context: sandbox.context}},
    environments: {
      staging: {cluster: 'sandbox', namespace: STAGING, production: false, prometheus: sandbox.prometheusUrl},
      production: {cluster: 'sandbox', namespace: PRODUCTION, prometheus: sandbox.prometheusUrl},
      dev: {cluster: 'sandbox', namespace: `${RUN}-dev`, production: false, prometheus: sandbox.prometheusUrl},
    },
    promotion: {order, soak},
    services: {
      catalog: {
        tier: 'operational',
        scaling: {minReplicas: 2, maxReplicas: 2},
        rollout: {progressDeadline: '2m'},
        slos: [{name: 'availability', objective: 99, window: '28d', sli: {type: 'availability'}}],
      },
      cart: {tier: 'tolerant', scaling: {minReplicas: 1, maxReplicas: 1}, rollout: {progressDeadline: '2m'}},
    },
  }
}

describe('retailops promote --from staging --to production', () => {
  const project = new TempProject(config('10m'), {prefix: 't-promote'})
  const kube = new KubeObjects({context: sandbox.context})
  const images: Record<string, string> = {}
  let unsigned = ''

  const cli = (args: string[]) => runCliJson(args, {cwd: project.dir, timeoutMs: 240_000})
  const deployment = (ns: string, name: string) =>
    kube.get<ReadBack>(`/apis/apps/v1/namespaces/${ns}/deployments`, name)
  const image = async (ns: string, name: string) =>
    (await deployment(ns, name))?.spec.template.spec.containers[0].image as string | undefined
  const records = async () =>
    (await kube.list(`/api/v1/namespaces/${PRODUCTION}/configmaps`, 'retailops.dev/promotion'))
      .map((m) => JSON.parse(m.data!['promotion.json']) as Record<string, any>)
      .sort((a, b) => String(b.id).localeCompare(String(a.id)))
  /** Staging's Deployments as they are (resourceVersion and generation), to show promote never touched them. */
  const stagingSnapshot = async () =>
    (await kube.list<ReadBack>(`/apis/apps/v1/namespaces/${STAGING}/deployments`)).map((d) => ({
      name: d.metadata.name,
      rv: d.metadata.resourceVersion,
      generation: d.metadata.generation,
      image: d.spec.template.spec.containers[0].image,
    }))

  beforeAll(async () => {
    await writeKeyPair({
      keyPath: path.join(project.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(project.dir, '.retailops/cosign.pub'),
      passphrase: PW,
    })
    for (const s of ['catalog', 'cart']) images[s] = await pushImage(`${RUN}/${s}`, 'v1', `promote ${RUN} ${s} v1\n`)
    unsigned = await pushImage(`${RUN}/catalog`, 'v2', `promote ${RUN} catalog v2 unsigned\n`)
    process.env.T_PROMOTE_PW = PW
    await signImages(
      {project: await project.load(), targets: Object.values(images), passphrase: {env: 'T_PROMOTE_PW'}},
      testContext(),
    )
    delete process.env.T_PROMOTE_PW
    // Production exists (a namespace of the platform's) and runs nothing of the project yet.
    await kube.http.request('POST', '/api/v1/namespaces', {body: {metadata: {name: PRODUCTION}}})
    const deployed = await cli([
      'deploy',
      '--environment',
      'staging',
      ...Object.entries(images).flatMap(([s, i]) => ['--image', `${s}=${i}`]),
    ])
    expect(deployed.exitCode, JSON.stringify(deployed.doc.error)).toBe(0)
  }, 600_000)

  afterAll(async () => {
    for (const ns of [STAGING, PRODUCTION])
      await kube.http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
    await deleteSeries(`{namespace="${STAGING}"}`).catch(() => undefined)
    await project.cleanup()
    kube.close()
  })

  it('refuses before the soak time: exit 18, nothing in production, staging untouched, the refusal recorded', async () => {
    const before = await stagingSnapshot()
    const r = await cli(['promote', '--from', 'staging', '--to', 'production'])
    expect(r.exitCode, r.stderr).toBe(18)
    expect(r.doc.error.message).toMatch(/catalog: held \S+ in the source \(since .*\), less than promotion.soak 10m/)
    expect(await deployment(PRODUCTION, 'catalog')).toBeUndefined()
    expect(await deployment(PRODUCTION, 'cart')).toBeUndefined()
    expect(await stagingSnapshot()).toEqual(before)
    const [record] = await records()
    expect(record).toMatchObject({
      outcome: 'refused',
      exit: 'PROMOTION_REFUSED',
      from: {environment: 'staging', namespace: STAGING},
      to: {environment: 'production', namespace: PRODUCTION},
      images,
      soak: '10m',
    })
    expect(record.checks.catalog.soak.ok).toBe(false)
    expect(Date.parse(record.checks.catalog.soak.heldSince)).toBeLessThan(Date.now())
    expect(record.checks.catalog.signatures.ok).toBe(true)
  })

  it('refuses out of order (dev → production skips staging) and --force without --reason', async () => {
    const r = await cli(['promote', '--from', 'dev', '--to', 'production'])
    expect(r.exitCode).toBe(19)
    expect(r.doc.error.message).toContain('starts from dev, which is not a stage of promotion.order')
    project.writeConfig(config('1s', ['dev', 'staging', 'production']))
    const skip = await cli(['promote', '--from', 'dev', '--to', 'production'])
    expect(skip.exitCode).toBe(19)
    expect(skip.doc.error.message).toContain('skips staging')
    const noReason = await cli(['promote', '--from', 'dev', '--to', 'production', '--force'])
    expect(noReason.exitCode).toBe(2)
    const back = await cli(['promote', '--from', 'production', '--to', 'staging'])
    expect(back.exitCode).toBe(19)
    expect(await deployment(PRODUCTION, 'catalog')).toBeUndefined()
    expect(await records()).toHaveLength(1)
  })

  it('promotes exactly the digests staging runs; the record is complete; staging untouched', async () => {
    project.writeConfig(config('1s'))
    const before = await stagingSnapshot()
    const r = await cli(['promote', '--from', 'staging', '--to', 'production'])
    expect(r.exitCode, JSON.stringify(r.doc.error ?? r.doc.result?.record)).toBe(0)
    for (const [s, i] of Object.entries(images)) expect(await image(PRODUCTION, s)).toBe(i)
    expect(await stagingSnapshot()).toEqual(before)
    const all = await records()
    const record = all.find((x) => x.id === r.doc.result.id)!
    expect(record).toMatchObject({
      outcome: 'promoted',
      exit: 'OK',
      project: 'shop',
      services: ['catalog', 'cart'],
      images,
      from: {environment: 'staging', namespace: STAGING, cluster: 'sandbox'},
      to: {environment: 'production', namespace: PRODUCTION, cluster: 'sandbox'},
      order: {ok: true, stages: ['staging', 'production']},
      release: [{strategy: 'rolling', services: ['catalog', 'cart'], exit: 'OK'}],
    })
    expect(record.by).toBeTruthy()
    expect(Date.parse(record.finishedAt)).toBeGreaterThanOrEqual(Date.parse(record.at))
    for (const s of ['catalog', 'cart']) {
      expect(record.checks[s]).toMatchObject({
        image: images[s],
        soak: {ok: true},
        slo: {ok: true},
        signatures: {ok: true},
      })
      expect(record.checks[s].signatures.results).toEqual([{image: images[s], status: 'verified'}])
      expect(record.checks[s].problems).toEqual([])
    }
    const history = await cli(['promote', 'history', '--environment', 'production'])
    expect(history.exitCode).toBe(0)
    expect(history.doc.result.promotions.map((p: {id: string}) => p.id)).toEqual(
      all
        .map((x) => x.id)
        .sort()
        .reverse(),
    )
  })

  it('refuses while an SLO of the service burns in staging (real traffic, half of it failing)', async () => {
    const proc = await runService('catalog', {APP_VERSION: 'v1', FAULT_ERROR_RATE: '0.5'})
    const unregister = registerTargets(`${RUN}-catalog`, [
      {url: proc.url, labels: {service: 'catalog', namespace: STAGING}},
    ])
    const load = generateLoad([`${proc.url}/products`], {rps: 20, maxMs: 180_000})
    try {
      await waitForMetrics('catalog', STAGING, ['v1'], [new URL(proc.url).host])
      const before = await stagingSnapshot()
      const productionBefore = (await deployment(PRODUCTION, 'catalog'))!.metadata.resourceVersion
      const r = await cli(['promote', '--from', 'staging', '--to', 'production', 'catalog'])
      expect(r.exitCode, r.stderr).toBe(18)
      expect(r.doc.error.message).toMatch(
        /catalog: SLO burning in the source: availability: (page-level burn|error budget exhausted)/,
      )
      expect((await deployment(PRODUCTION, 'catalog'))!.metadata.resourceVersion).toBe(productionBefore)
      expect(await stagingSnapshot()).toEqual(before)
      const record = (await records())[0]
      expect(record).toMatchObject({outcome: 'refused', services: ['catalog'], checks: {catalog: {slo: {ok: false}}}})
    } finally {
      await load.stop()
      unregister()
      await proc.stop()
      await deleteSeries(`{namespace="${STAGING}"}`)
    }
  })

  it('refuses digests without the attestations supplyChain.policy requires (an SBOM), signed as they are', async () => {
    project.writeConfig(config('1s', undefined, {supplyChain: {policy: {requireProvenance: false}}}))
    try {
      const productionBefore = (await deployment(PRODUCTION, 'catalog'))!.metadata.resourceVersion
      const r = await cli(['promote', '--from', 'staging', '--to', 'production', 'catalog'])
      expect(r.exitCode, r.stderr).toBe(18)
      expect(r.doc.error.message).toContain(`catalog: attestations of ${images.catalog} missing`)
      expect((await deployment(PRODUCTION, 'catalog'))!.metadata.resourceVersion).toBe(productionBefore)
      const record = (await records())[0]
      expect(record.checks.catalog.signatures.ok).toBe(true)
      expect(record.checks.catalog.attestations).toMatchObject({
        required: ['cyclonedx'],
        ok: false,
        results: [{image: images.catalog, status: 'missing'}],
      })
    } finally {
      project.writeConfig(config('1s'))
    }
  })

  it("releases with the target's strategy: catalog is a canary in production", async () => {
    const v3 = await pushImage(`${RUN}/catalog`, 'v3', `promote ${RUN} catalog v3\n`)
    process.env.T_PROMOTE_PW = PW
    await signImages({project: await project.load(), targets: [v3], passphrase: {env: 'T_PROMOTE_PW'}}, testContext())
    delete process.env.T_PROMOTE_PW
    const canary = config('1s')
    const services = canary.services as Record<string, Record<string, unknown>>
    services.catalog.rollout = {
      strategy: 'canary',
      router: 'replicas',
      progressDeadline: '2m',
      steps: [{setWeight: 50}, {pause: {duration: '1s'}}],
    }
    project.writeConfig(canary)
    try {
      const staged = await cli(['deploy', '--environment', 'staging', 'catalog', '--image', `catalog=${v3}`])
      expect(staged.exitCode, JSON.stringify(staged.doc.error)).toBe(0)
      await new Promise((r) => setTimeout(r, 1500))
      const r = await cli(['promote', '--from', 'staging', '--to', 'production', 'catalog'])
      expect(r.exitCode, JSON.stringify(r.doc.error ?? r.doc.result?.record)).toBe(0)
      expect(await image(PRODUCTION, 'catalog')).toBe(v3)
      expect(await image(PRODUCTION, 'cart')).toBe(images.cart)
      const state = (await new StateStore(kube).read(PRODUCTION, 'catalog')).state
      expect(state).toMatchObject({phase: 'Healthy', spec: {strategy: 'canary'}})
      expect(await deployment(PRODUCTION, 'catalog-canary')).toBeUndefined()
      const record = (await records())[0]
      expect(record).toMatchObject({
        outcome: 'promoted',
        images: {catalog: v3},
        release: [{strategy: 'canary', services: ['catalog'], exit: 'OK'}],
      })
      images.catalog = v3
    } finally {
      project.writeConfig(config('1s'))
    }
  })

  it('refuses a digest whose signature does not verify', async () => {
    const deployed = await cli(['deploy', '--environment', 'staging', 'catalog', '--image', `catalog=${unsigned}`])
    expect(deployed.exitCode, JSON.stringify(deployed.doc.error)).toBe(0)
    await new Promise((r) => setTimeout(r, 1500))
    const r = await cli(['promote', '--from', 'staging', '--to', 'production', 'catalog'])
    expect(r.exitCode, r.stderr).toBe(18)
    expect(r.doc.error.message).toContain(`catalog: signature of ${unsigned} unsigned`)
    expect(await image(PRODUCTION, 'catalog')).toBe(images.catalog)
    expect(await image(STAGING, 'catalog')).toBe(unsigned)
    const record = (await records())[0]
    expect(record.checks.catalog.signatures).toMatchObject({
      ok: false,
      results: [{image: unsigned, status: 'unsigned'}],
    })
  })
})
