/**
 * `rollout get`: the rollout as a tree, like kubectl-argo-rollouts: rollout → revisions →
 * ReplicaSets → pods, each with a status icon, plus the analysis runs. Built as data (the --json
 * result) and rendered to text separately.
 */
import type {Deployment, Pod, ReplicaSet} from '../kubernetes/kinds.js'

import {kubeClients, kubernetesLibrary} from '../kubernetes/client.js'
import type {RunContext} from '../ui/context.js'
import {analysisVerdict, type AnalysisVerdict} from './analysis.js'
import {actualWeightOf, statusOf, type RolloutStatus} from './status.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {PATHS} from './kube.js'
import {stateName, StateStore} from './store.js'
import {names} from './traffic.js'
import {isTerminal, type AnalysisPhase, type RolloutState} from './types.js'

export type Health = 'healthy' | 'progressing' | 'paused' | 'degraded' | 'inconclusive' | 'scaled-down' | 'unknown'

export interface TreeNode {
  kind: 'Rollout' | 'Revision' | 'ReplicaSet' | 'Pod' | 'AnalysisRun' | 'Metric' | 'Service'
  name: string
  health: Health
  info: string[]
  children: TreeNode[]
}

export interface RolloutTree {
  status: RolloutStatus
  root: TreeNode
  /** Every analysis run with each metric's decisive measurement and the numbers behind it. */
  analysis: AnalysisVerdict[]
}

const ICON: Record<Health, string> = {
  healthy: '✔',
  progressing: '◌',
  paused: '॥',
  degraded: '✖',
  inconclusive: '⚠',
  'scaled-down': '•',
  unknown: '?',
}

function phaseHealth(state: RolloutState): Health {
  if (state.phase === 'Healthy') return 'healthy'
  if (state.phase === 'Aborted' || state.phase === 'TimedOut' || state.phase === 'Aborting') return 'degraded'
  if (state.phase === 'Paused') return 'paused'
  if (state.phase === 'Inconclusive') return 'inconclusive'
  return 'progressing'
}

function podNode(pod: Pod): TreeNode {
  const ready = pod.status?.conditions?.find((c: {type: string}) => c.type === 'Ready')?.status === 'True'
  const waiting = (pod.status?.containerStatuses ?? [])
    .map((c: {state?: {waiting?: {reason?: string}}}) => c.state?.waiting?.reason)
    .find(Boolean)
  const restarts = (pod.status?.containerStatuses ?? []).reduce(
    (n: number, c: {restartCount?: number}) => n + (c.restartCount ?? 0),
    0,
  )
  const health: Health = pod.metadata.deletionTimestamp
    ? 'scaled-down'
    : ready
      ? 'healthy'
      : waiting
        ? 'degraded'
        : 'progressing'
  return {
    kind: 'Pod',
    name: pod.metadata.name,
    health,
    info: [
      waiting ?? (ready ? 'ready' : (pod.status?.phase ?? 'Pending')),
      ...(restarts ? [`restarts: ${restarts}`] : []),
    ],
    children: [],
  }
}

function rsNode(rs: ReplicaSet, pods: Pod[], role: string[]): TreeNode {
  const desired = rs.spec?.replicas ?? 0
  const ready = rs.status?.readyReplicas ?? 0
  const own = pods.filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === rs.metadata.uid))
  const health: Health =
    desired === 0
      ? 'scaled-down'
      : ready >= desired
        ? 'healthy'
        : own.some((p) => podNode(p).health === 'degraded')
          ? 'degraded'
          : 'progressing'
  return {
    kind: 'ReplicaSet',
    name: rs.metadata.name,
    health,
    info: [...role, `${ready}/${desired} ready`],
    children: own.map(podNode),
  }
}

