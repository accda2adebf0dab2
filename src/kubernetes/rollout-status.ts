import {throwIfAborted} from '../ui/context.js'
import {type KubeClients, kubeHttpOf, kubernetesLibrary} from './client.js'
import type {KubeHttp} from './http.js'
import {collectionPath, namedPath} from './resources.js'
import {sleep} from './wait.js'

/**
 * Waiting for Deployments to finish rolling out, the way `kubectl rollout status` decides it,
 * over one watch per cluster; and explaining a failure from pod status and events.
 */
export interface DeploymentLike {
  metadata?: {
    name?: string
    namespace?: string
    generation?: number
    annotations?: Record<string, string>
    uid?: string
  }
  spec?: {replicas?: number; selector?: {matchLabels?: Record<string, string>}}
  status?: {
    observedGeneration?: number
    replicas?: number
    updatedReplicas?: number
    readyReplicas?: number
    availableReplicas?: number
    unavailableReplicas?: number
    conditions?: {type: string; status: string; reason?: string; message?: string}[]
  }
}

export type DeploymentRolloutPhase = 'progressing' | 'complete' | 'failed'

export interface DeploymentRolloutState {
  phase: DeploymentRolloutPhase
  message: string
}

/** kubectl's rollout-status logic (DeploymentStatusViewer), plus ProgressDeadlineExceeded as failure. */
export function deploymentRolloutState(d: DeploymentLike): DeploymentRolloutState {
  const name = d.metadata?.name ?? '?'
  const generation = d.metadata?.generation ?? 0
  const st = d.status ?? {}
  if ((st.observedGeneration ?? 0) < generation)
    return {phase: 'progressing', message: `waiting for the controller to observe generation ${generation}`}
  const progressing = st.conditions?.find((c) => c.type === 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {
      phase: 'failed',
      message: `${name} exceeded its progress deadline${progressing.message ? `: ${progressing.message}` : ''}`,
    }
  }
  const want = d.spec?.replicas ?? 1
  const updated = st.updatedReplicas ?? 0
  const total = st.replicas ?? 0
  const available = st.availableReplicas ?? 0
  if (updated < want) return {phase: 'progressing', message: `${updated} of ${want} new replicas updated`}
  if (total > updated)
    return {
      phase: 'progressing',
      message: `${total - updated} old replica${total - updated === 1 ? '' : 's'} pending termination`,
    }
  if (available < updated)
    return {phase: 'progressing', message: `${available} of ${updated} updated replicas available`}
  return {phase: 'complete', message: `${available} of ${want} replicas available`}
}

export interface WaitTarget {
  namespace: string
  name: string
}

export interface WaitResult extends WaitTarget {
  ref: string
  phase: DeploymentRolloutPhase | 'timeout'
  message: string
  /** Why it failed, from pod status and events (only when it did not complete). */
  reasons: string[]
  ms: number
}

export interface WaitOptions {
  timeoutMs: number
  /** Label selector narrowing the watch (e.g. the applyset label). */
  labelSelector?: string
  signal?: AbortSignal
  onUpdate?: (ref: string, state: DeploymentRolloutState) => void
  /** Stop waiting for the others as soon as one fails (default true). */
  failFast?: boolean
}

const key = (ns: string | undefined, name: string | undefined) => `${ns}/${name}`

/**
 * Waits for every target Deployment in one cluster. One LIST, then one WATCH from its
 * resourceVersion (re-listing if the server closes it), until each is complete or failed, or the
 * deadline passes. Failed and timed-out ones are explained.
 */
