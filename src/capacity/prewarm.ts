import {readFile} from 'node:fs/promises'

import {LineCounter, parseDocument} from 'yaml'

import {parseDuration} from '../config/duration.js'
import type {LoadedConfig} from '../config/load.js'
import {findCampaign, type ResolvedEnvironment} from '../config/resolve.js'
import type {CampaignConfig, RetailOpsConfig} from '../config/schema.js'
import {headroomPool, nodePoolsOf, resolvePlacement, taintToleration} from '../config/placement.js'
import {
  ConfigError,
  type ConfigIssue,
  RefusedError,
  RetailOpsError,
  UnavailableError,
  UsageError,
} from '../errors/index.js'
import {kubeClients} from '../kubernetes/client.js'
import {KubeHttp} from '../kubernetes/http.js'
import type {RunContext} from '../ui/context.js'
import {type ApplyResult, applyPlan} from './apply.js'
import {findWorkloads, hpaFacts, namespaceQuotas, nodeInventory, workloadFacts} from './cluster.js'
import {campaignServiceConfig, type CapacityPlan, computePlan, type ServiceFacts, type WorkloadFacts} from './plan.js'
import {PrometheusClient} from '../prometheus/client.js'
import {observedPeakQuery} from './prometheus.js'
import {type RestoreResult, restoreCampaign} from './restore.js'
import {readState} from './state.js'
import {verifiedRunnerImage} from '../runner/resolve.js'
import {removeRunnerRbac, type ScheduleResult, scheduleCampaign, unscheduleCampaign} from './schedule.js'
import {BEHAVIOURS, planWarmup, runWarmup, type WarmupPlan, type WarmupResult} from './warm.js'
import {prewarmAppliedEvent, prewarmRestoredEvent, warmupFailedEvent} from './events.js'

export interface PrewarmOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  campaign: string
  /** Plan only. */
  dryRun?: boolean
  /** Skip the k6 warm-up. */
  noWarm?: boolean
  /** Only the k6 warm-up (capacity already applied). */
  warmOnly?: boolean
  raiseMax?: boolean
  allowBelowCurrent?: boolean
  /** Overrides campaign.nodeHeadroom. */
  nodeHeadroom?: boolean
  timeoutMs?: number
  lookbackMs?: number
  rateWindowMs?: number
  /** Extra label matchers for the observed-traffic query (one Prometheus scraping several environments). */
  trafficLabels?: Record<string, string>
  prometheusUrl?: string
  baseUrl?: string
  serviceUrls?: Record<string, string>
  poolLabel?: string
  defaultPool?: string
  placeholderImage?: string
  k6?: string
  paymentToken?: string
  scriptOut?: string
  schedule?: boolean
  runnerImage?: string
  /** Flags the scheduled job passes on to the pre-warm. */
  scheduledFlags?: string[]
  unschedule?: boolean
  now?: Date
  /** Tests: called after each change during apply. */
  afterChange?: (what: string) => void | Promise<void>
}

export interface PrewarmResult {
  campaign: string
  namespace: string
  environment: string
  mode: 'plan' | 'apply' | 'warm' | 'schedule' | 'unschedule'
  plan?: CapacityPlan
  apply?: ApplyResult
  warmup?: WarmupResult
  warmupPlan?: WarmupPlan
  schedule?: ScheduleResult
  unscheduled?: string[]
}

/** Finds the line of a key path in retailops.yaml (or its nearest existing parent) for error messages. */
async function locate(file: string, keyPath: (string | number)[]): Promise<{line?: number; column?: number}> {
  try {
    const lineCounter = new LineCounter()
    const doc = parseDocument(await readFile(file, 'utf8'), {lineCounter})
    for (let n = keyPath.length; n > 0; n--) {
      const node = doc.getIn(keyPath.slice(0, n), true) as {range?: [number, number, number]} | undefined
      if (node?.range) {
        const pos = lineCounter.linePos(node.range[0])
        return {line: pos.line, column: pos.col}
      }
    }
  } catch {
    // A location is a courtesy; the key path is enough.
  }
  return {}
}