/** Reads the state, the Deployments, ReplicaSets and pods of a rollout and arranges them. */
export async function rolloutTree(
  kube: KubeObjects,
  namespace: string,
  service: string,
  store = new StateStore(kube),
): Promise<RolloutTree> {
  const stored = await store.read(namespace, service)
  if (!stored.state) {
    const {NotFoundError} = await import('../errors/index.js')
    throw new NotFoundError(`No rollout of ${service} in namespace ${namespace}.`, {
      nextSteps: [`Start one with \`retailops deploy --canary ${service}\`.`],
    })
  }
  const state = stored.state
  const n = names(service)
  const canaryName = state.spec.strategy === 'blue-green' ? n.previewDeployment : n.canaryDeployment
  const [stable, canary] = await Promise.all([
    kube.get<Deployment>(PATHS.deployments(namespace), service),
    kube.get<Deployment>(PATHS.deployments(namespace), canaryName),
  ])
  const selector = Object.entries(stable?.spec?.selector?.matchLabels ?? {'app.kubernetes.io/name': service})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',')
  const [sets, pods] = await Promise.all([
    kube.list<ReplicaSet>(PATHS.replicasets(namespace), selector),
    kube.list<Pod>(PATHS.pods(namespace), selector),
  ])
  const owned = (d: Deployment | undefined) =>
    d ? sets.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid)) : []
  const byHash = (hash?: string) => (rs: ReplicaSet) =>
    hash !== undefined && rs.metadata.labels?.['pod-template-hash'] === hash
  const stableSets = owned(stable).filter(
    (rs) => (rs.spec?.replicas ?? 0) > 0 || byHash(state.stable.podTemplateHash)(rs),
  )
  const canarySets = owned(canary)
  const role = (name: string) =>
    state.spec.strategy === 'blue-green'
      ? name === 'stable'
        ? state.activeColour === 'preview'
          ? 'previous'
          : 'active'
        : state.activeColour === 'preview'
          ? 'active'
          : 'preview'
      : name
  const revision = (label: string, rev: RolloutState['stable'], rsList: ReplicaSet[], tag: string): TreeNode => {
    const nodes = rsList.map((rs) => rsNode(rs, pods, [tag]))
    const health: Health =
      nodes.length === 0
        ? 'scaled-down'
        : nodes.some((x) => x.health === 'degraded')
          ? 'degraded'
          : nodes.every((x) => x.health === 'healthy' || x.health === 'scaled-down')
            ? 'healthy'
            : 'progressing'
    return {kind: 'Revision', name: `${label} ${rev.version}`, health, info: [tag, ...rev.images], children: nodes}
  }
  const runs: TreeNode[] = state.analysisRuns.map((r) => ({
    kind: 'AnalysisRun',
    name: `${r.kind} (${r.id})`,
    health: analysisHealth(r.phase),
    info: [
      r.metrics
        .map((m) => `${m.name} ✔${m.successful} ✖${m.failed} ?${m.inconclusive}${m.errors ? ` ⚠${m.errors}` : ''}`)
        .join(', '),
      ...(r.forecast ? [`before: ${r.forecast.message}`] : []),
    ],
    children: analysisVerdict(r).metrics.map((m) => ({
      kind: 'Metric',
      name: m.name,
      health: analysisHealth(m.phase),
      info: m.decisive ? [m.decisive.reason] : [],
      children: [],
    })),
  }))
  const status = statusOf(state, isTerminal(state.phase) ? undefined : await actualWeightOf(kube, state))
  const root: TreeNode = {
    kind: 'Rollout',
    name: service,
    health: phaseHealth(state),
    info: [`${state.phase}${state.reason ? `: ${state.reason}` : ''}`],
    children: [
      revision(role('canary'), state.canary, canarySets, role('canary')),
      revision('stable', state.stable, stableSets, role('stable')),
      ...runs,
    ],
  }
  return {status, root, analysis: state.analysisRuns.map(analysisVerdict)}
}

function analysisHealth(phase: AnalysisPhase): Health {
  if (phase === 'Successful') return 'healthy'
  if (phase === 'Running') return 'progressing'
  return phase === 'Inconclusive' ? 'inconclusive' : 'degraded'
}

/** "2/5" while step 2 of 5 runs; "5/5" when every step is done. */
export function stepLabel(s: Pick<RolloutStatus, 'step' | 'steps'>): string {
  const n = s.steps.split(',').length
  return `${Math.min(s.step + 1, n)}/${n}`
}

