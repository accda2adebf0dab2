// Tenant isolation as rendered: default-deny ingress and egress in every tenancy model, then only
// DNS, gateway → service ports, service → service as dependsOn declares, and each tenant's own
// database; credentials only in the pods of the tenants they belong to; colliding namespaces refused.
import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {renderManifests} from '../../../src/deploy/render.js'
import {ConfigError} from '../../../src/errors/index.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {digestImages, project} from './fixtures.js'

const find = (objects: KubeObject[], kind: string, name: string, namespace: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace) as any

const DNS = {
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
      ports: [
        {port: 53, protocol: 'UDP'},
        {port: 53, protocol: 'TCP'},
      ],
    },
  ],
}

const CONFIG = (gateway: string) => `
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {context: kwok-retailops}, eu: {context: eu-ctx}}
environments:
  production: {cluster: main, namespace: shop, gateway: ${gateway}}
services:
  catalog: {tier: operational, port: 8081}
  payments: {tier: revenue-critical, port: 8082, egress: [{cidrs: [203.0.113.0/24], ports: [443]}]}
  checkout: {tier: revenue-critical, port: 8083, dependsOn: [payments, catalog]}
tenants:
  - {name: acme, model: shared}
  - {name: globex, model: isolated-database, services: [checkout], database: {urlEnv: GLOBEX_URL, egress: {cidrs: [10.20.1.0/24], ports: [5432]}}}
  - {name: hooli, model: isolated-database, services: [catalog, checkout], database: {urlEnv: HOOLI_URL, egress: {namespace: hooli-db, podLabels: {app: postgres}, ports: [5432]}}}
  - {name: initech, model: dedicated-namespace, services: [catalog, checkout], database: {urlEnv: INITECH_URL, egress: {cidrs: [10.30.0.5/32], ports: [5432]}}}
  - {name: umbrella, model: dedicated-cluster, cluster: eu, namespace: umbrella}
`

