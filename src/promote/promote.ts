/**
 * Promotion between environments (`retailops promote --from staging --to production`), after
 * Kargo's freight and stages: the unit is the set of image digests RUNNING in the source
 * environment, read back from its Deployments, never a rebuild and never the local artifacts
 * lock. They move on only when every check passes:
 *
 * - order: promotion.order names the stages; a promotion that skips one (or goes backwards) is
 *   refused unless forced with a reason, which is recorded;
 * - rolled out and soaked: each Deployment has finished rolling out the digests, and has held
 *   them at least promotion.soak. "Since when" is what the cluster's deployment controller
 *   wrote, not what any CLI claims: the Progressing condition's NewReplicaSetAvailable time for
 *   the current ReplicaSet (set when that rollout completed, changed by nothing but the next one),
 *   never earlier than that ReplicaSet's creation;
 * - not burning: the slo engine's burn evaluation of the source (exhausted budget or page-level
 *   burn), handed in by the command (one concept never imports another);
 * - signed and attested: every digest's signature verifies with signing.publicKey (the deploy's
 *   verifier), and so do the attestations supplyChain.policy requires (SBOM, SLSA provenance).
 *
 * Then the target releases exactly those digests through the one release path with its own
 * strategy and gates (handed in by the command as `release`). Every promotion, refused ones
 * included, is recorded in the TARGET cluster (records.ts) before anything is released, and its
 * outcome after.
 */
import {resolveEnvironment, type ResolvedEnvironment} from '../config/resolve.js'
import {formatDuration, parseDuration} from '../config/duration.js'
import type {LoadedConfig} from '../config/load.js'
import {NotFoundError, RetailOpsError, toRetailOpsError, UsageError, type ExitCodeName} from '../errors/index.js'
import type {Deployment, ReplicaSet} from '../kubernetes/kinds.js'
import {FIELD_MANAGER_PROMOTE} from '../kubernetes/labels.js'
import {KubeObjects} from '../kubernetes/objects.js'
import {collectionPath} from '../kubernetes/resources.js'
import {verifyImages} from '../signing/images.js'
import type {RunContext} from '../ui/context.js'
import {silentOutput} from '../ui/output.js'
import {newPromotionId, PromotionRecords, type PromotionRecord, type ServiceChecks} from './records.js'

/** Signature results by image, as the deploy's verifier gives them. */
export type PromotionVerifier = (
  images: string[],
  ctx: RunContext,
) => Promise<Record<string, {image: string; status: string; message?: string}>>

/** The source environment's SLO state of one service: not ok when a budget is exhausted or a page-level burn is on. */
export type BurnCheck = (service: string) => Promise<{ok: boolean; reasons: string[]}>

export interface TargetRelease {
  /** How the target released (per strategy group). */
  releases: {strategy: string; services: string[]; exit: ExitCodeName}[]
  exit: ExitCodeName
}

export interface PromoteDeps {
  verify: PromotionVerifier
  /** Built for the source environment. */
  burn: BurnCheck
  /**
   * The target's release of one group of services that share a strategy (src/rollout/release.ts with the target's
   * gates); `images` as `service=reference` pairs.
   */
  release: (
    group: {strategy: ReleaseStrategy; services: string[]; images: string[]},
    ctx: RunContext,
  ) => Promise<{exit: ExitCodeName}>
}

export type ReleaseStrategy = 'rolling' | 'canary' | 'blue-green'

/**
 * Each service is released the way the target releases it (its rollout.strategy), one group per strategy; the first
 * group that does not end OK stops the rest.
 */
async function releaseInTarget(
  project: LoadedConfig,
  request: {services: string[]; images: Record<string, string>},
  release: PromoteDeps['release'],
  ctx: RunContext,
): Promise<TargetRelease> {
  const groups = new Map<ReleaseStrategy, string[]>()
  for (const s of request.services) {
    const strategy = project.config.services[s]?.rollout?.strategy ?? 'rolling'
    groups.set(strategy, [...(groups.get(strategy) ?? []), s])
  }
  const releases: TargetRelease['releases'] = []
  for (const [strategy, services] of groups) {
    const {exit} = await release({strategy, services, images: services.map((s) => `${s}=${request.images[s]}`)}, ctx)
    releases.push({strategy, services, exit})
    if (exit !== 'OK') return {releases, exit}
  }
  return {releases, exit: 'OK'}
}

