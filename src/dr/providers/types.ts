import type {LoadedConfig} from '../../config/load.js'
import type {ResolvedEnvironment} from '../../config/resolve.js'
import type {DatastoreConfig} from '../../config/schema.js'
import type {Output} from '../../ui/output.js'
import type {CleanupStack, Clock, StepRecorder} from '../recorder.js'
import type {ValidationResult} from '../types.js'

/** What the planner knows before anything is touched. */
export interface PlanContext {
  drillId: string
  project: LoadedConfig
  environment: ResolvedEnvironment
  env: NodeJS.ProcessEnv
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
  warnings: string[]
}

export interface DrillContext extends PlanContext {
  drillStartMs: number
  clock: Clock
  signal: AbortSignal
  out: Output
  steps: StepRecorder
  cleanup: CleanupStack
  /** The drill's record folder: providers may leave evidence files here (never secrets). */
  recordDir: string
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
}

export interface DrillProvider {
  readonly name: DatastoreConfig['provider']
  plan(datastore: DatastoreConfig, ctx: PlanContext): ProviderPlan
  /** Restores into an isolated target, validates it and registers its cleanup; never writes to the source. */
  run(datastore: DatastoreConfig, plan: ProviderPlan, ctx: DrillContext): Promise<ProviderResult>
}

/** A restore that ran and failed (a FAILED job, a pg_restore error): the drill's verdict, not a tool error. */
export const RESTORE_FAILED = 'DR_VALIDATION_FAILED'
