import {canaryReplicasByRatio} from './traffic.js'
import type {RolloutSpec, Step} from './types.js'

export interface CanaryScale {
  replicas: number
  /** Why this many: "10 % of 4 replicas", "12 rps × 10 % at 5 rps/pod", "setCanaryScale 3". */
  reason: string
  /** The weight could need more pods than maxReplicas allows. */
  capped: boolean
}

/**
 * How many canary pods must be Ready before the canary may receive `weight` %: never fewer than
 * its share of the replicas, nor fewer than the observed (or expected) traffic at that weight
 * needs at the configured per-pod capacity; setCanaryScale raises it, never lowers it.
 */
export function canaryReplicasFor(
  spec: RolloutSpec,
  weight: number,
  scale?: Extract<Step, {setCanaryScale: unknown}>['setCanaryScale'],
  rps?: number,
): CanaryScale {
  const n = spec.replicas
  if (spec.router === 'replicas') {
    const r = canaryReplicasByRatio(n, weight)
    const floor = scale?.replicas ?? (scale?.weight === undefined ? 0 : Math.ceil((n * scale.weight) / 100))
    return {replicas: Math.max(r, floor), reason: `${weight} % of ${n} replicas by pod count`, capped: false}
  }
  const reasons: string[] = []
  let replicas = 0
  if (weight > 0) {
    replicas = Math.max(1, Math.ceil((n * weight) / 100))
    reasons.push(`${weight} % of ${n} replicas`)
  }
  if (weight > 0 && spec.rpsPerPod && rps !== undefined && rps > 0) {
    const perPod = spec.rpsPerPod * spec.targetUtilization
    const byRps = Math.ceil((rps * weight) / 100 / perPod)
    if (byRps > replicas) {
      replicas = byRps
      reasons.push(`${round(rps)} rps × ${weight} % at ${round(perPod)} rps/pod`)
    }
  }
  if (scale?.replicas !== undefined && scale.replicas > replicas) {
    replicas = scale.replicas
    reasons.push(`setCanaryScale ${scale.replicas}`)
  }
  if (scale?.weight !== undefined && Math.ceil((n * scale.weight) / 100) > replicas) {
    replicas = Math.ceil((n * scale.weight) / 100)
    reasons.push(`setCanaryScale ${scale.weight} %`)
  }
  const limit = Math.max(spec.maxReplicas, n)
  const capped = replicas > limit
  if (capped) replicas = limit
  return {replicas, reason: reasons.at(-1) ?? 'no traffic', capped}
}

const round = (v: number) => Math.round(v * 10) / 10
