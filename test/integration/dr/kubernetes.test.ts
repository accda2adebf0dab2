import {mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {registryClient} from '../../../src/docker/registry.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {cli, random, drProject, watchDrills} from './helpers.js'

// A namespace of retailops-managed objects on the sandbox cluster, restored into a drill
// namespace and checked for recoverability against the sandbox registry.
const sandbox = sandboxEnv()
const kc = new k8s.KubeConfig()
kc.loadFromDefault()
kc.setCurrentContext(sandbox.context)
const core = kc.makeApiClient(k8s.CoreV1Api)
const apps = kc.makeApiClient(k8s.AppsV1Api)
const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
const ns = `t-dr-${random()}`
const labels = {
  'app.kubernetes.io/managed-by': 'retailops',
  'app.kubernetes.io/name': 'orders',
  'retailops.dev/service': 'orders',
}
let image: string

function config(extra = ''): string {
  return `
project: shop
registry: {url: ${sandbox.registry}, insecure: true}
clusters: {sandbox: {context: ${sandbox.context}}}
environments: {test: {cluster: sandbox, namespace: ${ns}, production: false, router: replicas}}
services:
  orders:
    tier: revenue-critical
    secrets: [orders-db]
    configMaps: [orders-config]
    topics: [order-events]
    searchIndexes: [orders]
${extra}
`
}

const DATASTORE = `datastores:
  - {name: shop-config, service: orders, provider: kubernetes, kubernetes: {waitTimeout: 2m}}`

function definitions(dir: string): void {
  mkdirSync(path.join(dir, 'definitions/topics'), {recursive: true})
  mkdirSync(path.join(dir, 'definitions/search-indexes'), {recursive: true})
  writeFileSync(
    path.join(dir, 'definitions/topics/order-events.yaml'),
    'name: order-events\npartitions: 6\nreplicationFactor: 3\n',
  )
  writeFileSync(
    path.join(dir, 'definitions/search-indexes/orders.json'),
    JSON.stringify({mappings: {properties: {id: {type: 'keyword'}, total: {type: 'double'}}}}),
  )
}

async function drillNamespaces(): Promise<string[]> {
  return (await core.listNamespace({labelSelector: 'retailops.dev/drill'})).items
    .map((n) => n.metadata!.name!)
    .filter((n) => !n.startsWith('t-'))
}

beforeAll(async () => {
  const client = await registryClient(sandbox.registry, {insecure: true})
  const [repo, tag] = sandbox.baseImage.split(':')
  const head = await client.headManifest(repo, tag)
  expect(head).toBeDefined()
  image = `${sandbox.registry}/${repo}@${head!.digest}`
  await core.createNamespace({body: {metadata: {name: ns}}})
  const meta = (name: string) => ({name, namespace: ns, labels})
  const specs: k8s.KubernetesObject[] = [
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('orders')},
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta('orders-config'),
      data: {LOG_LEVEL: 'info'},
    } as k8s.KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta('orders-db'),
      stringData: {DATABASE_URL: 'postgres://orders:not-a-real-password@db/orders'},
    } as k8s.KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('orders'),
      spec: {type: 'NodePort', selector: {'app.kubernetes.io/name': 'orders'}, ports: [{port: 80, targetPort: 8080}]},
    } as k8s.KubernetesObject,
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta('orders'),
      spec: {minAvailable: 1, selector: {matchLabels: {'app.kubernetes.io/name': 'orders'}}},
    } as k8s.KubernetesObject,
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta('orders'),
      spec: {podSelector: {matchLabels: {'app.kubernetes.io/name': 'orders'}}, policyTypes: ['Ingress']},
    } as k8s.KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('orders'),
      spec: {
        replicas: 2,
        selector: {matchLabels: {'app.kubernetes.io/name': 'orders'}},
        template: {
          metadata: {labels},
          spec: {
            serviceAccountName: 'orders',
            containers: [
              {
                name: 'app',
                image,
                envFrom: [{configMapRef: {name: 'orders-config'}}, {secretRef: {name: 'orders-db'}}],
              },
            ],
          },
        },
      },
    } as k8s.KubernetesObject,
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: meta('orders'),
      spec: {
        scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders'},
        minReplicas: 2,
        maxReplicas: 4,
        metrics: [{type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}}],
      },
    } as k8s.KubernetesObject,
  ]
  for (const o of specs) await objects.create(o)
})

