/**
 * A Deployment's autoscaler, whichever kind it is: an autoscaling/v2 HorizontalPodAutoscaler or
 * a KEDA ScaledObject (keda.sh/v1alpha1). KEDA scales a ScaledObject's target through an HPA of
 * its own (keda-hpa-<name>, owned by the ScaledObject): that HPA is KEDA's to set, so whoever
 * raises, pins or reads bounds (prewarm, the replica router, status views) acts on the
 * ScaledObject, never on it. One place decides which object that is, for every concept.
 */
import {isNotFound} from './client.js'
import type {KubeHttp} from './http.js'
import type {HorizontalPodAutoscaler, ScaledObject} from './kinds.js'
import {servesResource} from './discovery.js'
import {listObjects} from './objects.js'
import {collectionPath} from './resources.js'

export type AutoscalerKind = 'HorizontalPodAutoscaler' | 'ScaledObject'

/** KEDA's defaults for a ScaledObject without bounds. */
export const KEDA_DEFAULT_MIN = 0
export const KEDA_DEFAULT_MAX = 100

/** The bounds of an autoscaler, whichever kind (absent fields at their kind's defaults). */
export interface AutoscalerBounds {
  kind: AutoscalerKind
  name: string
  minReplicas: number
  maxReplicas: number
}

/** The field names of the bounds in each kind's spec. */
export const BOUND_FIELDS: Record<AutoscalerKind, {min: string; max: string}> = {
  HorizontalPodAutoscaler: {min: 'minReplicas', max: 'maxReplicas'},
  ScaledObject: {min: 'minReplicaCount', max: 'maxReplicaCount'},
}

/** True when the cluster serves KEDA's ScaledObjects (its CRDs are installed): asked at deploy time. */
export async function servesScaledObjects(http: KubeHttp, signal?: AbortSignal): Promise<boolean> {
  return servesResource(http, 'keda.sh/v1alpha1', 'scaledobjects', signal)
}

/** The ScaledObjects of a namespace; none where the cluster has no KEDA CRDs. */
export async function listScaledObjects(http: KubeHttp, namespace: string): Promise<ScaledObject[]> {
  try {
    return await listObjects<ScaledObject>(http, collectionPath('ScaledObject', namespace))
  } catch (error) {
    if (isNotFound(error)) return []
    throw error
  }
}

/** An HPA that KEDA made for a ScaledObject (it owns it): not an autoscaler of its own. */
export function ownedByScaledObject(hpa: HorizontalPodAutoscaler): boolean {
  return (hpa.metadata.ownerReferences ?? []).some((o) => o.kind === 'ScaledObject')
}

/**
 * The autoscaler of Deployment `deployment`: its ScaledObject when it has one (KEDA's own HPA
 * for it is skipped), else the HPA whose scaleTargetRef names it.
 */
export function autoscalerOf(
  deployment: string,
  hpas: HorizontalPodAutoscaler[],
  scaledObjects: ScaledObject[],
):
  | {kind: 'ScaledObject'; object: ScaledObject}
  | {kind: 'HorizontalPodAutoscaler'; object: HorizontalPodAutoscaler}
  | undefined {
  const so = scaledObjects.find(
    (s) =>
      (s.spec?.scaleTargetRef?.kind ?? 'Deployment') === 'Deployment' && s.spec?.scaleTargetRef?.name === deployment,
  )
  if (so) return {kind: 'ScaledObject', object: so}
  const hpa = hpas.find(
    (h) =>
      !ownedByScaledObject(h) &&
      h.spec?.scaleTargetRef?.kind === 'Deployment' &&
      h.spec.scaleTargetRef.name === deployment,
  )
  return hpa ? {kind: 'HorizontalPodAutoscaler', object: hpa} : undefined
}

/** Min and max of either kind, with KEDA's defaults for a ScaledObject's absent bounds. */
export function boundsOf(
  a: {kind: 'ScaledObject'; object: ScaledObject} | {kind: 'HorizontalPodAutoscaler'; object: HorizontalPodAutoscaler},
): AutoscalerBounds {
  if (a.kind === 'ScaledObject')
    return {
      kind: a.kind,
      name: a.object.metadata.name,
      minReplicas: a.object.spec?.minReplicaCount ?? KEDA_DEFAULT_MIN,
      maxReplicas: a.object.spec?.maxReplicaCount ?? KEDA_DEFAULT_MAX,
    }
  return {
    kind: a.kind,
    name: a.object.metadata.name,
    minReplicas: a.object.spec?.minReplicas ?? 1,
    maxReplicas: a.object.spec?.maxReplicas ?? 1,
  }
}