export interface PromoteOptions {
  project: LoadedConfig
  from: string
  to: string
  /** Services to promote; none: every configured service the source runs. */
  services?: string[]
  /** --force --reason: promote although the order says otherwise (recorded). */
  force?: {reason: string}
  now?: () => Date
}

export interface PromoteResult {
  id: string
  from: string
  to: string
  services: string[]
  /** service → the image (by digest) the target now runs, exactly as the source runs it. */
  images: Record<string, string>
  outcome: PromotionRecord['outcome']
  exit: ExitCodeName
  record: PromotionRecord
  /** Where the record is kept. */
  recordedIn: {namespace: string; configMap: string}
}

/** The source's Deployment of one service, as promote reads it. */
interface SourceService {
  service: string
  image: string
  /** Every image of the pod template (sidecars, init containers), all verified. */
  images: string[]
  complete: boolean
  heldSince?: string
  revision?: string
}

export async function promote(options: PromoteOptions, deps: PromoteDeps, ctx: RunContext): Promise<PromoteResult> {
  const {project} = options
  const config = project.config
  const now = options.now ?? (() => new Date())
  const from = environment(options.project, options.from, '--from')
  const to = environment(options.project, options.to, '--to')
  if (from.name === to.name)
    throw new UsageError(`--from and --to are both "${from.name}": promote moves a release between two environments.`)
  if (from.cluster === to.cluster && from.namespace === to.namespace && sameContext(from, to))
    throw new UsageError(
      `Environments ${from.name} and ${to.name} are the same namespace ${to.namespace} of one cluster: there is nothing to promote between them.`,
    )
  for (const s of options.services ?? [])
    if (!config.services[s])
      throw new NotFoundError(`Service "${s}" is not in retailops.yaml.`, {
        nextSteps: [`Services: ${Object.keys(config.services).join(', ')}.`],
      })
  const order = orderCheck(config.promotion.order, from.name, to.name)
  if (!order.ok && !options.force)
    throw new RetailOpsError('PROMOTION_OUT_OF_ORDER', `Promoting ${from.name} → ${to.name} ${order.detail}.`, {
      nextSteps: [
        order.next
          ? `Promote to ${order.next} first: \`retailops promote --from ${from.name} --to ${order.next}\`.`
          : '',
        'Or pass --force --reason "…" (recorded in the promotion history).',
      ].filter(Boolean),
      details: {order: config.promotion.order},
    })

  const source = new KubeObjects({context: from.context, kubeconfig: from.kubeconfig})
  const target = new KubeObjects({context: to.context, kubeconfig: to.kubeconfig}, FIELD_MANAGER_PROMOTE)
  const records = new PromotionRecords(target, to.namespace)
  try {
    const task = ctx.out.task(`Reading what ${from.name} runs (${from.namespace})`)
    const running = await readSource(source, from.namespace, options.services ?? [], Object.keys(config.services))
    task.succeed(`${running.map((r) => r.service).join(', ')} in ${from.name}`)
    const soakMs = parseDuration(config.promotion.soak) ?? 0
    const checks = await runChecks(running, soakMs, deps, project, now(), ctx)
    const id = newPromotionId(now())
    const record: PromotionRecord = {
      id,
      project: config.project,
      from: {environment: from.name, namespace: from.namespace, cluster: from.cluster},
      to: {environment: to.name, namespace: to.namespace, cluster: to.cluster},
      by: promoter(),
      at: now().toISOString(),
      services: running.map((r) => r.service),
      images: Object.fromEntries(running.map((r) => [r.service, r.image])),
      order: {
        stages: config.promotion.order ?? [],
        ok: order.ok,
        detail: order.detail,
        forced: !order.ok ? options.force : undefined,
      },
      soak: formatDuration(soakMs),
      checks,
      outcome: 'in-progress',
    }
    const failed = Object.values(checks).flatMap((c) => c.problems)
    if (failed.length > 0) {
      record.outcome = 'refused'
      record.exit = 'PROMOTION_REFUSED'
      record.finishedAt = now().toISOString()
      const kept = await records.save(record, ctx)
      throw new RetailOpsError(
        'PROMOTION_REFUSED',
        `Refused to promote ${from.name} → ${to.name}; nothing was applied:\n${failed.map((p) => `  - ${p}`).join('\n')}`,
        {
          nextSteps: nextStepsFor(checks),
          details: {id, recordedIn: kept ? {namespace: to.namespace, configMap: kept} : undefined, checks},
        },
      )
    }
    const configMap = await records.save(record, ctx)
    let released: TargetRelease
    try {
      released = await releaseInTarget(project, {services: record.services, images: record.images}, deps.release, ctx)
    } catch (error) {
      record.outcome = 'failed'
      record.error = error instanceof Error ? error.message : String(error)
      record.exit = error instanceof RetailOpsError ? error.exit : 'INTERNAL'
      record.finishedAt = now().toISOString()
      await records.save(record, ctx)
      throw error
    }
    record.release = released.releases
    record.outcome = released.exit === 'OK' ? 'promoted' : 'failed'
    record.exit = released.exit
    record.finishedAt = now().toISOString()
    await records.save(record, ctx)
    return {
      id,
      from: from.name,
      to: to.name,
      services: record.services,
      images: record.images,
      outcome: record.outcome,
      exit: released.exit,
      record,
      recordedIn: {namespace: to.namespace, configMap: configMap ?? ''},
    }
  } finally {
    source.close()
    target.close()
  }
}

