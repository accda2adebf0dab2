import type {LoadedConfig} from '../../config/load.js'
import type {RecoveryTargets} from '../../config/resolve.js'
import type {ResolvedEnvironment} from '../../config/resolve.js'
import type {DatastoreConfig} from '../../config/schema.js'
import type {Output} from '../../ui/output.js'
import type {CleanupStack, Clock, StepRecorder} from '../recorder.js'
import type {BackupInfo} from '../backups.js'
import type {RestoredObject, ValidationResult} from '../types.js'
import type {LeaseTarget} from '../workdir.js'

/** What the planner knows before anything is touched. */
export interface PlanContext {
  drillId: string
  project: LoadedConfig
  environment: ResolvedEnvironment
  env: NodeJS.ProcessEnv
  /**
   * --allow-source-server: the reason the scratch copy may go on the source's server. Without it,
   * production datastores need an explicit restore server.
   */
  allowSourceServer?: string
}

/** A provider's plan for one datastore: no I/O beyond reading the environment and the file system. */
export interface ProviderPlan {
  /** What is restored from, credentials masked. */
  source: string
  /** The isolated copy a drill creates. */
  target: string
  steps: string[]
  /** Problems that stop a drill before its first write (a missing variable, an unsupported validation). */
  problems: string[]
  /** Safety gates that stop a drill before its first write (exit REFUSED): a restore on a production source's server. */
  refusals?: string[]
  warnings: string[]
}

export interface DrillContext extends PlanContext {
  drillStartMs: number
  /** The datastore's RTO and RPO targets (a backup older than the RPO is not restored). */
  targets: RecoveryTargets
  clock: Clock
  signal: AbortSignal
  out: Output
  steps: StepRecorder
  cleanup: CleanupStack
  /** The drill's record folder: providers may leave evidence files here (never secrets). */
  recordDir: string
  /** The drill's private work folder (0700): dumps and password files go here, nowhere else. */
  workDir: string
  /** Records a target before it is created, so the next drill removes it if this one is killed. */
  lease: (target: LeaseTarget) => Promise<void>
}

export interface ProviderResult {
  target: string
  /** The restored data's newest point. */
  recoveryPoint?: Date
  recoveryPointSource?: string
  /** Set when RPO has no meaning for this kind of restore (a configuration snapshot). */
  rpoNotApplicable?: string
  /** Why the RPO could not be measured, when it could not. */
  rpoNotMeasured?: string
  validations: ValidationResult[]
  evidence: Record<string, unknown>
  /**
   * The backup was not restored: it is older than the RPO target (a clear finding instead of a
   * silent restore of stale data). The RPO is measured from recoveryPoint; RTO is not measured.
   */
  refused?: string
  /** What was and was not restored, object by object (kubernetes). */
  inventory?: RestoredObject[]
  /** The backup restored (or refused): location, time, size, checksum, age. */
  backup?: BackupInfo
}

export interface DrillProvider {
  readonly name: DatastoreConfig['provider']
  plan(datastore: DatastoreConfig, ctx: PlanContext): ProviderPlan
  /** Checks that need the systems but write nothing (is the restore server really another server?); answers refusals. */
  preflight?(
    datastore: DatastoreConfig,
    plan: ProviderPlan,
    ctx: PlanContext & {signal: AbortSignal},
  ): Promise<string[]>
  /** Restores into an isolated target, validates it and registers its cleanup; never writes to the source. */
  run(datastore: DatastoreConfig, plan: ProviderPlan, ctx: DrillContext): Promise<ProviderResult>
}

/** A restore that ran and failed (a FAILED job, a pg_restore error): the drill's verdict, not a tool error. */
export const RESTORE_FAILED = 'DR_VALIDATION_FAILED'

/** Why RBAC objects are recorded but never restored, from a snapshot or a backup. */
export const RBAC_NOT_RESTORED =
  "RBAC is not restored: the drill's pods run without API tokens, and the drill namespace grants no access the drill did not create"