export async function waitForDeployments(
  k: KubeClients,
  targets: WaitTarget[],
  options: WaitOptions,
): Promise<WaitResult[]> {
  const started = Date.now()
  const pending = new Map(targets.map((t) => [key(t.namespace, t.name), t]))
  const states = new Map<string, {state: DeploymentRolloutState; at: number; obj?: DeploymentLike}>()
  const failFast = options.failFast ?? true
  if (pending.size === 0) return []

  const observe = (d: DeploymentLike) => {
    const id = key(d.metadata?.namespace, d.metadata?.name)
    if (!pending.has(id)) return
    const state = deploymentRolloutState(d)
    const prev = states.get(id)
    if (!prev || prev.state.message !== state.message) options.onUpdate?.(`Deployment ${id}`, state)
    states.set(id, {state, at: Date.now(), obj: d})
  }
  const settled = () =>
    [...pending.keys()].every(
      (id) => states.get(id)?.state.phase === 'complete' || states.get(id)?.state.phase === 'failed',
    )
  const anyFailed = () => [...pending.keys()].some((id) => states.get(id)?.state.phase === 'failed')

  const deadline = started + options.timeoutMs
  const watcher = new (kubernetesLibrary().Watch)(k.kc)
  while (Date.now() < deadline) {
    throwIfAborted(options.signal)
    const list = await k.apps.listDeploymentForAllNamespaces({labelSelector: options.labelSelector})
    for (const d of list.items) observe(d)
    for (const id of pending.keys())
      if (!states.has(id)) states.set(id, {state: {phase: 'progressing', message: 'not found yet'}, at: Date.now()})
    if (settled() || (failFast && anyFailed())) break
    const rv = list.metadata?.resourceVersion
    const outcome = await new Promise<'settled' | 'closed' | 'deadline'>((resolve) => {
      let controller: AbortController | undefined
      let finished = false
      const finish = (why: 'settled' | 'closed' | 'deadline') => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        controller?.abort()
        resolve(why)
      }
      const onAbort = () => finish('deadline')
      const timer = setTimeout(() => finish('deadline'), Math.max(0, deadline - Date.now()))
      options.signal?.addEventListener('abort', onAbort)
      watcher
        .watch(
          collectionPath('Deployment'),
          {
            labelSelector: options.labelSelector,
            resourceVersion: rv,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.max(1, Math.ceil((deadline - Date.now()) / 1000)),
          },
          (phase, obj) => {
            if (phase === 'ADDED' || phase === 'MODIFIED') observe(obj as DeploymentLike)
            if (settled() || (failFast && anyFailed())) finish('settled')
          },
          () => finish('closed'),
        )
        .then((c) => {
          controller = c
          if (finished) c.abort()
        })
        .catch(() => finish('closed'))
    })
    if (outcome !== 'closed') break
    // The server ended the watch (timeout, compaction): list again, without hammering it.
    await sleep(Math.min(500, Math.max(0, deadline - Date.now())), options.signal)
  }
  throwIfAborted(options.signal)

  const results: WaitResult[] = []
  for (const [id, t] of pending) {
    const s = states.get(id)
    const phase: WaitResult['phase'] =
      s?.state.phase === 'complete' || s?.state.phase === 'failed'
        ? s.state.phase
        : failFast && anyFailed()
          ? 'progressing'
          : 'timeout'
    results.push({
      ...t,
      ref: `Deployment ${id}`,
      phase,
      message: s?.state.message ?? 'not found',
      reasons: [],
      ms: (s?.at ?? Date.now()) - started,
    })
  }
  await Promise.all(
    results
      .filter((r) => r.phase === 'failed' || r.phase === 'timeout')
      .map(async (r) => {
        r.reasons = await explainDeployment(kubeHttpOf(k), r.namespace, r.name).catch((error: Error) => [
          `could not read pod status: ${error.message}`,
        ])
      }),
  )
  return results
}

export interface PodLike {
  metadata?: {
    name?: string
    labels?: Record<string, string>
    ownerReferences?: {name: string; kind: string}[]
    deletionTimestamp?: string | Date
  }
  spec?: {
    nodeSelector?: Record<string, string>
    containers?: {name: string; resources?: {requests?: Record<string, string>}}[]
  }
  status?: {
    phase?: string
    conditions?: {type: string; status: string; reason?: string; message?: string}[]
    containerStatuses?: {
      name: string
      ready?: boolean
      restartCount?: number
      state?: {
        waiting?: {reason?: string; message?: string}
        terminated?: {reason?: string; exitCode?: number}
        running?: unknown
      }
      lastState?: {terminated?: {reason?: string; exitCode?: number}}
    }[]
  }
}

export interface EventLike {
  involvedObject?: {kind?: string; name?: string}
  reason?: string
  message?: string
  type?: string
  count?: number
  lastTimestamp?: Date | string
  eventTime?: Date | string
}

