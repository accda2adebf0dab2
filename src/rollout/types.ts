/**
 * The rollout model. There is no controller in the cluster: the CLI drives each rollout, and
 * everything it knows lives in one ConfigMap per service (`retailops-rollout-<service>`), so any
 * machine or CI job can see, resume, promote or abort it. These are the shapes stored there.
 */

import type {HeaderRouteMatch} from '../config/route-match.js'
import type {AutoscalerKind} from '../kubernetes/autoscalers.js'

/** The autoscaler a release rendered for a service, and what decided its kind. */
export interface StoredAutoscaler {
  kind: AutoscalerKind
  name: string
  /** flag: --scaling-provider; config: scaling.provider (or CPU only, an HPA); cluster: `auto`, answered by the cluster. */
  decidedBy: 'flag' | 'config' | 'cluster'
}

export type {HeaderRouteMatch}
export type Strategy = 'canary' | 'blue-green'
export type RouterKind = 'gateway' | 'nginx' | 'replicas'

/** One step of a canary; blue-green compiles to its own fixed sequence. */
export type Step =
  | {setWeight: number}
  | {pause: {duration?: string}}
  | {analysis: {count?: number}}
  | {setCanaryScale: {replicas?: number; weight?: number; matchTrafficWeight?: boolean}}
  /** Requests with this header (exact value) or cookie go to the canary until promotion or abort. */
  | {setHeaderRoute: HeaderRouteMatch}
  /** This share of live requests is copied to the canary (its responses discarded); 0 stops it. */
  | {setMirrorRoute: {percent: number}}

/**
 * What the router is asked to do beyond the weight: header/cookie matches sent to the canary and
 * the share of requests mirrored to it. Rendered from the steps up to the current one.
 */
export interface Routing {
  weight: number
  headers: HeaderRouteMatch[]
  mirrorPercent: number
}

export const PHASES = [
  'Progressing',
  'Paused',
  'Analyzing',
  'Promoting',
  'Healthy',
  'Aborting',
  'Aborted',
  'Inconclusive',
  'TimedOut',
] as const
export type Phase = (typeof PHASES)[number]

/**
 * Where the driver is inside a phase, stored before it acts so a restart resumes there (none yet:
 * setup has not started). setup → steps → (Promoting) full-weight → update-stable → repin →
 * cleanup → done; an abort is at abort (ends Aborted) or abort:timeout (ends TimedOut) until done.
 */
export const STAGES = [
  'setup',
  'steps',
  'full-weight',
  'update-stable',
  'repin',
  'cleanup',
  'abort',
  'abort:timeout',
  'done',
] as const
export type Stage = (typeof STAGES)[number]

/** Phases in which nothing more happens without a person (or a new deploy). */
export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set(['Healthy', 'Aborted', 'TimedOut'])

export type MeasurementPhase = 'Successful' | 'Failed' | 'Inconclusive' | 'Error'
export type AnalysisPhase = 'Running' | MeasurementPhase

/**
 * How a metric is compared with stable: `tolerance` (canary ≤ stable × (1 + tolerance), or within
 * minDifference), or `statistical` (a one-sided test at a confidence level, and an effect size).
 */
export type AnalysisMethod = 'tolerance' | 'statistical'

export interface MetricSpec {
  name: string
  query: string
  successCondition?: string
  failureCondition?: string
  compareWithStable: boolean
  tolerance: number
  minDifference: number
  /** Absent in states written before statistical analysis existed: tolerance. */
  method?: AnalysisMethod
  /** PromQL: the observations behind the value in the window (requests, histogram count). */
  samplesQuery?: string
  /** Statistical, error rates: the failed requests in the window (of samplesQuery). */
  errorsQuery?: string
  /** Statistical, latency: `sum by (le) (increase(…_bucket[{{window}}]))`; the +Inf bucket counts the samples. */
  bucketsQuery?: string
  /** Fewer observations than this, on the canary or on stable, make a measurement inconclusive. */
  minSamples?: number
  /** Statistical: 1 − the significance level of the one-sided test. */
  confidence?: number
  /**
   * Statistical: the smallest effect that fails a canary: an error-rate difference (0.01 = one
   * percentage point) or, for latency, the rank-biserial correlation (0.2: the canary is slower in
   * 60 % of request pairs).
   */
  minEffect?: number
}

