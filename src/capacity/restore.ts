import {RetailOpsError} from '../errors/index.js'
import {type KubeClients, kubeError, statusCode} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER_PREWARM} from '../kubernetes/labels.js'
import {deleteIfLabelled, readObject} from '../kubernetes/objects.js'
import {namedPath} from '../kubernetes/resources.js'
import type {RunContext} from '../ui/context.js'
import {PREWARM_ANNOTATION} from './apply.js'
import {CAMPAIGN_LABEL, deleteState, readState, type SavedField, type SavedTarget, stateName} from './state.js'

export interface RestoreOptions {
  k: KubeClients
  http: KubeHttp
  namespace: string
  campaign: string
}

export interface RestoredTarget {
  service: string
  kind: SavedTarget['kind']
  name: string
  /** 'restored', 'unchanged' (already as saved) or 'gone' (the object no longer exists). */
  outcome: 'restored' | 'unchanged' | 'gone'
  values: Record<string, unknown>
}

export interface RestoreResult {
  campaign: string
  namespace: string
  /** False when there was no saved state: nothing to do (already restored, or never applied). */
  restored: boolean
  message: string
  savedAt?: string
  targets: RestoredTarget[]
  deleted: string[]
}

type JsonPatchOp = {op: 'add' | 'remove' | 'test' | 'replace'; path: string; value?: unknown}

const pathOf = (t: SavedTarget, ns: string) => namedPath(t.kind, t.name, ns)

function fieldsOf(t: SavedTarget): [string, SavedField<unknown>][] {
  if (t.kind === 'HorizontalPodAutoscaler')
    return [
      ['minReplicas', t.minReplicas],
      ['maxReplicas', t.maxReplicas],
      ['behavior', t.behavior],
    ]
  if (t.kind === 'ScaledObject')
    return [
      ['minReplicaCount', t.minReplicaCount],
      ['maxReplicaCount', t.maxReplicaCount],
      ['advanced', t.advanced],
    ]
  return [['replicas', t.replicas]]
}

/** JSON Patch that makes spec exactly the saved fields (absent ones removed) and drops our annotation. */
export function restorePatch(
  t: SavedTarget,
  current: {
    metadata?: {resourceVersion?: string; annotations?: Record<string, string>}
    spec?: Record<string, unknown>
  },
): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [{op: 'test', path: '/metadata/resourceVersion', value: current.metadata?.resourceVersion}]
  for (const [field, saved] of fieldsOf(t)) {
    const has = current.spec?.[field] !== undefined && current.spec?.[field] !== null
    if (saved.present) {
      if (!has || JSON.stringify(current.spec?.[field]) !== JSON.stringify(saved.value))
        ops.push({op: 'add', path: `/spec/${field}`, value: saved.value})
    } else if (has) ops.push({op: 'remove', path: `/spec/${field}`})
  }
  if (current.metadata?.annotations?.[PREWARM_ANNOTATION] !== undefined) {
    ops.push({
      op: 'remove',
      path: `/metadata/annotations/${PREWARM_ANNOTATION.replace(/~/g, '~0').replace(/\//g, '~1')}`,
    })
  }
  return ops
}

/** True when the object's fields equal the saved ones exactly. */
export function matchesSaved(t: SavedTarget, spec: Record<string, unknown> | undefined): boolean {
  return fieldsOf(t).every(([field, saved]) => {
    const value = spec?.[field]
    if (!saved.present) return value === undefined || value === null
    return canonical(value) === canonical(saved.value)
  })
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  )
}

/**
 * Puts back exactly what `prewarm` saved, deletes the placeholders and the PriorityClass it
 * created, verifies, and only then deletes the saved state. Idempotent: without saved state it
 * changes nothing and says so; interrupted half-way, the next run finishes the job.
 */
