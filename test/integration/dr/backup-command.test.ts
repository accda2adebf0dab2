import {createHash} from 'node:crypto'
import {gunzipSync, gzipSync} from 'node:zlib'
import {Readable} from 'node:stream'

import * as k8s from '@kubernetes/client-node'
import {extract} from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type BackupLocation, openLocation} from '../../../src/objectstore/location.js'
import {pack} from 'tar-stream'
import {kubeConfig, sandboxEnv} from '../../support/sandbox.js'
import {cli, drProject, random, watchDrills} from './helpers.js'

// Issue 20 items 3 and 6: `retailops backup` writes the objects retailops manages into the
// sandbox's object store in Velero's layout with a manifest and checksum (read back from the
// store), a drill restores from that snapshot (verified against the manifest), a tarball changed
// after the backup fails the drill with 41 by its SHA-256 alone (its gzip is intact), and
// `backup --schedule` renders the CronJob like the runner's other jobs (read back from the
// cluster), refuses a directory location, and --unschedule removes it.
const sandbox = sandboxEnv()
const bucket = sandbox.s3Bucket
const kc = kubeConfig(sandbox)
const core = kc.makeApiClient(k8s.CoreV1Api)
const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
const suffix = random()
const ns = `t-dr-bk-${suffix}`
const prefix = `t-dr-bk-${suffix}/`
const labels = {'app.kubernetes.io/managed-by': 'retailops', 'app.kubernetes.io/name': 'cart'}
let location: BackupLocation

const project = drProject(`
project: shop
registry: {url: ${sandbox.registry}, insecure: true}
signing: {required: false}
clusters: {sandbox: {context: ${sandbox.context}}}
environments: {test: {cluster: sandbox, namespace: ${ns}, production: false, router: replicas}}
services:
  cart: {tier: operational}
backup: {location: "s3://${bucket}/${prefix}"}
datastores:
  - name: cart-k8s
    service: cart
    provider: kubernetes
    kubernetes: {waitTimeout: 1m, backup: {location: "s3://${bucket}/${prefix}"}}
`)

async function tarEntries(gz: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const ex = extract()
  Readable.from([gunzipSync(gz)]).pipe(ex)
  for await (const entry of ex) {
    const chunks: Buffer[] = []
    for await (const c of entry) chunks.push(c as Buffer)
    out.set(entry.header.name, Buffer.concat(chunks).toString('utf8'))
  }
  return out
}

async function bytes(key: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of await location.read(key)) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

beforeAll(async () => {
  location = await openLocation(`s3://${bucket}/${prefix}`, {baseDir: project.dir})
  await core.createNamespace({body: {metadata: {name: ns}}})
  const meta = (name: string, l: Record<string, string> = labels) => ({name, namespace: ns, labels: l})
  for (const o of [
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('cart-config'), data: {TTL: '30m'}},
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('hand-made', {app: 'other'}), data: {x: '1'}},
    {apiVersion: 'v1', kind: 'Secret', metadata: meta('cart-redis'), stringData: {REDIS_URL: 'redis://not-real'}},
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('cart')},
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('cart'),
      spec: {selector: {app: 'cart'}, ports: [{port: 80, targetPort: 8080}]},
    },
  ] as k8s.KubernetesObject[])
    await objects.create(o)
})

afterAll(async () => {
  await core.deleteNamespace({name: ns}).catch(() => {})
  for (const o of await location.list('').catch(() => [])) await location.delete(o.key).catch(() => {})
  location.close()
  await project.cleanup()
})

