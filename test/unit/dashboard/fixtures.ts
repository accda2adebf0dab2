// Data in the shapes the engines return (rollout overview, slo, cost, capacity, dr history), for the
// dashboard's routes and pages: what the command's providers hand over, written out.
import type {
  CampaignView,
  CostView,
  DashboardProviders,
  DrillsView,
  RolloutView,
  SloView,
} from '../../../src/dashboard/views.js'

export function rollout(overrides: Partial<RolloutView> = {}): RolloutView {
  return {
    service: 'checkout',
    namespace: 'shop-prod',
    id: 'r-1',
    strategy: 'canary',
    router: 'gateway',
    phase: 'Progressing',
    exit: 'OK',
    waiting: false,
    orphaned: false,
    step: 1,
    steps: '20%,analysis,50%,pause',
    weight: 20,
    actualWeight: 20,
    stable: {version: 'v1'},
    canary: {version: 'v2'},
    message: 'step 2/4: analysis',
    analysisSpec: 'error-rate every 30s × 5',
    updatedAt: '2026-12-07T10:00:05Z',
    createdAt: '2026-12-07T10:00:00Z',
    stepList: [
      {index: 0, label: '20%', weight: 20, state: 'done'},
      {index: 1, label: 'analysis', weight: 20, state: 'current'},
      {index: 2, label: '50%', weight: 50, state: 'pending'},
      {index: 3, label: 'pause', weight: 50, state: 'pending'},
    ],
    metrics: [
      {name: 'error-rate', query: 'sum(rate(x[1m]))', failureCondition: 'result > 0.05', compareWithStable: true},
    ],
    analysisRuns: [
      {
        id: 'step-2-abc',
        kind: 'step 2',
        phase: 'Failed',
        startedAt: '2026-12-07T10:00:01Z',
        message: 'Failed: error-rate: canary 0.412, stable 0; failureCondition "result > 0.05" is true',
        metrics: [
          {
            name: 'error-rate',
            phase: 'Failed',
            successful: 0,
            failed: 1,
            inconclusive: 0,
            errors: 0,
            measurements: [
              {
                at: '2026-12-07T10:00:02Z',
                phase: 'Failed',
                canary: 0.412,
                stable: 0,
                reason: 'error-rate 0.412 > 0.05 (failureCondition result > 0.05)',
              },
            ],
          },
        ],
      },
    ],
    events: [{at: '2026-12-07T10:00:00Z', phase: 'Progressing', step: 0, message: 'canary of v2 over v1'}],
    history: [
      {
        number: 1,
        id: 'r-0',
        strategy: 'canary',
        phase: 'Healthy',
        startedAt: '2026-12-01T10:00:00Z',
        finishedAt: '2026-12-01T10:10:00Z',
        stable: {version: 'v0'},
        canary: {version: 'v1'},
        message: 'promoted',
      },
    ],
    ...overrides,
  }
}

export const SLO: SloView = {
  prometheus: 'http://127.0.0.1:9090',
  at: '2026-12-07T10:00:00Z',
  gate: {pass: true},
  slos: [
    {
      service: 'checkout',
      tier: 'revenue-critical',
      slo: 'availability',
      id: 'checkout-availability',
      objective: 99.9,
      window: '28d',
      sli: 99.95,
      errorBudget: 0.001,
      budgetRemaining: 0.4321,
      burnRates: [
        {window: '5m', burnRate: 0.5, errorRatio: 0.0005},
        {window: '1h', burnRate: null, errorRatio: null},
      ],
      alerts: [
        {severity: 'page', long: '1h', short: '5m', factor: 14.4, active: false},
        {severity: 'page', long: '6h', short: '30m', factor: 6, active: false},
        {severity: 'ticket', long: '3d', short: '6h', factor: 1, active: null},
        {severity: 'ticket', long: '1d', short: '2h', factor: 1, active: null},
      ],
      status: 'ok',
      timeToExhaustion: null,
      missing: [],
      history: [
        [1_765_000_000_000, 0.4],
        [1_765_000_300_000, Number.POSITIVE_INFINITY],
        [1_765_000_600_000, null],
      ],
    },
    {
      service: 'catalog',
      tier: 'operational',
      slo: 'latency',
      id: 'catalog-latency',
      objective: 99,
      window: '7d',
      sli: null,
      errorBudget: 0.01,
      budgetRemaining: null,
      burnRates: [],
      alerts: [],
      status: 'no-data',
      timeToExhaustion: null,
      missing: ['no series'],
    },
  ],
}

