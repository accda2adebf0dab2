import {autoscalerOf, boundsOf} from '../../../src/kubernetes/autoscalers.js'
import type {HorizontalPodAutoscaler, ScaledObject} from '../../../src/kubernetes/kinds.js'

/** A namespace with KEDA's own HPA for cart's ScaledObject (owned by it), and an HPA for another Deployment. */
export function findAutoscalerKind() {
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