/** Input checks that need nothing but the configuration: ended campaign, missing rpsPerPod, unknown mix. */
export async function validateCampaignInput(
  project: LoadedConfig,
  campaign: CampaignConfig,
  now: Date,
  warm: boolean,
  capacity = true,
): Promise<void> {
  if (Date.parse(campaign.end) <= now.getTime()) {
    throw new RefusedError(`Campaign "${campaign.name}" ended at ${campaign.end}; there is nothing to pre-warm.`, {
      nextSteps: [
        'Check the campaign name, or add the next campaign to campaigns[] in retailops.yaml.',
        `If its capacity is still raised, \`retailops prewarm restore --campaign ${campaign.name}\` puts it back.`,
      ],
    })
  }
  const index = project.config.campaigns.indexOf(campaign)
  const issues: ConfigIssue[] = []
  for (const service of capacity ? Object.keys(campaign.peak) : []) {
    if (!project.config.services[service].scaling.rpsPerPod) {
      const where = await locate(project.file, ['services', service, 'scaling'])
      issues.push({
        file: project.file,
        ...where,
        path: `services.${service}.scaling.rpsPerPod`,
        message: `is required to pre-warm ${service} for campaign ${campaign.name}: the requests per second one pod serves within its latency SLO`,
      })
    }
  }
  if (warm) {
    for (const b of Object.keys(campaign.warmup.mix)) {
      if (BEHAVIOURS[b]) continue
      const where = await locate(project.file, ['campaigns', index, 'warmup', 'mix', b])
      issues.push({
        file: project.file,
        ...where,
        path: `campaigns[${index}].warmup.mix.${b}`,
        message: `unknown behaviour "${b}"; known: ${Object.keys(BEHAVIOURS).join(', ')}`,
      })
    }
  }
  if (issues.length > 0) {
    throw new ConfigError(issues, {
      nextSteps: [
        "Measure one pod's throughput at the latency SLO (a k6 run against one replica) and set services.<name>.scaling.rpsPerPod.",
      ],
    })
  }
}

/** Observed peak rps of the services whose campaign peak is a multiple of observed traffic (Prometheus). */
async function observedPeaks(
  options: PrewarmOptions,
  services: {service: string; peak: {rps: number} | {multiplier: number}}[],
  ctx: RunContext,
): Promise<Map<string, number | undefined>> {
  const observed = new Map<string, number | undefined>()
  const needsPrometheus = services.filter((s) => 'multiplier' in s.peak)
  if (needsPrometheus.length === 0) return observed
  const url = options.prometheusUrl ?? options.env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL
  if (!url) {
    throw new UnavailableError(
      `The peak of ${needsPrometheus.map((s) => s.service).join(', ')} is a multiple of observed traffic, and no Prometheus is configured.`,
      {
        nextSteps: [
          'Set environments.<env>.prometheus in retailops.yaml (or --prometheus URL), or give the peak as {rps: N}.',
        ],
      },
    )
  }
  const lookback = options.lookbackMs ?? parseDuration('7d')!
  const window = options.rateWindowMs ?? parseDuration('5m')!
  // 'keep' as analysis reads it: a peak of +Inf is not hidden as "no traffic observed".
  const prometheus = new PrometheusClient(url, {infinity: 'keep', timeoutMs: 10_000, signal: ctx.signal})
  for (const s of needsPrometheus) {
    const query = observedPeakQuery(s.service, window, lookback, options.trafficLabels)
    ctx.out.debug(`PromQL: ${query}`)
    observed.set(s.service, (await prometheus.scalar(query)) ?? undefined)
  }
  return observed
}

/**
 * The pool the service's placement puts it on (services.<name>.placement over its tier's), where
 * the plan reserves its headroom; what the Deployment shows when the placement does not say.
 */
function placedWorkload(config: RetailOpsConfig, service: string, facts: WorkloadFacts): WorkloadFacts {
  const placement = resolvePlacement(config, config.services[service], `services.${service}`)
  const nodePools = nodePoolsOf(config)
  const pool = headroomPool(placement, nodePools)
  if (!pool) return facts
  // The placeholders stand where the pods will: they tolerate the pool's declared taints too.
  const tolerations = (nodePools.pools[pool]?.taints ?? []).map(taintToleration)
  return {...facts, pool, poolSource: 'placement', tolerations: [...(facts.tolerations ?? []), ...tolerations]}
}