describe('tenant isolation: network policies per tenancy model', () => {
  const p = project(CONFIG('{name: public}'))
  const plan = renderManifests({project: p, images: digestImages(p)})
  const all = plan.targets.flatMap((t) => t.objects)

  it('every namespace of every model denies all ingress and egress, and allows DNS to kube-dns only', () => {
    for (const ns of ['shop', 'shop-initech', 'umbrella']) {
      expect(find(all, 'NetworkPolicy', 'default-deny', ns).spec, ns).toEqual({
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
      })
      expect(find(all, 'NetworkPolicy', 'allow-dns', ns).spec, ns).toEqual(DNS)
    }
    const single = project(
      'project: shop\nregistry: {url: 127.0.0.1:5000}\nservices:\n  catalog: {tier: operational}\n',
    )
    const objects = renderManifests({project: single, images: digestImages(single)}).targets[0].objects
    expect(find(objects, 'NetworkPolicy', 'default-deny', 'retail').spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    })
    expect(find(objects, 'NetworkPolicy', 'allow-dns', 'retail').spec).toEqual(DNS)
  })

  it('without gateway.namespace the gateway is its own pods in the shared namespace, never every shared pod', () => {
    const gatewayPeer = {
      namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'shop'}},
      podSelector: {matchLabels: {'gateway.networking.k8s.io/gateway-name': 'public'}},
    }
    // A dedicated tenant's catalog: reachable by its checkout and by the gateway's pods, on its port only.
    const catalog = find(all, 'NetworkPolicy', 'catalog', 'shop-initech').spec
    expect(catalog.podSelector).toEqual({
      matchLabels: {'app.kubernetes.io/name': 'catalog', 'app.kubernetes.io/instance': 'catalog-initech'},
    })
    expect(catalog.ingress).toEqual([
      {
        from: [
          {podSelector: {matchExpressions: [{key: 'retailops.dev/service', operator: 'In', values: ['checkout']}]}},
          gatewayPeer,
        ],
        ports: [{port: 8081, protocol: 'TCP'}],
      },
    ])
    expect(find(all, 'NetworkPolicy', 'checkout', 'shop-initech').spec.ingress).toEqual([
      {from: [gatewayPeer], ports: [{port: 8083, protocol: 'TCP'}]},
    ])
    // The gateway's own pods in the shared namespace: the way in, and out only to the services' ports.
    expect(find(all, 'NetworkPolicy', 'allow-gateway', 'shop').spec).toEqual({
      podSelector: {matchLabels: {'gateway.networking.k8s.io/gateway-name': 'public'}},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{}],
      egress: [
        {
          to: [
            {
              namespaceSelector: {matchLabels: {'app.kubernetes.io/part-of': 'shop'}},
              podSelector: {matchExpressions: [{key: 'retailops.dev/service', operator: 'Exists'}]},
            },
          ],
          ports: [8081, 8082, 8083].map((port) => ({port, protocol: 'TCP'})),
        },
      ],
    })
    expect(find(all, 'NetworkPolicy', 'allow-gateway', 'shop-initech')).toBeUndefined()
    // The tenant's routes attach to that gateway, not to one in the tenant's own namespace.
    expect(find(all, 'HTTPRoute', 'catalog', 'shop-initech').spec.parentRefs).toEqual([
      {name: 'public', namespace: 'shop'},
    ])
    expect(find(all, 'HTTPRoute', 'catalog', 'shop').spec.parentRefs).toEqual([{name: 'public'}])
  })

  it('a gateway in a namespace of its own is selected as a namespace, or by gateway.podLabels', () => {
    const own = project(CONFIG('{name: public, namespace: gateway}'))
    const objects = renderManifests({project: own, images: digestImages(own)}).targets.flatMap((t) => t.objects)
    expect(find(objects, 'NetworkPolicy', 'checkout', 'shop').spec.ingress[0].from).toEqual([
      {namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'gateway'}}},
    ])
    expect(objects.some((o) => o.metadata.name === 'allow-gateway')).toBe(false)
    const labelled = project(CONFIG('{name: public, namespace: gateway, podLabels: {app: envoy}}'))
    const lo = renderManifests({project: labelled, images: digestImages(labelled)}).targets.flatMap((t) => t.objects)
    expect(find(lo, 'NetworkPolicy', 'checkout', 'shop').spec.ingress[0].from).toEqual([
      {
        namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'gateway'}},
        podSelector: {matchLabels: {app: 'envoy'}},
      },
    ])
  })

  it("egress: the services dependsOn names (their ports), declared destinations, and each tenant's own database", () => {
    const checkout = find(all, 'NetworkPolicy', 'checkout', 'shop').spec
    expect(checkout.policyTypes).toEqual(['Ingress', 'Egress'])
    expect(checkout.egress).toEqual([
      {
        to: [{podSelector: {matchLabels: {'retailops.dev/service': 'payments'}}}],
        ports: [{port: 8082, protocol: 'TCP'}],
      },
      {
        to: [{podSelector: {matchLabels: {'retailops.dev/service': 'catalog'}}}],
        ports: [{port: 8081, protocol: 'TCP'}],
      },
      // The shared checkout serves globex and hooli, whose databases are their own.
      {to: [{ipBlock: {cidr: '10.20.1.0/24'}}], ports: [{port: 5432, protocol: 'TCP'}]},
      {
        to: [
          {
            namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'hooli-db'}},
            podSelector: {matchLabels: {app: 'postgres'}},
          },
        ],
        ports: [{port: 5432, protocol: 'TCP'}],
      },
    ])
    // catalog serves hooli but not globex; payments serves neither, and calls its provider.
    expect(find(all, 'NetworkPolicy', 'catalog', 'shop').spec.egress).toEqual([
      {
        to: [
          {
            namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'hooli-db'}},
            podSelector: {matchLabels: {app: 'postgres'}},
          },
        ],
        ports: [{port: 5432, protocol: 'TCP'}],
      },
    ])
    expect(find(all, 'NetworkPolicy', 'payments', 'shop').spec.egress).toEqual([
      {to: [{ipBlock: {cidr: '203.0.113.0/24'}}], ports: [{port: 443, protocol: 'TCP'}]},
    ])
    // A dedicated tenant's checkout: its catalog (payments does not run there) and its own database only.
    expect(find(all, 'NetworkPolicy', 'checkout', 'shop-initech').spec.egress).toEqual([
      {
        to: [{podSelector: {matchLabels: {'retailops.dev/service': 'catalog'}}}],
        ports: [{port: 8081, protocol: 'TCP'}],
      },
      {to: [{ipBlock: {cidr: '10.30.0.5/32'}}], ports: [{port: 5432, protocol: 'TCP'}]},
    ])
    // Nothing to reach: no egress rule at all, so Egress in policyTypes denies everything.
    expect(find(all, 'NetworkPolicy', 'catalog', 'umbrella').spec).toMatchObject({policyTypes: ['Ingress', 'Egress']})
    expect(find(all, 'NetworkPolicy', 'catalog', 'umbrella').spec.egress).toBeUndefined()
  })

  it('each pod receives only the database credentials of the tenants it serves', () => {
    const env = (ns: string, service: string) =>
      find(all, 'Deployment', service, ns).spec.template.spec.containers[0].env as {
        name: string
        value?: string
        valueFrom?: any
      }[]
    const secretRefs = (ns: string, service: string) =>
      env(ns, service)
        .filter((e) => e.valueFrom?.secretKeyRef)
        .map((e) => `${e.name}=${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`)
    expect(secretRefs('shop', 'checkout')).toEqual([
      'TENANT_GLOBEX_DATABASE_URL=shop-globex-database/GLOBEX_URL',
      'TENANT_HOOLI_DATABASE_URL=shop-hooli-database/HOOLI_URL',
    ])
    expect(secretRefs('shop', 'catalog')).toEqual(['TENANT_HOOLI_DATABASE_URL=shop-hooli-database/HOOLI_URL'])
    expect(secretRefs('shop', 'payments')).toEqual([])
    expect(env('shop', 'payments')).toContainEqual({name: 'RETAILOPS_TENANTS', value: 'acme'})
    expect(env('shop', 'catalog')).toContainEqual({name: 'RETAILOPS_TENANTS', value: 'acme,hooli'})
    expect(secretRefs('shop-initech', 'checkout')).toEqual(['DATABASE_URL=shop-initech-database/INITECH_URL'])
    expect(secretRefs('umbrella', 'checkout')).toEqual([])
  })

  it("says when a tenant's database has no egress destination (its pods could not reach it)", () => {
    const p2 = project(CONFIG('{name: public}').replace(', egress: {cidrs: [10.20.1.0/24], ports: [5432]}', ''))
    expect(renderManifests({project: p2, images: digestImages(p2)}).notes).toContain(
      "Tenant globex's pods cannot reach its database under default-deny egress until tenants[].database.egress says where it is (cidrs or namespace, and ports).",
    )
  })

  it("--namespace onto a tenant's namespace is refused before anything is rendered", () => {
    expect(() => renderManifests({project: p, images: digestImages(p), namespace: 'shop-initech'})).toThrow(
      /Namespace shop-initech would hold both the shared tenants \(acme, globex, hooli\) and tenant initech/,
    )
  })
})