/** The tree as text: a header like `kubectl argo rollouts get`, then the indented tree. */
export function renderTree(
  tree: RolloutTree,
  colour: {icon: (h: Health, s: string) => string} = {icon: (_h, s) => s},
): string {
  const s = tree.status
  const lines = [
    `Name:         ${s.service}`,
    `Namespace:    ${s.namespace}`,
    `Status:       ${colour.icon(tree.root.health, ICON[tree.root.health])} ${s.phase}${s.reason ? ` (${s.reason})` : ''}`,
    `Message:      ${s.message}`,
    `Strategy:     ${s.strategy} (${s.router})`,
    `Step:         ${stepLabel(s)}  [${s.steps}]`,
    `Weight:       ${s.weight}${s.actualWeight === undefined ? '' : ` (actual ${s.actualWeight})`}`,
    `Images:       ${s.canary.images.join(', ')} (canary)`,
    `              ${s.stable.images.join(', ')} (stable)`,
    ...(s.group.length > 1 ? [`Released with: ${s.group.filter((g) => g !== s.service).join(', ')}`] : []),
    ...(s.forced ? [`Forced:       ${s.forced.reason} (by ${s.forced.by})`] : []),
    '',
    'NAME'.padEnd(52) + 'KIND'.padEnd(13) + 'STATUS'.padEnd(15) + 'INFO',
  ]
  const walk = (node: TreeNode, prefix: string, last: boolean, root: boolean) => {
    const branch = root ? '' : `${prefix}${last ? '└──' : '├──'}`
    const symbol = {
      Rollout: '⟳',
      Revision: '#',
      ReplicaSet: '⧉',
      Pod: '□',
      AnalysisRun: 'α',
      Metric: 'μ',
      Service: '⇄',
    }[node.kind]
    const name = `${branch}${symbol} ${node.name}`
    lines.push(
      `${name.padEnd(52)}${node.kind.padEnd(13)}${colour.icon(node.health, ICON[node.health])} ${node.health.padEnd(13)}${node.info.join('  ')}`,
    )
    const childPrefix = root ? '' : `${prefix}${last ? '    ' : '│   '}`
    node.children.forEach((c, i) => walk(c, childPrefix, i === node.children.length - 1, false))
  }
  walk(tree.root, '', true, true)
  return lines.join('\n')
}

/**
 * Re-reads and re-renders the tree whenever the state ConfigMap, the ReplicaSets or the pods
 * change (Kubernetes watches), until the rollout ends or waits for a person, or Ctrl-C.
 */
export async function watchTree(
  kube: KubeObjects,
  namespace: string,
  service: string,
  onTree: (tree: RolloutTree) => void,
  ctx: RunContext,
  options: {timeoutMs?: number} = {},
): Promise<RolloutTree> {
  const watch = new (kubernetesLibrary().Watch)(kubeClients(kube.target).kc)
  let tree = await rolloutTree(kube, namespace, service)
  onTree(tree)
  const settled = (t: RolloutTree) => isTerminal(t.status.phase) || t.status.waiting
  if (settled(tree)) return tree
  return new Promise<RolloutTree>((resolve, reject) => {
    const requests: {abort: () => void}[] = []
    let timer: NodeJS.Timeout | undefined
    let busy = false
    let again = false
    const finish = (error?: unknown) => {
      for (const r of requests) r.abort()
      clearTimeout(timer)
      clearTimeout(deadline)
      clearInterval(fallback)
      ctx.signal?.removeEventListener('abort', onAbort)
      if (error) reject(error instanceof Error ? error : new Error(String(error)))
      else resolve(tree)
    }
    const refresh = async () => {
      if (busy) {
        again = true
        return
      }
      busy = true
      try {
        tree = await rolloutTree(kube, namespace, service)
        onTree(tree)
        if (settled(tree)) finish()
      } catch (error) {
        finish(error)
      } finally {
        busy = false
        if (again) {
          again = false
          schedule()
        }
      }
    }
    // Many events arrive together (a ReplicaSet and its pods): render once per burst.
    const schedule = () => {
      clearTimeout(timer)
      timer = setTimeout(() => void refresh(), 150)
    }
    const onAbort = () => finish()
    ctx.signal?.addEventListener('abort', onAbort)
    const deadline = options.timeoutMs ? setTimeout(() => finish(), options.timeoutMs) : undefined
    // Watches can drop silently; a slow poll keeps the view honest.
    const fallback = setInterval(schedule, 5000)
    const paths = [
      [`${PATHS.configmaps(namespace)}`, {fieldSelector: `metadata.name=${stateName(service)}`}],
      [`${PATHS.replicasets(namespace)}`, {}],
      [`${PATHS.pods(namespace)}`, {}],
    ] as const
    for (const [path, query] of paths) {
      void watch
        .watch(
          path,
          {...query},
          () => schedule(),
          () => {},
        )
        .then((req) => requests.push(req as unknown as {abort: () => void}))
        .catch(() => {})
    }
  })
}

export {ICON}