export interface AnalysisSpec {
  intervalMs: number
  count: number
  failureLimit: number
  inconclusiveLimit: number
  consecutiveErrorLimit: number
  missingData: 'fail' | 'inconclusive' | 'pass'
  windowMs: number
  metrics: MetricSpec[]
  /** The configured method (each metric carries what applies to it). */
  method?: AnalysisMethod
}

/** What a measurement's verdict rests on: the counts, and the test with its thresholds. */
export interface Evidence {
  /** Observations in the window on each side, and the minimum each needs. */
  samples: {canary: number; stable?: number; needed: number}
  proportion?: {
    canary: {requests: number; failures: number; rate: number}
    stable: {requests: number; failures: number; rate: number}
    /** canary − stable error rate, with its two-sided confidence interval. */
    difference: number
    interval: [number, number]
    z: number
    /** z: pooled two-proportion z-test; fisher: Fisher's exact test (too few failures expected for z). */
    test: 'z' | 'fisher'
    pValue: number
    confidence: number
    minEffect: number
    significant: boolean
    material: boolean
  }
  distribution?: {
    canary: {observations: number; p50: number | null; p95: number | null}
    stable: {observations: number; p50: number | null; p95: number | null}
    u: number
    z: number
    pValue: number
    confidence: number
    /** P(a canary request is slower than a stable one), ties half. */
    commonLanguage: number
    rankBiserial: number
    minEffect: number
    significant: boolean
    material: boolean
  }
}

/** How long an analysis must measure at the canary's weight for its minimum evidence, said before it starts. */
export interface EvidenceForecast {
  weight: number
  /** Requests per second of the whole service (Prometheus), undefined when unknown. */
  rps?: number
  canaryRps?: number
  stableRps?: number
  needed: number
  /** How long each side needs for `needed` requests; undefined: unknown or never (no traffic). */
  canaryMs?: number
  stableMs?: number
  /** Each measurement's window. */
  windowMs: number
  enough: boolean
  message: string
}

/** One evaluation of one metric: what was asked, what came back, and why it counts as it does. */
export interface Measurement {
  at: string
  phase: MeasurementPhase
  canary?: number | null
  stable?: number | null
  /** A sentence with the measured values: "error-rate 0.412 > 0.05 (failureCondition result > 0.05)". */
  reason: string
  queries?: {canary: string; stable?: string}
  /** The counts and the test behind the verdict (metrics with a samples query). */
  evidence?: Evidence
}

export interface MetricResult {
  name: string
  phase: AnalysisPhase
  successful: number
  failed: number
  inconclusive: number
  errors: number
  consecutiveErrors: number
  measurements: Measurement[]
}

export interface AnalysisRun {
  id: string
  /** Where it ran: "step 2", "pre-promotion", "post-promotion". */
  kind: string
  phase: AnalysisPhase
  startedAt: string
  finishedAt?: string
  /** The decision in one line, with the values that made it. */
  message?: string
  metrics: MetricResult[]
  spec: AnalysisSpec
  /** Said before the first measurement: whether the weight and traffic can give the minimum evidence. */
  forecast?: EvidenceForecast
}

export interface Revision {
  /** The value of the `version` label on metrics, from app.kubernetes.io/version or the image tag. */
  version: string
  images: string[]
  /** Image digests where the image references carry one. */
  digests: string[]
  /** pod-template-hash of the ReplicaSet that runs it. */
  podTemplateHash?: string
  /** metadata.generation / deployment.kubernetes.io/revision of the Deployment when recorded. */
  deploymentRevision?: string
}

export interface Lease {
  /** "host/pid/run-id prefix", for people. */
  holder: string
  /** The run's random UUID: the identity (host and pid repeat across CI containers). */
  id?: string
  host: string
  pid: number
  /** Host name, boot id and pid namespace: where `pid` can be checked for liveness. */
  processSpace?: string
  /** The CI job, from the CI's variables (GitHub run/job, GitLab job, …). */
  ci?: string
  /**
   * A detached rollout: the Job in the cluster this lease was handed to (`deploy --detach`). While
   * `pending`, the Job has not taken it yet (its pod is starting) and the lease lasts the start grace.
   */
  job?: {namespace: string; name: string; uid?: string; pending?: boolean; handedOverAt: string; by?: string}
  /** Set when this lease was taken from a live holder with `rollout resume --take-over --reason`. */
  takenOver?: {from: Lease; reason: string; at: string}
  acquiredAt: string
  renewedAt: string
  ttlSeconds: number
}

