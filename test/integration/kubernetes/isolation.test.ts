import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDeploy} from '../../../src/deploy/engine.js'
import {kubeClients, kubeHttp} from '../../../src/kubernetes/client.js'
import {
  baseConfig,
  CONTEXT,
  kubeProject,
  projectImages,
  projectNs,
  secondContext,
  SECURE_SERVICE,
  type KubeProject,
} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'

/**
 * Tenant isolation read back from the sandbox's real kube-apiserver after a deploy of every
 * tenancy model. kwok does not enforce NetworkPolicy, so the policies' exact selectors and ports
 * are asserted as the apiserver stores them; the pods' Secret references are read from the
 * Deployments each namespace holds.
 */
describe('tenant isolation (sandbox)', () => {
  let t: KubeProject
  const k = () => kubeClients({context: CONTEXT})

  beforeAll(() => {
    t = kubeProject()
    secondContext(t, `${t.name}-eu`)
    t.config = {
      ...baseConfig(
        t,
        {
          catalog: {...SECURE_SERVICE, port: 8081},
          payments: {...SECURE_SERVICE, port: 8082, egress: [{cidrs: ['203.0.113.0/24'], ports: [443]}]},
          checkout: {...SECURE_SERVICE, port: 8083, dependsOn: ['catalog', 'payments']},
        },
        [
          {name: 'acme', model: 'shared'},
          {
            name: 'globex',
            model: 'isolated-database',
            services: ['checkout'],
            database: {urlEnv: 'GLOBEX_URL', egress: {cidrs: ['10.20.1.0/24'], ports: [5432]}},
          },
          {
            name: 'hooli',
            model: 'isolated-database',
            database: {
              urlEnv: 'HOOLI_URL',
              egress: {namespace: 'hooli-db', podLabels: {app: 'postgres'}, ports: [5432]},
            },
          },
          {
            name: 'initech',
            model: 'dedicated-namespace',
            namespace: projectNs(t, 'initech'),
            services: ['catalog', 'checkout'],
            database: {urlEnv: 'INITECH_URL', egress: {cidrs: ['10.30.0.5/32'], ports: [5432]}},
          },
          {name: 'umbrella', model: 'dedicated-cluster', cluster: 'eu', namespace: projectNs(t, 'umbrella')},
        ],
      ),
      clusters: {main: {context: CONTEXT}, eu: {context: `${t.name}-eu`, kubeconfig: 'tenant-kubeconfig.yaml'}},
    }
    // A gateway without a namespace: it runs in the shared namespace.
    ;(t.config.environments as Record<string, Record<string, unknown>>).production.gateway = {name: 'public'}
    t.writeConfig()
  })
  afterAll(async () => t.cleanup())

  // Raw JSON as the apiserver stores it (the typed client renames `from` to `_from`); the "eu" context is the same sandbox cluster.
  const policies = async (namespace: string) => {
    const list = await kubeHttp({context: CONTEXT}).request<{items: {metadata: {name: string}; spec: any}[]}>(
      'GET',
      `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`,
    )
    return Object.fromEntries(list.items.map((p) => [p.metadata.name, p.spec]))
  }
  const secretRefs = async (namespace: string, name: string) => {
    const d = await k().apps.readNamespacedDeployment({name, namespace})
    return (d.spec!.template.spec!.containers[0].env ?? [])
      .filter((e) => e.valueFrom?.secretKeyRef)
      .map((e) => `${e.name}=${e.valueFrom!.secretKeyRef!.name}/${e.valueFrom!.secretKeyRef!.key}`)
  }

  it("every namespace denies by default and allows only DNS, the gateway's pods on service ports, dependsOn and each tenant's own database", async () => {
    const r = await runDeploy(
      {
        project: await t.load(),
        images: projectImages(t, ['catalog', 'payments', 'checkout']),
        skipVerify: true,
        wait: false,
      },
      testContext(),
    )
    expect(r.apply.failed).toEqual([])
    const tcp = (port: number) => ({port, protocol: 'TCP'})
    const dns = {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'kube-system'}},
              podSelector: {matchLabels: {'k8s-app': 'kube-dns'}},
            },
          ],
          ports: [{port: 53, protocol: 'UDP'}, tcp(53)],
        },
      ],
    }
    const gateway = {
      namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': projectNs(t)}},
      podSelector: {matchLabels: {'gateway.networking.k8s.io/gateway-name': 'public'}},
    }
    const byService = (service: string) => ({podSelector: {matchLabels: {'retailops.dev/service': service}}})

    const shared = await policies(projectNs(t))
    expect(Object.keys(shared).sort()).toEqual([
      'allow-dns',
      'allow-gateway',
      'catalog',
      'checkout',
      'default-deny',
      'payments',
    ])
    expect(shared['default-deny']).toEqual({podSelector: {}, policyTypes: ['Ingress', 'Egress']})
    expect(shared['allow-dns']).toEqual(dns)
    expect(shared['allow-gateway']).toEqual({
      podSelector: {matchLabels: {'gateway.networking.k8s.io/gateway-name': 'public'}},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{}],
      egress: [
        {
          to: [
            {
              namespaceSelector: {matchLabels: {'app.kubernetes.io/part-of': t.name}},
              podSelector: {matchExpressions: [{key: 'retailops.dev/service', operator: 'Exists'}]},
            },
          ],
          ports: [tcp(8081), tcp(8082), tcp(8083)],
        },
      ],
    })
    expect(shared.catalog).toEqual({
      podSelector: {matchLabels: {'app.kubernetes.io/name': 'catalog', 'app.kubernetes.io/instance': 'catalog'}},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [
            {podSelector: {matchExpressions: [{key: 'retailops.dev/service', operator: 'In', values: ['checkout']}]}},
            gateway,
          ],
          ports: [tcp(8081)],
        },
      ],
      egress: [
        {
          to: [
            {
              namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'hooli-db'}},
              podSelector: {matchLabels: {app: 'postgres'}},
            },
          ],
          ports: [tcp(5432)],
        },
      ],
    })
    expect(shared.checkout.ingress).toEqual([{from: [gateway], ports: [tcp(8083)]}])
    expect(shared.checkout.egress).toEqual([
      {to: [byService('catalog')], ports: [tcp(8081)]},
      {to: [byService('payments')], ports: [tcp(8082)]},
      {to: [{ipBlock: {cidr: '10.20.1.0/24'}}], ports: [tcp(5432)]},
      {
        to: [
          {
            namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'hooli-db'}},
            podSelector: {matchLabels: {app: 'postgres'}},
          },
        ],
        ports: [tcp(5432)],
      },
    ])
    // payments serves hooli (every service) but not globex (checkout only).
    expect(shared.payments.egress).toEqual([
      {to: [{ipBlock: {cidr: '203.0.113.0/24'}}], ports: [tcp(443)]},
      {
        to: [
          {
            namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'hooli-db'}},
            podSelector: {matchLabels: {app: 'postgres'}},
          },
        ],
        ports: [tcp(5432)],
      },
    ])

    const initech = await policies(projectNs(t, 'initech'))
    expect(Object.keys(initech).sort()).toEqual(['allow-dns', 'catalog', 'checkout', 'default-deny'])
    expect(initech['default-deny']).toEqual({podSelector: {}, policyTypes: ['Ingress', 'Egress']})
    expect(initech['allow-dns']).toEqual(dns)
    // Reached by its own checkout and the gateway's pods (not every shared pod), on its port only.
    expect(initech.catalog.ingress).toEqual([
      {
        from: [
          {podSelector: {matchExpressions: [{key: 'retailops.dev/service', operator: 'In', values: ['checkout']}]}},
          gateway,
        ],
        ports: [tcp(8081)],
      },
    ])
    expect(initech.checkout.egress).toEqual([
      {to: [byService('catalog')], ports: [tcp(8081)]},
      {to: [{ipBlock: {cidr: '10.30.0.5/32'}}], ports: [tcp(5432)]},
    ])

    const umbrella = await policies(projectNs(t, 'umbrella'))
    expect(Object.keys(umbrella).sort()).toEqual(['allow-dns', 'catalog', 'checkout', 'default-deny', 'payments'])
    expect(umbrella.catalog.egress).toBeUndefined()
  })

  it('each Deployment references only the database Secrets of the tenants it serves', async () => {
    expect(await secretRefs(projectNs(t), 'checkout')).toEqual([
      `TENANT_GLOBEX_DATABASE_URL=${t.name}-globex-database/GLOBEX_URL`,
      `TENANT_HOOLI_DATABASE_URL=${t.name}-hooli-database/HOOLI_URL`,
    ])
    expect(await secretRefs(projectNs(t), 'catalog')).toEqual([
      `TENANT_HOOLI_DATABASE_URL=${t.name}-hooli-database/HOOLI_URL`,
    ])
    expect(await secretRefs(projectNs(t), 'payments')).toEqual([
      `TENANT_HOOLI_DATABASE_URL=${t.name}-hooli-database/HOOLI_URL`,
    ])
    expect(await secretRefs(projectNs(t, 'initech'), 'checkout')).toEqual([
      `DATABASE_URL=${t.name}-initech-database/INITECH_URL`,
    ])
    expect(await secretRefs(projectNs(t, 'initech'), 'catalog')).toEqual([
      `DATABASE_URL=${t.name}-initech-database/INITECH_URL`,
    ])
    expect(await secretRefs(projectNs(t, 'umbrella'), 'checkout')).toEqual([])
    // No Deployment in a tenant namespace names another tenant's Secret.
    for (const ns of [projectNs(t, 'initech'), projectNs(t, 'umbrella')]) {
      const list = await k().apps.listNamespacedDeployment({namespace: ns})
      const text = JSON.stringify(list.items.map((d) => d.spec?.template))
      for (const other of ['globex', 'hooli', 'acme']) expect(text, ns).not.toContain(`${t.name}-${other}-database`)
    }
  })

  it('a tenant namespace colliding with the shared namespace is a configuration error (exit 3) and nothing is created', async () => {
    const colliding = {
      ...t.config,
      tenants: [
        {name: 'initech', model: 'dedicated-namespace', namespace: projectNs(t)},
        {name: 'hooli', model: 'dedicated-namespace', namespace: projectNs(t, 'fresh')},
        {name: 'other', model: 'dedicated-namespace', namespace: projectNs(t, 'fresh')},
      ],
    }
    const saved = t.config
    t.config = colliding
    t.writeConfig()
    try {
      const r = await runCli(
        [
          'deploy',
          ...projectImages(t, ['catalog', 'payments', 'checkout']).flatMap((i) => ['--image', i]),
          '--skip-verify',
          '--json',
        ],
        {cwd: t.dir},
      )
      expect(r.exitCode, r.stdout).toBe(3)
      const doc = JSON.parse(r.stdout) as {error: {message: string}}
      expect(r.stdout).toContain('tenants[0].namespace')
      expect(r.stdout).toContain('tenants[2].namespace')
      expect(doc.error.message).toContain('environments.production.namespace')
      await expect(k().core.readNamespace({name: projectNs(t, 'fresh')})).rejects.toBeTruthy()
    } finally {
      t.config = saved
      t.writeConfig()
    }
  })
})
