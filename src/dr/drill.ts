import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import pLimit from 'p-limit'

import {formatDuration} from '../config/duration.js'
import type {LoadedConfig} from '../config/load.js'
import {recoveryTargets, type ResolvedEnvironment} from '../config/resolve.js'
import type {DatastoreConfig} from '../config/schema.js'
import {type ExitCodeName, RetailOpsError, toRetailOpsError} from '../errors/index.js'
import {packagePath} from '../assets/paths.js'
import {kubeCredentials} from '../kubernetes/client.js'
import {KubeHttp} from '../kubernetes/http.js'
import type {RunContext} from '../ui/context.js'
import {recordConfigMapName, saveDrillToCluster} from './cluster-history.js'
import {drillsDir, saveDrill} from './history.js'
import {
  describeCheckFailures,
  findLeftovers,
  type Leftover,
  type LeftoverCheck,
  reclaimDeadDrills,
} from './leftovers.js'
import {measureRpo, measureRto, notApplicable, worst} from './measure.js'
import {newDrillId} from './naming.js'
import {type DrillFilters, type DrillPlan, type PlannedDatastore, planDrill} from './plan.js'
import {PROVIDERS} from './providers/index.js'
import type {DrillProvider, ProviderResult} from './providers/types.js'
import {checkRecoverability} from './recoverability.js'
import {CleanupStack, type Clock, StepRecorder} from './recorder.js'
import type {BackupInfo} from './backups.js'
import type {
  CleanupAction,
  DatastoreDrillResult,
  DrillRecord,
  DrillStatus,
  RecoverabilityCheck,
  ServiceSummary,
} from './types.js'
import {DrillWorkDir, workRoot} from './workdir.js'
import {drillEvent} from './events.js'

export interface DrillOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  filters: DrillFilters
  /** Run the recoverability checks (images, Secrets, ConfigMaps, topics, search indexes). Default true. */
  recoverability?: boolean
  /** Datastores restored at once (each one's RTO runs from the drill's start). Default 4. */
  concurrency?: number
  /** Where records and reports go; default <project>/.retailops/drills. */
  drillsDir?: string
  providers?: Record<DatastoreConfig['provider'], DrillProvider>
  /** Look for targets earlier drills left behind (default true). */
  leftovers?: boolean
  drillId?: string
  clock?: Clock
  env?: NodeJS.ProcessEnv
  /** --allow-source-server: why production datastores may be restored on their source's server. */
  allowSourceServer?: string
  /** --timeout: the drill is interrupted (and cleans up) after this long. */
  timeoutMs?: number
  /** --record-in-cluster: also keep the record in a ConfigMap in the environment's namespace (drills that run in the cluster). */
  recordInCluster?: boolean
}

/** The verdict: interrupted, then a failed validation, then a missed target, then any other error. */
export function drillVerdict(
  datastores: DatastoreDrillResult[],
  checks: RecoverabilityCheck[],
  interrupted: boolean,
  errors: RetailOpsError[],
): {status: DrillStatus; exit: ExitCodeName} {
  if (interrupted) return {status: 'interrupted', exit: 'INTERRUPTED'}
  if (datastores.some((d) => d.status === 'validation-failed') || checks.some((c) => c.status === 'fail'))
    return {status: 'validation-failed', exit: 'DR_VALIDATION_FAILED'}
  if (datastores.some((d) => d.status === 'target-missed')) return {status: 'target-missed', exit: 'DR_TARGET_MISSED'}
  if (errors.length > 0) return {status: 'error', exit: errors[0].exit}
  return {status: 'passed', exit: 'OK'}
}

function toolVersion(): string {
  try {
    return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as {version: string}).version
  } catch {
    return 'unknown'
  }
}

function ranBy(env: NodeJS.ProcessEnv): DrillRecord['ranBy'] {
  let user = env.RETAILOPS_DRILL_USER ?? env.USER ?? env.LOGNAME ?? 'unknown'
  try {
    user = env.RETAILOPS_DRILL_USER ?? os.userInfo().username
  } catch {
    // no passwd entry (a container): keep the variable's value
  }
  const ci = env.RETAILOPS_RUN_BY
    ? env.RETAILOPS_RUN_BY
    : env.GITHUB_ACTIONS
      ? `GitHub Actions ${env.GITHUB_REPOSITORY ?? ''} run ${env.GITHUB_RUN_ID ?? '?'} by ${env.GITHUB_ACTOR ?? '?'}`
      : env.GITLAB_CI
        ? `GitLab CI ${env.CI_PROJECT_PATH ?? ''} job ${env.CI_JOB_ID ?? '?'} by ${env.GITLAB_USER_LOGIN ?? '?'}`
        : env.CI
          ? 'CI'
          : undefined
  return {user, host: os.hostname(), ...(ci ? {ci} : {})}
}