/** A request written by another CLI (promote, abort) for the driver to pick up. */
export interface RolloutRequest {
  action: 'promote' | 'promote-full' | 'abort'
  /** The rollout it is for: a request left over from an earlier rollout is ignored. */
  rolloutId?: string
  /** The gate override that goes with the request (promote --full --force-release, an abort while a gate is closed). */
  forced?: ForcedRelease
  by: string
  at: string
  reason?: string
}

export interface RolloutEvent {
  at: string
  phase: Phase
  step?: number
  message: string
}

export interface ForcedRelease {
  reason: string
  by: string
  at: string
  /** What the gates said when they were overridden. */
  overridden: string[]
}

export interface RolloutSpec {
  strategy: Strategy
  router: RouterKind
  steps: Step[]
  analysis: AnalysisSpec
  progressDeadlineMs: number
  deadlineMs?: number
  scaleDownDelayMs: number
  autoPromotion: boolean
  previewReplicas?: number
  routeName: string
  /** Replicas the service runs at 100 % (the stable Deployment's replicas when the rollout began). */
  replicas: number
  maxReplicas: number
  rpsPerPod?: number
  targetUtilization: number
  /**
   * The autoscaler the release's deploy rendered for the service, as decided when the release began
   * (--scaling-provider, scaling.provider, or `auto` answered by the cluster then); null: none.
   * Whoever drives the rollout later (a detached Job, `rollout resume` elsewhere) acts on this one
   * and never decides again. Absent in states written before it was kept: found live, as then.
   */
  autoscaler?: StoredAutoscaler | null
}

export interface RolloutState {
  apiVersion: 'retailops/v1'
  id: string
  service: string
  namespace: string
  /** Services released together: promoted or aborted together (same releaseId). */
  group: string[]
  releaseId: string
  spec: RolloutSpec
  phase: Phase
  /** Index of the current step (== steps.length when every step is done). */
  step: number
  /** Sub-stage of setup, promotion or abort, recorded before it acts so a restart resumes there. */
  stage?: Stage
  /** When the current step started (for pauses and deadlines). */
  stepStartedAt: string
  message: string
  /** Abort reason, analysis verdict, or what the rollout waits for. */
  reason?: string
  stable: Revision
  canary: Revision
  /** Weight the router sends to the canary now, and the weight the current step asks for. */
  weight: number
  desiredWeight: number
  canaryReplicas: number
  /** Blue-green: which hash the active Service selects now ('stable' | 'preview'). */
  activeColour?: 'stable' | 'preview'
  promotedAt?: string
  /** The new Deployment, as deploy rendered it, applied when promoting (kept so any machine can finish). */
  desired: Record<string, unknown>
  /** The stable Deployment's pod template before the rollout: what `rollout undo` goes back to. */
  stableTemplate: Record<string, unknown>
  /**
   * Replica router: the autoscaler of the stable Deployment as it was before the rollout (null:
   * there is none), stored before its bounds are pinned to the counts the router sets, and put back
   * exactly when the rollout ends (promoted, aborted, or finished after a crash). A KEDA
   * ScaledObject has kind ScaledObject (its minReplicaCount and maxReplicaCount, either may be
   * absent); without kind it is a HorizontalPodAutoscaler.
   */
  hpaBackup?: {kind?: 'ScaledObject'; name: string; minReplicas?: number; maxReplicas?: number} | null
  /** The route or Ingress as it was before the rollout, restored at the end. */
  routeBackup?: Record<string, unknown>
  analysisRuns: AnalysisRun[]
  events: RolloutEvent[]
  /** Set while an abort could not return traffic to stable (why): the canary is kept and may still receive traffic. */
  trafficNotReturned?: string
  lease?: Lease
  request?: RolloutRequest
  forced?: ForcedRelease
  createdAt: string
  updatedAt: string
  finishedAt?: string
}

/** What `rollout history` lists: one line per finished rollout. */
export interface HistoryEntry {
  id: string
  /** rolling: a plain deploy, recorded when it overrode a release gate. */
  strategy: Strategy | 'undo' | 'rolling'
  phase: Phase
  startedAt: string
  finishedAt?: string
  stable: Revision
  canary: Revision
  reason?: string
  message: string
  forced?: ForcedRelease
  /** Pod templates of both revisions, so `rollout undo` can go back from any machine. */
  canaryTemplate?: Record<string, unknown>
  stableTemplate?: Record<string, unknown>
}

export function isTerminal(phase: Phase): boolean {
  return TERMINAL_PHASES.has(phase)
}