describe('colliding tenant namespaces are a configuration error naming the keys', () => {
  const base = `project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}, eu: {}}
environments: {production: {cluster: main, namespace: shop}}
services:
  catalog: {tier: operational}
tenants:
`
  const issues = (tenants: string) => {
    try {
      parseConfig(base + tenants, 'retailops.yaml')
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError)
      return (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)
    }
    return []
  }

  it('a tenant namespace equal to the shared namespace', () => {
    expect(issues('  - {name: initech, model: dedicated-namespace, namespace: shop}\n')).toEqual([
      'tenants[0].namespace: tenant "initech" would deploy into namespace "shop" of cluster "main", which environments.production.namespace already uses: their objects would overwrite each other and their pods share one namespace. Give the tenant a namespace of its own (tenants[0].namespace)',
    ])
  })

  it('two tenants in one namespace, explicit or by default', () => {
    expect(
      issues(
        '  - {name: initech, model: dedicated-namespace, namespace: shared-ns}\n  - {name: hooli, model: dedicated-namespace, namespace: shared-ns}\n',
      )[0],
    ).toMatch(
      /^tenants\[1\]\.namespace: tenant "hooli" would deploy into namespace "shared-ns" of cluster "main", which tenants\[0\]\.namespace already uses/,
    )
    expect(
      issues(
        '  - {name: initech, model: dedicated-namespace, namespace: shop-hooli}\n  - {name: hooli, model: dedicated-namespace}\n',
      )[0],
    ).toMatch(
      /^tenants\[1\]\.name: tenant "hooli" would deploy into namespace "shop-hooli" of cluster "main", which tenants\[0\]\.namespace already uses/,
    )
    // Dedicated clusters: two tenants without a namespace both take the environment's namespace in that cluster.
    expect(
      issues(
        '  - {name: a, model: dedicated-cluster, cluster: eu}\n  - {name: b, model: dedicated-cluster, cluster: eu}\n',
      )[0],
    ).toMatch(
      /^tenants\[1\]\.name: tenant "b" would deploy into namespace "shop" of cluster "eu", which tenants\[0\] \("a"\) already uses/,
    )
    expect(issues('  - {name: a, model: dedicated-cluster, cluster: main}\n')[0]).toMatch(
      /which environments\.production\.namespace already uses/,
    )
  })

  it('distinct namespaces, or the same name in different clusters, are fine', () => {
    expect(
      issues(
        '  - {name: a, model: dedicated-cluster, cluster: eu}\n  - {name: b, model: dedicated-namespace}\n  - {name: c, model: dedicated-cluster, cluster: eu, namespace: c}\n',
      ),
    ).toEqual([])
  })
})
