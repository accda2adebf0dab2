import {Readable} from 'node:stream'
import {gunzipSync} from 'node:zlib'

import {extract} from 'tar-stream'
import {describe, expect, it} from 'vitest'

import {backupRbac} from '../../../src/dr/backup-schedule.js'
import {backupName, packBackup, veleroBackupObject} from '../../../src/dr/backup.js'
import {
  chooseBackup,
  classifyEntry,
  parseBackupInfo,
  parseItem,
  RETAILOPS_MANIFEST_API,
} from '../../../src/dr/velero.js'

describe('retailops backup', () => {
  it('names a backup retailops-<namespace>-<UTC stamp>, a DNS label of at most 63 characters', () => {
    expect(backupName('shop', new Date('2026-12-07T01:02:03.456Z'))).toBe('retailops-shop-20261207010203')
    const long = backupName('a'.repeat(70), new Date('2026-12-07T01:02:03Z'))
    expect(long.length).toBeLessThanOrEqual(63)
    expect(long).toMatch(/^retailops-a+-20261207010203$/)
  })

  it("packs objects in Velero's layout, which the restorer reads back as the same items", async () => {
    const objects = [
      {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cfg', namespace: 'shop'}, data: {a: '1'}},
      {apiVersion: 'apps/v1', kind: 'Deployment', metadata: {name: 'orders', namespace: 'shop'}},
      {apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: {name: 'orders', namespace: 'shop'}},
    ]
    const gz = await packBackup(objects, 'shop')
    const ex = extract()
    Readable.from([gunzipSync(gz)]).pipe(ex)
    const entries: [string, string][] = []
    for await (const e of ex) {
      const chunks: Buffer[] = []
      for await (const c of e) chunks.push(c as Buffer)
      entries.push([e.header.name, Buffer.concat(chunks).toString('utf8')])
    }
    expect(entries.map(([n]) => n)).toEqual([
      'metadata/version',
      'resources/configmaps/namespaces/shop/cfg.json',
      'resources/configmaps/v1-preferredversion/namespaces/shop/cfg.json',
      'resources/deployments.apps/namespaces/shop/orders.json',
      'resources/deployments.apps/v1-preferredversion/namespaces/shop/orders.json',
      'resources/horizontalpodautoscalers.autoscaling/namespaces/shop/orders.json',
      'resources/horizontalpodautoscalers.autoscaling/v2-preferredversion/namespaces/shop/orders.json',
    ])
    const items = entries.filter(([n]) => classifyEntry(n).type === 'item').map(([n, t]) => parseItem(n, t))
    expect(items.map((i) => [i.groupResource, i.namespace, i.name])).toEqual([
      ['configmaps', 'shop', 'cfg'],
      ['deployments.apps', 'shop', 'orders'],
      ['horizontalpodautoscalers.autoscaling', 'shop', 'orders'],
    ])
    expect(items[0].object).toEqual(objects[0])
  })

  it('writes a Completed Backup object the drill chooses for the namespace, marked as retailops’', () => {
    const doc = veleroBackupObject(
      {
        apiVersion: RETAILOPS_MANIFEST_API,
        name: 'retailops-shop-20261207010203',
        namespace: 'shop',
        selector: 'app.kubernetes.io/managed-by=retailops',
        startTimestamp: '2026-12-07T01:02:03.000Z',
        completionTimestamp: '2026-12-07T01:02:04.000Z',
        tarball: {key: 'k', size: 1, sha256: '0'.repeat(64)},
        objects: {ConfigMap: 1},
        retailopsVersion: '1',
      },
      1,
    )
    const info = parseBackupInfo(JSON.stringify(doc), 'x')
    expect(info).toMatchObject({phase: 'Completed', byRetailops: true, startTimestamp: '2026-12-07T01:02:03.000Z'})
    expect(chooseBackup([info], 'shop').chosen?.name).toBe('retailops-shop-20261207010203')
    expect(chooseBackup([info], 'cart').chosen).toBeUndefined()
  })

  it("lets the scheduled job's ServiceAccount only get and list what a backup reads, in its namespace", () => {
    const [sa, role, binding] = backupRbac('shop', {}) as Record<string, any>[]
    expect(sa).toMatchObject({kind: 'ServiceAccount', metadata: {name: 'retailops-backup', namespace: 'shop'}})
    expect(role.kind).toBe('Role')
    expect(role.rules.every((r: {verbs: string[]}) => r.verbs.join() === 'get,list')).toBe(true)
    expect(role.rules.find((r: {apiGroups: string[]}) => r.apiGroups[0] === '').resources).toEqual(
      expect.arrayContaining(['configmaps', 'secrets', 'serviceaccounts', 'services']),
    )
    expect(binding).toMatchObject({kind: 'RoleBinding', roleRef: {kind: 'Role', name: 'retailops-backup'}})
  })
})