/** Reads the cluster and Prometheus and computes the plan; changes nothing. */
export async function planCampaign(options: PrewarmOptions, ctx: RunContext): Promise<CapacityPlan> {
  const {config} = options.project
  const campaign = findCampaign(config, options.campaign)
  const now = options.now ?? new Date()
  const namespace = options.env.namespace
  const k = kubeClients({context: options.env.context, kubeconfig: options.env.kubeconfig})
  const task = ctx.out.task(`Reading capacity in ${k.context} (namespace ${namespace})`)
  const services = campaignServiceConfig(config, campaign)
  const [inventory, workloads, quotas, saved] = await Promise.all([
    // Declared node pools name the pool label; otherwise it is detected from the nodes.
    nodeInventory(k, {
      poolLabel: options.poolLabel ?? config.nodePools?.poolLabel,
      defaultPool: options.defaultPool,
      prices: config.prices,
      nodePools: config.nodePools,
    }),
    findWorkloads(
      k,
      namespace,
      config.project,
      services.map((s) => s.service),
    ),
    namespaceQuotas(k, namespace),
    readState(k, namespace, campaign.name),
  ])
  // After an interrupted run the floors are already (partly) raised: the saved values are the baseline.
  const savedFloors = new Map<string, number>()
  for (const t of Object.values(saved?.state.targets ?? {})) {
    const field =
      t.kind === 'HorizontalPodAutoscaler' ? t.minReplicas : t.kind === 'ScaledObject' ? t.minReplicaCount : t.replicas
    // Absent: the kind's default (HPA and Deployment 1, ScaledObject 0).
    savedFloors.set(t.service, field.present ? (field.value as number) : t.kind === 'ScaledObject' ? 0 : 1)
  }
  if (saved)
    ctx.out.info(
      `A pre-warm of ${campaign.name} was already started at ${saved.state.savedAt}: its saved values are kept and count as the baseline.`,
    )
  task.update(
    `${inventory.pools.length} pool(s) over ${inventory.zones.length} zone(s)${inventory.poolLabel ? ` (pool label ${inventory.poolLabel})` : ''}`,
  )

  const observed = await observedPeaks(options, services, ctx)
  const facts: ServiceFacts[] = services.map((s) => {
    const w = workloads.get(s.service)
    return {
      ...s,
      observedRps: observed.get(s.service),
      workload: w?.deployment
        ? placedWorkload(config, s.service, workloadFacts(w.deployment, inventory.poolLabel, inventory.defaultPool))
        : undefined,
      hpa: w?.autoscaler ? hpaFacts(w.autoscaler) : undefined,
      savedFloor: savedFloors.get(s.service),
    }
  })
  const plan = computePlan({
    campaign,
    now,
    services: facts,
    zones: inventory.zones,
    pools: inventory.pools,
    quotas,
    currency: config.prices.currency,
    nodeHeadroom: options.nodeHeadroom ?? campaign.nodeHeadroom,
    raiseMax: options.raiseMax ?? false,
    allowBelowCurrent: options.allowBelowCurrent ?? false,
  })
  task.succeed(
    `Planned ${plan.services.length} service(s): ${plan.services.map((s) => `${s.service} ${s.currentReplicas}→${s.replicas}`).join(', ')}`,
  )
  plan.poolLabel = inventory.poolLabel
  for (const warning of plan.warnings) ctx.out.warn(warning)
  return plan
}

/** Refuses a plan with problems, naming each; nothing has been changed at this point. */
export function refuseProblems(plan: CapacityPlan): void {
  if (plan.problems.length === 0) return
  const onlyMissing = plan.problems.every((p) => p.code === 'no-workload')
  const lines = plan.problems.map((p) => `  • ${p.message}`).join('\n')
  const nextSteps: string[] = []
  if (plan.problems.some((p) => p.code === 'beyond-max'))
    nextSteps.push('Pass --raise-max to let the pre-warm raise maxReplicas for the campaign (restore puts it back).')
  if (plan.problems.some((p) => p.code === 'beyond-quota'))
    nextSteps.push(
      'Raise the namespace ResourceQuota, lower the peak or buffer, or pass --no-node-headroom if placeholders push it over.',
    )
  if (plan.problems.some((p) => p.code === 'below-current'))
    nextSteps.push('Check campaigns[].peak, or pass --allow-below-current to leave those services as they are.')
  if (onlyMissing) nextSteps.push('Deploy the services first (`retailops deploy`), or check --namespace.')
  nextSteps.push('`--dry-run` prints the whole plan.')
  const error = new RetailOpsError(
    onlyMissing ? 'NOT_FOUND' : 'REFUSED',
    `The pre-warm plan for campaign ${plan.campaign} was refused; nothing was changed:\n${lines}`,
    {
      nextSteps,
      details: {problems: plan.problems, plan},
    },
  )
  throw error
}

