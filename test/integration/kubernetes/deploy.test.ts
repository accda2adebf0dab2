import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDeploy, runDiff} from '../../../src/deploy/engine.js'
import {applySetId} from '../../../src/deploy/render.js'
import {kubeClients, kubeHttp} from '../../../src/kubernetes/client.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {
  baseConfig,
  CONTEXT,
  kubeProject,
  projectImages,
  projectNs,
  secondContext,
  SECURE_SERVICE,
  snapshot,
  type KubeProject,
} from './helpers.js'
import {testContext} from '../../support/context.js'

/**
 * The deploy engine against the sandbox's real kube-apiserver: all four tenancy models, a second
 * deploy that changes nothing, dry run, diff, prune, and replicas an autoscaler moved.
 */
describe('deploy (sandbox)', () => {
  let t: KubeProject
  let tenantKubeconfig: string
  const services = ['catalog', 'payments']

  beforeAll(() => {
    t = kubeProject()
    tenantKubeconfig = secondContext(t, `${t.name}-eu`)
    t.config = {
      ...baseConfig(
        t,
        {catalog: SECURE_SERVICE, payments: {...SECURE_SERVICE, tier: 'revenue-critical', dependsOn: ['catalog']}},
        [
          {name: 'acme', model: 'shared', quota: {cpu: 4, memory: '8Gi', pods: 40}},
          {name: 'globex', model: 'isolated-database', database: {name: 'globex', urlEnv: 'GLOBEX_URL'}},
          {name: 'initech', model: 'dedicated-namespace', namespace: projectNs(t, 'initech')},
          {name: 'umbrella', model: 'dedicated-cluster', cluster: 'eu', namespace: projectNs(t, 'umbrella')},
        ],
      ),
      clusters: {main: {context: CONTEXT}, eu: {context: `${t.name}-eu`, kubeconfig: 'tenant-kubeconfig.yaml'}},
    }
    t.writeConfig()
  })
  afterAll(async () => t.cleanup())

  it('deploys every tenancy model and waits for the rollouts', async () => {
    const c = testContext()
    const r = await runDeploy({project: await t.load(), images: projectImages(t, services), skipVerify: true}, c)
    expect(r.outcome).toBe('OK')
    expect(r.targets.map((x) => [x.namespace, x.model, x.context])).toEqual([
      [projectNs(t), 'shared', CONTEXT],
      [projectNs(t, 'initech'), 'dedicated-namespace', CONTEXT],
      [projectNs(t, 'umbrella'), 'dedicated-cluster', `${t.name}-eu`],
    ])
    expect(r.apply.failed).toEqual([])
    expect(r.apply.created).toBe(r.targets.reduce((a, x) => a + x.objects, 0))
    expect(r.rollouts.map((x) => [x.ref, x.phase]).sort()).toEqual(
      [projectNs(t), projectNs(t, 'initech'), projectNs(t, 'umbrella')]
        .flatMap((ns) => services.map((s) => [`Deployment ${ns}/${s}`, 'complete']))
        .sort(),
    )
    expect(c.out.warnings.join('\n')).toMatch(/SIGNATURE VERIFICATION SKIPPED/)

    const k = kubeClients({context: CONTEXT})
    const d = await k.apps.readNamespacedDeployment({name: 'payments', namespace: projectNs(t, 'initech')})
    expect(d.metadata?.annotations?.['retailops.dev/signature-verification']).toBe('skipped')
    expect(d.status?.availableReplicas).toBe(2)
    // Rendered without replicas (the HPA scales it); created at the HPA's minReplicas all the same.
    expect(d.spec?.replicas).toBe(2)
    expect(d.spec?.template.spec?.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsNonRoot: true,
    })
    expect(d.metadata?.managedFields?.some((m) => m.manager === 'retailops' && m.operation === 'Apply')).toBe(true)
    const quota = await k.core.readNamespacedResourceQuota({name: 'tenant-quota', namespace: projectNs(t, 'initech')})
    expect(quota.status?.used?.pods).toBe('4')
    const policies = await k.networking.listNamespacedNetworkPolicy({namespace: projectNs(t, 'initech')})
    expect(policies.items.map((p) => p.metadata?.name).sort()).toEqual([
      'allow-dns',
      'catalog',
      'default-deny',
      'payments',
    ])
    await k.core.readNamespacedLimitRange({name: 'tenant-limits', namespace: projectNs(t, 'umbrella')})
    const shared = await k.apps.readNamespacedDeployment({name: 'catalog', namespace: projectNs(t)})
    expect(shared.spec?.template.spec?.containers[0].env).toContainEqual(
      expect.objectContaining({
        name: 'TENANT_GLOBEX_DATABASE_URL',
        valueFrom: {secretKeyRef: {name: `${t.name}-globex-database`, key: 'GLOBEX_URL'}},
      }),
    )
    const ns = await k.core.readNamespace({name: projectNs(t, 'initech')})
    expect(ns.metadata?.labels).toMatchObject({
      'retailops.dev/tenant': 'initech',
      'pod-security.kubernetes.io/enforce': 'restricted',
    })
  })

  it('changes nothing on a second deploy with nothing changed', async () => {
    const main = applySetId(t.name, 'production', projectNs(t), 'main')
    const eu = applySetId(t.name, 'production', projectNs(t), 'eu')
    const before = [await snapshot(main), await snapshot(eu, `${t.name}-eu`, tenantKubeconfig)]
    const r = await runDeploy(
      {project: await t.load(), images: projectImages(t, services), skipVerify: true},
      testContext(),
    )
    expect(r.outcome).toBe('OK')
    expect(r.apply.created + r.apply.configured).toBe(0)
    expect(r.apply.unchanged).toBe(r.targets.reduce((a, x) => a + x.objects, 0))
    expect(r.pruned).toEqual([])
    const after = [await snapshot(main), await snapshot(eu, `${t.name}-eu`, tenantKubeconfig)]
    expect(after).toEqual(before)
    expect(before[0].size).toBeGreaterThan(20)
  })

  it('dry-runs on the server and shows the diff without changing anything', async () => {
    const main = applySetId(t.name, 'production', projectNs(t), 'main')
    const before = await snapshot(main)
    const r = await runDeploy(
      {
        project: await t.load(),
        images: projectImages(t, services, 'b'),
        skipVerify: true,
        dryRun: true,
        tenant: 'initech',
      },
      testContext(),
    )
    expect(r.outcome).toBe('OK')
    const changed = r.diffs!.filter((d) => d.action !== 'unchanged')
    expect(changed.map((d) => d.ref).sort()).toEqual([
      `Deployment ${projectNs(t, 'initech')}/catalog`,
      `Deployment ${projectNs(t, 'initech')}/payments`,
    ])
    expect(changed[0].source).toBe('server-dry-run')
    expect(changed[0].diff).toContain(`+          image: 127.0.0.1:5000/${t.name}/catalog@sha256:bbbb`)
    expect(changed[0].diff).not.toMatch(/managedFields|resourceVersion/)
    expect(await snapshot(main)).toEqual(before)

    const diff = await runDiff({project: await t.load(), images: projectImages(t, services)}, testContext())
    expect(diff.changed).toBe(0)
  })

  it('keeps the replica count an autoscaler set, through a deploy that changes the Deployment', async () => {
    const http = kubeHttp({context: CONTEXT})
    const path = `/apis/apps/v1/namespaces/${projectNs(t, 'initech')}/deployments/catalog`
    // What the HPA controller does: an update (not an apply) of spec.replicas under its own manager.
    await http.request('PATCH', path, {
      body: {spec: {replicas: 3}},
      contentType: 'application/merge-patch+json',
      query: {fieldManager: 'kube-controller-manager'},
    })
    const unchanged = await runDeploy(
      {project: await t.load(), images: projectImages(t, services), skipVerify: true, tenant: 'initech'},
      testContext(),
    )
    expect(unchanged.outcome).toBe('OK')
    expect((await http.request<KubeObject & {spec: {replicas: number}}>('GET', path)).spec.replicas).toBe(3)
    // A new image is applied (the Deployment is sent), and the count the autoscaler set survives it.
    const r = await runDeploy(
      {project: await t.load(), images: projectImages(t, services, 'b'), skipVerify: true, tenant: 'initech'},
      testContext(),
    )
    expect(r.outcome).toBe('OK')
    expect(r.apply.configured).toBeGreaterThanOrEqual(2)
    const d = await http.request<
      KubeObject & {spec: {replicas: number; template: {spec: {containers: {image: string}[]}}}}
    >('GET', path)
    expect(d.spec.template.spec.containers[0].image).toContain('@sha256:bbbb')
    expect(d.spec.replicas).toBe(3)
    // Back to the images the other tests expect.
    expect(
      (
        await runDeploy(
          {project: await t.load(), images: projectImages(t, services), skipVerify: true, tenant: 'initech'},
          testContext(),
        )
      ).outcome,
    ).toBe('OK')
    expect((await http.request<KubeObject & {spec: {replicas: number}}>('GET', path)).spec.replicas).toBe(3)
  })

  it('prunes what it applied before and no longer renders, and keeps the namespace of a removed tenant', async () => {
    const config = t.config as {services: Record<string, unknown>; tenants: {name: string}[]}
    const saved = structuredClone(config)
    delete config.services.payments
    config.tenants = config.tenants.filter((x) => x.name !== 'umbrella')
    ;(t.config as {clusters: Record<string, unknown>}).clusters = {
      main: {context: CONTEXT},
      eu: (saved as {clusters?: Record<string, unknown>}).clusters?.eu ?? {},
    }
    t.writeConfig()
    try {
      const r = await runDeploy(
        {project: await t.load(), images: projectImages(t, ['catalog']), skipVerify: true},
        testContext(),
      )
      expect(r.outcome).toBe('OK')
      const pruned = r.pruned.map((p) => p.ref).sort()
      expect(pruned).toContain(`Deployment ${projectNs(t, 'initech')}/payments`)
      expect(pruned).toContain(`PodDisruptionBudget ${projectNs(t)}/payments`)
      expect(pruned.filter((p) => p.includes('umbrella'))).toEqual([])
      expect(r.pruned.every((p) => p.deleted)).toBe(true)
      const http = kubeHttp({context: CONTEXT})
      await expect(
        http.request('GET', `/apis/apps/v1/namespaces/${projectNs(t, 'initech')}/deployments/payments`),
      ).rejects.toMatchObject({statusCode: 404})
      await http.request('GET', `/apis/apps/v1/namespaces/${projectNs(t, 'initech')}/deployments/catalog`)
    } finally {
      t.config = saved
      t.writeConfig()
    }
  })
})
