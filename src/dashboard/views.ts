/**
 * What the dashboard reads, as shapes of its own: the command hands it providers that return the
 * engines' own results (rollout, slo, cost, capacity, dr), which fit these shapes as they are. The
 * dashboard keeps no data: every page asks the providers again (through a short cache).
 */

export interface RolloutStepView {
  index: number
  label: string
  weight: number
  state: 'done' | 'current' | 'pending'
}

export interface MeasurementView {
  at: string
  phase: string
  canary?: number | null
  stable?: number | null
  reason: string
}

export interface AnalysisRunView {
  id: string
  kind: string
  phase: string
  startedAt: string
  finishedAt?: string
  message?: string
  metrics: {
    name: string
    phase: string
    successful: number
    failed: number
    inconclusive: number
    errors: number
    measurements: MeasurementView[]
  }[]
}

export interface RolloutHistoryView {
  number: number
  id: string
  strategy: string
  phase: string
  startedAt: string
  finishedAt?: string
  stable: {version: string}
  canary: {version: string}
  reason?: string
  message: string
  forced?: {reason: string; by: string}
}

export interface RolloutView {
  service: string
  namespace: string
  id: string
  strategy: string
  router: string
  phase: string
  exit: string
  waiting: boolean
  orphaned: boolean
  step: number
  steps: string
  weight: number
  actualWeight?: number
  stable: {version: string}
  canary: {version: string}
  message: string
  reason?: string
  analysis?: {kind: string; phase: string; message?: string}
  analysisSpec: string
  forced?: {reason: string; by: string}
  updatedAt: string
  createdAt: string
  finishedAt?: string
  stepList: RolloutStepView[]
  metrics: {
    name: string
    query: string
    successCondition?: string
    failureCondition?: string
    compareWithStable: boolean
  }[]
  analysisRuns: AnalysisRunView[]
  events: {at: string; phase: string; step?: number; message: string}[]
  history: RolloutHistoryView[]
}

export interface SloView {
  prometheus: string
  at: string
  slos: {
    service: string
    tier: string
    slo: string
    id: string
    description?: string
    objective: number
    window: string
    sli: number | null
    errorBudget: number
    budgetRemaining: number | null
    burnRates: {window: string; burnRate: number | null; errorRatio: number | null}[]
    alerts: {severity: string; long: string; short: string; factor: number; active: boolean | null}[]
    status: string
    timeToExhaustion: string | null
    missing: string[]
    history?: [number, number | null][]
  }[]
  gate: {pass: boolean}
}

export interface CostRowView {
  name: string
  totalCost: number
  monthlyCost: number
  totalEfficiency: number | null
  pods: number
}

export interface CostView {
  window: {window: string; start: string; end: string}
  currency: string
  usage: {source: string; detail: string}
  totals: {cost: number; idle: number; monthly: number; efficiency: {total: number | null}}
  breakdowns: {service: CostRowView[]; tenant: CostRowView[]; pool: CostRowView[]}
  findings: {
    kind: string
    title: string
    namespace?: string
    service?: string
    pool?: string
    detail: string
    action: string
    command?: string
    monthlySaving: number
  }[]
  potentialMonthlySaving: number
}

export interface CampaignView {
  campaign: string
  start: string
  end: string
  window: string
  applied: boolean
  savedAt?: string
  stateConfigMap: string
  headroomDeployments: string[]
  schedule: {
    prewarm?: {name: string; schedule: string; lastScheduleTime?: string}
    restore?: {name: string; schedule: string; lastScheduleTime?: string}
  }
  services: {
    service: string
    peak: string
    target?: {kind: string; name: string}
    floor?: number
    savedFloor?: number
    maxReplicas?: number
    readyReplicas?: number
    replicas?: number
  }[]
  next: string
}

export interface DrillView {
  id: string
  startedAt: string
  status: string
  environment: string
  datastores: string[]
  services: string[]
  rtoMs?: number
  rpoMs?: number
  rtoTargetMs?: number
  rpoTargetMs?: number
  targetsMissed: number
  validationsFailed: number
  report: string
  where: string
}

export interface DrillsView {
  drills: DrillView[]
  /** RTO and RPO targets per service, from retailops.yaml (what the drills measure against). */
  targets: {service: string; rto: string; rpo: string; rtoMs: number; rpoMs: number}[]
  scheduled: {name: string; schedule: string; nextRun?: string}[]
}

/** The data the dashboard shows, each read when asked. */
export interface DashboardProviders {
  project: string
  environment: string
  namespace: string
  /** The services of retailops.yaml (a service page exists for each). */
  services: string[]
  rollouts(signal?: AbortSignal): Promise<RolloutView[]>
  slo(signal?: AbortSignal): Promise<SloView>
  cost(signal?: AbortSignal): Promise<CostView>
  prewarm(signal?: AbortSignal): Promise<CampaignView[]>
  drills(signal?: AbortSignal): Promise<DrillsView>
  /** Releases the clients (keep-alive connections) once the server has stopped. */
  close?(): void | Promise<void>
}