async function checkK6(k6: string): Promise<void> {
  const {execa} = await import('execa')
  try {
    await execa(k6, ['version'], {timeout: 10_000})
  } catch (error) {
    const missing = (error as {code?: string}).code === 'ENOENT'
    throw new UnavailableError(
      `k6 ${missing ? 'was not found' : 'does not run'} (${k6})${missing ? '' : `: ${(error as Error).message.split('\n')[0]}`}.`,
      {
        nextSteps: [
          'Install k6 (`go install go.k6.io/k6@v1.8.1`, or a package from grafana.com) or set RETAILOPS_K6 to its path.',
          'Or skip the warm-up with --no-warm.',
        ],
      },
    )
  }
}

/** plan → (save, raise, headroom, wait) → k6 warm-up; or --schedule / --unschedule. */
export async function runPrewarm(options: PrewarmOptions, ctx: RunContext): Promise<PrewarmResult> {
  const {config} = options.project
  const campaign = findCampaign(config, options.campaign)
  const namespace = options.env.namespace
  const base = {campaign: campaign.name, namespace, environment: options.env.name}
  const k = () => kubeClients({context: options.env.context, kubeconfig: options.env.kubeconfig})

  if (options.unschedule) {
    const http = new KubeHttp(k().kc)
    try {
      // From a workstation the runner's permissions go too (the restore job cannot delete its own).
      const unscheduled = [
        ...(await unscheduleCampaign(http, namespace, campaign.name)),
        ...(await removeRunnerRbac(http, namespace, campaign.name)),
      ]
      ctx.out.info(
        unscheduled.length
          ? `Removed ${unscheduled.join(', ')}`
          : `No schedule for campaign ${campaign.name} in ${namespace}.`,
      )
      return {...base, mode: 'unschedule', unscheduled}
    } finally {
      http.close()
    }
  }

  const now = options.now ?? new Date()
  const warm = !options.noWarm && !options.dryRun && !options.schedule
  // The warm-up alone needs no per-pod capacity: only plans do.
  await validateCampaignInput(options.project, campaign, now, warm, !options.warmOnly)
  if (options.warmOnly) {
    // The warm-up needs the peaks, not the cluster: it can run where only the services are reachable.
    const services = campaignServiceConfig(config, campaign)
    const observed = await observedPeaks(options, services, ctx)
    const peakRps = Object.fromEntries(
      services.map((s) => [
        s.service,
        'rps' in s.peak ? s.peak.rps : (observed.get(s.service) ?? 0) * s.peak.multiplier,
      ]),
    )
    const warmupPlan = planWarmup({
      config,
      campaign,
      campaignIndex: config.campaigns.indexOf(campaign),
      peakRps,
      baseUrl: options.baseUrl ?? options.env.baseUrl,
      serviceUrls: options.serviceUrls ?? {},
    })
    await checkK6(options.k6 ?? process.env.RETAILOPS_K6 ?? 'k6')
    const warmup = await runWarmup(
      {plan: warmupPlan, k6: options.k6, paymentToken: options.paymentToken, scriptOut: options.scriptOut},
      ctx,
    )
    if (!warmup.passed) ctx.out.event(warmupFailedEvent(campaign.name, namespace, warmup))
    return {...base, mode: 'warm', warmup, warmupPlan}
  }
  // The runner image is resolved and its signature verified before anything is read or written.
  const runner =
    options.schedule && !options.dryRun
      ? await verifiedRunnerImage(options.project, options.runnerImage, ctx)
      : undefined
  const plan = await planCampaign({...options, now}, ctx)
  if (options.dryRun) return {...base, mode: 'plan', plan}
  refuseProblems(plan)

  // Everything the warm-up needs is checked before the first change.
  let warmupPlan: WarmupPlan | undefined
  if (warm) {
    warmupPlan = planWarmup({
      config,
      campaign,
      campaignIndex: config.campaigns.indexOf(campaign),
      peakRps: Object.fromEntries(plan.services.map((s) => [s.service, s.peakRps])),
      baseUrl: options.baseUrl ?? options.env.baseUrl,
      serviceUrls: options.serviceUrls ?? {},
    })
    await checkK6(options.k6 ?? process.env.RETAILOPS_K6 ?? 'k6')
  }

  const http = new KubeHttp(k().kc)
  try {
    if (options.schedule) {
      const schedule = await scheduleCampaign(
        {
          http,
          namespace,
          campaign,
          environment: options.env.name,
          configFile: options.project.file,
          runnerImage: runner!.image,
          prewarmFlags: options.scheduledFlags ?? [],
          now,
        },
        ctx,
      )
      return {...base, mode: 'schedule', plan, schedule}
    }
    const apply = await applyPlan(
      {
        k: k(),
        http,
        namespace,
        plan,
        poolLabel: plan.poolLabel,
        nodeHeadroom: options.nodeHeadroom ?? campaign.nodeHeadroom,
        placeholderImage: options.placeholderImage,
        timeoutMs: options.timeoutMs ?? 600_000,
        afterChange: options.afterChange,
      },
      ctx,
    )
    ctx.out.event(prewarmAppliedEvent(plan, apply))
    if (!warmupPlan) return {...base, mode: 'apply', plan, apply}
    const warmup = await runWarmup(
      {plan: warmupPlan, k6: options.k6, paymentToken: options.paymentToken, scriptOut: options.scriptOut},
      ctx,
    )
    if (!warmup.passed) ctx.out.event(warmupFailedEvent(campaign.name, namespace, warmup))
    return {...base, mode: 'apply', plan, apply, warmup, warmupPlan}
  } finally {
    http.close()
  }
}

