import {describe, expect, it} from 'vitest'

import {applySetId, quotaFor, renderManifests} from '../../../src/deploy/render.js'
import {resolveImages} from '../../../src/deploy/images.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {checkPolicy} from '../../../src/kubernetes/policy.js'
import {CONFIG, digestImages, project} from './fixtures.js'

const find = (objects: KubeObject[], kind: string, name: string, namespace?: string) =>
  objects.find(
    (o) =>
      o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  )

describe('renderManifests', () => {
  const p = project()
  const plan = renderManifests({project: p, images: digestImages(p)})
  const all = plan.targets.flatMap((t) => t.objects)

  it('renders one target per tenancy placement: shared namespace, dedicated namespace, dedicated cluster', () => {
    expect(plan.targets.map((t) => [t.id, t.model, t.context, t.tenants])).toEqual([
      ['main/shop', 'shared', 'kwok-retailops', ['acme', 'globex']],
      ['main/shop-initech', 'dedicated-namespace', 'kwok-retailops', ['initech']],
      ['eu/umbrella', 'dedicated-cluster', 'eu-ctx', ['umbrella']],
    ])
    expect(plan.targets[1].services).toEqual(['catalog', 'payments', 'checkout'])
  })

  it('renders every kind a service needs, with recommended and retailops labels', () => {
    for (const kind of [
      'Deployment',
      'Service',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'ServiceAccount',
      'NetworkPolicy',
    ]) {
      expect(find(all, kind, 'payments', 'shop'), kind).toBeDefined()
    }
    const d = find(all, 'Deployment', 'payments', 'shop-initech')!
    expect(d.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'payments',
      'app.kubernetes.io/instance': 'payments-initech',
      'app.kubernetes.io/version': '1.4.2',
      'app.kubernetes.io/component': 'service',
      'app.kubernetes.io/part-of': 'shop',
      'app.kubernetes.io/managed-by': 'retailops',
      'retailops.dev/service': 'payments',
      'retailops.dev/tier': 'revenue-critical',
      'retailops.dev/tenant': 'initech',
      'retailops.dev/applyset': applySetId('shop', 'production', 'shop', 'main'),
    })
    expect(find(all, 'Deployment', 'payments', 'shop')!.metadata.labels!['retailops.dev/tenant']).toBe('shared')
  })

  it('applies secure defaults to every pod', () => {
    const d = find(all, 'Deployment', 'catalog', 'shop')! as KubeObject & {spec: any}
    const pod = d.spec.template.spec
    const c = pod.containers[0]
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: {type: 'RuntimeDefault'},
    })
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: {drop: ['ALL']},
    })
    expect(pod.automountServiceAccountToken).toBe(false)
    expect(c.image).toBe(`127.0.0.1:5000/shop/catalog@sha256:${'a'.repeat(64)}`)
    // catalog is operational: the tier's built-in ephemeral-storage defaults.
    expect(c.resources).toEqual({
      requests: {cpu: '100m', memory: '128Mi', 'ephemeral-storage': '256Mi'},
      limits: {cpu: '500m', memory: '256Mi', 'ephemeral-storage': '1Gi'},
    })
    expect(c.readinessProbe.httpGet).toEqual({path: '/readyz', port: 'http'})
    expect(c.livenessProbe.httpGet).toEqual({path: '/healthz', port: 'http'})
    expect(c.volumeMounts).toContainEqual({name: 'tmp', mountPath: '/tmp'})
    expect(pod.volumes).toContainEqual({name: 'tmp', emptyDir: {sizeLimit: '256Mi'}})
    expect(find(all, 'ServiceAccount', 'catalog', 'shop')!.automountServiceAccountToken).toBe(false)
  })

  it("sets ephemeral storage from the service, else its tier's configuration, else the built-in tier default", () => {
    const storage = (config: string, service: string) => {
      const q = project(config)
      const d = find(
        renderManifests({project: q, images: digestImages(q)}).targets[0].objects,
        'Deployment',
        service,
      ) as any
      const r = d.spec.template.spec.containers[0].resources
      return [r.requests['ephemeral-storage'], r.limits['ephemeral-storage']]
    }
    expect(storage(CONFIG, 'checkout')).toEqual(['512Mi', '2Gi'])
    expect(storage(CONFIG, 'recs')).toEqual(['128Mi', '512Mi'])
    const tiers = CONFIG.replace(
      'services:',
      `tiers:
  revenue-critical: {rto: 15m, rpo: 5m, minReplicas: 2, ephemeralStorage: {request: 1Gi, limit: 4Gi}}
  operational: {rto: 1h, rpo: 15m, minReplicas: 2}
  tolerant: {rto: 4h, rpo: 24h, minReplicas: 1}
services:`,
    )
    expect(storage(tiers, 'checkout')).toEqual(['1Gi', '4Gi'])
    expect(storage(tiers, 'catalog')).toEqual(['256Mi', '1Gi'])
    const own = tiers.replace(
      'payments: {tier: revenue-critical,',
      'payments: {tier: revenue-critical, resources: {requests: {ephemeralStorage: 300Mi}, limits: {ephemeralStorage: 600Mi}},',
    )
    expect(storage(own, 'payments')).toEqual(['300Mi', '600Mi'])
    expect(() =>
      project(
        tiers.replace(
          'payments: {tier: revenue-critical,',
          'payments: {tier: revenue-critical, resources: {requests: {ephemeralStorage: 8Gi}},',
        ),
      ),
    ).toThrow(/ephemeralStorage.*is 4Gi, below the ephemeral-storage request 8Gi/s)
  })

  it('the rendered defaults pass policy with no errors or warnings', () => {
    const report = checkPolicy(all.filter((o) => o.metadata.name !== 'recs'))
    expect(report.findings.filter((f) => f.rule !== 'service-account-token')).toEqual([])
  })

  it('mounts the API token only for services that need it, and skips HPA and PDB for a single fixed replica', () => {
    const objects = renderManifests({project: p, images: digestImages(p), services: ['recs']}).targets[0].objects
    expect((find(objects, 'Deployment', 'recs') as any).spec.template.spec.automountServiceAccountToken).toBe(true)
    expect(find(objects, 'HorizontalPodAutoscaler', 'recs')).toBeUndefined()
    expect(find(objects, 'PodDisruptionBudget', 'recs')).toBeUndefined()
    expect((find(objects, 'Deployment', 'recs') as any).spec.replicas).toBe(1)
  })

  it('keeps revenue-critical rollouts at full strength and uses the configured progress deadline', () => {
    const d = find(all, 'Deployment', 'checkout', 'shop') as any
    expect(d.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(d.spec.progressDeadlineSeconds).toBe(30)
    // The HPA owns the count: rendered without replicas (deploy's apply adds the live or minimum count).
    expect(d.spec).not.toHaveProperty('replicas')
    expect((find(all, 'HorizontalPodAutoscaler', 'checkout', 'shop') as any).spec).toMatchObject({
      minReplicas: 2,
      maxReplicas: 10,
      scaleTargetRef: {kind: 'Deployment', name: 'checkout'},
    })
  })

  it('gives isolated-database tenants their database by name and Secret reference, never a password', () => {
    const env = (find(all, 'Deployment', 'catalog', 'shop') as any).spec.template.spec.containers[0].env
    expect(env).toContainEqual({name: 'RETAILOPS_TENANTS', value: 'acme,globex'})
    expect(env).toContainEqual({name: 'TENANT_GLOBEX_DATABASE_NAME', value: 'globex_db'})
    expect(env).toContainEqual({
      name: 'TENANT_GLOBEX_DATABASE_URL',
      valueFrom: {secretKeyRef: {name: 'shop-globex-database', key: 'GLOBEX_URL'}},
    })
    expect(env.find((e: any) => e.name.startsWith('TENANT_ACME'))).toBeUndefined()
  })

  it('gives tenant namespaces a quota, limits and default-deny isolation', () => {
    const ns = find(all, 'Namespace', 'shop-initech')!
    expect(ns.metadata.labels).toMatchObject({
      'retailops.dev/tenant': 'initech',
      'pod-security.kubernetes.io/enforce': 'restricted',
    })
    expect(find(all, 'ResourceQuota', 'tenant-quota', 'shop-initech')).toBeDefined()
    expect(find(all, 'LimitRange', 'tenant-limits', 'shop-initech')).toBeDefined()
    expect((find(all, 'NetworkPolicy', 'default-deny', 'shop-initech') as any).spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    })
    // No namespace-wide allowances any more: every path is a per-service policy (isolation.test.ts).
    expect(find(all, 'NetworkPolicy', 'allow-same-namespace', 'shop-initech')).toBeUndefined()
    expect(find(all, 'NetworkPolicy', 'allow-from-gateway', 'shop-initech')).toBeUndefined()
    // the shared namespace's quota is the sum of its tenants' quotas
    expect((find(all, 'ResourceQuota', 'tenant-quota', 'shop') as any).spec.hard).toMatchObject({
      'requests.cpu': '6',
      'requests.memory': '12288Mi',
      pods: '60',
    })
  })

  it('lets a service be reached only by the services that depend on it and the gateway', () => {
    const np = find(all, 'NetworkPolicy', 'payments', 'shop') as any
    expect(np.spec.podSelector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'payments',
      'app.kubernetes.io/instance': 'payments',
    })
    expect(np.spec.ingress[0].from).toEqual([
      {podSelector: {matchExpressions: [{key: 'retailops.dev/service', operator: 'In', values: ['checkout']}]}},
      {namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'gateway'}}},
    ])
    expect(np.spec.ingress[0].ports).toEqual([{port: 8080, protocol: 'TCP'}])
  })

  it('--tenant selects one tenant; a shared tenant deploys the shared namespace with all its tenants', () => {
    expect(renderManifests({project: p, images: digestImages(p), tenant: 'initech'}).targets.map((t) => t.id)).toEqual([
      'main/shop-initech',
    ])
    const shared = renderManifests({project: p, images: digestImages(p), tenant: 'acme'}).targets
    expect(shared.map((t) => [t.id, t.tenants])).toEqual([['main/shop', ['acme', 'globex']]])
    expect(() => renderManifests({project: p, images: digestImages(p), tenant: 'nope'})).toThrow(
      /Unknown tenant "nope"/,
    )
  })

  it('without tenants renders one namespace and no quota', () => {
    const single = project(`
project: shop
registry: {url: 127.0.0.1:5000}
services:
  catalog: {tier: operational}
`)
    const r = renderManifests({project: single, images: digestImages(single), namespace: 'shop-dev'})
    expect(r.targets.map((t) => [t.id, t.model])).toEqual([['default/shop-dev', 'single']])
    expect(r.targets[0].objects.map((o) => o.kind).sort()).toEqual([
      'Deployment',
      'HorizontalPodAutoscaler',
      'Namespace',
      'NetworkPolicy',
      'NetworkPolicy',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
    ])
  })

  it('applies overlays after rendering and reports those that match nothing', () => {
    const r = renderManifests({
      project: p,
      images: digestImages(p),
      services: ['catalog'],
      tenant: 'initech',
      overlays: {
        catalog: [
          {
            kind: 'Deployment',
            patch: {spec: {template: {metadata: {labels: {'retailops.dev/simulate': 'crashloop'}}}}},
          },
          {kind: 'Service', name: 'nope', patch: {}},
        ],
      },
    })
    const d = find(r.targets[0].objects, 'Deployment', 'catalog') as any
    expect(d.spec.template.metadata.labels['retailops.dev/simulate']).toBe('crashloop')
    expect(d.spec.template.metadata.labels['app.kubernetes.io/name']).toBe('catalog')
    expect(r.notes).toEqual(['overlays/catalog.yaml: Service/nope matches no rendered object'])
  })

  it('falls back to a tag without a pushed digest (policy then refuses it)', () => {
    const images = resolveImages(p.config, ['catalog'], {})
    expect(images.catalog).toMatchObject({ref: '127.0.0.1:5000/shop/catalog:1', source: 'default'})
  })

  it('sizes a derived quota for maxReplicas plus rollout surge', () => {
    expect(quotaFor(p.config, ['catalog'], [])).toEqual({
      'requests.cpu': '500m',
      'requests.memory': '640Mi',
      'limits.cpu': '2500m',
      'limits.memory': '1280Mi',
      pods: '5',
    })
  })
})

