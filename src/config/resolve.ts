import {NotFoundError, UsageError} from '../errors/index.js'
import {parseDuration} from './duration.js'
import type {CampaignConfig, EnvironmentConfig, RetailOpsConfig, ServiceConfig, TenantConfig, Tier} from './schema.js'
import {EPHEMERAL_STORAGE_DEFAULTS, tenantNamespace} from './vocabulary.js'
import {resolveFileOrEnv} from './secret-ref.js'

/** Validates requested service names up front; none means all, in configuration order. */
export function selectServices(config: RetailOpsConfig, requested: string[] = []): string[] {
  const known = Object.keys(config.services)
  if (requested.length === 0) return known
  const unknown = requested.filter((s) => !config.services[s])
  if (unknown.length > 0) {
    throw new NotFoundError(`Unknown service${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`, {
      nextSteps: [`Known services: ${known.join(', ')}.`, 'Add one with `retailops service add NAME`.'],
    })
  }
  return [...new Set(requested)]
}

/** What an image is built from: a service's or a job's build settings. */
export interface ImageSource {
  kind: 'service' | 'job'
  build: ServiceConfig['build']
  image?: string
}

/**
 * Everything retailops builds an image for, by name: the services, then the jobs. Both go through
 * the same build, push, sign, verify and lock entries; the schema keeps their names apart.
 */
export function imageSources(config: RetailOpsConfig): Record<string, ImageSource> {
  const out: Record<string, ImageSource> = {}
  for (const [name, s] of Object.entries(config.services)) out[name] = {kind: 'service', build: s.build, image: s.image}
  for (const [name, j] of Object.entries(config.jobs ?? {})) out[name] = {kind: 'job', build: j.build, image: j.image}
  return out
}

/** Validates requested image names (services and jobs) up front; none means all: services, then jobs. */
export function selectImages(config: RetailOpsConfig, requested: string[] = []): string[] {
  const sources = imageSources(config)
  const known = Object.keys(sources)
  if (requested.length === 0) return known
  const unknown = requested.filter((s) => !sources[s])
  if (unknown.length > 0) {
    const jobs = Object.keys(config.jobs ?? {})
    throw new NotFoundError(
      `Unknown service${jobs.length ? ' or job' : ''}${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`,
      {
        nextSteps: [
          `Known services: ${Object.keys(config.services).join(', ')}.`,
          ...(jobs.length ? [`Known jobs: ${jobs.join(', ')}.`] : []),
          'Add one with `retailops service add NAME`, or a job under jobs: in retailops.yaml.',
        ],
      },
    )
  }
  return [...new Set(requested)]
}

/**
 * What a deploy renders, from the names it was given (services and jobs; none: everything). A
 * selection of services only renders no jobs, and a selection of jobs no services.
 */
export function selectWorkloads(
  config: RetailOpsConfig,
  requested: string[] = [],
): {services: string[]; jobs: string[]} {
  if (requested.length === 0) return {services: Object.keys(config.services), jobs: Object.keys(config.jobs ?? {})}
  const names = selectImages(config, requested)
  return {
    services: names.filter((n) => config.services[n]),
    jobs: names.filter((n) => !config.services[n] && config.jobs?.[n]),
  }
}

export interface ResolvedEnvironment extends EnvironmentConfig {
  name: string
  context?: string
  kubeconfig?: string
}

/** --environment, then defaultEnvironment, then the only environment, then the cluster's default context. */
export function resolveEnvironment(
  config: RetailOpsConfig,
  name?: string,
  baseDir = process.cwd(),
): ResolvedEnvironment {
  const names = Object.keys(config.environments)
  const chosen = name ?? config.defaultEnvironment ?? (names.length === 1 ? names[0] : undefined)
  if (!chosen) {
    if (names.length === 0) {
      const cluster = Object.keys(config.clusters)[0]
      return {
        name: 'default',
        cluster: cluster ?? 'default',
        namespace: 'retail',
        router: 'gateway',
        production: true,
        ...clusterAccess(config, cluster, baseDir),
      }
    }
    throw new UsageError(`Several environments are configured (${names.join(', ')}) and none was chosen.`, {
      nextSteps: ['Pass --environment NAME, or set defaultEnvironment in retailops.yaml.'],
    })
  }
  const env = config.environments[chosen]
  if (!env) {
    throw new NotFoundError(`Unknown environment "${chosen}".`, {
      nextSteps: [`Known environments: ${names.join(', ') || '(none)'}.`],
    })
  }
  return {...env, name: chosen, ...clusterAccess(config, env.cluster, baseDir)}
}

