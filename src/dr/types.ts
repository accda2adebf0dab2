import type {DatastoreConfig, Tier} from '../config/schema.js'
import type {ExitCodeName} from '../errors/index.js'
import type {BackupInfo} from './backups.js'

/** How one measured value compares with its target. */
export type MeasureStatus = 'pass' | 'fail' | 'not-measured' | 'not-applicable'

/** An RTO or RPO measured against its objective (not a rollout analysis measurement). */
export interface ObjectiveMeasurement {
  /** The target as written in retailops.yaml (e.g. "15m"). */
  target: string
  targetMs: number
  actualMs?: number
  status: MeasureStatus
  /** Why it was not measured, or where the value comes from. */
  detail: string
}

export interface RpoMeasurement extends ObjectiveMeasurement {
  /** The restored data's newest point (ISO 8601). */
  recoveryPoint?: string
  /** Where the recovery point comes from: a validation query, a recovery point's creation date, a backup file's time. */
  source?: string
}

export type StepStatus = 'ok' | 'failed' | 'warning' | 'skipped' | 'interrupted'

/** One timed step of a drill: a row of the timeline. */
export interface DrillStep {
  /** A datastore's name, "recoverability" or "drill". */
  scope: string
  name: string
  title: string
  startedAt: string
  endedAt?: string
  durationMs?: number
  status: StepStatus
  detail?: string
}

export interface Expectation {
  min?: number
  max?: number
  equals?: string | number
  matchesSource?: boolean
}

export interface ValidationResult {
  name: string
  /** The query (SQL) or the built-in check that ran. */
  query: string
  expect?: Expectation
  /** The first column of the first row, as text ("null" for SQL NULL). */
  value?: string | null
  /** The same query on the source, in the dump's snapshot (expect.matchesSource). */
  sourceValue?: string | null
  recoveryPoint?: string
  passed: boolean
  message: string
  durationMs: number
}

/** One object of a restore, and what the drill did with it. */
export interface RestoredObject {
  kind: string
  name: string
  /**
   * restored: as in the source (server fields stripped); modified: restored with changes (reason
   * says which); placeholder: a Secret recreated with the same keys and empty values; not-restored:
   * left out (reason says why); failed: meant to be restored, refused by the API server (reason
   * says what it answered).
   */
  outcome: 'restored' | 'modified' | 'placeholder' | 'not-restored' | 'failed'
  reason?: string
}

export type DatastoreStatus = 'passed' | 'target-missed' | 'validation-failed' | 'error' | 'interrupted'

export interface DatastoreDrillResult {
  name: string
  service?: string
  tier: Tier
  provider: DatastoreConfig['provider']
  /** What was restored from (credentials masked). */
  source: string
  /** The isolated copy the drill created (scratch database, drill namespace, restored resource ARN). */
  target: string
  status: DatastoreStatus
  startedAt: string
  validatedAt?: string
  rto: ObjectiveMeasurement
  rpo: RpoMeasurement
  validations: ValidationResult[]
  /** Job ids, dump checksums, object counts: what an auditor checks. */
  evidence: Record<string, unknown>
  /** What was and was not restored, object by object (kubernetes drills). */
  inventory?: RestoredObject[]
  /** The backup restored (postgres from a backup location): where, its time, size, checksum and age against the RPO. */
  backup?: BackupInfo
  /** Why nothing was restored on purpose (the newest backup is older than the RPO target). */
  finding?: string
  error?: {code: string; message: string}
}

export type CheckKind = 'image' | 'secret' | 'configMap' | 'topic' | 'searchIndex'

export interface RecoverabilityCheck {
  service: string
  kind: CheckKind
  subject: string
  status: 'pass' | 'fail' | 'warn' | 'skip'
  detail: string
}

export interface ServiceSummary {
  service: string
  tier: Tier
  datastores: string[]
  rto: ObjectiveMeasurement
  rpo: RpoMeasurement
  recoverability: {passed: number; failed: number; warned: number}
  status: 'passed' | 'failed'
}

export interface CleanupAction {
  kind: string
  resource: string
  action: string
  status: 'removed' | 'absent' | 'failed' | 'manual'
  detail?: string
  at: string
}

export type DrillStatus = 'passed' | 'target-missed' | 'validation-failed' | 'error' | 'interrupted'

export interface DrillRecord {
  apiVersion: 'retailops.dev/drill/v1'
  id: string
  project: string
  environment: string
  status: DrillStatus
  /** The exit code name the drill ends with (OK, DR_TARGET_MISSED, DR_VALIDATION_FAILED, ...). */
  exit: ExitCodeName
  startedAt: string
  endedAt: string
  durationMs: number
  filters: {tiers: string[]; services: string[]; datastores: string[]}
  ranBy: {user: string; host: string; ci?: string}
  tool: {name: string; version: string; node: string}
  config: {file: string; sha256: string}
  services: ServiceSummary[]
  datastores: DatastoreDrillResult[]
  recoverability: RecoverabilityCheck[]
  steps: DrillStep[]
  cleanup: CleanupAction[]
  /**
   * Targets of earlier drills found when this one started: removed when their drill is known to be
   * dead (killed on this host), otherwise reported (another drill may be using them).
   */
  leftovers: {
    kind: string
    name: string
    where: string
    drillId?: string
    command: string
    status?: 'present' | 'removed' | 'failed'
    detail?: string
  }[]
  /** Whether the look for leftovers worked: a failed check means leftovers are unknown, not absent. Absent in records of older versions. */
  leftoverCheck?: {
    status: 'checked' | 'partial' | 'failed' | 'skipped'
    checked: string[]
    failures: {what: string; reason: string; command: string}[]
  }
  warnings: string[]
  /** Where the record and reports were written. */
  files: {dir: string; record: string; markdown: string; html: string}
  /** --record-in-cluster: the ConfigMap the record was kept in (what `dr history` reads from anywhere), or why it could not be. */
  clusterRecord?: {
    namespace: string
    configMap?: string
    evidenceLeftOut?: string[]
    error?: {code: number; exit: ExitCodeName; message: string}
  }
  /** --timeout: how long the drill was allowed, and whether it ran out. */
  timeout?: {ms: number; expired: boolean}
}