describe('partial renders', () => {
  it('size the quota and network policies for every service of the namespace, not only the selected ones', () => {
    const p = project()
    const full = renderManifests({project: p, images: digestImages(p), tenant: 'initech'}).targets[0].objects
    const one = renderManifests({project: p, images: digestImages(p), tenant: 'initech', services: ['payments']})
      .targets[0].objects
    const q = (objs: KubeObject[]) => objs.find((o) => o.kind === 'ResourceQuota')
    expect(q(one)).toEqual(q(full))
    const np = (objs: KubeObject[]) => objs.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'payments')
    expect(np(one)).toEqual(np(full))
    expect(one.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)).toEqual(['payments'])
  })
})

describe('secrets in the configuration', () => {
  it('are masked in everything printed, and refused by policy', async () => {
    const {redact} = await import('../../../src/ui/output.js')
    const p = project(`
project: shop
registry: {url: 127.0.0.1:5000}
services:
  catalog: {tier: operational, env: {API_TOKEN: s3cr3t-value}}
tenants:
  - {name: globex, model: isolated-database, database: {url: 'postgres://app:hunter22@db:5432/globex'}}
`)
    const objects = renderManifests({project: p, images: digestImages(p)}).targets[0].objects
    const text = JSON.stringify(objects)
    expect(redact(text)).not.toContain('hunter22')
    expect(redact(text)).not.toContain('s3cr3t-value')
    expect(
      checkPolicy(objects)
        .findings.filter((f) => f.rule === 'plain-text-secret')
        .map((f) => f.message),
    ).toEqual([
      'container "catalog" env TENANT_GLOBEX_DATABASE_URL holds a URL with a password in plain text',
      'container "catalog" env API_TOKEN looks like a secret in plain text',
    ])
  })
})

