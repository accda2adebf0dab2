import {gzipSync} from 'node:zlib'

import * as k8s from '@kubernetes/client-node'
import {pack} from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type BackupLocation, openLocation} from '../../../src/objectstore/location.js'
import {kubeConfig, sandboxEnv} from '../../support/sandbox.js'
import {cli, drProject, random, watchDrills} from './helpers.js'

// Issue 20 items 3 and 6: a namespace restored from a Velero-layout backup in the sandbox's
// S3-compatible store. The test makes the backup itself, as Velero lays it out, from objects it
// created and read back from the cluster (server fields, cluster IPs, the ReplicaSet and pods the
// controllers made and all), uploads it, and drills it: the restore goes into the isolated drill
// namespace in Velero's order, with what must not be restored left out; the source is untouched.
// A truncated tarball fails with 41 and leaves nothing behind; a backup older than the RPO target
// is refused with 40 before anything is created.
const sandbox = sandboxEnv()
const bucket = sandbox.s3Bucket
const kc = kubeConfig(sandbox)
const core = kc.makeApiClient(k8s.CoreV1Api)
const apps = kc.makeApiClient(k8s.AppsV1Api)
const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
const suffix = random()
const ns = `t-dr-vel-${suffix}`
const prefix = `t-dr-vel-${suffix}/`
const labels = {'app.kubernetes.io/managed-by': 'retailops', 'app.kubernetes.io/name': 'orders'}
let location: BackupLocation
let image: string
let backedUp: k8s.KubernetesObject[] = []

const project = drProject(`
project: shop
registry: {url: ${sandbox.registry}, insecure: true}
clusters: {sandbox: {context: ${sandbox.context}}}
environments: {test: {cluster: sandbox, namespace: ${ns}, production: false, router: replicas}}
services:
  orders: {tier: revenue-critical}
datastores:
  - name: shop-k8s
    service: orders
    provider: kubernetes
    kubernetes: {waitTimeout: 1m, backup: {location: "s3://${bucket}/${prefix}"}}
`)

/** What Velero's item backupper files an object under: <resource>[.<group>]. */
const RESOURCES: [string, string, (n: string) => Promise<{items: k8s.KubernetesObject[]}>][] = [
  ['serviceaccounts', 'v1', (n) => core.listNamespacedServiceAccount({namespace: n})],
  ['configmaps', 'v1', (n) => core.listNamespacedConfigMap({namespace: n})],
  ['secrets', 'v1', (n) => core.listNamespacedSecret({namespace: n})],
  ['services', 'v1', (n) => core.listNamespacedService({namespace: n})],
  ['endpoints', 'v1', (n) => core.listNamespacedEndpoints({namespace: n})],
  ['pods', 'v1', (n) => core.listNamespacedPod({namespace: n})],
  ['deployments.apps', 'apps/v1', (n) => apps.listNamespacedDeployment({namespace: n})],
  ['replicasets.apps', 'apps/v1', (n) => apps.listNamespacedReplicaSet({namespace: n})],
]

/** A Velero backup of the namespace, as `velero backup create --include-namespaces` stores it. */
async function veleroTarball(namespace: string): Promise<{tarball: Buffer; items: k8s.KubernetesObject[]}> {
  const tar = pack()
  const chunks: Buffer[] = []
  tar.on('data', (c) => chunks.push(c as Buffer))
  const done = new Promise<void>((resolve) => tar.on('end', () => resolve()))
  tar.entry({name: 'metadata/version'}, '1.1.0\n')
  const items: k8s.KubernetesObject[] = []
  const nsObject = await core.readNamespace({name: namespace})
  const add = (gr: string, version: string, o: k8s.KubernetesObject, where: string) => {
    const text = JSON.stringify(o)
    tar.entry({name: `resources/${gr}/${where}/${o.metadata!.name}.json`}, text)
    tar.entry({name: `resources/${gr}/${version}-preferredversion/${where}/${o.metadata!.name}.json`}, text)
  }
  add('namespaces', 'v1', {...nsObject, apiVersion: 'v1', kind: 'Namespace'}, 'cluster')
  for (const [gr, apiVersion, list] of RESOURCES) {
    const kind = {
      serviceaccounts: 'ServiceAccount',
      configmaps: 'ConfigMap',
      secrets: 'Secret',
      services: 'Service',
      endpoints: 'Endpoints',
      pods: 'Pod',
      'deployments.apps': 'Deployment',
      'replicasets.apps': 'ReplicaSet',
    }[gr]!
    for (const o of (await list(namespace)).items) {
      const full = {...o, apiVersion, kind}
      items.push(full)
      add(gr, apiVersion.split('/').at(-1)!, full, `namespaces/${namespace}`)
    }
  }
  tar.finalize()
  await done
  return {tarball: gzipSync(Buffer.concat(chunks)), items}
}