function isAbort(error: unknown): boolean {
  return (
    (error as {code?: string})?.code === 'ABORT_ERR' ||
    (error as {exit?: string})?.exit === 'INTERRUPTED' ||
    (error as {name?: string})?.name === 'AbortError'
  )
}

/**
 * Runs a restore drill: every selected datastore restored into an isolated, drill-named target,
 * validated, measured against its tier's RTO and RPO, and cleaned up whatever happens (failure,
 * Ctrl-C); the recoverability checks run alongside. The record and the Markdown and HTML reports
 * are written to .retailops/drills/<id>/. Never throws for a drill verdict: the record says it.
 */
export async function runDrill(options: DrillOptions, ctx: RunContext): Promise<DrillRecord> {
  const clock = options.clock ?? Date.now
  const env = options.env ?? process.env
  const providers = options.providers ?? PROVIDERS
  const drillId = options.drillId ?? newDrillId(new Date(clock()))
  const plan = planDrill({
    project: options.project,
    environment: options.environment,
    drillId,
    filters: options.filters,
    providers,
    recoverability: options.recoverability,
    env,
    allowSourceServer: options.allowSourceServer,
  })
  if (plan.problems.length > 0) {
    throw new RetailOpsError(
      'CONFIG',
      `The drill cannot start:\n${[...plan.problems, ...plan.refusals].map((p) => `  - ${p}`).join('\n')}`,
      {
        nextSteps: ['Fix the problems above (`retailops dr plan` lists them without running anything).'],
        details: {problems: plan.problems, refusals: plan.refusals},
      },
    )
  }
  const timer = options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined
  const signal = timer
    ? AbortSignal.any([ctx.signal ?? new AbortController().signal, timer])
    : (ctx.signal ?? new AbortController().signal)
  // Checks that read the systems (is the restore server another server?) but write nothing.
  const preflight =
    plan.refusals.length > 0
      ? []
      : (
          await Promise.all(
            plan.datastores.map((p) => {
              const ds = options.project.config.datastores.find((d) => d.name === p.name)!
              return (
                providers[ds.provider].preflight?.(ds, p, {
                  drillId,
                  project: options.project,
                  environment: options.environment,
                  env,
                  allowSourceServer: options.allowSourceServer,
                  signal,
                }) ?? Promise.resolve([])
              )
            }),
          )
        ).flat()
  const refusals = [...plan.refusals, ...preflight]
  if (refusals.length > 0) {
    throw new RetailOpsError(
      'REFUSED',
      `The drill was refused before it wrote anything:\n${refusals.map((p) => `  - ${p}`).join('\n')}`,
      {
        nextSteps: [
          'Name a non-production restore server (datastores[].postgres.restoreUrlEnv), or pass --allow-source-server "<reason>" if a copy on the source\'s server is acceptable.',
        ],
        details: {refusals},
      },
    )
  }
  for (const w of plan.warnings) ctx.out.warn(w)
  const dir = path.join(options.drillsDir ?? drillsDir(options.project.dir, env), drillId)
  await mkdir(dir, {recursive: true})

  // What drills killed outright on this host left (dumps, scratch databases, namespaces) is
  // removed; targets of other drills, which may still be running, are reported.
  const root = workRoot(env)
  const reclaimed =
    options.leftovers === false ? [] : await reclaimDeadDrills(options.project, options.environment, env, root, drillId)
  for (const l of reclaimed) {
    if (l.status === 'removed')
      ctx.out.info(
        `Removed a ${l.kind} left by drill ${l.drillId}, which was killed: ${l.name} (${l.where})${l.detail ? `: ${l.detail}` : ''}`,
      )
    else
      ctx.out.warn(
        `Could not remove a ${l.kind} left by drill ${l.drillId}, which was killed: ${l.name} (${l.where}): ${l.detail}${l.command ? `; remove it with: ${l.command}` : ''}`,
      )
  }
  const looked: {leftovers: Leftover[]; check: LeftoverCheck} =
    options.leftovers === false
      ? {leftovers: [], check: {status: 'skipped', checked: [], failures: []}}
      : await findLeftovers(options.project, options.environment, env, drillId).catch((error: unknown) => ({
          leftovers: [],
          check: {
            status: 'failed',
            checked: [],
            failures: [
              {
                what: "earlier drills' targets",
                reason: (error as Error).message ?? String(error),
                command: '`retailops dr drill` again once the cause is fixed',
              },
            ],
          },
        }))
  const present = looked.leftovers
  const leftoverCheck = looked.check
  for (const l of present)
    ctx.out.warn(
      `A ${l.kind} left by drill ${l.drillId ?? '?'} is still there: ${l.name} (${l.where}); remove it with: ${l.command}`,
    )
  // A check that could not look somewhere says so: unknown is not "none found".
  const leftoverCheckWarnings = describeCheckFailures(leftoverCheck)
  for (const w of leftoverCheckWarnings) ctx.out.warn(w)
  const leftovers = [...reclaimed, ...present]
  const work = await DrillWorkDir.create(root, drillId)

  const startMs = clock()
  const steps = new StepRecorder(ctx.out, clock)
  const cleanup: CleanupAction[] = []
  const errors: RetailOpsError[] = []
  ctx.out.info(
    `Drill ${drillId}: ${plan.datastores.length} datastore(s), ${plan.recoverability.length} service(s) checked for recoverability.`,
  )

  const drillOne = async (planned: PlannedDatastore): Promise<DatastoreDrillResult> => {
    const ds = options.project.config.datastores.find((d) => d.name === planned.name)!
    const started = clock()
    const base = {
      name: ds.name,
      service: ds.service,
      tier: planned.tier,
      provider: ds.provider,
      source: planned.source,
      startedAt: new Date(started).toISOString(),
    }
    if (signal.aborted) {
      return {
        ...base,
        target: planned.target,
        status: 'interrupted',
        rto: measureRto(planned.targets, startMs, undefined, 'interrupted before it started'),
        rpo: measureRpo(planned.targets, startMs, undefined, undefined, 'interrupted before it started'),
        validations: [],
        evidence: {},
      }
    }
    const stack = new CleanupStack(ctx.out, clock)
    let result: ProviderResult | undefined
    let failure: RetailOpsError | undefined
    let interrupted = false
    let validatedAt: number | undefined
    try {
      result = await providers[ds.provider].run(ds, planned, {
        drillId,
        project: options.project,
        environment: options.environment,
        env,
        allowSourceServer: options.allowSourceServer,
        drillStartMs: startMs,
        targets: planned.targets,
        clock,
        signal,
        out: ctx.out,
        steps,
        cleanup: stack,
        recordDir: dir,
        workDir: work.dir,
        lease: (target) => work.addTarget(target),
      })
      if (!result.refused) validatedAt = clock()
    } catch (error) {
      if (isAbort(error) || signal.aborted) interrupted = true
      else failure = toRetailOpsError(error)
    } finally {
      if (stack.pending > 0) {
        const step = steps.start(ds.name, 'cleanup', 'clean up')
        const actions = await stack.runAll()
        cleanup.push(...actions)
        const bad = actions.filter((a) => a.status === 'failed' || a.status === 'manual')
        step.end(
          bad.length > 0 ? 'warning' : 'ok',
          actions.map((a) => `${a.action} ${a.kind} ${a.resource}: ${a.status}`).join('; '),
        )
      }
    }
    const validations = result?.validations ?? []
    // A backup that failed its checks is named in the error, so the record says which one it was.
    const backup = result?.backup ?? (failure?.details.backup as BackupInfo | undefined)
    const validationFailed = validations.some((v) => !v.passed)
    if (result?.refused) validatedAt = undefined
    const rto = result?.refused
      ? measureRto(planned.targets, startMs, undefined, `not restored: ${result.refused}`)
      : validationFailed
        ? measureRto(planned.targets, startMs, undefined, 'the restored copy failed validation')
        : measureRto(
            planned.targets,
            startMs,
            validatedAt,
            interrupted ? 'interrupted' : failure ? `the restore failed: ${failure.message.split('\n')[0]}` : undefined,
          )
    const rpo = result?.rpoNotApplicable
      ? notApplicable(planned.targets, 'rpo', result.rpoNotApplicable)
      : measureRpo(
          planned.targets,
          startMs,
          result?.recoveryPoint,
          result?.recoveryPointSource,
          interrupted ? 'interrupted' : failure ? 'the restore failed' : result?.rpoNotMeasured,
        )
    if (result?.refused) rpo.detail = `${rpo.detail}; ${result.refused}`
    let status: DatastoreDrillResult['status']
    if (interrupted) status = 'interrupted'
    else if (failure && failure.exit === 'DR_VALIDATION_FAILED') status = 'validation-failed'
    else if (failure) {
      status = 'error'
      errors.push(failure)
    } else if (validationFailed) status = 'validation-failed'
    else if (result?.refused) status = 'target-missed'
    else if (rto.status === 'fail' || rpo.status === 'fail') status = 'target-missed'
    else status = 'passed'
    return {
      ...base,
      target: result?.target ?? planned.target,
      status,
      ...(validatedAt !== undefined && !validationFailed ? {validatedAt: new Date(validatedAt).toISOString()} : {}),
      rto,
      rpo,
      validations,
      evidence: result?.evidence ?? {},
      ...(result?.inventory ? {inventory: result.inventory} : {}),
      ...(backup ? {backup} : {}),
      ...(result?.refused ? {finding: result.refused} : {}),
      ...(failure ? {error: {code: failure.code, message: failure.message}} : {}),
    }
  }

  const limit = pLimit(Math.max(1, options.concurrency ?? 4))
  const recoverabilityRun = async (): Promise<{checks: RecoverabilityCheck[]; endedAt: number}> => {
    const services = plan.recoverability.map((r) => r.service)
    if (services.length === 0) return {checks: [], endedAt: startMs}
    try {
      const checks = await steps.run(
        'recoverability',
        'checks',
        `${services.length} service(s): images, Secrets, ConfigMaps, topics, search indexes`,
        async (step) => {
          const found = await checkRecoverability({
            project: options.project,
            environment: options.environment,
            services,
            signal,
          })
          const failed = found.filter((c) => c.status === 'fail').length
          if (failed > 0) step.fail(`${failed} of ${found.length} checks failed`)
          return found
        },
        (found) => `${found.filter((c) => c.status === 'pass').length}/${found.length} passed`,
      )
      return {checks, endedAt: clock()}
    } catch (error) {
      if (!isAbort(error)) errors.push(toRetailOpsError(error))
      return {checks: [], endedAt: clock()}
    }
  }
  const [datastores, recoverability] = await Promise.all([
    Promise.all(plan.datastores.map((p) => limit(() => drillOne(p)))),
    recoverabilityRun(),
  ])
  // The work folder goes; its lease stays when a target could not be removed, so the next drill retries.
  await work.close(
    cleanup.some((c) => c.status === 'failed' && (c.kind === 'scratch database' || c.kind === 'namespace')),
  )

  const endMs = clock()
  const services = summarise(options, plan, datastores, recoverability.checks, startMs, recoverability.endedAt)
  const verdict = drillVerdict(datastores, recoverability.checks, signal.aborted, errors)
  const configText = readFileSync(options.project.file)
  const expired = timer?.aborted === true
  if (expired)
    errors.unshift(
      new RetailOpsError(
        'INTERRUPTED',
        `The drill ran out of its --timeout (${formatDuration(options.timeoutMs!)}) and was stopped; what it created was cleaned up.`,
      ),
    )
  const record: DrillRecord = {
    apiVersion: 'retailops.dev/drill/v1',
    id: drillId,
    project: options.project.config.project,
    environment: options.environment.name,
    status: verdict.status,
    exit: verdict.exit,
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(endMs).toISOString(),
    durationMs: endMs - startMs,
    filters: plan.filters,
    ranBy: ranBy(env),
    tool: {name: 'retailops', version: toolVersion(), node: process.version},
    config: {file: options.project.file, sha256: createHash('sha256').update(configText).digest('hex')},
    services,
    datastores,
    recoverability: recoverability.checks,
    steps: steps.steps,
    cleanup,
    leftovers,
    leftoverCheck,
    warnings: [
      ...plan.warnings,
      ...leftoverCheckWarnings,
      ...leftovers
        .filter((l) => l.status !== 'removed')
        .map((l) => `leftover ${l.kind} ${l.name} (${l.where}) from drill ${l.drillId ?? '?'}: ${l.command}`),
      ...errors.map((e) => e.message.split('\n')[0]),
    ],
    files: {
      dir,
      record: path.join(dir, 'drill.json'),
      markdown: path.join(dir, 'report.md'),
      html: path.join(dir, 'report.html'),
    },
    ...(options.timeoutMs ? {timeout: {ms: options.timeoutMs, expired}} : {}),
  }
  await saveDrill(record)
  if (options.recordInCluster) {
    record.clusterRecord = await keepInCluster(options.environment, record, ctx)
    await saveDrill(record)
  }
  const event = drillEvent(record)
  if (event) ctx.out.event(event)
  return record
}