describe('applyset scope', () => {
  it('gives a deploy moved by --namespace its own applyset, so its prune never reaches the environment namespace', () => {
    const p = project()
    const label = (plan: ReturnType<typeof renderManifests>) =>
      new Set(plan.targets.flatMap((t) => t.objects.map((o) => o.metadata.labels?.['retailops.dev/applyset'])))
    const usual = label(renderManifests({project: p, images: digestImages(p)}))
    const moved = label(renderManifests({project: p, images: digestImages(p), namespace: 'shop-preview'}))
    const same = label(renderManifests({project: p, images: digestImages(p), namespace: 'shop'}))
    expect([...moved].some((id) => usual.has(id))).toBe(false)
    expect(same).toEqual(usual)
  })

  it('gives a copy of the project whose environment names another namespace its own applyset', () => {
    const p = project()
    const [name, env] = Object.entries(p.config.environments)[0]
    const copy = {
      ...p,
      config: {...p.config, environments: {...p.config.environments, [name]: {...env, namespace: 'shop-staging'}}},
    }
    const ids = (plan: ReturnType<typeof renderManifests>) => new Set(plan.targets.map((t) => t.applySet))
    const first = ids(renderManifests({project: p, images: digestImages(p)}))
    const second = ids(renderManifests({project: copy, images: digestImages(p)}))
    expect([...second].some((id) => first.has(id))).toBe(false)
    // Both still recognise what versions before the namespace was part of the id applied.
    expect(renderManifests({project: copy, images: digestImages(p)}).targets[0].legacyApplySet).toBe(
      renderManifests({project: p, images: digestImages(p)}).targets[0].legacyApplySet,
    )
  })
})

