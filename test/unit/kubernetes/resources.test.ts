import {describe, expect, it} from 'vitest'

import {apiKind, collectionPath, kindInfo, namedPath, objectPath} from '../../../src/kubernetes/resources.js'

describe('object paths: one builder for every kind retailops addresses', () => {
  it('builds core, grouped, cluster-scoped and all-namespace paths', () => {
    expect(namedPath('Deployment', 'checkout', 'shop')).toBe('/apis/apps/v1/namespaces/shop/deployments/checkout')
    expect(namedPath('Secret', 'db', 'shop')).toBe('/api/v1/namespaces/shop/secrets/db')
    expect(namedPath('PriorityClass', 'retailops-headroom-shop-bf')).toBe(
      '/apis/scheduling.k8s.io/v1/priorityclasses/retailops-headroom-shop-bf',
    )
    expect(namedPath('ClusterRoleBinding', 'r')).toBe('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/r')
    expect(collectionPath('CronJob', 'shop')).toBe('/apis/batch/v1/namespaces/shop/cronjobs')
    expect(collectionPath('Pod')).toBe('/api/v1/pods')
    expect(collectionPath('Deployment')).toBe('/apis/apps/v1/deployments')
    expect(collectionPath('PodMetrics')).toBe('/apis/metrics.k8s.io/v1beta1/pods')
    expect(collectionPath('Namespace', 'ignored')).toBe('/api/v1/namespaces')
  })

  it('encodes names and refuses a namespaced object without a namespace', () => {
    expect(objectPath({kind: 'ConfigMap', metadata: {name: 'a b', namespace: 'shop'}})).toBe(
      '/api/v1/namespaces/shop/configmaps/a%20b',
    )
    expect(() => objectPath({kind: 'Role', metadata: {name: 'r'}})).toThrow('Role/r has no namespace')
  })

  it('addresses more kinds than deploys manage, and names an unknown kind', () => {
    expect(apiKind('Secret').plural).toBe('secrets')
    expect(() => kindInfo('Secret')).toThrow('retailops does not manage objects of kind Secret')
    expect(() => collectionPath('Widget')).toThrow('retailops does not address objects of kind Widget')
  })
})