function backupObject(name: string, started: Date, phase = 'Completed'): string {
  return JSON.stringify({
    apiVersion: 'velero.io/v1',
    kind: 'Backup',
    metadata: {name, namespace: 'velero', labels: {'velero.io/storage-location': 'default'}},
    spec: {includedNamespaces: [ns], ttl: '720h0m0s', storageLocation: 'default'},
    status: {
      version: 1,
      formatVersion: '1.1.0',
      phase,
      startTimestamp: started.toISOString(),
      completionTimestamp: new Date(started.getTime() + 2000).toISOString(),
    },
  })
}

async function upload(name: string, tarball: Buffer, started: Date): Promise<void> {
  await location.put(`backups/${name}/${name}.tar.gz`, tarball)
  await location.put(`backups/${name}/velero-backup.json`, backupObject(name, started))
}

async function drill(extra: string[] = [], env: Record<string, string> = {}) {
  const result = await cli(['dr', 'drill', '--json', '--no-recoverability', ...extra], {cwd: project.dir, env})
  return {exitCode: result.exitCode, record: JSON.parse(result.stdout).result, stderr: result.stderr}
}

async function sourceVersions(): Promise<string[]> {
  const out: string[] = []
  for (const [gr, , list] of RESOURCES)
    for (const o of (await list(ns)).items) out.push(`${gr}/${o.metadata!.name}@${o.metadata!.resourceVersion}`)
  return out.sort()
}

async function drillNamespacesOf(drillId: string): Promise<string[]> {
  return (await core.listNamespace({labelSelector: `retailops.dev/drill=${drillId}`})).items.map(
    (n) => n.metadata!.name!,
  )
}

