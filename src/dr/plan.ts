import type {LoadedConfig} from '../config/load.js'
import {recoveryTargets, type RecoveryTargets, type ResolvedEnvironment} from '../config/resolve.js'
import type {DatastoreConfig, RetailOpsConfig, Tier} from '../config/schema.js'
import {TIERS} from '../config/vocabulary.js'
import {NotFoundError, UsageError} from '../errors/index.js'
import {DEFINITION_DIRS} from './recoverability.js'
import type {DrillProvider, PlanContext, ProviderPlan} from './providers/types.js'

export interface DrillFilters {
  tiers?: string[]
  services?: string[]
  datastores?: string[]
}

export interface PlannedDatastore extends ProviderPlan {
  name: string
  service?: string
  tier: Tier
  provider: DatastoreConfig['provider']
  targets: RecoveryTargets
  validations: {name: string; query: string; expect?: Record<string, unknown>; recoveryPoint: boolean}[]
}

export interface PlannedCheck {
  service: string
  checks: string[]
}

export interface DrillPlan {
  drillId: string
  project: string
  environment: string
  namespace: string
  context?: string
  filters: {tiers: string[]; services: string[]; datastores: string[]}
  datastores: PlannedDatastore[]
  recoverability: PlannedCheck[]
  /** Anything here stops a drill before its first write (exit CONFIG). */
  problems: string[]
  /** Safety gates that stop a drill before its first write (exit REFUSED). */
  refusals: string[]
  warnings: string[]
}

/** The reason given with --allow-source-server, trimmed; an empty one is refused (it goes in the record). */
export function allowSourceServerReason(reason: string | undefined): string | undefined {
  if (reason === undefined) return undefined
  if (reason.trim().length < 3) {
    throw new UsageError('--allow-source-server needs a reason, which the drill records.', {
      nextSteps: ['e.g. --allow-source-server "staging has no separate restore server"'],
    })
  }
  return reason.trim()
}

/** A datastore's tier: its own, else its service's, else operational. */
export function datastoreTier(config: RetailOpsConfig, ds: DatastoreConfig): Tier {
  return ds.tier ?? (ds.service ? config.services[ds.service]?.tier : undefined) ?? 'operational'
}

/** Targets: an explicit datastore tier uses that tier's; otherwise the service's own dr override or its tier's. */
export function datastoreTargets(config: RetailOpsConfig, ds: DatastoreConfig): RecoveryTargets {
  if (ds.tier) return recoveryTargets(config, ds.tier)
  const service = ds.service ? config.services[ds.service] : undefined
  return recoveryTargets(config, datastoreTier(config, ds), service)
}

/**
 * What --tier, --service and --datastore select: datastores matching all given filters, and the
 * services whose recoverability is checked (the filtered services; with only --datastore, the
 * services owning the chosen datastores). Unknown names fail before anything else happens.
 */
export function selectScope(
  config: RetailOpsConfig,
  filters: DrillFilters,
): {datastores: DatastoreConfig[]; services: string[]} {
  const tiers = filters.tiers ?? []
  const services = filters.services ?? []
  const names = filters.datastores ?? []
  const badTiers = tiers.filter((t) => !(TIERS as readonly string[]).includes(t))
  if (badTiers.length > 0)
    throw new UsageError(`Unknown tier${badTiers.length > 1 ? 's' : ''}: ${badTiers.join(', ')}.`, {
      nextSteps: [`Tiers: ${TIERS.join(', ')}.`],
    })
  const badServices = services.filter((s) => !config.services[s])
  if (badServices.length > 0) {
    throw new NotFoundError(`Unknown service${badServices.length > 1 ? 's' : ''}: ${badServices.join(', ')}.`, {
      nextSteps: [`Known services: ${Object.keys(config.services).join(', ')}.`],
    })
  }
  const badNames = names.filter((n) => !config.datastores.some((d) => d.name === n))
  if (badNames.length > 0) {
    throw new NotFoundError(`Unknown datastore${badNames.length > 1 ? 's' : ''}: ${badNames.join(', ')}.`, {
      nextSteps: [
        config.datastores.length > 0
          ? `Known datastores: ${config.datastores.map((d) => d.name).join(', ')}.`
          : 'No datastores are configured: add them under datastores: in retailops.yaml (see docs/dr.md).',
      ],
    })
  }
  const datastores = config.datastores.filter(
    (d) =>
      (names.length === 0 || names.includes(d.name)) &&
      (services.length === 0 || (d.service !== undefined && services.includes(d.service))) &&
      (tiers.length === 0 || tiers.includes(datastoreTier(config, d))),
  )
  let scopeServices: string[]
  if (services.length > 0 || tiers.length > 0 || names.length === 0) {
    scopeServices = Object.entries(config.services)
      .filter(
        ([name, s]) =>
          (services.length === 0 || services.includes(name)) && (tiers.length === 0 || tiers.includes(s.tier)),
      )
      .map(([name]) => name)
    if (names.length > 0) scopeServices = scopeServices.filter((s) => datastores.some((d) => d.service === s))
  } else {
    scopeServices = [...new Set(datastores.map((d) => d.service).filter((s): s is string => Boolean(s)))]
  }
  return {datastores, services: scopeServices}
}

