// The refinements of retailops.yaml's schema (./schema.ts), as named functions in a module without
// zod: the schema calls them, and so does the validator scripts/gen-config-validator.ts compiles from
// the schema (./validate-config.generated.ts), which must not load zod to stay fast (issue 18). A
// refinement written inline in the schema would fail that build: it has no name to import.
import {parseDuration} from './duration.js'
import {isLoopbackHost} from './loopback.js'
import {tierPlacementIssues, workloadPlacementIssues} from './placement.js'
import {headerRouteProblem, mirrorFix, mirrorRefusal, routingStepProblems} from './route-match.js'
import type {RetailOpsConfig} from './schema.js'
import {
  EPHEMERAL_STORAGE_DEFAULTS,
  eventPatternMatches,
  MAX_NAMESPACE,
  ROLLOUT_SUFFIXES,
  tenantNamespace,
} from './vocabulary.js'
import {RELEASE_EVENT_NAMES} from '../ui/events.js'
import {RetailOpsError} from '../errors/index.js'
import {checkTimeZone, parseCron} from '../kubernetes/cron.js'

/** Where a refinement that finds several problems reports them (zod's refinement context, or the compiled validator's). */
export interface IssueSink {
  addIssue(issue: {code: 'custom'; path: (string | number)[]; message: string}): void
}

export function isDuration(value: string): boolean {
  return parseDuration(value) !== undefined
}

/** Unparseable durations are isDuration's to report. */
export function isPositiveDuration(value: string): boolean {
  return (parseDuration(value) ?? 1) > 0
}

export function isNonBlank(value: string): boolean {
  return value.trim().length > 0
}

export function maxReplicasAtLeastMin(s: {minReplicas: number; maxReplicas: number}): boolean {
  return s.maxReplicas >= s.minReplicas
}

export function roomToScaleOnMetrics(s: {minReplicas: number; maxReplicas: number; metrics: unknown[]}): boolean {
  return s.metrics.length === 0 || s.maxReplicas > s.minReplicas
}

export function uniqueMetricNames(s: {metrics: {name: string}[]}, ctx: IssueSink): void {
  const seen = new Set<string>()
  s.metrics.forEach((m, i) => {
    if (seen.has(m.name))
      ctx.addIssue({code: 'custom', path: ['metrics', i, 'name'], message: `duplicate metric name "${m.name}"`})
    seen.add(m.name)
  })
}

export function namesEgressDestination(e: {cidrs?: unknown; namespace?: unknown; podLabels?: unknown}): boolean {
  return Boolean(e.cidrs || e.namespace || e.podLabels)
}

export function isCronSchedule(value: string): boolean {
  return cronProblem(value) === undefined
}

export function isTimeZone(value: string): boolean {
  return timeZoneProblem(value) === undefined
}

export function eachOnce(values: unknown[]): boolean {
  return new Set(values).size === values.length
}

export function endsAfterStart(c: {start: string; end: string}): boolean {
  return Date.parse(c.end) > Date.parse(c.start)
}

export function datastoreProviderSection(d: {provider: string; awsBackup?: unknown}, ctx: IssueSink): void {
  if (d.provider === 'aws-backup' && !d.awsBackup)
    ctx.addIssue({
      code: 'custom',
      message: 'provider aws-backup needs an awsBackup section (vaultName, iamRoleArn)',
      path: ['awsBackup'],
    })
}

export function isReleaseEventPattern(pattern: string): boolean {
  return RELEASE_EVENT_NAMES.some((e) => eventPatternMatches(pattern, e))
}

export function hasEntries(record: object): boolean {
  return Object.keys(record).length > 0
}

export function isWholeAtLeastOne(n: number): boolean {
  return Number.isInteger(n) && n >= 1
}

/** What each suffix of a Kubernetes quantity multiplies by. */
const BYTES: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
}

/** A quantity the schema accepted, as a number (bytes for storage). */
function quantityBytes(q: string | number): number {
  if (typeof q === 'number') return q
  const m = /^(\d+(?:\.\d+)?)(.*)$/.exec(q)!
  return Number(m[1]) * BYTES[m[2]]
}

