import type {ResolvedEnvironment} from '../config/resolve.js'
import type {RetailOpsConfig} from '../config/schema.js'

/** A permission a command needs, as SelfSubjectAccessReview asks it: API group, resource, verbs, and who needs it. */
export interface RequiredPermission {
  group: string
  resource: string
  /** A subresource (pods/log). */
  subresource?: string
  verbs: string[]
  usedBy: string
}

/** What the cluster serves of the optional APIs (asked by doctor before it derives the permissions). */
export interface ServedApis {
  /** keda.sh/v1alpha1 scaledobjects (KEDA's CRDs). */
  scaledObjects: boolean
  /** gateway.networking.k8s.io/v1 httproutes (Gateway API's CRDs). */
  httpRoutes: boolean
}

const WRITE = ['get', 'list', 'create', 'patch', 'delete']

/** What every project needs: deploy and the rollouts of its Deployments, and the reads of cost and the explanations. */
const CORE: RequiredPermission[] = [
  {
    group: 'apps',
    resource: 'deployments',
    verbs: ['get', 'list', 'create', 'patch', 'delete', 'watch'],
    usedBy: 'deploy, rollout',
  },
  {
    group: 'apps',
    resource: 'replicasets',
    verbs: ['list', 'watch'],
    usedBy: 'deploy (rollout status), rollout get --watch',
  },
  {group: '', resource: 'services', verbs: WRITE, usedBy: 'deploy, rollout'},
  {
    group: '',
    resource: 'configmaps',
    verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
    usedBy: 'rollout state (update: compare-and-swap writes), prewarm, dr drill',
  },
  {group: '', resource: 'serviceaccounts', verbs: WRITE, usedBy: 'deploy'},
  {
    group: '',
    resource: 'pods',
    verbs: ['list', 'watch'],
    usedBy: 'deploy (failure reasons), cost, rollout get --watch',
  },
  {group: '', resource: 'events', verbs: ['list'], usedBy: 'deploy (failure reasons)'},
  {group: '', resource: 'nodes', verbs: ['list'], usedBy: 'prewarm, cost'},
  {group: '', resource: 'namespaces', verbs: WRITE, usedBy: 'deploy (tenants), dr drill (drill namespaces)'},
  {
    group: '',
    resource: 'secrets',
    verbs: ['get', 'list', 'create'],
    usedBy: 'dr drill (restores Secrets inside the cluster, never to disk)',
  },
  {group: 'autoscaling', resource: 'horizontalpodautoscalers', verbs: WRITE, usedBy: 'deploy, prewarm'},
  {group: 'policy', resource: 'poddisruptionbudgets', verbs: ['list', 'create', 'patch', 'delete'], usedBy: 'deploy'},
  {
    group: 'networking.k8s.io',
    resource: 'networkpolicies',
    verbs: ['list', 'create', 'patch', 'delete'],
    usedBy: 'deploy',
  },
]

/** Without a project: every permission any command may need (the list doctor always checked). */
const WITHOUT_PROJECT: RequiredPermission[] = [
  ...CORE,
  {group: '', resource: 'resourcequotas', verbs: WRITE, usedBy: 'deploy (tenants)'},
  {group: '', resource: 'limitranges', verbs: ['list', 'create', 'patch', 'delete'], usedBy: 'deploy (tenants)'},
  {
    group: 'gateway.networking.k8s.io',
    resource: 'httproutes',
    verbs: ['get', 'create', 'patch'],
    usedBy: 'rollout (gateway router)',
  },
  {
    group: 'networking.k8s.io',
    resource: 'ingresses',
    verbs: ['get', 'create', 'patch', 'delete'],
    usedBy: 'rollout (nginx router)',
  },
  {group: 'batch', resource: 'cronjobs', verbs: ['create', 'patch', 'delete'], usedBy: 'prewarm --schedule'},
  {
    group: 'scheduling.k8s.io',
    resource: 'priorityclasses',
    verbs: ['get', 'create', 'patch', 'delete'],
    usedBy: 'prewarm (node headroom), prewarm restore',
  },
]

function names(list: string[]): string {
  return list.length > 3 ? `${list.slice(0, 3).join(', ')} and ${list.length - 3} more` : list.join(', ')
}

/**
 * The permissions the project's commands need, derived from retailops.yaml and what the cluster
 * serves, as the rest of doctor is: every project deploys and rolls out its Deployments; a deploy
 * lists every kind it manages cluster-wide to prune (ResourceQuotas, LimitRanges and CronJobs, and
 * ScaledObjects and HTTPRoutes where they are served) and writes the ones it renders: quotas and
 * limits for tenants, CronJobs for `jobs` (which `jobs run` starts as Jobs and reads the logs of),
 * ScaledObjects for services scaling with KEDA (scaling.provider keda, or auto where the cluster
 * serves them), HTTPRoutes for the gateway router and Ingresses for nginx; pre-warms write
 * PriorityClasses and, scheduled like drills, CronJobs; a namespace snapshot drill lists Roles,
 * RoleBindings and, where served, TriggerAuthentications. Without a project: the list every
 * command may need.
 */