export interface RestoreCommandOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  campaign: string
  unschedule?: boolean
}

export async function runRestore(
  options: RestoreCommandOptions,
  ctx: RunContext,
): Promise<RestoreResult & {unscheduled?: string[]}> {
  const known = options.project.config.campaigns.some((c) => c.name === options.campaign)
  const k = kubeClients({context: options.env.context, kubeconfig: options.env.kubeconfig})
  const http = new KubeHttp(k.kc)
  try {
    const result = await restoreCampaign({k, http, namespace: options.env.namespace, campaign: options.campaign}, ctx)
    // A campaign removed from retailops.yaml can still be restored; a name that is neither is a typo.
    if (!known && !result.restored) findCampaign(options.project.config, options.campaign)
    if (result.restored) ctx.out.event(prewarmRestoredEvent(result))
    if (!options.unschedule) return result
    const unscheduled = await unscheduleCampaign(http, options.env.namespace, options.campaign)
    return {...result, unscheduled}
  } finally {
    http.close()
  }
}

/** A duration flag's value in ms (undefined when not given); a bad one is a usage error. */
/** --traffic-label KEY=VALUE (repeatable) → label matchers. */
export function parseTrafficLabels(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const v of values ?? []) {
    const m = /^([a-zA-Z_]\w*)=(.*)$/.exec(v)
    if (!m)
      throw new UsageError(
        `--traffic-label ${v}: expected KEY=VALUE with a Prometheus label name, e.g. namespace=shop.`,
      )
    out[m[1]] = m[2]
  }
  return out
}

/** --service-url NAME=URL (repeatable) → per-service URLs. */
export function parseServiceUrls(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const v of values ?? []) {
    const at = v.indexOf('=')
    if (at <= 0 || !/^https?:\/\//.test(v.slice(at + 1)))
      throw new UsageError(`--service-url ${v}: expected NAME=URL, e.g. catalog=http://127.0.0.1:8081.`)
    out[v.slice(0, at)] = v.slice(at + 1)
  }
  return out
}