export interface PlanOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  drillId: string
  filters: DrillFilters
  providers: Record<DatastoreConfig['provider'], DrillProvider>
  recoverability?: boolean
  env?: NodeJS.ProcessEnv
  allowSourceServer?: string
}

/** The drill, described: reads the configuration and the environment only, writes nothing. */
export function planDrill(options: PlanOptions): DrillPlan {
  const config = options.project.config
  const scope = selectScope(config, options.filters)
  const ctx: PlanContext = {
    drillId: options.drillId,
    project: options.project,
    environment: options.environment,
    env: options.env ?? process.env,
    allowSourceServer: options.allowSourceServer,
  }
  const problems: string[] = []
  const refusals: string[] = []
  const warnings: string[] = []
  const datastores = scope.datastores.map((ds): PlannedDatastore => {
    const p = options.providers[ds.provider].plan(ds, ctx)
    problems.push(...p.problems)
    refusals.push(...(p.refusals ?? []))
    warnings.push(...p.warnings)
    for (const v of ds.validation) {
      if (v.expect?.matchesSource && ds.provider !== 'postgres')
        problems.push(`${ds.name}: validation ${v.name}: expect.matchesSource is for postgres datastores`)
    }
    return {
      name: ds.name,
      service: ds.service,
      tier: datastoreTier(config, ds),
      provider: ds.provider,
      targets: datastoreTargets(config, ds),
      validations: ds.validation.map((v) => ({
        name: v.name,
        query: v.query,
        expect: v.expect,
        recoveryPoint: v.recoveryPoint,
      })),
      ...p,
    }
  })
  const recoverability: PlannedCheck[] =
    options.recoverability === false
      ? []
      : scope.services.map((service) => {
          const s = config.services[service]
          return {
            service,
            checks: [
              `every image deployed for ${service} in ${options.environment.namespace} can be pulled by digest (every manifest read, a HEAD on each blob) or rebuilt from the commit its provenance records`,
              `every Secret and ConfigMap it references exists${s.secrets.length + s.configMaps.length > 0 ? ` (${[...s.secrets, ...s.configMaps].join(', ')} and those in its pod spec)` : ''}`,
              ...s.topics.map((t) => `topic ${t}: definition in ${DEFINITION_DIRS.topic}/`),
              ...s.searchIndexes.map((i) => `search index ${i}: definition in ${DEFINITION_DIRS.searchIndex}/`),
            ],
          }
        })
  if (datastores.length === 0 && recoverability.length === 0) {
    problems.push(
      config.datastores.length === 0
        ? 'No datastores are configured, and no services are in scope: nothing to drill.'
        : 'The filters select no datastore and no service: nothing to drill.',
    )
  } else if (datastores.length === 0) {
    warnings.push('The filters select no datastore: only the recoverability checks will run.')
  }
  return {
    drillId: options.drillId,
    project: config.project,
    environment: options.environment.name,
    namespace: options.environment.namespace,
    context: options.environment.context,
    filters: {
      tiers: options.filters.tiers ?? [],
      services: options.filters.services ?? [],
      datastores: options.filters.datastores ?? [],
    },
    datastores,
    recoverability,
    problems,
    refusals,
    warnings,
  }
}