describe('gateway routes', () => {
  it('renders an HTTPRoute per service when the environment has a gateway, for the rollout to weight', () => {
    const p = project()
    const env = Object.values(p.config.environments)[0]
    const withGateway = {
      ...p,
      config: {
        ...p.config,
        environments: Object.fromEntries(
          Object.entries(p.config.environments).map(([k, e]) => [
            k,
            {...e, router: 'gateway' as const, gateway: {name: 'storefront'}},
          ]),
        ),
      },
    }
    const objects = renderManifests({project: withGateway, images: digestImages(p)}).targets.flatMap((t) => t.objects)
    const route = objects.find((o) => o.kind === 'HTTPRoute' && o.metadata.name === 'payments')!
    expect(route.spec).toMatchObject({
      parentRefs: [{name: 'storefront'}],
      rules: [
        {
          matches: [{path: {type: 'PathPrefix', value: '/payments'}}],
          backendRefs: [{name: 'payments', port: p.config.services.payments.port}],
        },
      ],
    })
    expect(route.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('retailops')
    expect(env).toBeDefined()
    const without = renderManifests({project: p, images: digestImages(p)}).targets.flatMap((t) => t.objects)
    expect(without.some((o) => o.kind === 'HTTPRoute')).toBe(Boolean(Object.values(p.config.environments)[0].gateway))
  })
})

describe('the version the services report', () => {
  it("comes from the pod's own version label, the one canary analysis queries", () => {
    const p = project()
    const d = renderManifests({project: p, images: digestImages(p)}).targets[0].objects.find(
      (o) => o.kind === 'Deployment',
    )!
    const container = (d.spec as {template: {spec: {containers: {env: {name: string; valueFrom?: unknown}[]}[]}}})
      .template.spec.containers[0]
    expect(container.env.find((e) => e.name === 'APP_VERSION')?.valueFrom).toEqual({
      fieldRef: {fieldPath: "metadata.labels['app.kubernetes.io/version']"},
    })
  })
})