function environment(project: LoadedConfig, name: string, flag: string): ResolvedEnvironment {
  if (!project.config.environments[name])
    throw new UsageError(`${flag} ${name}: no such environment in retailops.yaml.`, {
      nextSteps: [
        `Environments: ${Object.keys(project.config.environments).join(', ') || 'none (add environments:)'}.`,
      ],
    })
  return resolveEnvironment(project.config, name, project.dir)
}

function sameContext(a: ResolvedEnvironment, b: ResolvedEnvironment): boolean {
  return a.context === b.context && a.kubeconfig === b.kubeconfig
}

/** Whether `to` is the stage right after `from` in promotion.order (no order: any promotion is in order). */
export function orderCheck(
  order: string[] | undefined,
  from: string,
  to: string,
): {ok: boolean; detail: string; next?: string} {
  if (!order) return {ok: true, detail: 'no promotion.order is configured'}
  const i = order.indexOf(from)
  const j = order.indexOf(to)
  if (i < 0)
    return {ok: false, detail: `starts from ${from}, which is not a stage of promotion.order (${order.join(' → ')})`}
  if (j < 0) return {ok: false, detail: `goes to ${to}, which is not a stage of promotion.order (${order.join(' → ')})`}
  if (j <= i) return {ok: false, detail: `goes backwards in promotion.order (${order.join(' → ')})`}
  if (j > i + 1)
    return {
      ok: false,
      detail: `skips ${order.slice(i + 1, j).join(', ')} in promotion.order (${order.join(' → ')})`,
      next: order[i + 1],
    }
  return {ok: true, detail: `${from} → ${to} follows promotion.order (${order.join(' → ')})`}
}

async function readSource(
  kube: KubeObjects,
  namespace: string,
  named: string[],
  configured: string[],
): Promise<SourceService[]> {
  const wanted = named.length > 0 ? named : configured
  const deployments = await Promise.all(
    wanted.map(async (s) => [s, await kube.get<Deployment>(collectionPath('Deployment', namespace), s)] as const),
  )
  const missing = deployments.filter(([, d]) => !d).map(([s]) => s)
  if (named.length > 0 && missing.length > 0)
    throw new NotFoundError(`${missing.join(', ')}: no Deployment in ${namespace}; there is nothing to promote.`, {
      nextSteps: ['Deploy it to the source environment first, or leave it out.'],
    })
  const present = deployments.filter((e): e is readonly [string, Deployment] => Boolean(e[1]))
  if (present.length === 0)
    throw new NotFoundError(`No service of the project runs in ${namespace}; there is nothing to promote.`)
  const sets = await kube.list<ReplicaSet>(collectionPath('ReplicaSet', namespace))
  return present.map(([service, d]) => sourceService(service, d, sets))
}

