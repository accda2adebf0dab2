import {describe, expect, it} from 'vitest'

import {planBackupRestore} from '../../../src/dr/providers/kubernetes-backup.js'
import {
  type BackupInfo,
  type BackupItem,
  backupKeys,
  chooseBackup,
  classifyEntry,
  groupResourceOf,
  includesNamespace,
  parseBackupInfo,
  parseItem,
  parseManifest,
  recoveryPointOf,
  restoreOrder,
} from '../../../src/dr/velero.js'

describe("Velero's layout", () => {
  it('classifies tar entries: classic item paths, versioned copies, metadata/version', () => {
    expect(classifyEntry('resources/deployments.apps/namespaces/shop/orders.json')).toEqual({
      type: 'item',
      groupResource: 'deployments.apps',
      namespace: 'shop',
      name: 'orders',
    })
    expect(classifyEntry('./resources/namespaces/cluster/shop.json')).toEqual({
      type: 'item',
      groupResource: 'namespaces',
      name: 'shop',
    })
    expect(classifyEntry('resources/deployments.apps/v1-preferredversion/namespaces/shop/orders.json')).toEqual({
      type: 'versioned',
    })
    expect(classifyEntry('resources/horizontalpodautoscalers.autoscaling/v2beta2/namespaces/shop/h.json')).toEqual({
      type: 'versioned',
    })
    expect(classifyEntry('metadata/version')).toEqual({type: 'version'})
    expect(classifyEntry('resources/x.json')).toEqual({type: 'other'})
  })

  it('parses an item and refuses one whose object does not match its path or is no object', () => {
    const entry = 'resources/configmaps/namespaces/shop/cfg.json'
    expect(
      parseItem(entry, JSON.stringify({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cfg'}})),
    ).toMatchObject({
      groupResource: 'configmaps',
      namespace: 'shop',
      name: 'cfg',
    })
    expect(() => parseItem(entry, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}')).toThrow(
      /holds an object named other/,
    )
    expect(() => parseItem(entry, '{"metadata":{"name":"cfg"}}')).toThrow(/no apiVersion or kind/)
    expect(() => parseItem(entry, '{"apiVersion":')).toThrow(/not JSON/)
  })

  it('files objects under <resource>.<group>, the core group bare', () => {
    expect(groupResourceOf('apps/v1', 'deployments')).toBe('deployments.apps')
    expect(groupResourceOf('v1', 'configmaps')).toBe('configmaps')
    expect(backupKeys('nightly')).toEqual({
      dir: 'backups/nightly/',
      info: 'backups/nightly/velero-backup.json',
      tarball: 'backups/nightly/nightly.tar.gz',
      manifest: 'backups/nightly/retailops-backup.json',
    })
  })
})

describe("Velero's restore order", () => {
  it('puts the high priorities first in their order, the rest alphabetically, the low priorities last', () => {
    expect(
      restoreOrder([
        'deployments.apps',
        'clusters.cluster.x-k8s.io',
        'services',
        'configmaps',
        'horizontalpodautoscalers.autoscaling',
        'secrets',
        'serviceaccounts',
        'namespaces',
        'customresourcedefinitions.apiextensions.k8s.io',
        'customresourcedefinitions',
        'persistentvolumeclaims',
        'poddisruptionbudgets.policy',
      ]),
    ).toEqual([
      'customresourcedefinitions',
      'namespaces',
      'persistentvolumeclaims',
      'serviceaccounts',
      'secrets',
      'configmaps',
      'services',
      'customresourcedefinitions.apiextensions.k8s.io',
      'deployments.apps',
      'horizontalpodautoscalers.autoscaling',
      'poddisruptionbudgets.policy',
      'clusters.cluster.x-k8s.io',
    ])
  })
})

function info(name: string, over: Partial<BackupInfo> = {}): BackupInfo {
  return {
    name,
    phase: 'Completed',
    startTimestamp: '2026-12-07T00:00:00Z',
    completionTimestamp: '2026-12-07T00:00:05Z',
    includedNamespaces: ['shop'],
    excludedNamespaces: [],
    byRetailops: false,
    ...over,
  }
}

describe('choosing a backup', () => {
  it('reads velero-backup.json', () => {
    const parsed = parseBackupInfo(
      JSON.stringify({
        kind: 'Backup',
        apiVersion: 'velero.io/v1',
        metadata: {name: 'b1', labels: {'app.kubernetes.io/managed-by': 'retailops'}},
        spec: {includedNamespaces: ['*'], excludedNamespaces: null},
        status: {phase: 'Completed', startTimestamp: '2026-12-07T01:00:00Z', formatVersion: '1.1.0'},
      }),
      'x',
    )
    expect(parsed).toMatchObject({name: 'b1', phase: 'Completed', byRetailops: true, includedNamespaces: ['*']})
    expect(recoveryPointOf(parsed)?.toISOString()).toBe('2026-12-07T01:00:00.000Z')
    expect(() => parseBackupInfo('{"kind":"Restore","metadata":{"name":"r"}}', 'x')).toThrow(/not a Velero Backup/)
  })

  it('matches namespace filters as Velero does: empty or * includes all, excludes win, globs', () => {
    expect(includesNamespace(info('a', {includedNamespaces: []}), 'shop')).toBe(true)
    expect(includesNamespace(info('a', {includedNamespaces: ['*']}), 'shop')).toBe(true)
    expect(includesNamespace(info('a', {includedNamespaces: ['sh?p']}), 'shop')).toBe(true)
    expect(includesNamespace(info('a', {includedNamespaces: ['*'], excludedNamespaces: ['sh*']}), 'shop')).toBe(false)
    expect(includesNamespace(info('a', {includedNamespaces: ['other']}), 'shop')).toBe(false)
  })

  it('takes the newest Completed backup that includes the namespace, and says why others were passed over', () => {
    const choice = chooseBackup(
      [
        info('old', {completionTimestamp: '2026-12-06T00:00:05Z'}),
        info('partial', {phase: 'PartiallyFailed', completionTimestamp: '2026-12-07T02:00:00Z'}),
        info('elsewhere', {includedNamespaces: ['cart'], completionTimestamp: '2026-12-07T03:00:00Z'}),
        info('new'),
      ],
      'shop',
    )
    expect(choice.chosen?.name).toBe('new')
    expect(choice.passedOver).toEqual([
      'partial: PartiallyFailed, not Completed',
      'elsewhere: does not include namespace shop',
    ])
    expect(chooseBackup([], 'shop').problem).toBe(
      'no Completed backup includes namespace shop (the location holds no backups)',
    )
    expect(chooseBackup([info('a', {phase: 'InProgress'})], 'shop', 'a').problem).toBe(
      'backup a is InProgress, not Completed',
    )
    expect(chooseBackup([info('a')], 'shop', 'b').problem).toBe('no backup named b (found: a)')
  })

  it("refuses a retailops manifest without the tarball's size and SHA-256", () => {
    expect(() =>
      parseManifest('{"apiVersion":"retailops.dev/backup/v1","tarball":{"sha256":"x","size":1}}', 'm'),
    ).toThrow(/manifest with the tarball's size and SHA-256/)
  })
})

function item(groupResource: string, object: Record<string, unknown>, namespace: string | null = 'shop'): BackupItem {
  const name = (object.metadata as {name: string}).name
  return {
    groupResource,
    namespace: namespace ?? undefined,
    name,
    entry: `resources/${groupResource}/${name}.json`,
    object: object,
  }
}

describe('planBackupRestore', () => {
  const server = {uid: 'u', resourceVersion: '7', creationTimestamp: 't', managedFields: [{}], generation: 3}
  const items: BackupItem[] = [
    item('deployments.apps', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name: 'orders', namespace: 'shop', ...server},
      spec: {template: {spec: {containers: [{name: 'app', image: 'i'}]}}},
      status: {replicas: 1},
    }),
    item('replicasets.apps', {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: 'orders-1',
        namespace: 'shop',
        ownerReferences: [{kind: 'Deployment', name: 'orders', controller: true}],
      },
    }),
    item('jobs.batch', {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'nightly-1',
        namespace: 'shop',
        ownerReferences: [{kind: 'CronJob', name: 'nightly', controller: true}],
      },
    }),
    item('services', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {name: 'orders', namespace: 'shop'},
      spec: {
        type: 'LoadBalancer',
        clusterIP: '10.0.0.9',
        clusterIPs: ['10.0.0.9'],
        ports: [{port: 80, nodePort: 30080}],
      },
    }),
    item('secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 'db', namespace: 'shop'},
      data: {PASSWORD: 'c2VjcmV0'},
    }),
    item('persistentvolumeclaims', {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {name: 'data', namespace: 'shop', annotations: {'pv.kubernetes.io/bind-completed': 'yes'}},
      spec: {volumeName: 'pvc-123', resources: {requests: {storage: '1Gi'}}},
    }),
    item('rolebindings.rbac.authorization.k8s.io', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: {name: 'rb', namespace: 'shop'},
    }),
    item('httproutes.gateway.networking.k8s.io', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: {name: 'orders', namespace: 'shop'},
      spec: {
        parentRefs: [{name: 'shop-gateway', namespace: 'gateways'}],
        rules: [{backendRefs: [{name: 'orders', port: 80}]}],
      },
    }),
    item('grpcroutes.gateway.networking.k8s.io', {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GRPCRoute',
      metadata: {name: 'orders', namespace: 'shop'},
    }),
    item('namespaces', {apiVersion: 'v1', kind: 'Namespace', metadata: {name: 'shop'}}, null),
    item('persistentvolumes', {apiVersion: 'v1', kind: 'PersistentVolume', metadata: {name: 'pvc-123'}}, null),
    item('configmaps', {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cart', namespace: 'cart'}}, 'cart'),
    item('widgets.example.com', {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: {name: 'w', namespace: 'shop'},
    }),
  ]
  const plan = planBackupRestore(items, 'shop', 'retailops-drill-x-k8s', 'x', 'k8s')

  it("restores in Velero's order into the drill namespace, with paths for any kind", () => {
    expect(plan.ordered.map((p) => `${p.groupResource} ${p.path}`)).toEqual([
      'persistentvolumeclaims /api/v1/namespaces/retailops-drill-x-k8s/persistentvolumeclaims/data',
      'secrets /api/v1/namespaces/retailops-drill-x-k8s/secrets/db',
      'services /api/v1/namespaces/retailops-drill-x-k8s/services/orders',
      'deployments.apps /apis/apps/v1/namespaces/retailops-drill-x-k8s/deployments/orders',
      'httproutes.gateway.networking.k8s.io /apis/gateway.networking.k8s.io/v1/namespaces/retailops-drill-x-k8s/httproutes/orders',
      'widgets.example.com /apis/example.com/v1/namespaces/retailops-drill-x-k8s/widgets/w',
    ])
    expect(plan.otherNamespaces).toBe(1)
  })

  it('strips what must not be restored: status, server metadata, cluster IPs, node ports, PVC binding, Secret values', () => {
    const [pvc, secret, service, deployment] = plan.ordered.map((p) => p.object as Record<string, any>)
    expect(deployment.status).toBeUndefined()
    for (const key of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'generation'])
      expect(deployment.metadata[key]).toBeUndefined()
    expect(deployment.metadata).toMatchObject({
      namespace: 'retailops-drill-x-k8s',
      labels: {'retailops.dev/drill': 'x'},
    })
    expect(deployment.spec.template.spec.automountServiceAccountToken).toBe(false)
    expect(service.spec).toEqual({type: 'ClusterIP', ports: [{port: 80}]})
    expect(secret.data).toEqual({PASSWORD: ''})
    expect(pvc.spec.volumeName).toBeUndefined()
    // The route keeps its rules and backends, and attaches to no Gateway.
    const route = plan.ordered.find((p) => p.object.kind === 'HTTPRoute')!.object as Record<string, any>
    expect(route.spec).toEqual({rules: [{backendRefs: [{name: 'orders', port: 80}]}]})
    expect(pvc.metadata.annotations?.['pv.kubernetes.io/bind-completed']).toBeUndefined()
  })

  it('reports every skipped object with its reason', () => {
    const outcome = Object.fromEntries(
      plan.inventory.map((i) => [`${i.kind} ${i.name}`, `${i.outcome}: ${i.reason ?? ''}`]),
    )
    expect(outcome['ReplicaSet orders-1']).toMatch(/^not-restored: made by its Deployment's controller/)
    expect(outcome['Job nightly-1']).toMatch(/^not-restored: owned by CronJob nightly/)
    expect(outcome['RoleBinding rb']).toMatch(/^not-restored: RBAC is not restored/)
    expect(outcome['HTTPRoute orders']).toBe('modified: restored detached (no parentRefs: no Gateway sends it traffic)')
    expect(outcome['GRPCRoute orders']).toMatch(/^not-restored: would route traffic from outside/)
    expect(outcome['Namespace shop']).toMatch(
      /^not-restored: the drill namespace retailops-drill-x-k8s stands in for it/,
    )
    expect(outcome['PersistentVolume pvc-123']).toMatch(/^not-restored: cluster-scoped/)
    expect(outcome['PersistentVolumeClaim data']).toMatch(/^modified: binding removed/)
    expect(outcome['Secret db']).toMatch(/^placeholder: /)
    expect(outcome['Service orders']).toMatch(/^modified: LoadBalancer restored as ClusterIP/)
    expect(outcome['Widget w']).toBe('restored: ')
    expect(outcome['ConfigMap cart']).toBeUndefined()
  })
})