/**
 * Why these pods are not Ready, grouped: "2 pods (a, b): container "x" is in CrashLoopBackOff:
 * restarted 4 times, last exit code 1 (Error)". The one explainer of not-Ready pods: a deploy's
 * wait (through diagnose), a rollout's canary and stable pods, a pre-warm's and a drill's
 * Deployments all say it the same way. Events (optional) add the scheduler's and kubelet's words.
 */
export function explainPods(pods: PodLike[], events: EventLike[] = []): string[] {
  const grouped = new Map<string, string[]>()
  const note = (text: string, pod: string) => {
    if (!grouped.has(text)) grouped.set(text, [])
    grouped.get(text)!.push(pod)
  }
  for (const p of pods) {
    // A terminating pod (scaled down, replaced) is not why the workload is not Ready.
    if (p.metadata?.deletionTimestamp) continue
    const pod = p.metadata?.name ?? '?'
    const scheduled = p.status?.conditions?.find((c) => c.type === 'PodScheduled')
    if (scheduled?.status === 'False') {
      const ev = latest(events.filter((e) => e.involvedObject?.name === pod && e.reason === 'FailedScheduling'))
      const selector = Object.entries(p.spec?.nodeSelector ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')
      const req = p.spec?.containers
        ?.map((c) => `${c.resources?.requests?.cpu ?? '?'} CPU / ${c.resources?.requests?.memory ?? '?'} memory`)
        .join(' + ')
      note(
        `Unschedulable: ${ev?.message ?? scheduled.message ?? scheduled.reason}${selector ? ` (node selector ${selector})` : ''}${req ? `; each pod requests ${req}` : ''}`,
        pod,
      )
      continue
    }
    const before = grouped.size
    for (const cs of p.status?.containerStatuses ?? []) {
      const waiting = cs.state?.waiting
      const last = cs.lastState?.terminated ?? cs.state?.terminated
      if (waiting?.reason === 'CrashLoopBackOff') {
        note(
          `container "${cs.name}" is in CrashLoopBackOff: restarted ${cs.restartCount ?? 0} time${cs.restartCount === 1 ? '' : 's'}${last ? `, last exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ''}` : ''}`,
          pod,
        )
      } else if (
        waiting?.reason === 'ImagePullBackOff' ||
        waiting?.reason === 'ErrImagePull' ||
        waiting?.reason === 'InvalidImageName'
      ) {
        const ev = latest(
          events.filter((e) => e.involvedObject?.name === pod && (e.reason === 'Failed' || e.reason === 'BackOff')),
        )
        note(
          `container "${cs.name}" cannot pull its image (${waiting.reason}): ${waiting.message ?? ev?.message ?? ''}`.trim(),
          pod,
        )
      } else if (waiting?.reason) {
        note(
          `container "${cs.name}" is waiting: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
          pod,
        )
      } else if (cs.state?.running && !cs.ready) {
        const ev = latest(events.filter((e) => e.involvedObject?.name === pod && e.reason === 'Unhealthy'))
        note(
          `container "${cs.name}" is running but not ready${ev?.message ? `: ${ev.message}` : ' (readiness probe not passing)'}`,
          pod,
        )
      }
    }
    // Scheduled, but no container reported anything yet: the node has not started the pod.
    if (
      grouped.size === before &&
      p.status?.phase === 'Pending' &&
      scheduled?.status === 'True' &&
      !p.status?.containerStatuses?.length
    ) {
      note(
        'scheduled but not started yet (Pending, no container status from the node): the node is slow or not running pods',
        pod,
      )
    }
  }
  const reasons: string[] = []
  for (const [text, names] of grouped)
    reasons.push(
      `${names.length} pod${names.length === 1 ? '' : 's'} (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}): ${text}`,
    )

  return reasons
}

/**
 * Why a Deployment is not available, in words a person can act on. Pure: takes what
 * explainDeployment read, so it is unit-tested on real-shaped objects.
 */
export function diagnose(input: {
  deployment: DeploymentLike
  replicaSets: {
    metadata?: {
      name?: string
      annotations?: Record<string, string>
      ownerReferences?: {uid?: string}[]
      labels?: Record<string, string>
    }
  }[]
  pods: PodLike[]
  events: EventLike[]
}): string[] {
  const reasons: string[] = []
  const d = input.deployment
  const dName = d.metadata?.name ?? '?'
  // The newest ReplicaSet is the one being rolled out.
  const owned = input.replicaSets.filter(
    (rs) => !d.metadata?.uid || rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid),
  )
  const newest = owned.sort(
    (a, b) =>
      Number(b.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0) -
      Number(a.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0),
  )[0]
  const hash = newest?.metadata?.labels?.['pod-template-hash']
  const pods = input.pods.filter((p) => !hash || p.metadata?.labels?.['pod-template-hash'] === hash)
  // Events of older ReplicaSets (an earlier failed rollout) are history, not this rollout's reason.
  const rsNames = new Set((newest ? [newest] : owned).map((rs) => rs.metadata?.name))
  const podNames = new Set(pods.map((p) => p.metadata?.name))

  reasons.push(...explainPods(pods, input.events))

  // ReplicaSet events carry quota and admission refusals (FailedCreate); the Deployment's ReplicaFailure condition says the same in short.
  const latestFailure = latest(
    input.events.filter(
      (e) =>
        e.involvedObject?.kind === 'ReplicaSet' && rsNames.has(e.involvedObject.name) && e.reason === 'FailedCreate',
    ),
  )
  const replicaFailure = d.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True')
  const refusal = latestFailure?.message ?? replicaFailure?.message
  if (refusal) {
    const quota = /exceeded quota/i.test(refusal)
    const where = latestFailure
      ? `FailedCreate on ReplicaSet ${latestFailure.involvedObject?.name}`
      : `${replicaFailure?.reason} on Deployment ${dName}`
    reasons.push(
      `${quota ? 'Quota exceeded' : 'Pod creation refused'} (${where}): ${refusal.replace(/^\(combined from similar events\): /, '')}`,
    )
  }
  if (reasons.length === 0) {
    const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing')
    const podEvents = input.events.filter(
      (e) => e.type === 'Warning' && (podNames.has(e.involvedObject?.name) || e.involvedObject?.name === dName),
    )
    const ev = latest(podEvents)
    reasons.push(
      ev
        ? `${ev.reason}: ${ev.message}`
        : (progressing?.message ??
            `${d.status?.availableReplicas ?? 0} of ${d.spec?.replicas ?? 1} replicas available; no pod reported a reason`),
    )
  }
  return reasons
}

function latest(events: EventLike[]): EventLike | undefined {
  const t = (e: EventLike) => Date.parse(String(e.lastTimestamp ?? e.eventTime ?? 0)) || 0
  return [...events].sort((a, b) => t(b) - t(a))[0]
}

type List<T> = {items: T[]}

/** Reads what diagnose() needs: the Deployment, its ReplicaSets and pods, and the namespace's events. */
export async function explainDeployment(http: KubeHttp, namespace: string, name: string): Promise<string[]> {
  const deployment = await http.request<DeploymentLike>('GET', namedPath('Deployment', name, namespace))
  const labelSelector = Object.entries(deployment.spec?.selector?.matchLabels ?? {})
    .map(([a, b]) => `${a}=${b}`)
    .join(',')
  const [rs, pods, events] = await Promise.all([
    http.request<List<Parameters<typeof diagnose>[0]['replicaSets'][number]>>(
      'GET',
      collectionPath('ReplicaSet', namespace),
      {query: {labelSelector}},
    ),
    http.request<List<PodLike>>('GET', collectionPath('Pod', namespace), {query: {labelSelector}}),
    http.request<List<EventLike>>('GET', collectionPath('Event', namespace)),
  ])
  return diagnose({deployment, replicaSets: rs.items, pods: pods.items, events: events.items})
}

/** Why each of these Deployments is not Ready, each reason prefixed with its name. Best effort: the timeout itself is the error. */
export async function explainDeployments(http: KubeHttp, namespace: string, names: string[]): Promise<string[]> {
  const explained = await Promise.all(
    names.map((name) =>
      explainDeployment(http, namespace, name).then(
        (reasons) => reasons.map((r) => `${name}: ${r}`),
        () => [],
      ),
    ),
  )
  return explained.flat()
}
