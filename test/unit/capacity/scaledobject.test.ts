// prewarm's saved state and restore for a KEDA ScaledObject: the same shape as for an HPA, on
// minReplicaCount, maxReplicaCount and the whole `advanced` block (absent fields stay absent).
import {describe, expect, it} from 'vitest'

import {matchesSaved, restorePatch} from '../../../src/capacity/restore.js'
import {saveScaledObject} from '../../../src/capacity/state.js'
import {autoscalerOf, boundsOf} from '../../../src/kubernetes/autoscalers.js'
import type {HorizontalPodAutoscaler, ScaledObject} from '../../../src/kubernetes/kinds.js'

const so = (spec: Partial<NonNullable<ScaledObject['spec']>>): ScaledObject => ({
  metadata: {name: 'cart', namespace: 'shop', resourceVersion: '7'},
  spec: {scaleTargetRef: {name: 'cart'}, triggers: [{type: 'cpu', metadata: {value: '70'}}], ...spec},
})

describe('a ScaledObject saved and restored by prewarm', () => {
  const behavior = {scaleDown: {stabilizationWindowSeconds: 300}}

  it('saves min, max and advanced as they are, absent ones as absent', () => {
    expect(
      saveScaledObject(
        'cart',
        so({minReplicaCount: 2, maxReplicaCount: 8, advanced: {horizontalPodAutoscalerConfig: {behavior}}}),
      ),
    ).toEqual({
      kind: 'ScaledObject',
      name: 'cart',
      service: 'cart',
      minReplicaCount: {present: true, value: 2},
      maxReplicaCount: {present: true, value: 8},
      advanced: {present: true, value: {horizontalPodAutoscalerConfig: {behavior}}},
    })
    expect(saveScaledObject('cart', so({}))).toMatchObject({
      minReplicaCount: {present: false},
      maxReplicaCount: {present: false},
      advanced: {present: false},
    })
  })

  it('restores exactly: raised fields back, fields it added removed, our annotation dropped', () => {
    const saved = saveScaledObject('cart', so({minReplicaCount: 2}))
    const raised = {
      metadata: {resourceVersion: '9', annotations: {'retailops.io/prewarm-campaign': 'bf'}},
      spec: {
        ...so({}).spec,
        minReplicaCount: 6,
        maxReplicaCount: 8,
        advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {selectPolicy: 'Disabled'}}}},
      } as Record<string, unknown>,
    }
    expect(restorePatch(saved, raised)).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '9'},
      {op: 'add', path: '/spec/minReplicaCount', value: 2},
      {op: 'remove', path: '/spec/maxReplicaCount'},
      {op: 'remove', path: '/spec/advanced'},
      {op: 'remove', path: '/metadata/annotations/retailops.io~1prewarm-campaign'},
    ])
    expect(matchesSaved(saved, raised.spec)).toBe(false)
    expect(matchesSaved(saved, so({minReplicaCount: 2}).spec as Record<string, unknown>)).toBe(true)
  })

  it('puts a whole advanced block back, not only the scale-down policy prewarm changed', () => {
    const advanced = {restoreToOriginalReplicaCount: true, horizontalPodAutoscalerConfig: {behavior}}
    const saved = saveScaledObject('cart', so({minReplicaCount: 2, maxReplicaCount: 8, advanced}))
    const raised = {
      metadata: {resourceVersion: '9'},
      spec: {
        ...so({}).spec,
        minReplicaCount: 5,
        maxReplicaCount: 8,
        advanced: {
          ...advanced,
          horizontalPodAutoscalerConfig: {behavior: {scaleDown: {...behavior.scaleDown, selectPolicy: 'Disabled'}}},
        },
      } as Record<string, unknown>,
    }
    expect(restorePatch(saved, raised).slice(1)).toEqual([
      {op: 'add', path: '/spec/minReplicaCount', value: 2},
      {op: 'add', path: '/spec/advanced', value: advanced},
    ])
  })

  it('finds the ScaledObject as the autoscaler, never the HPA KEDA made for it', () => {
    expect(findAutoscalerKind()).toEqual({kind: 'ScaledObject', name: 'cart', minReplicas: 0, maxReplicas: 100})
  })
})

/** A namespace with KEDA's own HPA for cart's ScaledObject (owned by it), and an HPA for another Deployment. */
function findAutoscalerKind() {
  const kedaHpa: HorizontalPodAutoscaler = {
    metadata: {name: 'keda-hpa-cart', ownerReferences: [{uid: 'u', kind: 'ScaledObject', name: 'cart'}]},
    spec: {scaleTargetRef: {kind: 'Deployment', name: 'cart'}, minReplicas: 3, maxReplicas: 9},
  }
  const other: HorizontalPodAutoscaler = {
    metadata: {name: 'search'},
    spec: {scaleTargetRef: {kind: 'Deployment', name: 'search'}, maxReplicas: 4},
  }
  const so: ScaledObject = {metadata: {name: 'cart'}, spec: {scaleTargetRef: {name: 'cart'}, triggers: []}}
  const found = autoscalerOf('cart', [kedaHpa, other], [so])!
  // Without the ScaledObject, KEDA's HPA is still not the Deployment's autoscaler.
  if (autoscalerOf('cart', [kedaHpa], []) !== undefined) throw new Error('took the HPA KEDA owns')
  if (boundsOf(autoscalerOf('search', [kedaHpa, other], [so])!).minReplicas !== 1) throw new Error('HPA default min')
  return boundsOf(found)
}
