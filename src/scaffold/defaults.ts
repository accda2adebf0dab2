import type {Tier} from '../config/schema.js'

export interface BundledService {
  name: string
  tier: Tier
  description: string
  rpsPerPod: number
  minReplicas: number
  maxReplicas: number
  dependsOn: string[]
  latencyMs: number
}

/** The bundled retail services and the production defaults a new project starts from. */
export const BUNDLED_SERVICES: BundledService[] = [
  {
    name: 'catalog',
    tier: 'operational',
    description: 'Product listing, detail and search.',
    rpsPerPod: 200,
    minReplicas: 2,
    maxReplicas: 20,
    dependsOn: [],
    latencyMs: 300,
  },
  {
    name: 'cart',
    tier: 'operational',
    description: 'Shopping carts.',
    rpsPerPod: 150,
    minReplicas: 2,
    maxReplicas: 20,
    dependsOn: ['catalog'],
    latencyMs: 300,
  },
  {
    name: 'inventory',
    tier: 'operational',
    description: 'Stock levels and idempotent reservations.',
    rpsPerPod: 150,
    minReplicas: 2,
    maxReplicas: 20,
    dependsOn: [],
    latencyMs: 250,
  },
  {
    name: 'payments',
    tier: 'revenue-critical',
    description: 'Idempotent payment authorisations.',
    rpsPerPod: 60,
    minReplicas: 3,
    maxReplicas: 30,
    dependsOn: [],
    latencyMs: 500,
  },
  {
    name: 'orders',
    tier: 'revenue-critical',
    description: 'Order capture.',
    rpsPerPod: 100,
    minReplicas: 3,
    maxReplicas: 30,
    dependsOn: [],
    latencyMs: 300,
  },
  {
    name: 'checkout',
    tier: 'revenue-critical',
    description: 'Checkout orchestration with timeouts and circuit breakers.',
    rpsPerPod: 50,
    minReplicas: 3,
    maxReplicas: 30,
    dependsOn: ['inventory', 'payments', 'orders'],
    latencyMs: 1000,
  },
]

export const BUNDLED_NAMES = BUNDLED_SERVICES.map((s) => s.name)

/** The bundled jobs: each is scaffolded by `init` when the services it reads are. */
export const BUNDLED_JOBS = [
  {
    name: 'reconcile',
    description:
      'Compares orders with inventory reservations and stock; reports every mismatch (exit 3), changes nothing.',
    dependsOn: ['orders', 'inventory'],
    schedule: '*/30 * * * *',
  },
] as const

/** YAML for one bundled job, indented under `jobs:`. */
export function jobYaml(j: (typeof BUNDLED_JOBS)[number]): string {
  return [
    `  ${j.name}:`,
    `    description: ${JSON.stringify(j.description)}`,
    `    build: {context: services, dockerfile: ${j.name}/Dockerfile}`,
    `    dependsOn: [${j.dependsOn.join(', ')}]`,
    `    schedule: "${j.schedule}"`,
    `    timeZone: Etc/UTC`,
    `    concurrencyPolicy: Forbid`,
    `    startingDeadlineSeconds: 300`,
    `    activeDeadlineSeconds: 600`,
    `    backoffLimit: 1`,
    `    failOnExitCodes: [3]`,
    `    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 500m, memory: 256Mi}}`,
    '',
  ].join('\n')
}

/** The port the bundled services listen on, and a new service's unless `service add --port` says otherwise. */
export const DEFAULT_SERVICE_PORT = 8080

/** YAML for one service entry, indented under `services:`. */
export function serviceYaml(
  s: Pick<BundledService, 'name' | 'tier' | 'rpsPerPod' | 'minReplicas' | 'maxReplicas' | 'dependsOn' | 'latencyMs'> & {
    description?: string
    synthetic?: boolean
  },
  port = DEFAULT_SERVICE_PORT,
): string {
  const objective = s.tier === 'revenue-critical' ? 99.9 : s.tier === 'operational' ? 99.5 : 99
  const lines = [
    `  ${s.name}:`,
    `    tier: ${s.tier}`,
    ...(s.description ? [`    description: ${JSON.stringify(s.description)}`] : []),
    `    build: {context: services, dockerfile: ${s.name}/Dockerfile}`,
    `    port: ${port}`,
    `    scaling: {minReplicas: ${s.minReplicas}, maxReplicas: ${s.maxReplicas}, rpsPerPod: ${s.rpsPerPod}, targetUtilization: 0.7}`,
    ...(s.dependsOn.length > 0 ? [`    dependsOn: [${s.dependsOn.join(', ')}]`] : []),
    // The bundled services honour X-Synthetic, so warm-ups may send them carts and checkouts.
    ...(s.synthetic ? ['    synthetic: true'] : []),
    `    slos:`,
    `      - {name: availability, objective: ${objective}, window: 28d, sli: {type: availability}}`,
    `      - {name: latency, objective: 99, window: 28d, sli: {type: latency, thresholdMs: ${s.latencyMs}}}`,
  ]
  if (s.name === 'checkout') {
    lines.push(
      '      - {name: checkout-success, objective: 99.5, window: 28d, sli: {type: ratio, good: \'sum(rate(checkout_success_total{service="checkout"}[{{window}}]))\', total: \'sum(rate(checkout_attempts_total{service="checkout"}[{{window}}]))\'}}',
    )
  }
  if (s.tier === 'revenue-critical') {
    lines.push(
      `    rollout:`,
      `      strategy: canary`,
      `      steps: [{setWeight: 10}, {analysis: {}}, {setWeight: 50}, {analysis: {}}]`,
    )
  }
  return `${lines.join('\n')}\n`
}
