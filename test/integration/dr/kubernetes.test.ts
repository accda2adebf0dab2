import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {registryClient} from '../../../src/docker/registry.js'
import {sandboxEnv} from '../helpers/sandbox.js'
import {cli, random, writeProject} from './helpers.js'

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
const labels = {'app.kubernetes.io/managed-by': 'retailops', 'app.kubernetes.io/name': 'orders', 'retailops.dev/service': 'orders'}
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
  writeFileSync(path.join(dir, 'definitions/topics/order-events.yaml'), 'name: order-events\npartitions: 6\nreplicationFactor: 3\n')
  writeFileSync(path.join(dir, 'definitions/search-indexes/orders.json'), JSON.stringify({mappings: {properties: {id: {type: 'keyword'}, total: {type: 'double'}}}}))
}

async function drillNamespaces(): Promise<string[]> {
  return (await core.listNamespace({labelSelector: 'retailops.dev/drill'})).items.map((n) => n.metadata!.name!).filter((n) => !n.startsWith('t-'))
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
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('orders-config'), data: {LOG_LEVEL: 'info'}} as k8s.KubernetesObject,
    {apiVersion: 'v1', kind: 'Secret', metadata: meta('orders-db'), stringData: {DATABASE_URL: 'postgres://orders:not-a-real-password@db/orders'}} as k8s.KubernetesObject,
    {apiVersion: 'v1', kind: 'Service', metadata: meta('orders'), spec: {type: 'NodePort', selector: {'app.kubernetes.io/name': 'orders'}, ports: [{port: 80, targetPort: 8080}]}} as k8s.KubernetesObject,
    {apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta('orders'), spec: {minAvailable: 1, selector: {matchLabels: {'app.kubernetes.io/name': 'orders'}}}} as k8s.KubernetesObject,
    {apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta('orders'), spec: {podSelector: {matchLabels: {'app.kubernetes.io/name': 'orders'}}, policyTypes: ['Ingress']}} as k8s.KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('orders'),
      spec: {
        replicas: 2,
        selector: {matchLabels: {'app.kubernetes.io/name': 'orders'}},
        template: {
          metadata: {labels},
          spec: {serviceAccountName: 'orders', containers: [{name: 'app', image, envFrom: [{configMapRef: {name: 'orders-config'}}, {secretRef: {name: 'orders-db'}}]}]},
        },
      },
    } as k8s.KubernetesObject,
    {apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: meta('orders'), spec: {scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'orders'}, minReplicas: 2, maxReplicas: 4, metrics: [{type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}}]}} as k8s.KubernetesObject,
  ]
  for (const o of specs) await objects.create(o)
})

afterAll(async () => {
  await core.deleteNamespace({name: ns}).catch(() => {})
})

describe('kubernetes restore drill and recoverability checks (sandbox cluster and registry)', () => {
  it('restores the managed objects into a labelled drill namespace, waits for the workloads, deletes it; the source is untouched', async () => {
    const before = (await apps.readNamespacedDeployment({name: 'orders', namespace: ns})).metadata!.generation
    const p = writeProject(config(DATASTORE))
    definitions(p.dir)
    const result = await cli(['dr', 'drill', '--json'], {cwd: p.dir})
    expect(result.exitCode, result.stdout + result.stderr).toBe(0)
    const record = JSON.parse(result.stdout).result
    const ds = record.datastores[0]
    expect(ds).toMatchObject({name: 'shop-config', provider: 'kubernetes', status: 'passed', rto: {status: 'pass'}, rpo: {status: 'not-applicable'}})
    expect(ds.target).toBe(`namespace retailops-drill-${record.id}-shop-config`)
    expect(ds.evidence.snapshotCounts).toEqual({ServiceAccount: 1, ConfigMap: 1, Secret: 1, NetworkPolicy: 1, Service: 1, PodDisruptionBudget: 1, Deployment: 1, HorizontalPodAutoscaler: 1})
    expect(ds.evidence.restoreNotes).toEqual(['Service orders: NodePort restored as ClusterIP'])
    expect(ds.validations).toMatchObject([
      {name: 'objects-restored', value: '8', passed: true},
      {name: 'available-orders', value: '2/2 available', passed: true},
    ])
    expect(record.cleanup).toMatchObject([{kind: 'namespace', resource: `retailops-drill-${record.id}-shop-config`, status: 'removed'}])
    // The drill namespace is gone, the source unchanged.
    await expect(core.readNamespace({name: `retailops-drill-${record.id}-shop-config`})).rejects.toMatchObject({code: 404})
    // (Status updates move resourceVersion; the spec's generation and the field managers show writes.)
    const after = await apps.readNamespacedDeployment({name: 'orders', namespace: ns})
    expect(after.metadata!.generation).toBe(before)
    for (const o of [after, await core.readNamespacedService({name: 'orders', namespace: ns}), await core.readNamespacedSecret({name: 'orders-db', namespace: ns})]) {
      expect(o.metadata!.managedFields!.map((m) => m.manager)).not.toContain('retailops-dr')
    }
    // The snapshot evidence holds the Secret as a reference, never its value.
    const snapshot = (await import('node:fs')).readFileSync(path.join(record.files.dir, ds.evidence.snapshotFile), 'utf8')
    expect(snapshot).toContain('dataSha256')
    expect(snapshot).not.toContain('not-a-real-password')
    expect(snapshot).not.toContain(Buffer.from('postgres://orders:not-a-real-password@db/orders').toString('base64'))
    // Recoverability: the deployed digest, the Secret and ConfigMap, the definitions.
    expect(record.recoverability.map((c: {kind: string; subject: string; status: string}) => [c.kind, c.subject, c.status])).toEqual([
      ['topic', 'order-events', 'pass'],
      ['searchIndex', 'orders', 'pass'],
      ['image', image, 'pass'],
      ['secret', 'orders-db', 'pass'],
      ['configMap', 'orders-config', 'pass'],
    ])
    expect(await drillNamespaces()).not.toContain(`retailops-drill-${record.id}-shop-config`)
  })

  it('fails recoverability (exit 41) for a missing Secret, a missing topic definition and an image whose digest is gone', async () => {
    const gone = `${sandbox.registry}/retailops/node-base@sha256:${'0'.repeat(64)}`
    await apps.patchNamespacedDeployment(
      {name: 'orders', namespace: ns, body: [{op: 'replace', path: '/spec/template/spec/initContainers', value: [{name: 'migrate', image: gone}]}]},
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    ).catch(async () =>
      apps.patchNamespacedDeployment({name: 'orders', namespace: ns, body: [{op: 'add', path: '/spec/template/spec/initContainers', value: [{name: 'migrate', image: gone}]}]}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch)),
    )
    const p = writeProject(config().replace('secrets: [orders-db]', 'secrets: [orders-db, payments-key]'))
    definitions(p.dir)
    ;(await import('node:fs')).rmSync(path.join(p.dir, 'definitions/topics/order-events.yaml'))
    const result = await cli(['dr', 'drill', '--json', '--service', 'orders'], {cwd: p.dir})
    expect(result.exitCode, result.stdout + result.stderr).toBe(41)
    const record = JSON.parse(result.stdout).result
    const failed = record.recoverability.filter((c: {status: string}) => c.status === 'fail').map((c: {kind: string; subject: string}) => `${c.kind} ${c.subject}`)
    expect(failed.sort()).toEqual([`image ${gone}`, 'secret payments-key', 'topic order-events'].sort())
    expect(record.services[0]).toMatchObject({service: 'orders', status: 'failed', rto: {status: 'not-measured'}})
  })
})
