import type * as k8s from '@kubernetes/client-node'

import type {KubeClients} from '../kubernetes/client.js'

/** Why pods of these Deployments are not Ready: scheduling failures, waiting reasons, readiness. */
export async function explainNotReady(k: KubeClients, namespace: string, deployments: string[]): Promise<string[]> {
  const reasons = new Map<string, number>()
  try {
    for (const name of deployments) {
      const d = await k.apps.readNamespacedDeployment({name, namespace})
      const selector = Object.entries(d.spec?.selector?.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`).join(',')
      const pods = await k.core.listNamespacedPod({namespace, labelSelector: selector})
      for (const pod of pods.items) {
        const reason = podReason(pod)
        if (reason) reasons.set(`${name}: ${reason}`, (reasons.get(`${name}: ${reason}`) ?? 0) + 1)
      }
      if ((pods.items.length ?? 0) < (d.spec?.replicas ?? 0)) {
        const rc = (d.status?.conditions ?? []).find((c) => c.type === 'ReplicaFailure' && c.status === 'True')
        if (rc) reasons.set(`${name}: ${rc.message}`, 1)
      }
    }
  } catch {
    // Explaining is best effort: the timeout itself is the error.
  }
  return [...reasons.entries()].map(([reason, count]) => (count > 1 ? `${reason} (${count} pods)` : reason))
}

function podReason(pod: k8s.V1Pod): string | undefined {
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled')
  if (scheduled?.status === 'False') return `Pending: ${scheduled.message ?? scheduled.reason ?? 'not scheduled'}`
  for (const cs of pod.status?.containerStatuses ?? []) {
    if (cs.state?.waiting?.reason) return `${cs.name} ${cs.state.waiting.reason}${cs.state.waiting.message ? `: ${cs.state.waiting.message}` : ''}`
  }
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')
  if (ready?.status === 'False') return `not Ready${ready.reason ? ` (${ready.reason})` : ''}`
  return undefined
}