afterAll(async () => {
  await core.deleteNamespace({name: ns}).catch(() => {})
})

describe('kubernetes restore drill and recoverability checks (sandbox cluster and registry)', () => {
  it('restores into a namespace locked down first (restricted, default-deny) with placeholder Secrets, reports every object, deletes it; the source is untouched', async () => {
    const before = (await apps.readNamespacedDeployment({name: 'orders', namespace: ns})).metadata!.generation
    const p = drProject(config(DATASTORE))
    definitions(p.dir)
    const watching = await watchDrills(kc)
    const result = await cli(['dr', 'drill', '--json'], {cwd: p.dir}).finally(() => setTimeout(watching.stop, 1000))
    await new Promise((r) => setTimeout(r, 1500))
    expect(result.exitCode, result.stdout + result.stderr).toBe(0)
    const record = JSON.parse(result.stdout).result
    const ds = record.datastores[0]
    const drillNs = `retailops-drill-${record.id}-shop-config`
    expect(ds).toMatchObject({
      name: 'shop-config',
      provider: 'kubernetes',
      status: 'passed',
      rto: {status: 'pass'},
      rpo: {status: 'not-applicable'},
    })
    expect(ds.target).toBe(`namespace ${drillNs}`)
    expect(ds.evidence.snapshotCounts).toEqual({
      ServiceAccount: 1,
      ConfigMap: 1,
      Secret: 1,
      NetworkPolicy: 1,
      Service: 1,
      PodDisruptionBudget: 1,
      Deployment: 1,
      HorizontalPodAutoscaler: 1,
    })
    expect(ds.evidence.restoreNotes).toEqual(['Service orders: NodePort restored as ClusterIP'])
    // The report says exactly what was and was not restored, with reasons.
    expect(
      ds.inventory.map((i: {kind: string; name: string; outcome: string}) => `${i.kind} ${i.name}: ${i.outcome}`),
    ).toEqual([
      'ServiceAccount orders: modified',
      'ConfigMap orders-config: restored',
      'Secret orders-db: placeholder',
      'NetworkPolicy orders: not-restored',
      'Service orders: modified',
      'PodDisruptionBudget orders: restored',
      'Deployment orders: modified',
      'HorizontalPodAutoscaler orders: restored',
    ])
    expect(ds.evidence.restoredByKind).toEqual({
      ServiceAccount: {modified: 1},
      ConfigMap: {restored: 1},
      Secret: {placeholder: 1},
      NetworkPolicy: {'not-restored': 1},
      Service: {modified: 1},
      PodDisruptionBudget: {restored: 1},
      Deployment: {modified: 1},
      HorizontalPodAutoscaler: {restored: 1},
    })
    expect(ds.inventory[2].reason).toBe(
      'placeholder: 1 key(s) (DATABASE_URL) with empty values; the value was not copied',
    )
    expect(ds.validations.map((v: {name: string; passed: boolean}) => [v.name, v.passed])).toEqual([
      ['objects-restored', true],
      ['no-secret-values', true],
      ['isolated', true],
      ['pod-security-restricted', true],
      ['available-orders', true],
    ])
    expect(ds.validations[0].value).toBe('7')
    expect(readFileSync(record.files.markdown, 'utf8')).toContain(
      '| NetworkPolicy | orders | not-restored | its allow rules could open paths out of the drill namespace',
    )

    // Read back from the cluster, as it happened: the namespace was created enforcing restricted.
    const seen = watching.events.filter((e) => e.namespace === drillNs)
    const added = (kind: string) => seen.filter((e) => e.type === 'ADDED' && e.kind === kind)
    const [namespace] = added('Namespace')
    expect(namespace.object.metadata!.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'latest',
      'retailops.dev/drill': record.id,
    })
    // Its NetworkPolicies: default-deny of all ingress and egress, and pod-to-pod inside it; the source's own policy was not copied.
    const policies = added('NetworkPolicy')
    expect(policies.map((e) => e.name).sort()).toEqual([
      'retailops-drill-allow-same-namespace',
      'retailops-drill-default-deny',
    ])
    expect(policies.find((e) => e.name === 'retailops-drill-default-deny')!.object.spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    })
    expect(policies.find((e) => e.name === 'retailops-drill-allow-same-namespace')!.object.spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{from: [{podSelector: {}}]}],
      egress: [{to: [{podSelector: {}}]}],
    })
    // Ordering: both policies existed (etcd revision) before the first restored object and the first pod.
    // (The cluster's own controllers add a default ServiceAccount and kube-root-ca.crt to every new
    // namespace, racing the policies: only what the drill restored carries its label.)
    const restored = seen.filter(
      (e) =>
        e.type === 'ADDED' &&
        !['Namespace', 'NetworkPolicy'].includes(e.kind) &&
        (e.kind === 'Pod' || e.object.metadata!.labels?.['retailops.dev/drill'] === record.id),
    )
    expect(restored.map((e) => e.kind)).toEqual(
      expect.arrayContaining(['Secret', 'ConfigMap', 'ServiceAccount', 'Service', 'Deployment', 'Pod']),
    )
    expect(Math.max(...policies.map((e) => e.rv))).toBeLessThan(Math.min(...restored.map((e) => e.rv)))
    expect(namespace.rv).toBeLessThan(Math.min(...policies.map((e) => e.rv)))
    // The Secret: same name and keys, empty values; the source's value never reached the drill namespace.
    const secrets = added('Secret')
    expect(secrets.map((e) => [e.name, e.object.type, e.object.data ?? {}])).toEqual([
      ['orders-db', 'Opaque', {DATABASE_URL: ''}],
    ])
    expect(JSON.stringify(seen.map((e) => e.object))).not.toContain(
      Buffer.from('postgres://orders:not-a-real-password@db/orders').toString('base64'),
    )
    // The pods the API server admitted under restricted carry the filled-in security context, and no API token.
    const pods = added('Pod')
    expect(pods).toHaveLength(2)
    for (const pod of pods) {
      const spec = pod.object.spec as {
        securityContext: object
        automountServiceAccountToken: boolean
        containers: {securityContext: object}[]
      }
      expect(spec.securityContext).toMatchObject({runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}})
      expect(spec.automountServiceAccountToken).toBe(false)
      expect(spec.containers[0].securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        capabilities: {drop: ['ALL']},
      })
    }

    expect(record.cleanup).toMatchObject([{kind: 'namespace', resource: drillNs, status: 'removed'}])
    // The drill namespace is gone, the source unchanged.
    await expect(core.readNamespace({name: drillNs})).rejects.toMatchObject({code: 404})
    // (Status updates move resourceVersion; the spec's generation and the field managers show writes.)
    const after = await apps.readNamespacedDeployment({name: 'orders', namespace: ns})
    expect(after.metadata!.generation).toBe(before)
    for (const o of [
      after,
      await core.readNamespacedService({name: 'orders', namespace: ns}),
      await core.readNamespacedSecret({name: 'orders-db', namespace: ns}),
    ]) {
      expect(o.metadata!.managedFields!.map((m) => m.manager)).not.toContain('retailops-dr')
    }
    // The snapshot evidence holds the Secret as a reference, never its value.
    const snapshot = readFileSync(path.join(record.files.dir, ds.evidence.snapshotFile), 'utf8')
    expect(snapshot).toContain('dataSha256')
    expect(snapshot).not.toContain('not-a-real-password')
    expect(snapshot).not.toContain(Buffer.from('postgres://orders:not-a-real-password@db/orders').toString('base64'))
    // Recoverability: the deployed digest, the Secret and ConfigMap, the definitions.
    expect(
      record.recoverability.map((c: {kind: string; subject: string; status: string}) => [c.kind, c.subject, c.status]),
    ).toEqual([
      ['topic', 'order-events', 'pass'],
      ['searchIndex', 'orders', 'pass'],
      ['image', image, 'pass'],
      ['secret', 'orders-db', 'pass'],
      ['configMap', 'orders-config', 'pass'],
    ])
    expect(await drillNamespaces()).not.toContain(drillNs)
  })

  it('leaves out a workload that breaks Pod Security restricted, says why, and fails the drill (exit 41)', async () => {
    const agent = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name: 'agent', namespace: ns, labels},
      spec: {
        replicas: 1,
        selector: {matchLabels: {app: 'agent'}},
        template: {
          metadata: {labels: {app: 'agent'}},
          spec: {hostNetwork: true, containers: [{name: 'agent', image, securityContext: {privileged: true}}]},
        },
      },
    } as k8s.KubernetesObject
    await objects.create(agent)
    try {
      const p = drProject(config(DATASTORE))
      definitions(p.dir)
      const watching = await watchDrills(kc)
      const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir}).finally(() =>
        setTimeout(watching.stop, 1000),
      )
      await new Promise((r) => setTimeout(r, 1500))
      expect(result.exitCode, result.stdout + result.stderr).toBe(41)
      const record = JSON.parse(result.stdout).result
      const ds = record.datastores[0]
      expect(ds.status).toBe('validation-failed')
      expect(ds.inventory).toContainEqual({
        kind: 'Deployment',
        name: 'agent',
        outcome: 'not-restored',
        reason:
          'violates Pod Security restricted, which the drill namespace enforces: hostNetwork: true; container agent: privileged: true',
      })
      expect(ds.validations.find((v: {name: string}) => v.name === 'pod-security-restricted')).toMatchObject({
        passed: false,
        message: expect.stringMatching(
          /^not restored, so not proven recoverable: Deployment agent \(violates Pod Security restricted/,
        ),
      })
      // The compliant workload was still restored and became available; the other never reached the cluster.
      expect(ds.validations.find((v: {name: string}) => v.name === 'available-orders')).toMatchObject({passed: true})
      const drillNs = `retailops-drill-${record.id}-shop-config`
      const deployments = watching.events
        .filter((e) => e.namespace === drillNs && e.kind === 'Deployment' && e.type === 'ADDED')
        .map((e) => e.name)
      expect(deployments).toEqual(['orders'])
      expect(record.cleanup).toMatchObject([{kind: 'namespace', resource: drillNs, status: 'removed'}])
    } finally {
      await objects.delete(agent).catch(() => {})
    }
  })

  it('restores every kind render produces (quota, limits, CronJob, KEDA, HTTPRoute), each made safe for the drill, and records RBAC without restoring it', async () => {
    // A second source namespace holding the kinds beyond the core ones, as a project that uses everything renders them.
    const source = `${ns}-all`
    await core.createNamespace({body: {metadata: {name: source}}})
    try {
      const meta = (name: string, extra: Record<string, unknown> = {}) => ({name, namespace: source, labels, ...extra})
      const selector = {matchLabels: {'app.kubernetes.io/name': 'orders'}}
      const pod = {metadata: {labels}, spec: {containers: [{name: 'app', image}]}}
      const created: k8s.KubernetesObject[] = [
        {apiVersion: 'v1', kind: 'ResourceQuota', metadata: meta('tenant-quota'), spec: {hard: {pods: '10'}}},
        {
          apiVersion: 'v1',
          kind: 'LimitRange',
          metadata: meta('tenant-limits'),
          spec: {limits: [{type: 'Container', defaultRequest: {cpu: '50m', memory: '64Mi'}}]},
        },
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: meta('orders'),
          spec: {replicas: 1, selector, template: pod},
        },
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: meta('reconcile'),
          spec: {schedule: '* * * * *', jobTemplate: {spec: {template: {spec: {...pod.spec, restartPolicy: 'Never'}}}}},
        },
        {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'TriggerAuthentication',
          metadata: meta('orders-prometheus'),
          spec: {secretTargetRef: [{parameter: 'bearerToken', name: 'orders-prometheus', key: 'token'}]},
        },
        {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'ScaledObject',
          metadata: meta('orders'),
          spec: {
            scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders'},
            minReplicaCount: 1,
            maxReplicaCount: 6,
            triggers: [
              {
                type: 'prometheus',
                name: 'carts',
                metadata: {serverAddress: 'http://127.0.0.1:9090', query: 'sum(rate(carts_total[1m]))', threshold: '5'},
                authenticationRef: {name: 'orders-prometheus'},
              },
            ],
          },
        },
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: meta('orders'),
          spec: {
            parentRefs: [{name: 'shop', namespace: 'gateways'}],
            rules: [
              {matches: [{path: {type: 'PathPrefix', value: '/orders'}}], backendRefs: [{name: 'orders', port: 80}]},
            ],
          },
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: meta('orders-reader'),
          rules: [{apiGroups: [''], resources: ['configmaps'], verbs: ['get']}],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: meta('orders-reader'),
          roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'orders-reader'},
          subjects: [{kind: 'ServiceAccount', name: 'default', namespace: source}],
        },
      ] as unknown as k8s.KubernetesObject[]
      for (const o of created) await objects.create(o)
      const p = drProject(
        config(`datastores:
  - {name: shop-config, service: orders, provider: kubernetes, kubernetes: {namespace: ${source}, waitTimeout: 2m}}`),
      )
      definitions(p.dir)
      const watching = await watchDrills(kc, [
        ['ResourceQuota', '/api/v1/resourcequotas'],
        ['LimitRange', '/api/v1/limitranges'],
        ['CronJob', '/apis/batch/v1/cronjobs'],
        ['TriggerAuthentication', '/apis/keda.sh/v1alpha1/triggerauthentications'],
        ['ScaledObject', '/apis/keda.sh/v1alpha1/scaledobjects'],
        ['HTTPRoute', '/apis/gateway.networking.k8s.io/v1/httproutes'],
        ['Role', '/apis/rbac.authorization.k8s.io/v1/roles'],
        ['RoleBinding', '/apis/rbac.authorization.k8s.io/v1/rolebindings'],
      ])
      const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: p.dir}).finally(() =>
        setTimeout(watching.stop, 1000),
      )
      await new Promise((r) => setTimeout(r, 1500))
      expect(result.exitCode, result.stdout + result.stderr).toBe(0)
      const record = JSON.parse(result.stdout).result
      const ds = record.datastores[0]
      const drillNs = `retailops-drill-${record.id}-shop-config`
      expect(ds.evidence.snapshotCounts).toEqual({
        ResourceQuota: 1,
        LimitRange: 1,
        Role: 1,
        RoleBinding: 1,
        TriggerAuthentication: 1,
        Deployment: 1,
        CronJob: 1,
        ScaledObject: 1,
        HTTPRoute: 1,
      })
      // The sandbox serves KEDA's and Gateway API's kinds: none was passed over.
      expect(ds.evidence.kindsNotServed).toBeUndefined()
      expect(
        ds.inventory.map(
          (i: {kind: string; outcome: string; reason?: string}) => `${i.kind}: ${i.outcome}: ${i.reason ?? ''}`,
        ),
      ).toEqual([
        'ResourceQuota: restored: ',
        'LimitRange: restored: ',
        "Role: not-restored: RBAC is not restored: the drill's pods run without API tokens, and the drill namespace grants no access the drill did not create",
        "RoleBinding: not-restored: RBAC is not restored: the drill's pods run without API tokens, and the drill namespace grants no access the drill did not create",
        'TriggerAuthentication: restored: ',
        expect.stringMatching(/^Deployment: modified: set /),
        expect.stringMatching(/^CronJob: modified: restored suspended; set /),
        "ScaledObject: modified: restored paused (autoscaling.keda.sh/paused, autoscaling.keda.sh/paused-replicas: 1, its Deployment's restored count)",
        'HTTPRoute: modified: restored detached (no parentRefs: no Gateway sends it traffic)',
      ])
      expect(ds.validations.map((v: {name: string; passed: boolean}) => [v.name, v.passed])).toEqual([
        ['objects-restored', true],
        ['no-secret-values', true],
        ['isolated', true],
        ['pod-security-restricted', true],
        ['available-orders', true],
      ])
      expect(ds.validations[0].value).toBe('7')

      // Read back from the cluster as each was created in the drill namespace.
      const mine = watching.events.filter(
        (e) =>
          e.namespace === drillNs &&
          e.type === 'ADDED' &&
          e.object.metadata!.labels?.['retailops.dev/drill'] === record.id,
      )
      const one = (kind: string) => {
        const found = mine.filter((e) => e.kind === kind)
        expect(found, kind).toHaveLength(1)
        return found[0]
      }
      expect(one('ResourceQuota').object.spec).toMatchObject({hard: {pods: '10'}})
      expect(one('LimitRange').object.spec).toMatchObject({limits: [{type: 'Container'}]})
      const cronJob = one('CronJob').object.spec as {suspend: boolean; schedule: string}
      expect(cronJob).toMatchObject({suspend: true, schedule: '* * * * *'})
      const scaled = one('ScaledObject').object
      expect(scaled.metadata!.annotations).toEqual({
        'autoscaling.keda.sh/paused': 'true',
        'autoscaling.keda.sh/paused-replicas': '1',
      })
      expect(scaled.spec).toMatchObject({minReplicaCount: 1, maxReplicaCount: 6})
      expect(one('TriggerAuthentication').object.spec).toEqual({
        secretTargetRef: [{parameter: 'bearerToken', name: 'orders-prometheus', key: 'token'}],
      })
      const route = one('HTTPRoute').object.spec as {parentRefs?: unknown; rules: {backendRefs: unknown}[]}
      expect(route.parentRefs).toBeUndefined()
      expect(route.rules[0].backendRefs).toEqual([{group: '', kind: 'Service', name: 'orders', port: 80, weight: 1}])
      // Order: quota and limits before the Deployment, the TriggerAuthentication before the ScaledObject that names it.
      expect(one('ResourceQuota').rv).toBeLessThan(one('Deployment').rv)
      expect(one('LimitRange').rv).toBeLessThan(one('Deployment').rv)
      expect(one('TriggerAuthentication').rv).toBeLessThan(one('ScaledObject').rv)
      // No Role or RoleBinding of the source reached the drill namespace.
      expect(
        watching.events.filter((e) => e.namespace === drillNs && ['Role', 'RoleBinding'].includes(e.kind)),
      ).toEqual([])
      // The drill's pods came up under the restored limits: the LimitRange's default requests were applied.
      const pods = watching.events.filter((e) => e.namespace === drillNs && e.kind === 'Pod' && e.type === 'ADDED')
      expect(pods).toHaveLength(1)
      expect((pods[0].object.spec as {containers: {resources: object}[]}).containers[0].resources).toMatchObject({
        requests: {cpu: '50m', memory: '64Mi'},
      })
      expect(record.cleanup).toMatchObject([{kind: 'namespace', resource: drillNs, status: 'removed'}])
      // The source keeps its live ScaledObject, schedule and route untouched.
      const live = await objects.read({
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: {name: 'orders', namespace: source},
      })
      expect(live.metadata!.annotations ?? {}).not.toHaveProperty('autoscaling.keda.sh/paused')
      const liveCron = await objects.read<k8s.KubernetesObject & {spec: {suspend?: boolean}}>({
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: {name: 'reconcile', namespace: source},
      })
      expect(liveCron.spec.suspend ?? false).toBe(false)
    } finally {
      await core.deleteNamespace({name: source}).catch(() => {})
    }
  })

  it('after a SIGKILL mid-drill, the next drill on the host deletes the namespace the killed one left', async () => {
    const workRoot = path.join(mkdtempSync(path.join(os.tmpdir(), 't-dr-work-')), 'dr-work')
    const p = drProject(config(DATASTORE))
    definitions(p.dir)
    const existing = new Set(await drillNamespaces())
    const child = cli(['dr', 'drill', '--json', '--no-recoverability'], {
      cwd: p.dir,
      env: {RETAILOPS_DR_WORK_DIR: workRoot},
    })
    // Kill it once its Deployment is in the drill namespace (it is then waiting for availability).
    let left: string | undefined
    for (let i = 0; i < 600 && !left; i++) {
      const fresh = (await drillNamespaces()).filter((n) => !existing.has(n))
      for (const n of fresh) if ((await apps.listNamespacedDeployment({namespace: n})).items.length > 0) left = n
      if (!left) await new Promise((r) => setTimeout(r, 50))
    }
    expect(left).toBeDefined()
    child.kill('SIGKILL')
    expect((await child).signal).toBe('SIGKILL')
    const id = (await core.readNamespace({name: left!})).metadata!.labels!['retailops.dev/drill']
    expect(JSON.parse(readFileSync(path.join(workRoot, id, 'lease.json'), 'utf8')).targets).toEqual([
      {kind: 'namespace', name: left, where: sandbox.context},
    ])

    const next = await cli(['dr', 'drill', '--json', '--no-recoverability'], {
      cwd: p.dir,
      env: {RETAILOPS_DR_WORK_DIR: workRoot},
    })
    expect(next.exitCode, next.stdout + next.stderr).toBe(0)
    const record = JSON.parse(next.stdout).result
    expect(record.leftovers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({kind: 'namespace', name: left, drillId: id, status: 'removed'}),
        expect.objectContaining({kind: 'work folder', name: path.join(workRoot, id), drillId: id, status: 'removed'}),
      ]),
    )
    // Deleted (or on its way out), and the work folder gone.
    const after = await core
      .readNamespace({name: left!})
      .catch((error: Error & {code?: number}) => (error.code === 404 ? undefined : Promise.reject(error)))
    expect(after === undefined || Boolean(after.metadata?.deletionTimestamp)).toBe(true)
    expect(readdirSync(workRoot)).toEqual([])
  })

  it('fails recoverability (exit 41) for a missing Secret, a missing topic definition and an image whose digest is gone', async () => {
    const gone = `${sandbox.registry}/retailops/node-base@sha256:${'0'.repeat(64)}`
    await apps
      .patchNamespacedDeployment(
        {
          name: 'orders',
          namespace: ns,
          body: [{op: 'replace', path: '/spec/template/spec/initContainers', value: [{name: 'migrate', image: gone}]}],
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      )
      .catch(async () =>
        apps.patchNamespacedDeployment(
          {
            name: 'orders',
            namespace: ns,
            body: [{op: 'add', path: '/spec/template/spec/initContainers', value: [{name: 'migrate', image: gone}]}],
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
        ),
      )
    const p = drProject(config().replace('secrets: [orders-db]', 'secrets: [orders-db, payments-key]'))
    definitions(p.dir)
    ;(await import('node:fs')).rmSync(path.join(p.dir, 'definitions/topics/order-events.yaml'))
    const result = await cli(['dr', 'drill', '--json', '--service', 'orders'], {cwd: p.dir})
    expect(result.exitCode, result.stdout + result.stderr).toBe(41)
    const record = JSON.parse(result.stdout).result
    const failed = record.recoverability
      .filter((c: {status: string}) => c.status === 'fail')
      .map((c: {kind: string; subject: string}) => `${c.kind} ${c.subject}`)
    expect(failed.sort()).toEqual([`image ${gone}`, 'secret payments-key', 'topic order-events'].sort())
    expect(record.services[0]).toMatchObject({service: 'orders', status: 'failed', rto: {status: 'not-measured'}})
  })
})
