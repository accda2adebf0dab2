import {describe, expect, it} from 'vitest'

import {
  deploymentAvailable,
  planRestore,
  prepareForRestore,
  RBAC_NOT_RESTORED,
  secretReference,
  SNAPSHOT_KINDS,
} from '../../../src/dr/providers/kubernetes.js'
import {MANAGED_KINDS} from '../../../src/kubernetes/resources.js'

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

describe('the kinds a namespace snapshot restores beyond the core ones', () => {
  const meta = (name: string, extra: Record<string, unknown> = {}) => ({name, namespace: 'shop', ...extra})
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta('cart'),
    spec: {replicas: 3, template: {spec: {containers: [{name: 'app', image: 'i'}]}}},
  }
  const scaledObject = (annotations?: Record<string, string>) => ({
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: meta('cart', annotations ? {annotations} : {}),
    spec: {scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'}, minReplicaCount: 2},
  })

  it('holds every kind render produces in a namespace, in restore order, optional CRDs marked', () => {
    expect(SNAPSHOT_KINDS.map((k) => k.kind)).toEqual([
      'ResourceQuota',
      'LimitRange',
      'ServiceAccount',
      'ConfigMap',
      'Secret',
      'NetworkPolicy',
      'Role',
      'RoleBinding',
      'Service',
      'PodDisruptionBudget',
      'TriggerAuthentication',
      'Deployment',
      'CronJob',
      'HorizontalPodAutoscaler',
      'ScaledObject',
      'HTTPRoute',
    ])
    expect(SNAPSHOT_KINDS.filter((k) => k.optional).map((k) => k.apiVersion)).toEqual([
      'keda.sh/v1alpha1',
      'keda.sh/v1alpha1',
      'gateway.networking.k8s.io/v1',
    ])
    // Every namespaced kind the deploy manages is snapshotted (the Namespace is the drill's own).
    for (const k of MANAGED_KINDS.filter((m) => m.namespaced))
      expect(SNAPSHOT_KINDS.map((s) => s.kind)).toContain(k.kind)
  })

  it('restores a ScaledObject paused at its Deployment’s restored count, so KEDA never scales the copies on the source’s signals', () => {
    const plan = planRestore([deployment, scaledObject()], 'd', 'id', 'ds')
    const so = plan.objects.find((o) => o.kind === 'ScaledObject')!
    expect(so.metadata.annotations).toEqual({
      'autoscaling.keda.sh/paused': 'true',
      'autoscaling.keda.sh/paused-replicas': '3',
    })
    expect(so.spec).toMatchObject({minReplicaCount: 2})
    expect(plan.inventory.find((i) => i.kind === 'ScaledObject')).toEqual({
      kind: 'ScaledObject',
      name: 'cart',
      outcome: 'modified',
      reason:
        "restored paused (autoscaling.keda.sh/paused, autoscaling.keda.sh/paused-replicas: 3, its Deployment's restored count)",
    })
    // Without its Deployment in what is restored: paused, at whatever count the target has.
    expect(planRestore([scaledObject()], 'd', 'id', 'ds').objects[0].metadata.annotations).toEqual({
      'autoscaling.keda.sh/paused': 'true',
    })
    // A team's own pause (sleep's paused-replicas 0) is restored as it was.
    const asleep = planRestore(
      [deployment, scaledObject({'autoscaling.keda.sh/paused-replicas': '0'})],
      'd',
      'id',
      'ds',
    )
    expect(asleep.objects[1].metadata.annotations).toEqual({'autoscaling.keda.sh/paused-replicas': '0'})
    expect(asleep.inventory[1].outcome).toBe('restored')
  })

  it('restores an HTTPRoute without parentRefs (no Gateway sends it traffic), a TriggerAuthentication and quota as they are', () => {
    const plan = planRestore(
      [
        {apiVersion: 'v1', kind: 'ResourceQuota', metadata: meta('tenant-quota'), spec: {hard: {pods: '10'}}},
        {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'TriggerAuthentication',
          metadata: meta('cart-prometheus'),
          spec: {secretTargetRef: [{parameter: 'bearerToken', name: 'prom', key: 'token'}]},
        },
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: meta('cart'),
          spec: {
            parentRefs: [{name: 'shop', namespace: 'gateways'}],
            rules: [{backendRefs: [{name: 'cart', port: 80}]}],
          },
        },
      ],
      'd',
      'id',
      'ds',
    )
    expect(plan.objects.map((o) => [o.kind, o.metadata.namespace, o.spec])).toEqual([
      ['ResourceQuota', 'd', {hard: {pods: '10'}}],
      ['TriggerAuthentication', 'd', {secretTargetRef: [{parameter: 'bearerToken', name: 'prom', key: 'token'}]}],
      ['HTTPRoute', 'd', {rules: [{backendRefs: [{name: 'cart', port: 80}]}]}],
    ])
    expect(plan.inventory.map((i) => `${i.kind}: ${i.outcome}`)).toEqual([
      'ResourceQuota: restored',
      'TriggerAuthentication: restored',
      'HTTPRoute: modified',
    ])
  })

  it("restores an HPA on External metrics with scale-up disabled (they are the source's signals), a CPU one as it is", () => {
    const hpa = (metrics: object[]) => ({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: meta('cart'),
      spec: {
        scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'},
        minReplicas: 2,
        maxReplicas: 10,
        behavior: {scaleUp: {stabilizationWindowSeconds: 0}, scaleDown: {stabilizationWindowSeconds: 300}},
        metrics,
      },
    })
    const cpu = {type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}}
    const external = {
      type: 'External',
      external: {metric: {name: 'cart_carts'}, target: {type: 'AverageValue', averageValue: '5'}},
    }
    const {object, notes} = prepareForRestore(hpa([external, cpu]), 'd', 'id', 'ds')
    expect((object.spec as {behavior: object}).behavior).toEqual({
      scaleUp: {stabilizationWindowSeconds: 0, selectPolicy: 'Disabled'},
      scaleDown: {stabilizationWindowSeconds: 300},
    })
    expect(notes).toEqual([
      "HorizontalPodAutoscaler cart: restored with scale-up disabled (its External metrics read the source's signals)",
    ])
    const plain = prepareForRestore(hpa([cpu]), 'd', 'id', 'ds')
    expect(plain.object.spec).toEqual(hpa([cpu]).spec)
    expect(plain.notes).toEqual([])
  })

  it('records Roles and RoleBindings and never restores them', () => {
    const plan = planRestore(
      [
        {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta('driver'), rules: []},
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: meta('driver'),
          roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin'},
        },
      ],
      'd',
      'id',
      'ds',
    )
    expect(plan.objects).toEqual([])
    expect(plan.inventory.map((i) => [i.kind, i.outcome, i.reason])).toEqual([
      ['Role', 'not-restored', RBAC_NOT_RESTORED],
      ['RoleBinding', 'not-restored', RBAC_NOT_RESTORED],
    ])
  })
})