beforeAll(async () => {
  location = await openLocation(`s3://${bucket}/${prefix}`, {baseDir: project.dir})
  const [repo, tag] = sandbox.baseImageRemote.replace(`${sandbox.registry}/`, '').split(':')
  const head = await fetch(`http://${sandbox.registry}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      accept:
        'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  })
  image = `${sandbox.registry}/${repo}@${head.headers.get('docker-content-digest')}`
  await core.createNamespace({body: {metadata: {name: ns}}})
  const meta = (name: string) => ({name, namespace: ns, labels})
  for (const o of [
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('orders')},
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('orders-config'), data: {LOG_LEVEL: 'info'}},
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta('orders-db'),
      stringData: {DATABASE_URL: 'postgres://o:not-real@db/o'},
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('orders'),
      spec: {type: 'NodePort', selector: {app: 'orders'}, ports: [{port: 80, targetPort: 8080}]},
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('orders'),
      spec: {
        replicas: 1,
        selector: {matchLabels: {app: 'orders'}},
        template: {
          metadata: {labels: {app: 'orders'}},
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
    },
  ] as k8s.KubernetesObject[])
    await objects.create(o)
  // Wait for the controllers' objects (ReplicaSet, pod), which a real Velero backup holds too.
  for (let i = 0; i < 60; i++) {
    if ((await core.listNamespacedPod({namespace: ns})).items.length > 0) break
    await new Promise((r) => setTimeout(r, 500))
  }
  const made = await veleroTarball(ns)
  backedUp = made.items
  await upload('nightly-1', made.tarball, new Date(Date.now() - 60_000))
})

afterAll(async () => {
  await core.deleteNamespace({name: ns}).catch(() => {})
  for (const o of await location.list('').catch(() => [])) await location.delete(o.key).catch(() => {})
  location.close()
  await project.cleanup()
})

describe('kubernetes drill from a Velero backup in the object store', () => {
  it("restores the namespace into the isolated drill namespace in Velero's order, reports each object, and leaves the source untouched", async () => {
    expect(backedUp.some((o) => o.kind === 'ReplicaSet')).toBe(true)
    const before = await sourceVersions()
    const watching = await watchDrills(kc)
    const {exitCode, record, stderr} = await drill().finally(() => watching.stop())
    expect(exitCode, stderr + JSON.stringify(record?.datastores?.[0], null, 1)).toBe(0)
    const ds = record.datastores[0]
    expect(ds.status).toBe('passed')
    expect(ds.evidence.backup).toMatchObject({
      name: 'nightly-1',
      writtenBy: 'Velero',
      location: `s3://${bucket}/${prefix}backups/nightly-1/`,
    })
    expect(ds.evidence.backup.verified).toContain('gzip CRC-32 and length')
    // RPO from the backup's own start time, not the drill's.
    expect(ds.rpo.status).toBe('pass')
    expect(ds.rpo.actualMs).toBeGreaterThanOrEqual(60_000)
    expect(ds.rpo.source).toContain('backup nightly-1: status.startTimestamp')

    const byName = Object.fromEntries(ds.inventory.map((i: {kind: string; name: string}) => [`${i.kind} ${i.name}`, i]))
    expect(byName[`Namespace ${ns}`]).toMatchObject({outcome: 'not-restored'})
    expect(byName['Secret orders-db']).toMatchObject({outcome: 'placeholder'})
    expect(byName['Service orders']).toMatchObject({
      outcome: 'modified',
      reason: expect.stringContaining('NodePort restored as ClusterIP'),
    })
    expect(byName['Endpoints orders']).toMatchObject({outcome: 'not-restored'})
    expect(
      ds.inventory
        .filter((i: {kind: string}) => i.kind === 'ReplicaSet' || i.kind === 'Pod')
        .every((i: {outcome: string}) => i.outcome === 'not-restored'),
    ).toBe(true)
    expect(ds.inventory.some((i: {outcome: string}) => i.outcome === 'failed')).toBe(false)
    expect(ds.evidence.restoredByKind.Deployment).toEqual({modified: 1})

    // What the API server saw created in the drill namespace, in creation (etcd revision) order.
    const drillNs = watching.events.find((e) => e.kind === 'Namespace' && e.namespace.includes(record.id))!.namespace
    const created = watching.events.filter(
      (e) =>
        e.type === 'ADDED' &&
        e.namespace === drillNs &&
        e.kind !== 'Pod' &&
        e.kind !== 'Namespace' &&
        e.kind !== 'NetworkPolicy' &&
        !(e.kind === 'ConfigMap' && e.name === 'kube-root-ca.crt') &&
        !(e.kind === 'ServiceAccount' && e.name === 'default'),
    )
    const order = created.sort((a, b) => a.rv - b.rv).map((e) => `${e.kind} ${e.name}`)
    // Velero: serviceaccounts, secrets, configmaps, then services; the rest (deployments.apps) alphabetically after.
    expect(order).toEqual([
      'ServiceAccount orders',
      'Secret orders-db',
      'ConfigMap orders-config',
      'Service orders',
      'Deployment orders',
    ])
    // The namespace's default ServiceAccount is in the backup too: applied (without token automount) over the one the cluster made.
    expect(ds.evidence.restoreOrder).toEqual(['ServiceAccount default', ...order])
    expect(byName['ConfigMap kube-root-ca.crt']).toMatchObject({outcome: 'not-restored'})
    const policies = watching.events.filter(
      (e) => e.type === 'ADDED' && e.kind === 'NetworkPolicy' && e.namespace === drillNs,
    )
    expect(Math.max(...policies.map((p) => p.rv))).toBeLessThan(Math.min(...created.map((e) => e.rv)))
    for (const e of created) {
      expect(e.object.metadata!.labels).toMatchObject({
        'retailops.dev/drill': record.id,
        'retailops.dev/drill-datastore': 'shop-k8s',
      })
      expect(e.object.metadata!.ownerReferences).toBeUndefined()
    }
    const secret = created.find((e) => e.kind === 'Secret')!.object
    expect(secret.data).toEqual({DATABASE_URL: ''})
    const service = created.find((e) => e.kind === 'Service')!.object.spec as {type: string; clusterIP: string}
    const sourceService = backedUp.find((o) => o.kind === 'Service') as k8s.V1Service
    expect(service.type).toBe('ClusterIP')
    expect(service.clusterIP).not.toBe(sourceService.spec!.clusterIP)
    const namespace = watching.events.find((e) => e.kind === 'Namespace' && e.namespace === drillNs)!.object
    expect(namespace.metadata!.labels).toMatchObject({'pod-security.kubernetes.io/enforce': 'restricted'})

    // The drill namespace is gone, and the source is exactly as it was.
    expect(await drillNamespacesOf(record.id)).toEqual([])
    expect(await sourceVersions()).toEqual(before)
  })

  it('fails with 41 on a truncated tarball and on one whose gzip CRC does not match, creating nothing', async () => {
    const {tarball} = await veleroTarball(ns)
    await upload('truncated', tarball.subarray(0, Math.floor(tarball.length * 0.6)), new Date(Date.now() - 30_000))
    const flipped = Buffer.from(tarball)
    flipped[flipped.length - 6] ^= 0xff // inside gzip's CRC-32 trailer
    await upload('bitrot', flipped, new Date(Date.now() - 30_000))
    for (const name of ['truncated', 'bitrot']) {
      project.writeConfig(
        (project.config as string).replace(
          /backup: \{location: "([^"]+)"(, name: \w+)?\}/,
          `backup: {location: "$1", name: ${name}}`,
        ),
      )
      const watching = await watchDrills(kc)
      const {exitCode, record} = await drill().finally(() => watching.stop())
      expect(exitCode).toBe(41)
      const ds = record.datastores[0]
      expect(ds.status).toBe('validation-failed')
      expect(ds.error.message).toMatch(
        new RegExp(`^Backup ${name} in s3://${bucket}/${prefix} is corrupt: .+ Nothing was restored\\.$`),
      )
      expect(watching.events.filter((e) => e.namespace.includes(record.id))).toEqual([])
      expect(await drillNamespacesOf(record.id)).toEqual([])
      expect(ds.rto.status).toBe('not-measured')
    }
  })

  it('refuses with 40 a backup older than the RPO target, before anything is created', async () => {
    const {tarball} = await veleroTarball(ns)
    await upload('weekly-old', tarball, new Date(Date.now() - 2 * 3600_000))
    project.writeConfig((project.config as string).replace(/, name: \w+\}/, ', name: weekly-old}'))
    const watching = await watchDrills(kc)
    const {exitCode, record} = await drill().finally(() => watching.stop())
    expect(exitCode).toBe(40)
    const ds = record.datastores[0]
    expect(ds.status).toBe('target-missed')
    expect(ds.rpo).toMatchObject({status: 'fail', target: '5m'})
    expect(ds.rpo.detail).toMatch(
      /backup weekly-old is 2h\S* old .*older than the RPO target 5m: refused, not restored/,
    )
    expect(ds.rto.status).toBe('not-measured')
    expect(watching.events.filter((e) => e.namespace.includes(record.id))).toEqual([])
  })
})