function sourceService(service: string, d: Deployment, sets: ReplicaSet[]): SourceService {
  const pod = d.spec?.template?.spec
  const containers = pod?.containers ?? []
  const main = containers.find((c) => c.name === service) ?? containers[0]
  const images = [...containers, ...(pod?.initContainers ?? [])].map((c) => c.image ?? '').filter(Boolean)
  const s = d.status ?? {}
  const desired = d.spec?.replicas ?? 1
  const complete =
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
    (s.updatedReplicas ?? 0) >= desired &&
    (s.replicas ?? 0) === desired &&
    (s.availableReplicas ?? 0) >= desired
  const revision = d.metadata.annotations?.['deployment.kubernetes.io/revision']
  const current = sets.find(
    (rs) =>
      rs.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid) &&
      rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === revision,
  )
  const progressed = s.conditions?.find(
    (c) => c.type === 'Progressing' && c.status === 'True' && c.reason === 'NewReplicaSetAvailable',
  ) as {lastUpdateTime?: string; lastTransitionTime?: string; message?: string} | undefined
  let heldSince: string | undefined
  if (complete && current && progressed?.message?.includes(`"${current.metadata.name}"`)) {
    const times = [progressed.lastUpdateTime ?? progressed.lastTransitionTime, current.metadata.creationTimestamp]
      .filter((t): t is string => Boolean(t))
      .map((t) => Date.parse(t))
    heldSince = new Date(Math.max(...times)).toISOString()
  }
  return {service, image: main?.image ?? '', images, complete, heldSince, revision}
}

async function runChecks(
  running: SourceService[],
  soakMs: number,
  deps: PromoteDeps,
  project: LoadedConfig,
  now: Date,
  ctx: RunContext,
): Promise<Record<string, ServiceChecks>> {
  const task = ctx.out.task('Checking soak time, SLO burn and signatures in the source')
  const allImages = [...new Set(running.flatMap((r) => r.images))]
  const digested = allImages.filter((i) => /@sha256:[a-f0-9]{64}$/.test(i))
  const signatures = digested.length > 0 ? await deps.verify(digested, ctx) : {}
  const attestations = await verifyAttestationsOf(digested, project, ctx)
  const out: Record<string, ServiceChecks> = {}
  for (const r of running) {
    const problems: string[] = []
    // Soak: rolled out, and held at least promotion.soak.
    const heldMs = r.heldSince ? now.getTime() - Date.parse(r.heldSince) : 0
    const soak = {
      ok: r.complete && r.heldSince !== undefined && heldMs >= soakMs,
      heldSince: r.heldSince,
      heldFor: r.heldSince ? formatDuration(Math.max(0, heldMs)) : undefined,
      required: formatDuration(soakMs),
    }
    if (!r.complete)
      problems.push(
        `${r.service}: not fully rolled out in the source (a rollout is in progress or pods are not available)`,
      )
    else if (!r.heldSince)
      problems.push(
        `${r.service}: the source's deployment controller has not recorded when its current version finished rolling out`,
      )
    else if (heldMs < soakMs)
      problems.push(
        `${r.service}: held ${formatDuration(Math.max(0, heldMs))} in the source (since ${r.heldSince}), less than promotion.soak ${formatDuration(soakMs)}`,
      )
    // Exactly these digests: every image must be pinned by digest.
    const tagged = r.images.filter((i) => !digested.includes(i))
    for (const t of tagged)
      problems.push(`${r.service}: ${t} runs by tag, not by digest: there is no exact version to promote`)
    // SLO burn in the source.
    const burn = await deps.burn(r.service)
    if (!burn.ok) problems.push(`${r.service}: SLO burning in the source: ${burn.reasons.join('; ')}`)
    // Signatures.
    const sigs = r.images
      .filter((i) => digested.includes(i))
      .map((i) => ({image: i, status: signatures[i]?.status ?? 'unavailable', message: signatures[i]?.message}))
    for (const sig of sigs.filter((x) => x.status !== 'verified'))
      problems.push(`${r.service}: signature of ${sig.image} ${sig.status}${sig.message ? `: ${sig.message}` : ''}`)
    // Attestations the supply-chain policy requires (SBOM, SLSA provenance), signed with the same key.
    const attested = r.images
      .filter((i) => digested.includes(i))
      .map((i) => attestations.results[i] ?? {image: i, status: 'not-required'})
    for (const a of attested.filter((x) => x.status !== 'verified' && x.status !== 'not-required'))
      problems.push(`${r.service}: attestations of ${a.image} ${a.status}${a.message ? `: ${a.message}` : ''}`)
    out[r.service] = {
      image: r.image,
      images: r.images,
      revision: r.revision,
      soak,
      slo: {ok: burn.ok, reasons: burn.reasons},
      signatures: {ok: sigs.length > 0 && sigs.every((x) => x.status === 'verified'), results: sigs},
      attestations: {
        required: attestations.required,
        ok: attested.every((x) => x.status === 'verified' || x.status === 'not-required'),
        results: attested,
      },
      problems,
    }
  }
  const failed = Object.values(out).filter((c) => c.problems.length > 0).length
  if (failed) task.fail(`${failed} of ${running.length} service(s) may not be promoted`)
  else task.succeed('soak time, SLOs and signatures pass')
  return out
}

