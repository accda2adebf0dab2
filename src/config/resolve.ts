import {NotFoundError, UsageError} from '../errors/index.js'
import {parseDuration} from './duration.js'
import {
  type CampaignConfig,
  EPHEMERAL_STORAGE_DEFAULTS,
  type EnvironmentConfig,
  type RetailOpsConfig,
  type ServiceConfig,
  type Tier,
} from './schema.js'
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
      const cluster = config.clusters[Object.keys(config.clusters)[0]] ?? {}
      return {
        name: 'default',
        cluster: Object.keys(config.clusters)[0] ?? 'default',
        namespace: 'retail',
        router: 'gateway',
        production: true,
        context: cluster.context,
        kubeconfig: cluster.kubeconfig && resolveFileOrEnv(cluster.kubeconfig, baseDir),
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
  const cluster = config.clusters[env.cluster] ?? {}
  return {
    ...env,
    name: chosen,
    context: cluster.context,
    kubeconfig: cluster.kubeconfig && resolveFileOrEnv(cluster.kubeconfig, baseDir),
  }
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
export function ephemeralStorage(config: RetailOpsConfig, service: ServiceConfig): {request: string; limit: string} {
  const tier = config.tiers[service.tier]?.ephemeralStorage
  const builtIn = EPHEMERAL_STORAGE_DEFAULTS[service.tier]
  return {
    request: String(service.resources.requests.ephemeralStorage ?? tier?.request ?? builtIn.request),
    limit: String(service.resources.limits.ephemeralStorage ?? tier?.limit ?? builtIn.limit),
  }
}

export function imageRepository(config: RetailOpsConfig, service: string): string {
  const repo = config.services[service]?.image ?? `${config.registry.repositoryPrefix ?? config.project}/${service}`
  return `${config.registry.url}/${repo}`
}