/** How a cluster of retailops.yaml is reached: its kubeconfig context and file (relative to the project, or env://). */
export function clusterAccess(
  config: RetailOpsConfig,
  name: string | undefined,
  baseDir = process.cwd(),
): {context?: string; kubeconfig?: string} {
  const cluster = (name !== undefined && config.clusters[name]) || {}
  return {context: cluster.context, kubeconfig: cluster.kubeconfig && resolveFileOrEnv(cluster.kubeconfig, baseDir)}
}

/** A tenant of retailops.yaml by name: NOT_FOUND naming the known ones otherwise (as deploy --tenant says). */
export function findTenant(config: RetailOpsConfig, name: string): TenantConfig {
  const tenant = config.tenants.find((t) => t.name === name)
  if (!tenant) {
    throw new NotFoundError(`Unknown tenant "${name}".`, {
      nextSteps: [`Known tenants: ${config.tenants.map((t) => t.name).join(', ') || '(none configured)'}.`],
    })
  }
  return tenant
}

/**
 * Where a tenant's workloads run in an environment, as deploy renders them: a dedicated namespace
 * in the environment's cluster (the environment's context, --context included), or a dedicated
 * cluster through its own context and kubeconfig. Shared and isolated-database tenants run in the
 * environment's namespace, with every other shared tenant: `shared` says so.
 */
export function resolveTenant(
  config: RetailOpsConfig,
  env: ResolvedEnvironment,
  name: string,
  baseDir = process.cwd(),
): {tenant: TenantConfig; env: ResolvedEnvironment; shared: boolean} {
  const tenant = findTenant(config, name)
  if (tenant.model !== 'dedicated-namespace' && tenant.model !== 'dedicated-cluster') return {tenant, env, shared: true}
  const namespace = tenantNamespace(config, tenant, env.namespace)!
  if (tenant.model === 'dedicated-namespace') return {tenant, env: {...env, namespace}, shared: false}
  return {
    tenant,
    env: {...env, cluster: tenant.cluster!, namespace, ...clusterAccess(config, tenant.cluster, baseDir)},
    shared: false,
  }
}

/** A dedicated tenant runs a job when it runs every service the job dependsOn (deploy renders it there only then). */
export function tenantRunsJob(config: RetailOpsConfig, tenant: TenantConfig, job: string): boolean {
  return config.jobs[job].dependsOn.every((d) => !tenant.services || tenant.services.includes(d))
}

export function findCampaign(config: RetailOpsConfig, name: string): CampaignConfig {
  const campaign = config.campaigns.find((c) => c.name === name)
  if (!campaign) {
    throw new NotFoundError(`Unknown campaign "${name}".`, {
      nextSteps: [`Known campaigns: ${config.campaigns.map((c) => c.name).join(', ') || '(none configured)'}.`],
    })
  }
  return campaign
}

export interface RecoveryTargets {
  rtoMs: number
  rpoMs: number
  rto: string
  rpo: string
}

/** A service's own DR targets, or its tier's. */
export function recoveryTargets(config: RetailOpsConfig, tier: Tier, service?: ServiceConfig): RecoveryTargets {
  const t = service?.dr ?? config.tiers[tier] ?? {rto: '1h', rpo: '15m'}
  return {rto: t.rto, rpo: t.rpo, rtoMs: parseDuration(t.rto)!, rpoMs: parseDuration(t.rpo)!}
}

/** A service's ephemeral-storage request and limit: its own, else its tier's, else the built-in tier default. */
export function ephemeralStorage(
  config: RetailOpsConfig,
  service: Pick<ServiceConfig, 'tier' | 'resources'>,
): {request: string; limit: string} {
  const tier = config.tiers[service.tier]?.ephemeralStorage
  const builtIn = EPHEMERAL_STORAGE_DEFAULTS[service.tier]
  return {
    request: String(service.resources.requests.ephemeralStorage ?? tier?.request ?? builtIn.request),
    limit: String(service.resources.limits.ephemeralStorage ?? tier?.limit ?? builtIn.limit),
  }
}

export function imageRepository(config: RetailOpsConfig, service: string): string {
  const repo =
    config.services[service]?.image ??
    config.jobs?.[service]?.image ??
    `${config.registry.repositoryPrefix ?? config.project}/${service}`
  return `${config.registry.url}/${repo}`
}