/**
 * The attestations supplyChain.policy requires of every image (requireSbom: a CycloneDX SBOM,
 * requireProvenance: SLSA provenance), verified for exactly each digest with signing.publicKey.
 * Without a policy none are required.
 */
async function verifyAttestationsOf(
  images: string[],
  project: LoadedConfig,
  ctx: RunContext,
): Promise<{required: string[]; results: Record<string, {image: string; status: string; message?: string}>}> {
  const policy = project.config.supplyChain?.policy
  const required = [
    ...(policy?.requireSbom ? ['cyclonedx'] : []),
    ...(policy?.requireProvenance ? ['slsaprovenance1'] : []),
  ]
  const results: Record<string, {image: string; status: string; message?: string}> = {}
  if (required.length === 0) return {required, results}
  const quiet: RunContext = {...ctx, out: silentOutput}
  for (const image of images) {
    try {
      await verifyImages({project, targets: [image], requireAttestations: required}, quiet)
      results[image] = {image, status: 'verified'}
    } catch (error) {
      const e = toRetailOpsError(error)
      const check = (error as {check?: unknown}).check
      results[image] = {image, status: typeof check === 'string' ? check : e.exit.toLowerCase(), message: e.message}
    }
  }
  return {required, results}
}

function nextStepsFor(checks: Record<string, ServiceChecks>): string[] {
  const all = Object.values(checks)
  const steps: string[] = []
  if (all.some((c) => !c.soak.ok))
    steps.push(
      'Wait until the source has held the release for promotion.soak (`retailops promote history` shows when it was tried).',
    )
  if (all.some((c) => !c.slo.ok))
    steps.push(
      'See `retailops slo --environment <source>`: promote once the budget recovers and no page-level burn is on.',
    )
  if (all.some((c) => !c.signatures.ok)) steps.push('Sign the images (`retailops sign`) and check signing.publicKey.')
  if (all.some((c) => !c.attestations.ok))
    steps.push('Attach the attestations supplyChain.policy requires: `retailops sign SERVICE` after `retailops build`.')
  return steps
}

function promoter(): string {
  const ci = ciIdentity()
  const user = process.env.USER ?? process.env.USERNAME ?? 'unknown'
  return ci ? `${ci} (${user})` : user
}

/** The CI job promoting, from the usual variables. */
function ciIdentity(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.GITHUB_RUN_ID) return `github ${env.GITHUB_REPOSITORY ?? ''} run ${env.GITHUB_RUN_ID}`.replace(/\s+/g, ' ')
  if (env.GITLAB_CI && env.CI_JOB_ID) return `gitlab job ${env.CI_JOB_ID}`
  if (env.CI_JOB_ID) return `ci job ${env.CI_JOB_ID}`
  return undefined
}