/** Why a cron schedule is refused, or undefined when it is valid (the CronJob controller's rules). */
export function cronProblem(value: string): string | undefined {
  return refusal(() => parseCron(value), /^--schedule /, 'schedule ')
}

export function timeZoneProblem(value: string): string | undefined {
  return refusal(() => checkTimeZone(value), /^--time-zone /, '')
}

/** The flag check's refusal as a configuration message: its flag name swapped for the key, then its next steps. */
function refusal(check: () => void, flag: RegExp, key: string): string | undefined {
  try {
    check()
    return undefined
  } catch (error) {
    return error instanceof RetailOpsError
      ? `${error.message.replace(flag, key)} ${error.nextSteps.join(' ')}`.trim()
      : String(error)
  }
}

interface NamespaceLayout {
  project: string
  clusters: Record<string, unknown>
  environments: Record<string, {cluster: string; namespace: string}>
  tenants: {name: string; model: string; namespace?: string; cluster?: string}[]
}

/**
 * Two tenants, or a tenant and an environment's shared namespace, in one namespace of one cluster
 * would overwrite each other's objects and share each other's pods: refused, naming both keys.
 */
function tenantNamespaceCollisions(c: NamespaceLayout, ctx: IssueSink): void {
  const envs = Object.entries(c.environments).map(([name, e]) => ({
    cluster: e.cluster,
    namespace: e.namespace,
    key: `environments.${name}.namespace`,
  }))
  // Without environments, deploy uses the first cluster and the namespace "retail".
  if (envs.length === 0)
    envs.push({
      cluster: Object.keys(c.clusters)[0] ?? 'default',
      namespace: 'retail',
      key: 'the default namespace "retail" (no environments are configured)',
    })
  const taken = new Map<string, string>()
  for (const e of envs) if (!taken.has(`${e.cluster}/${e.namespace}`)) taken.set(`${e.cluster}/${e.namespace}`, e.key)
  c.tenants.forEach((t, i) => {
    const key = t.namespace ? `tenants[${i}].namespace` : `tenants[${i}] ("${t.name}")`
    const claims = new Map<string, {cluster: string; namespace: string}>()
    for (const e of envs) {
      const namespace = tenantNamespace(c, t, e.namespace)
      if (!namespace) continue
      const cluster = t.model === 'dedicated-cluster' ? (t.cluster ?? '') : e.cluster
      claims.set(`${cluster}/${namespace}`, {cluster, namespace})
    }
    for (const [slot, {cluster, namespace}] of claims) {
      const other = taken.get(slot)
      if (!other) {
        taken.set(slot, key)
        continue
      }
      ctx.addIssue({
        code: 'custom',
        path: t.namespace ? ['tenants', i, 'namespace'] : ['tenants', i, 'name'],
        message: `tenant "${t.name}" would deploy into namespace "${namespace}" of cluster "${cluster}", which ${other} already uses: their objects would overwrite each other and their pods share one namespace. Give the tenant a namespace of its own (tenants[${i}].namespace)`,
      })
    }
  })
}

/**
 * The rules that span keys of retailops.yaml (a dependency naming a service, an environment naming
 * a cluster, names that collide), each reported at the key to fix.
 */