export async function restoreCampaign(options: RestoreOptions, ctx: RunContext): Promise<RestoreResult> {
  const {k, http, namespace, campaign} = options
  const saved = await readState(k, namespace, campaign)
  if (!saved) {
    return {
      campaign,
      namespace,
      restored: false,
      message: `Nothing to restore: no saved pre-warm state for campaign ${campaign} in ${namespace} (already restored, or never applied).`,
      targets: [],
      deleted: [],
    }
  }
  const {state} = saved
  const task = ctx.out.task(
    `Restoring the values saved at ${state.savedAt} (${Object.keys(state.targets).length} object(s))`,
  )
  const targets: RestoredTarget[] = []
  for (const t of Object.values(state.targets)) {
    targets.push(await restoreTarget(http, namespace, t))
  }
  const deleted: string[] = []
  for (const name of state.headroom.deployments) {
    const outcome = await deleteIfLabelled(http, namedPath('Deployment', name, namespace), CAMPAIGN_LABEL, campaign)
    if (outcome === 'deleted') deleted.push(`Deployment/${name}`)
    if (outcome === 'not-ours')
      ctx.out.warn(`Deployment ${namespace}/${name} is not labelled as this campaign's placeholder; left alone.`)
  }
  const pc = state.headroom.priorityClass
  if (pc?.createdByUs) {
    const outcome = await deleteIfLabelled(http, namedPath('PriorityClass', pc.name), CAMPAIGN_LABEL, campaign)
    if (outcome === 'deleted') deleted.push(`PriorityClass/${pc.name}`)
  }

  // Verify before forgetting what was saved.
  const wrong: string[] = []
  for (const t of Object.values(state.targets)) {
    const obj = await readObject<{spec?: Record<string, unknown>}>(http, pathOf(t, namespace))
    if (obj && !matchesSaved(t, obj.spec)) wrong.push(`${t.kind}/${t.name}`)
  }
  if (wrong.length > 0) {
    task.fail('Some objects do not match the saved values')
    throw new RetailOpsError(
      'DEPLOY_FAILED',
      `After restoring, ${wrong.join(', ')} still differ from the saved values; the saved state in ${stateName(campaign)} is kept.`,
      {
        nextSteps: [
          'Something else may be changing them (a deploy, an operator); run the restore again once it has finished.',
        ],
        details: {targets},
      },
    )
  }
  await deleteState(k, namespace, campaign)
  task.succeed(
    `Restored ${targets.filter((t) => t.outcome === 'restored').length} object(s) to the values saved at ${state.savedAt}`,
  )
  return {
    campaign,
    namespace,
    restored: true,
    message: `Restored the values saved at ${state.savedAt}${deleted.length ? `; deleted ${deleted.join(', ')}` : ''}.`,
    savedAt: state.savedAt,
    targets,
    deleted,
  }
}

async function restoreTarget(http: KubeHttp, namespace: string, t: SavedTarget): Promise<RestoredTarget> {
  const values = Object.fromEntries(fieldsOf(t).map(([f, s]) => [f, s.present ? s.value : '(absent)']))
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await readObject<{
      metadata?: {resourceVersion?: string; annotations?: Record<string, string>}
      spec?: Record<string, unknown>
    }>(http, pathOf(t, namespace))
    if (!current) return {service: t.service, kind: t.kind, name: t.name, outcome: 'gone', values}
    const ops = restorePatch(t, current)
    if (ops.length === 1) return {service: t.service, kind: t.kind, name: t.name, outcome: 'unchanged', values}
    try {
      await http.request('PATCH', pathOf(t, namespace), {
        body: ops,
        contentType: 'application/json-patch+json',
        query: {fieldManager: FIELD_MANAGER_PREWARM},
      })
      return {service: t.service, kind: t.kind, name: t.name, outcome: 'restored', values}
    } catch (error) {
      // 409/422 from the resourceVersion test: it changed between read and patch; read again.
      const code = statusCode(error)
      if (code === 409 || code === 422) {
        const again = await readObject<{metadata?: {resourceVersion?: string}}>(http, pathOf(t, namespace))
        if (again?.metadata?.resourceVersion !== current.metadata?.resourceVersion) continue
      }
      throw kubeError(error, `restoring ${t.kind} ${namespace}/${t.name}`)
    }
  }
  throw new RetailOpsError(
    'DEPLOY_FAILED',
    `${t.kind} ${namespace}/${t.name} kept changing while it was being restored.`,
    {
      nextSteps: ['Run the restore again; the saved state is kept until every object is back.'],
    },
  )
}