export function requiredPermissions(
  config: RetailOpsConfig | undefined,
  env: ResolvedEnvironment | undefined,
  served: ServedApis,
): RequiredPermission[] {
  if (!config) return WITHOUT_PROJECT
  const out: RequiredPermission[] = [...CORE]
  const services = Object.entries(config.services)
  const jobs = Object.keys(config.jobs)
  const tenants = config.tenants.map((t) => t.name)
  const snapshots = config.datastores.some((d) => d.provider === 'kubernetes')
  const scheduled = config.campaigns.length > 0 || config.datastores.length > 0

  out.push(
    tenants.length > 0
      ? {group: '', resource: 'resourcequotas', verbs: WRITE, usedBy: `deploy (quotas of tenants ${names(tenants)})`}
      : {group: '', resource: 'resourcequotas', verbs: ['list'], usedBy: 'deploy (prune)'},
    tenants.length > 0
      ? {
          group: '',
          resource: 'limitranges',
          verbs: ['list', 'create', 'patch', 'delete'],
          usedBy: `deploy (limits of tenants ${names(tenants)})`,
        }
      : {group: '', resource: 'limitranges', verbs: ['list'], usedBy: 'deploy (prune)'},
  )

  const cronJobUsers = [
    ...(jobs.length > 0 ? [`deploy, jobs run, jobs status (jobs ${names(jobs)})`] : []),
    ...(scheduled ? ['prewarm --schedule, dr drill --schedule'] : []),
  ]
  out.push({
    group: 'batch',
    resource: 'cronjobs',
    verbs: cronJobUsers.length > 0 ? WRITE : ['list'],
    usedBy: cronJobUsers.length > 0 ? cronJobUsers.join(', ') : 'deploy (prune)',
  })
  if (jobs.length > 0) {
    out.push(
      {
        group: 'batch',
        resource: 'jobs',
        verbs: ['get', 'list', 'create'],
        usedBy: `jobs run, jobs status (jobs ${names(jobs)})`,
      },
      {
        group: '',
        resource: 'pods',
        subresource: 'log',
        verbs: ['get'],
        usedBy: `jobs run (last log lines of ${names(jobs)})`,
      },
    )
  }

  const scaledOnMetrics = services.filter(([, s]) => s.scaling.metrics.length > 0)
  const keda = scaledOnMetrics
    .filter(([, s]) => s.scaling.provider === 'keda' || (s.scaling.provider === 'auto' && served.scaledObjects))
    .map(([name]) => name)
  if (keda.length > 0)
    out.push({
      group: 'keda.sh',
      resource: 'scaledobjects',
      verbs: WRITE,
      usedBy: `deploy, prewarm, rollout (replica router), sleep: KEDA scaling of ${names(keda)}`,
    })
  else if (served.scaledObjects)
    out.push({group: 'keda.sh', resource: 'scaledobjects', verbs: ['list'], usedBy: 'deploy (prune), prewarm, sleep'})
  if (snapshots && served.scaledObjects)
    out.push({
      group: 'keda.sh',
      resource: 'triggerauthentications',
      verbs: ['list', 'create', 'patch'],
      usedBy: 'dr drill (namespace snapshot and restore)',
    })

  const routers = new Set([
    ...(env ? [env.router] : Object.values(config.environments).map((e) => e.router)),
    ...services.map(([, s]) => s.rollout?.router).filter((r): r is NonNullable<typeof r> => Boolean(r)),
  ])
  if (routers.has('gateway'))
    out.push({
      group: 'gateway.networking.k8s.io',
      resource: 'httproutes',
      verbs: WRITE,
      usedBy: 'deploy (HTTPRoutes), rollout (gateway router)',
    })
  else if (served.httpRoutes)
    out.push({group: 'gateway.networking.k8s.io', resource: 'httproutes', verbs: ['list'], usedBy: 'deploy (prune)'})
  if (routers.has('nginx'))
    out.push({
      group: 'networking.k8s.io',
      resource: 'ingresses',
      verbs: ['get', 'create', 'patch', 'delete'],
      usedBy: 'rollout (nginx router)',
    })

  if (config.campaigns.length > 0)
    out.push({
      group: 'scheduling.k8s.io',
      resource: 'priorityclasses',
      verbs: ['get', 'create', 'patch', 'delete'],
      usedBy: 'prewarm (node headroom), prewarm restore',
    })
  if (snapshots)
    out.push(
      {group: 'rbac.authorization.k8s.io', resource: 'roles', verbs: ['list'], usedBy: 'dr drill (namespace snapshot)'},
      {
        group: 'rbac.authorization.k8s.io',
        resource: 'rolebindings',
        verbs: ['list'],
        usedBy: 'dr drill (namespace snapshot)',
      },
    )
  return out
}
