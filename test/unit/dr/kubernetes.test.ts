import {describe, expect, it} from 'vitest'

import {deploymentAvailable, prepareForRestore, secretReference} from '../../../src/dr/providers/kubernetes.js'

describe('prepareForRestore', () => {
  it('restores a CronJob suspended, so a drill never runs its schedule', () => {
    const cronJob = (suspend?: boolean) => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: {name: 'reconcile', namespace: 'shop'},
      spec: {schedule: '*/15 * * * *', ...(suspend !== undefined && {suspend}), jobTemplate: {spec: {}}},
    })
    const active = prepareForRestore(cronJob(), 'd', 'id', 'ds')
    expect(active.object.spec).toMatchObject({schedule: '*/15 * * * *', suspend: true})
    expect(active.notes).toEqual(['CronJob reconcile: restored suspended'])
    const suspended = prepareForRestore(cronJob(true), 'd', 'id', 'ds')
    expect(suspended.object.spec).toMatchObject({suspend: true})
    expect(suspended.notes).toEqual([])
  })

  it('strips server fields and status, moves the object and labels it with the drill', () => {
    const {object} = prepareForRestore(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name: 'orders',
          namespace: 'shop',
          uid: 'u',
          resourceVersion: '42',
          generation: 3,
          creationTimestamp: '2026-01-01T00:00:00Z',
          managedFields: [{}],
          labels: {'app.kubernetes.io/managed-by': 'retailops'},
          annotations: {'deployment.kubernetes.io/revision': '3', 'retailops.dev/image': 'x'},
        },
        spec: {replicas: 2},
        status: {availableReplicas: 2},
      },
      'retailops-drill-x-shop',
      '20260509-120301-7f3a',
      'shop-config',
    )
    expect(object).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'orders',
        namespace: 'retailops-drill-x-shop',
        labels: {
          'app.kubernetes.io/managed-by': 'retailops',
          'retailops.dev/drill': '20260509-120301-7f3a',
          'retailops.dev/drill-datastore': 'shop-config',
        },
        annotations: {'retailops.dev/image': 'x'},
      },
      spec: {replicas: 2},
    })
  })
  it('gives Services new cluster IPs and never a load balancer or node port', () => {
    const {object, notes} = prepareForRestore(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {name: 'web', namespace: 'shop'},
        spec: {
          type: 'LoadBalancer',
          clusterIP: '10.0.0.4',
          clusterIPs: ['10.0.0.4'],
          ports: [{port: 80, nodePort: 30080}],
          externalTrafficPolicy: 'Local',
          healthCheckNodePort: 31000,
        },
      },
      'd',
      'id',
      'ds',
    )
    expect(object.spec).toEqual({type: 'ClusterIP', ports: [{port: 80}]})
    expect(notes).toEqual(['Service web: LoadBalancer restored as ClusterIP'])
    const headless = prepareForRestore(
      {apiVersion: 'v1', kind: 'Service', metadata: {name: 'h'}, spec: {clusterIP: 'None', clusterIPs: ['None']}},
      'd',
      'id',
      'ds',
    ).object
    expect(headless.spec).toEqual({clusterIP: 'None'})
  })
  it('keeps Secrets in the snapshot file as references only', () => {
    const ref = secretReference({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 'db'},
      type: 'Opaque',
      data: {password: 'c2VjcmV0', user: 'YXBw'},
    })
    expect(ref).toMatchObject({kind: 'Secret', name: 'db', type: 'Opaque', keys: ['password', 'user']})
    expect(JSON.stringify(ref)).not.toContain('c2VjcmV0')
    expect(ref.dataSha256).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe('deploymentAvailable', () => {
  it('needs every replica available and updated for the current generation', () => {
    const d = (status: object, generation = 1) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name: 'x', generation},
      spec: {replicas: 2},
      status,
    })
    expect(deploymentAvailable(d({observedGeneration: 1, availableReplicas: 2, updatedReplicas: 2})).available).toBe(
      true,
    )
    expect(deploymentAvailable(d({observedGeneration: 1, availableReplicas: 1, updatedReplicas: 2})).available).toBe(
      false,
    )
    expect(deploymentAvailable(d({observedGeneration: 1, availableReplicas: 2, updatedReplicas: 2}, 2)).available).toBe(
      false,
    )
    expect(
      deploymentAvailable(
        d({
          observedGeneration: 1,
          availableReplicas: 0,
          conditions: [{type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'too slow'}],
        }),
      ).detail,
    ).toBe('0/2 available (ProgressDeadlineExceeded: too slow)')
  })
})