/** The record in a ConfigMap where `dr history` finds it; a failure is reported in the record, never lost silently. */
async function keepInCluster(
  environment: ResolvedEnvironment,
  record: DrillRecord,
  ctx: RunContext,
): Promise<NonNullable<DrillRecord['clusterRecord']>> {
  const namespace = environment.namespace
  try {
    const http = new KubeHttp(kubeCredentials({context: environment.context, kubeconfig: environment.kubeconfig}))
    try {
      const kept = await saveDrillToCluster(http, namespace, {
        ...record,
        clusterRecord: {namespace, configMap: recordConfigMapName(record.id)},
      })
      ctx.out.info(
        `Record kept in ConfigMap ${namespace}/${kept.configMap}${kept.evidenceLeftOut.length ? ` (evidence left out, too large: ${kept.evidenceLeftOut.join(', ')})` : ''}`,
      )
      return {
        namespace,
        configMap: kept.configMap,
        ...(kept.evidenceLeftOut.length ? {evidenceLeftOut: kept.evidenceLeftOut} : {}),
      }
    } finally {
      http.close()
    }
  } catch (error) {
    const e = toRetailOpsError(error)
    ctx.out.warn(`The drill's record could not be kept in the cluster: ${e.message.split('\n')[0]}`)
    return {namespace, error: {code: e.exitCode, exit: e.exit, message: e.message}}
  }
}

