import {describe, expect, it} from 'vitest'

import {keepOwned, ownedByManager} from '../../../src/kubernetes/managed-fields.js'

// A Deployment as the API server returns it: retailops applied labels, replicas, strategy and the
// template; the HPA controller's scale and someone's annotation belong to others.
const live = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'checkout',
    namespace: 'shop',
    resourceVersion: '42',
    labels: {
      'retailops.dev/applyset': 'shop.production.shop.main',
      'retailops.dev/tier': 'revenue-critical',
      team: 'payments',
    },
    annotations: {'deployment.kubernetes.io/revision': '3', 'retailops.dev/image': 'r/checkout:v2'},
    managedFields: [
      {
        manager: 'retailops',
        operation: 'Apply',
        apiVersion: 'apps/v1',
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': {
            'f:labels': {'f:retailops.dev/applyset': {}, 'f:retailops.dev/tier': {}},
            'f:annotations': {'f:retailops.dev/image': {}},
          },
          'f:spec': {
            'f:replicas': {},
            'f:selector': {},
            'f:strategy': {'f:type': {}, 'f:rollingUpdate': {'f:maxSurge': {}, 'f:maxUnavailable': {}}},
            'f:template': {
              'f:metadata': {'f:labels': {'f:app': {}}},
              'f:spec': {
                'f:containers': {
                  'k:{"name":"checkout"}': {
                    '.': {},
                    'f:name': {},
                    'f:image': {},
                    'f:ports': {
                      'k:{"containerPort":8080,"protocol":"TCP"}': {'.': {}, 'f:containerPort': {}, 'f:protocol': {}},
                    },
                  },
                },
              },
            },
          },
        },
      },
      {
        manager: 'kubectl-label',
        operation: 'Update',
        apiVersion: 'apps/v1',
        fieldsType: 'FieldsV1',
        fieldsV1: {'f:metadata': {'f:labels': {'f:team': {}}}},
      },
      {
        manager: 'kube-controller-manager',
        operation: 'Update',
        apiVersion: 'apps/v1',
        fieldsType: 'FieldsV1',
        subresource: 'status',
        fieldsV1: {'f:status': {'f:replicas': {}}},
      },
    ],
  },
  spec: {
    replicas: 30,
    selector: {matchLabels: {app: 'checkout'}},
    strategy: {type: 'RollingUpdate', rollingUpdate: {maxSurge: '25%', maxUnavailable: 0}},
    revisionHistoryLimit: 10,
    template: {
      metadata: {labels: {app: 'checkout'}},
      spec: {
        containers: [
          {
            name: 'checkout',
            image: 'r/checkout:v2',
            imagePullPolicy: 'IfNotPresent',
            ports: [{containerPort: 8080, protocol: 'TCP'}],
          },
          {name: 'mesh-proxy', image: 'proxy:1'},
        ],
        dnsPolicy: 'ClusterFirst',
      },
    },
  },
  status: {replicas: 30},
}

describe('the fields a manager owns', () => {
  it('reads back exactly what the manager applied, with the live values, and nothing of other managers or the server', () => {
    const owned = ownedByManager(live, 'retailops') as any
    expect(owned.metadata).toEqual({
      labels: {'retailops.dev/applyset': 'shop.production.shop.main', 'retailops.dev/tier': 'revenue-critical'},
      annotations: {'retailops.dev/image': 'r/checkout:v2'},
      name: 'checkout',
      namespace: 'shop',
    })
    expect(owned.spec.replicas).toBe(30)
    expect(owned.spec.strategy).toEqual({type: 'RollingUpdate', rollingUpdate: {maxSurge: '25%', maxUnavailable: 0}})
    expect(owned.spec.template.spec.containers).toEqual([
      {name: 'checkout', image: 'r/checkout:v2', ports: [{containerPort: 8080, protocol: 'TCP'}]},
    ])
    expect(owned.spec.revisionHistoryLimit).toBeUndefined()
    expect(owned.status).toBeUndefined()
    expect(ownedByManager(live, 'nobody')).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name: 'checkout', namespace: 'shop'},
    })
  })

  it('a change of the template keeps labels, strategy and replicas, and restores the template whole', () => {
    const old = {
      metadata: {labels: {app: 'checkout'}},
      spec: {containers: [{name: 'checkout', image: 'r/checkout:v1'}]},
    }
    const body = keepOwned(ownedByManager(live, 'retailops'), {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name: 'checkout', namespace: 'shop'},
      spec: {template: old},
    }) as any
    expect(body.metadata.labels).toEqual({
      'retailops.dev/applyset': 'shop.production.shop.main',
      'retailops.dev/tier': 'revenue-critical',
    })
    expect(body.spec.replicas).toBe(30)
    expect(body.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(body.spec.template).toEqual(old)
  })

  it('merges labels and annotations by key; null removes one', () => {
    const body = keepOwned(ownedByManager(live, 'retailops'), {
      metadata: {name: 'checkout', annotations: {'retailops.dev/image': null, extra: 'x'}},
    }) as any
    expect(body.metadata.annotations).toEqual({extra: 'x'})
    expect(body.metadata.labels['retailops.dev/tier']).toBe('revenue-critical')
  })
})