describe('retailops backup, and a drill from its snapshot', () => {
  let name: string

  it("writes the namespace's retailops objects in Velero's layout with a manifest and checksum", async () => {
    const result = await cli(['backup', '--json'], {cwd: project.dir})
    expect(result.exitCode, result.stderr).toBe(0)
    const r = JSON.parse(result.stdout).result
    name = r.name
    expect(name).toMatch(new RegExp(`^retailops-${ns}-\\d{14}$`))
    expect(r.objects).toEqual({ConfigMap: 1, Secret: 1, ServiceAccount: 1, Service: 1})

    const keys = (await location.list('')).map((o) => o.key).sort()
    expect(keys).toEqual(
      [
        `backups/${name}/${name}.tar.gz`,
        `backups/${name}/retailops-backup.json`,
        `backups/${name}/velero-backup.json`,
      ].sort(),
    )
    const info = JSON.parse(await location.readText(`backups/${name}/velero-backup.json`))
    expect(info).toMatchObject({
      apiVersion: 'velero.io/v1',
      kind: 'Backup',
      metadata: {name, labels: {'app.kubernetes.io/managed-by': 'retailops'}},
      spec: {includedNamespaces: [ns]},
      status: {phase: 'Completed', formatVersion: '1.1.0', progress: {totalItems: 4, itemsBackedUp: 4}},
    })
    const tarball = await bytes(`backups/${name}/${name}.tar.gz`)
    const manifest = JSON.parse(await location.readText(`backups/${name}/retailops-backup.json`))
    expect(manifest.tarball).toEqual({
      key: `backups/${name}/${name}.tar.gz`,
      size: tarball.length,
      sha256: createHash('sha256').update(tarball).digest('hex'),
    })
    const entries = await tarEntries(tarball)
    expect(entries.get('metadata/version')).toBe('1.1.0\n')
    expect([...entries.keys()].filter((k) => !k.includes('preferredversion')).sort()).toEqual(
      [
        'metadata/version',
        `resources/configmaps/namespaces/${ns}/cart-config.json`,
        `resources/secrets/namespaces/${ns}/cart-redis.json`,
        `resources/serviceaccounts/namespaces/${ns}/cart.json`,
        `resources/services/namespaces/${ns}/cart.json`,
      ].sort(),
    )
    expect(entries.has(`resources/configmaps/v1-preferredversion/namespaces/${ns}/cart-config.json`)).toBe(true)
    const cm = JSON.parse(entries.get(`resources/configmaps/namespaces/${ns}/cart-config.json`)!)
    expect(cm).toMatchObject({apiVersion: 'v1', kind: 'ConfigMap', data: {TTL: '30m'}})
  })

  it('a drill restores that snapshot, verified against its manifest', async () => {
    const watching = await watchDrills(kc)
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: project.dir}).finally(() =>
      watching.stop(),
    )
    const record = JSON.parse(result.stdout).result
    expect(result.exitCode, JSON.stringify(record.datastores[0], null, 1)).toBe(0)
    const ds = record.datastores[0]
    expect(ds.evidence.backup).toMatchObject({name, writtenBy: 'retailops backup'})
    expect(ds.evidence.backup.verified[0]).toBe('SHA-256 and size match retailops-backup.json')
    expect(ds.evidence.restoreOrder).toEqual([
      'ServiceAccount cart',
      'Secret cart-redis',
      'ConfigMap cart-config',
      'Service cart',
    ])
    const created = watching.events
      .filter(
        (e) =>
          e.type === 'ADDED' && e.namespace.includes(record.id) && ['ConfigMap', 'Secret', 'Service'].includes(e.kind),
      )
      .map((e) => `${e.kind} ${e.name}`)
    expect(created.filter((c) => c !== 'ConfigMap kube-root-ca.crt').sort()).toEqual([
      'ConfigMap cart-config',
      'Secret cart-redis',
      'Service cart',
    ])
    expect(ds.rpo.status).toBe('pass')
    expect(ds.rpo.source).toContain(`backup ${name}`)
  })

  it('fails with 41 when the tarball changed after the backup (gzip intact, SHA-256 not), creating nothing', async () => {
    const key = `backups/${name}/${name}.tar.gz`
    const original = await bytes(key)
    const entries = await tarEntries(original)
    const tar = pack()
    const chunks: Buffer[] = []
    tar.on('data', (c) => chunks.push(c as Buffer))
    const done = new Promise<void>((resolve) => tar.on('end', () => resolve()))
    for (const [entry, text] of entries) tar.entry({name: entry}, text.replace('"30m"', '"99m"'))
    tar.finalize()
    await done
    await location.put(key, gzipSync(Buffer.concat(chunks)))
    const watching = await watchDrills(kc)
    const result = await cli(['dr', 'drill', '--json', '--no-recoverability'], {cwd: project.dir}).finally(() =>
      watching.stop(),
    )
    expect(result.exitCode).toBe(41)
    const record = JSON.parse(result.stdout).result
    expect(record.datastores[0].error?.message, JSON.stringify(record.datastores[0], null, 1)).toMatch(
      new RegExp(
        `^Backup ${name} in .+ is corrupt: .+ has SHA-256 [0-9a-f]{64} \\(\\d+ bytes\\), its manifest \\(retailops-backup.json\\) says [0-9a-f]{64} \\(\\d+ bytes\\)\\. Nothing was restored\\.$`,
      ),
    )
    expect(watching.events.filter((e) => e.namespace.includes(record.id))).toEqual([])
    await location.put(key, original)
  })

  it('--schedule creates the runner CronJob reading the store with credentials from a Secret; a directory is refused; --unschedule removes it', async () => {
    const [repo, tag] = sandbox.baseImageRemote.replace(`${sandbox.registry}/`, '').split(':')
    const head = await fetch(`http://${sandbox.registry}/v2/${repo}/manifests/${tag}`, {
      method: 'HEAD',
      headers: {
        accept:
          'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    })
    const runner = `${sandbox.registry}/${repo}@${head.headers.get('docker-content-digest')}`

    const refused = await cli(
      ['backup', '--json', '--schedule', '@daily', '--to', './backups', '--runner-image', runner],
      {cwd: project.dir},
    )
    expect(refused.exitCode).toBe(2)
    expect(JSON.parse(refused.stdout).error.message).toMatch(/needs an object store location/)
    await expect(
      kc.makeApiClient(k8s.BatchV1Api).readNamespacedCronJob({name: 'retailops-backup', namespace: ns}),
    ).rejects.toThrow()

    const result = await cli(
      ['backup', '--json', '--schedule', '0 */6 * * *', '--time-zone', 'Europe/Berlin', '--runner-image', runner],
      {cwd: project.dir},
    )
    expect(result.exitCode, result.stderr).toBe(0)
    const batch = kc.makeApiClient(k8s.BatchV1Api)
    const cron = await batch.readNamespacedCronJob({name: 'retailops-backup', namespace: ns})
    expect(cron.spec).toMatchObject({schedule: '0 */6 * * *', timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid'})
    const pod = cron.spec!.jobTemplate.spec!.template.spec!
    const container = pod.containers[0]
    expect(container.image).toBe(runner)
    expect(container.args).toEqual([
      'backup',
      '--to',
      `s3://${bucket}/${prefix}`,
      '--environment',
      'test',
      '--namespace',
      ns,
      '--context',
      'inClusterContext',
      '--yes',
    ])
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    })
    const fromSecret = Object.fromEntries(
      (container.env ?? [])
        .filter((e) => e.valueFrom?.secretKeyRef)
        .map((e) => [e.name, e.valueFrom!.secretKeyRef!.name]),
    )
    expect(fromSecret).toMatchObject({
      AWS_ACCESS_KEY_ID: 'retailops-backup-credentials',
      AWS_SECRET_ACCESS_KEY: 'retailops-backup-credentials',
      RETAILOPS_S3_ENDPOINT: 'retailops-backup-credentials',
    })
    expect(JSON.stringify(cron)).not.toContain(process.env.AWS_SECRET_ACCESS_KEY!)
    const role = await kc
      .makeApiClient(k8s.RbacAuthorizationV1Api)
      .readNamespacedRole({name: 'retailops-backup', namespace: ns})
    expect(role.rules!.every((r) => r.verbs.join() === 'get,list')).toBe(true)
    expect(role.rules!.find((r) => r.apiGroups!.includes(''))!.resources).toContain('secrets')

    const removed = await cli(['backup', '--json', '--unschedule'], {cwd: project.dir})
    expect(removed.exitCode).toBe(0)
    await expect(batch.readNamespacedCronJob({name: 'retailops-backup', namespace: ns})).rejects.toThrow()
    expect((await core.listNamespacedSecret({namespace: ns})).items.map((s) => s.metadata!.name)).not.toContain(
      'retailops-backup-credentials',
    )
  })
})