function summarise(
  options: DrillOptions,
  plan: DrillPlan,
  datastores: DatastoreDrillResult[],
  checks: RecoverabilityCheck[],
  startMs: number,
  checksEndedAt: number,
): ServiceSummary[] {
  const config = options.project.config
  const names = [
    ...new Set([
      ...plan.recoverability.map((r) => r.service),
      ...datastores.map((d) => d.service).filter((s): s is string => Boolean(s)),
    ]),
  ]
  return names.map((service): ServiceSummary => {
    const s = config.services[service]
    const targets = recoveryTargets(config, s.tier, s)
    const mine = datastores.filter((d) => d.service === service)
    const myChecks = checks.filter((c) => c.service === service)
    const checksOk = myChecks.every((c) => c.status !== 'fail')
    // The service is recovered when its last datastore is validated and its checks are done.
    const allValidated = mine.every((d) => d.validatedAt)
    const validatedAt =
      allValidated && checksOk ? Math.max(checksEndedAt, ...mine.map((d) => Date.parse(d.validatedAt!))) : undefined
    const rto = measureRto(
      targets,
      startMs,
      validatedAt,
      checksOk ? 'a datastore was not validated' : 'a recoverability check failed',
    )
    const rpos = mine.map((d) => d.rpo)
    const worstRpo = rpos.length === 0 ? notApplicable(targets, 'rpo', 'no datastores') : worst(rpos, rpos[0])
    // Judged against the service's own target (a datastore may carry a tier of its own).
    const rpo = {
      ...worstRpo,
      target: targets.rpo,
      targetMs: targets.rpoMs,
      ...(worstRpo.actualMs === undefined
        ? {}
        : {status: worstRpo.actualMs <= targets.rpoMs ? ('pass' as const) : ('fail' as const)}),
    }
    const failed =
      mine.some((d) => d.status !== 'passed') || !checksOk || rto.status === 'fail' || rpo.status === 'fail'
    return {
      service,
      tier: s.tier,
      datastores: mine.map((d) => d.name),
      rto,
      rpo,
      recoverability: {
        passed: myChecks.filter((c) => c.status === 'pass').length,
        failed: myChecks.filter((c) => c.status === 'fail').length,
        warned: myChecks.filter((c) => c.status === 'warn').length,
      },
      status: failed ? 'failed' : 'passed',
    }
  })
}