export function configProblems(c: RetailOpsConfig, ctx: IssueSink): void {
  if (c.registry.insecure && !isLoopbackHost(c.registry.url)) {
    ctx.addIssue({
      code: 'custom',
      path: ['registry', 'insecure'],
      message: `plain HTTP is only allowed for a loopback registry (127.0.0.1, localhost, [::1]), and registry.url "${c.registry.url}" is not one: credentials would travel unencrypted. Serve the registry over HTTPS and remove registry.insecure`,
    })
  }
  for (const [svc, s] of Object.entries(c.services)) {
    for (const suffix of ROLLOUT_SUFFIXES) {
      const base = svc.slice(0, -suffix.length)
      if (svc.endsWith(suffix) && c.services[base]) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', svc],
          message: `collides with the ${suffix.slice(1)} objects rollouts of service "${base}" create (Deployment and Service ${svc}): rename the service`,
        })
      }
    }
    const steps = s.rollout?.steps ?? []
    steps.forEach((step, i) => {
      const problem = 'setHeaderRoute' in step ? headerRouteProblem(step.setHeaderRoute) : undefined
      if (problem)
        ctx.addIssue({
          code: 'custom',
          path: ['services', svc, 'rollout', 'steps', i, 'setHeaderRoute'],
          message: `${problem} (header: NAME, value: VALUE; or cookie: NAME, value: VALUE)`,
        })
      if ('setMirrorRoute' in step && step.setMirrorRoute.percent > 0) {
        const refusal = mirrorRefusal(svc, s)
        if (refusal)
          ctx.addIssue({
            code: 'custom',
            path: ['services', svc, 'rollout', 'steps', i, 'setMirrorRoute'],
            message: `${refusal}. ${mirrorFix(svc)}`,
          })
      }
    })
    if (s.rollout?.router)
      for (const problem of routingStepProblems(steps, s.rollout.router))
        ctx.addIssue({
          code: 'custom',
          path: ['services', svc, 'rollout', 'steps', problem.index],
          message: `${problem.message} (rollout.router is ${s.rollout.router})`,
        })
    for (const issue of workloadPlacementIssues(c, s, ['services', svc]))
      ctx.addIssue({code: 'custom', path: issue.path, message: issue.message})
    for (const dep of s.dependsOn) {
      if (!c.services[dep])
        ctx.addIssue({
          code: 'custom',
          path: ['services', svc, 'dependsOn'],
          message: `names "${dep}", which is not a service`,
        })
    }
    const storage = {
      request:
        s.resources.requests.ephemeralStorage ??
        c.tiers[s.tier]?.ephemeralStorage?.request ??
        EPHEMERAL_STORAGE_DEFAULTS[s.tier].request,
      limit:
        s.resources.limits.ephemeralStorage ??
        c.tiers[s.tier]?.ephemeralStorage?.limit ??
        EPHEMERAL_STORAGE_DEFAULTS[s.tier].limit,
    }
    if (quantityBytes(storage.request) > quantityBytes(storage.limit)) {
      ctx.addIssue({
        code: 'custom',
        path: ['services', svc, 'resources', 'limits', 'ephemeralStorage'],
        message: `is ${storage.limit}, below the ephemeral-storage request ${storage.request}`,
      })
    }
  }
  for (const issue of tierPlacementIssues(c)) ctx.addIssue({code: 'custom', path: issue.path, message: issue.message})
  const scaledOnMetrics = Object.keys(c.services).filter((svc) => c.services[svc].scaling.metrics.length > 0)
  if (scaledOnMetrics.length > 0 && Object.keys(c.environments).length === 0)
    ctx.addIssue({
      code: 'custom',
      path: ['environments'],
      message: `${scaledOnMetrics.join(', ')} scale${scaledOnMetrics.length === 1 ? 's' : ''} on Prometheus queries (scaling.metrics), and no environment says where Prometheus is: add an environment with prometheus: URL`,
    })
  for (const [name, j] of Object.entries(c.jobs)) {
    if (c.services[name])
      ctx.addIssue({
        code: 'custom',
        path: ['jobs', name],
        message: `is also a service: a job and a service share the image name and the artifacts lock entry, so rename the job (e.g. ${name}-sync)`,
      })
    for (const dep of j.dependsOn)
      if (!c.services[dep])
        ctx.addIssue({
          code: 'custom',
          path: ['jobs', name, 'dependsOn'],
          message: `names "${dep}", which is not a service`,
        })
    for (const issue of workloadPlacementIssues(c, j, ['jobs', name]))
      ctx.addIssue({code: 'custom', path: issue.path, message: issue.message})
    if (j.timeZone && !j.schedule)
      ctx.addIssue({
        code: 'custom',
        path: ['jobs', name, 'timeZone'],
        message: 'has no schedule to apply to: set jobs.<name>.schedule, or remove timeZone',
      })
  }
  for (const [env, e] of Object.entries(c.environments)) {
    if (scaledOnMetrics.length > 0 && !e.prometheus && !e.autoscalingPrometheus)
      ctx.addIssue({
        code: 'custom',
        path: ['environments', env, 'prometheus'],
        message: `is not set, and ${scaledOnMetrics.join(', ')} scale${scaledOnMetrics.length === 1 ? 's' : ''} on Prometheus queries (scaling.metrics): set the Prometheus URL the autoscaler queries (or autoscalingPrometheus), or remove scaling.metrics`,
      })
    if (!c.clusters[e.cluster])
      ctx.addIssue({
        code: 'custom',
        path: ['environments', env, 'cluster'],
        message: `names cluster "${e.cluster}"; known: ${Object.keys(c.clusters).join(', ')}`,
      })
  }
  if (c.supplyChain?.policy?.failOn && !c.supplyChain.vulnerabilityDatabase) {
    ctx.addIssue({
      code: 'custom',
      path: ['supplyChain', 'policy', 'failOn'],
      message:
        'refusing vulnerabilities needs a database: set supplyChain.vulnerabilityDatabase (a directory of OSV records or the OSV npm zip), or remove failOn',
    })
  }
  const stages = c.promotion.order ?? []
  stages.forEach((stage, i) => {
    if (!c.environments[stage])
      ctx.addIssue({
        code: 'custom',
        path: ['promotion', 'order', i],
        message: `"${stage}" is not an environment; known: ${Object.keys(c.environments).join(', ') || 'none'}`,
      })
    if (stages.indexOf(stage) !== i)
      ctx.addIssue({code: 'custom', path: ['promotion', 'order', i], message: `"${stage}" is listed twice`})
  })
  if (c.defaultEnvironment && !c.environments[c.defaultEnvironment]) {
    ctx.addIssue({
      code: 'custom',
      path: ['defaultEnvironment'],
      message: `"${c.defaultEnvironment}" is not an environment`,
    })
  }
  c.tenants.forEach((t, i) => {
    const ns = `${c.project}-${t.name}`
    if (t.model === 'dedicated-namespace' && !t.namespace && ns.length > MAX_NAMESPACE) {
      ctx.addIssue({
        code: 'custom',
        path: ['tenants', i, 'name'],
        message: `gives namespace "${ns}" (${ns.length} characters; Kubernetes allows ${MAX_NAMESPACE}): shorten the project or tenant name, or set tenants[${i}].namespace`,
      })
    }
    if (t.model === 'dedicated-cluster' && (!t.cluster || !c.clusters[t.cluster])) {
      ctx.addIssue({
        code: 'custom',
        path: ['tenants', i, 'cluster'],
        message: 'dedicated-cluster tenants name a key of clusters',
      })
    }
    for (const s of t.services ?? [])
      if (!c.services[s])
        ctx.addIssue({
          code: 'custom',
          path: ['tenants', i, 'services'],
          message: `names "${s}", which is not a service`,
        })
  })
  c.campaigns.forEach((camp, i) => {
    for (const s of Object.keys(camp.peak)) {
      if (!c.services[s])
        ctx.addIssue({code: 'custom', path: ['campaigns', i, 'peak', s], message: `"${s}" is not a service`})
    }
  })
  c.datastores.forEach((d, i) => {
    if (d.service && !c.services[d.service])
      ctx.addIssue({code: 'custom', path: ['datastores', i, 'service'], message: `"${d.service}" is not a service`})
  })
  const dup = (items: {name: string}[], key: string) => {
    const seen = new Set<string>()
    items.forEach((it, i) => {
      if (seen.has(it.name))
        ctx.addIssue({code: 'custom', path: [key, i, 'name'], message: `duplicate name "${it.name}"`})
      seen.add(it.name)
    })
  }
  c.notifications?.subscriptions.forEach((sub, i) => {
    sub.destinations.forEach((d, j) => {
      if (!c.notifications!.destinations[d])
        ctx.addIssue({
          code: 'custom',
          path: ['notifications', 'subscriptions', i, 'destinations', j],
          message: `"${d}" is not a destination; known: ${Object.keys(c.notifications!.destinations).join(', ')}`,
        })
    })
    sub.services?.forEach((svc, j) => {
      if (!c.services[svc])
        ctx.addIssue({
          code: 'custom',
          path: ['notifications', 'subscriptions', i, 'services', j],
          message: `"${svc}" is not a service`,
        })
    })
  })
  tenantNamespaceCollisions(c, ctx)
  dup(c.tenants, 'tenants')
  dup(c.campaigns, 'campaigns')
  dup(c.datastores, 'datastores')
}