const row = (name: string, totalCost: number) => ({
  name,
  totalCost,
  monthlyCost: totalCost * 30,
  totalEfficiency: 0.5,
  pods: 2,
})

export const COST: CostView = {
  window: {window: '24h', start: '2026-12-06T10:00:00Z', end: '2026-12-07T10:00:00Z'},
  currency: 'USD',
  usage: {source: 'prometheus', detail: 'usage from Prometheus'},
  totals: {cost: 30, idle: 10, monthly: 900, efficiency: {total: 0.5}},
  breakdowns: {
    service: [row('checkout', 12), row('catalog', 8), row('__idle__', 10)],
    tenant: [row('acme', 20)],
    pool: [row('general', 20)],
  },
  findings: [
    {
      kind: 'excess-replicas',
      title: 'checkout runs 6 replicas for 40 rps',
      service: 'checkout',
      namespace: 'shop-prod',
      detail: 'observed peak 40 rps',
      action: 'Lower minReplicas to 3.',
      monthlySaving: 123.45,
    },
  ],
  potentialMonthlySaving: 123.45,
}

export const CAMPAIGNS: CampaignView[] = [
  {
    campaign: 'black-friday',
    start: '2026-11-27T00:00:00Z',
    end: '2026-11-28T00:00:00Z',
    window: 'ended',
    applied: true,
    savedAt: '2026-11-26T22:00:00Z',
    stateConfigMap: 'shop-prod/retailops-prewarm-black-friday',
    headroomDeployments: ['retailops-headroom-black-friday-general'],
    schedule: {restore: {name: 'retailops-restore-black-friday', schedule: '1 0 28 11 *'}},
    services: [
      {
        service: 'checkout',
        peak: '400 rps',
        target: {kind: 'HorizontalPodAutoscaler', name: 'checkout'},
        floor: 12,
        savedFloor: 3,
        maxReplicas: 20,
        readyReplicas: 12,
        replicas: 12,
      },
      {service: 'catalog', peak: '×3 observed'},
    ],
    next: 'retailops prewarm restore --campaign black-friday',
  },
]

export const DRILLS: DrillsView = {
  drills: [
    {
      id: '20261201-101500-0a1b',
      startedAt: '2026-12-01T10:15:00Z',
      status: 'target-missed',
      environment: 'prod',
      datastores: ['orders-db'],
      services: ['checkout'],
      rtoMs: 20 * 60_000,
      rpoMs: 60_000,
      rtoTargetMs: 15 * 60_000,
      rpoTargetMs: 5 * 60_000,
      targetsMissed: 1,
      validationsFailed: 0,
      report: '.retailops/drills/20261201-101500-0a1b/report.html',
      where: 'files',
    },
  ],
  targets: [{service: 'checkout', rto: '15m', rpo: '5m', rtoMs: 900_000, rpoMs: 300_000}],
  scheduled: [{name: 'weekly', schedule: '0 3 * * 1', nextRun: '2026-12-14T03:00:00Z'}],
}

/** Providers answering from the data above; `fail` makes one of them throw as an unreachable system would. */
export function providers(
  options: {rollouts?: () => RolloutView[]; fail?: keyof DashboardProviders} = {},
): DashboardProviders & {calls: Record<string, number>} {
  const calls: Record<string, number> = {}
  const answer =
    <T>(name: keyof DashboardProviders, value: () => T) =>
    async () => {
      calls[name] = (calls[name] ?? 0) + 1
      if (options.fail === name)
        throw new Error(`${name} is unreachable: connect ECONNREFUSED 127.0.0.1:9090\nsecond line`)
      return value()
    }
  return {
    calls,
    project: 'shop',
    environment: 'production',
    namespace: 'shop-prod',
    services: ['catalog', 'checkout'],
    rollouts: answer('rollouts', options.rollouts ?? (() => [rollout()])),
    slo: answer('slo', () => SLO),
    cost: answer('cost', () => COST),
    prewarm: answer('prewarm', () => CAMPAIGNS),
    drills: answer('drills', () => DRILLS),
  }
}
