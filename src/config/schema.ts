import {z} from 'zod'

import {nodePoolsSchema, placementSchema} from './placement-schema.js'
import {RELEASE_EVENT_NAMES} from '../ui/events.js'
import {
  configProblems,
  cronProblem,
  datastoreProviderSection,
  eachOnce,
  endsAfterStart,
  hasEntries,
  isCronSchedule,
  isDuration,
  isNonBlank,
  isPositiveDuration,
  isReleaseEventPattern,
  isTimeZone,
  maxReplicasAtLeastMin,
  namesEgressDestination,
  roomToScaleOnMetrics,
  timeZoneProblem,
  uniqueMetricNames,
  type IssueSink,
} from './schema-checks.js'
import {MAX_NAMESPACE, NAMESPACE, SCALING_PROVIDERS, SERVICE_NAME, SEVERITY_THRESHOLDS, TIERS} from './vocabulary.js'

/**
 * The named function behind each superRefine check: zod keeps only a wrapper of it, and the
 * validator compiled from this schema (scripts/gen-config-validator.ts) must call the function itself.
 */
export const superRefinements = new WeakMap<object, (value: never, ctx: IssueSink) => void>()

/** schema.superRefine(check), with check remembered for the compiled validator. */
function superRefined<S extends z.ZodType>(schema: S, check: (value: z.output<S>, ctx: IssueSink) => void) {
  const refined = schema.superRefine(check)
  superRefinements.set(refined._zod.def.checks!.at(-1)!, check)
  return refined
}

// Re-exported for the modules that also need the schema; the others import ./vocabulary.js.
export {
  EPHEMERAL_STORAGE_DEFAULTS,
  eventPatternMatches,
  MAX_NAMESPACE,
  NAMESPACE,
  ROLLOUT_SUFFIXES,
  SCALING_PROVIDERS,
  type ScalingProvider,
  SERVICE_NAME,
  SEVERITY_THRESHOLDS,
  tenantNamespace,
  TIERS,
  type VulnerabilitySeverity,
} from './vocabulary.js'

/**
 * retailops.yaml. This schema is the contract for every command and is exported as JSON Schema
 * (`retailops config schema`, schema/retailops.schema.json) so editors complete and check it.
 */

const name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a lowercase DNS label: letters, digits and dashes, e.g. "checkout"')
  .max(50, 'at most 50 characters (it becomes part of Kubernetes names)')

const serviceName = z
  .string()
  .regex(SERVICE_NAME, 'a DNS-1035 label: a lowercase letter first, then letters, digits and dashes, e.g. "checkout"')
  .max(50, 'at most 50 characters (rollouts add -canary, -stable and -preview to it)')

const namespace = z
  .string()
  .regex(
    NAMESPACE,
    'a Kubernetes namespace: lowercase letters, digits and dashes, starting and ending with a letter or digit',
  )
  .max(MAX_NAMESPACE, `at most ${MAX_NAMESPACE} characters (a Kubernetes namespace is a DNS-1123 label)`)

export const duration = z
  .string()
  .refine(isDuration, 'a duration such as 30s, 15m, 2h or 28d')
  .describe('A duration: 500ms, 30s, 15m, 2h, 28d.')

/** A duration that must be longer than zero: an interval, a window, a deadline, a timeout. */
export const positiveDuration = z
  .string()
  .refine(isDuration, 'a duration such as 30s, 15m, 2h or 28d')
  .refine(isPositiveDuration, 'must be longer than 0 (e.g. 30s)')
  .describe('A duration longer than zero: 500ms, 30s, 15m, 2h, 28d.')

const quantity = z
  .union([
    z.string().regex(/^\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/, 'a Kubernetes quantity such as 250m, 512Mi or 2'),
    z.number(),
  ])
  .describe('A Kubernetes resource quantity: 250m, 1, 512Mi, 2Gi.')

const dateTime = z.iso.datetime({offset: true, message: 'an ISO 8601 timestamp such as 2026-11-27T00:00:00Z'})

export const tier = z
  .enum(TIERS)
  .describe('Service class: drives replicas, PDBs, gates, DR targets and release scrutiny.')

const ephemeralStorage = quantity
  .optional()
  .describe(
    'Local disk (logs, the /tmp emptyDir); default from tiers.<tier>.ephemeralStorage, else the built-in per-tier default.',
  )

const resources = z
  .object({
    requests: z
      .object({cpu: quantity.default('100m'), memory: quantity.default('128Mi'), ephemeralStorage})
      .strict()
      .default({cpu: '100m', memory: '128Mi'}),
    limits: z
      .object({cpu: quantity.default('500m'), memory: quantity.default('256Mi'), ephemeralStorage})
      .strict()
      .default({cpu: '500m', memory: '256Mi'}),
  })
  .strict()

const probes = z
  .object({
    readiness: z.string().startsWith('/').default('/readyz'),
    liveness: z.string().startsWith('/').default('/healthz'),
    initialDelaySeconds: z.number().int().min(0).default(0),
    periodSeconds: z.number().int().min(1).default(5),
  })
  .strict()

export const SCALING_METRIC_TYPES = ['AverageValue', 'Value'] as const

/** A business signal the autoscaler follows: one PromQL query and the value per pod (or in all) it aims at. */
const scalingMetric = z
  .object({
    name: z
      .string()
      .regex(
        /^[a-z]([a-z0-9_]*[a-z0-9])?$/,
        'lowercase letters, digits and underscores, starting with a letter (e.g. queue_depth): it names the KEDA trigger and the External metric',
      )
      .max(50)
      .describe('Names the signal: the KEDA trigger, and the External metric <service>_<name> of the HPA fallback.'),
    query: z
      .string()
      .refine(isNonBlank, 'an empty query: give the PromQL whose value the autoscaler follows')
      .describe('PromQL returning one value, e.g. sum(rabbitmq_queue_messages_ready{queue="orders"}).'),
    target: z
      .number()
      .positive()
      .describe('The value the query should stay at: per pod for AverageValue, for the whole Deployment for Value.'),
    type: z
      .enum(SCALING_METRIC_TYPES)
      .default('AverageValue')
      .describe(
        'AverageValue: replicas = ceil(value / target) (queue depth, carts per second); Value: scale by value / target (p95 latency).',
      ),
    activationTarget: z
      .number()
      .min(0)
      .optional()
      .describe(
        "KEDA's activationThreshold: below it this signal does not wake the Deployment (it still counts once active).",
      ),
  })
  .strict()

const scaling = superRefined(
  z
    .object({
      minReplicas: z.number().int().min(1).default(2),
      maxReplicas: z.number().int().min(1).default(10),
      /** Requests per second one pod serves while meeting its latency SLO. */
      rpsPerPod: z
        .number()
        .positive()
        .optional()
        .describe('Requests per second one pod carries at the latency SLO (needed by prewarm and canary scaling).'),
      targetUtilization: z.number().gt(0).max(1).default(0.7).describe('Share of rpsPerPod to plan for (headroom).'),
      targetCPUUtilization: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(70)
        .describe('HPA CPU target, percent of requests.'),
      metrics: z
        .array(scalingMetric)
        .default([])
        .describe(
          'Business signals to scale on (queue depth, p95 latency, cart creations per second, payment backlog), each a Prometheus query with a target; CPU stays a floor signal at targetCPUUtilization. Rendered as a KEDA ScaledObject, or an autoscaling/v2 HPA with External metrics: docs/scaling.md.',
        ),
      provider: z
        .enum(SCALING_PROVIDERS)
        .default('auto')
        .describe(
          "What renders the autoscaler of a service with metrics: keda (ScaledObject), hpa (HPA with External metrics, for prometheus-adapter) or auto (keda when the cluster serves scaledobjects.keda.sh at deploy time). deploy's --scaling-provider overrides it.",
        ),
    })
    .strict()
    .refine(maxReplicasAtLeastMin, {
      message: 'maxReplicas must be at least minReplicas',
      path: ['maxReplicas'],
    })
    .refine(roomToScaleOnMetrics, {
      message: 'scaling on metrics needs room to scale: maxReplicas must be above minReplicas',
      path: ['maxReplicas'],
    }),
  uniqueMetricNames,
)

const cidr = z
  .string()
  .regex(
    /^(\d{1,3}(\.\d{1,3}){3}\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/,
    'a CIDR block such as 10.20.0.0/16 or 203.0.113.7/32',
  )
const port = z.number().int().min(1).max(65_535)

/** A destination outside the namespace's services that NetworkPolicy egress allows (everything else is denied). */
const egressPeer = z
  .object({
    cidrs: z.array(cidr).min(1).optional().describe("IP ranges, e.g. a managed database's subnet."),
    namespace: z.string().optional().describe('A namespace in the cluster (its pods, or those matching podLabels).'),
    podLabels: z
      .record(z.string(), z.string())
      .optional()
      .describe('Labels of the pods reached (with namespace: in that namespace; alone: in the same namespace).'),
    ports: z.array(port).min(1).describe('TCP ports.'),
  })
  .strict()
  .refine(namesEgressDestination, {
    message: 'name where the traffic goes: cidrs, namespace or podLabels',
  })

const sliLabels = z
  .record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a Prometheus label name'), z.string())
  .optional()
  .describe(
    "Extra label matchers on the SLI's series, e.g. {namespace: shop} when one Prometheus scrapes several environments.",
  )

const sli = z.discriminatedUnion('type', [
  z
    .object({type: z.literal('availability'), route: z.string().optional(), labels: sliLabels})
    .strict()
    .describe('Share of requests that did not answer 5xx.'),
  z
    .object({
      type: z.literal('latency'),
      thresholdMs: z.number().positive(),
      route: z.string().optional(),
      labels: sliLabels,
    })
    .strict()
    .describe('Share of requests faster than thresholdMs (must be a histogram bucket bound).'),
  z
    .object({type: z.literal('ratio'), good: z.string().min(1), total: z.string().min(1)})
    .strict()
    .describe('A business SLI from two PromQL counters, e.g. successful checkouts over attempted ones.'),
])

const slo = z
  .object({
    name,
    objective: z.number().gt(0).lt(100).describe('Target in percent, e.g. 99.9.'),
    window: positiveDuration.default('28d'),
    sli,
    description: z.string().optional(),
  })
  .strict()

// An RPO of 0 is a real target (synchronous replication); an RTO of 0 is not.
const drTargets = z.object({rto: positiveDuration, rpo: duration}).strict()

const analysisMetric = z
  .object({
    name,
    query: z
      .string()
      .min(1)
      .describe('PromQL; {{service}}, {{namespace}}, {{version}} and {{window}} are substituted.'),
    successCondition: z.string().optional().describe('e.g. "result < 0.01"'),
    failureCondition: z.string().optional(),
    compareWithStable: z
      .boolean()
      .default(false)
      .describe('Also fail when the canary is worse than stable by more than tolerance.'),
    tolerance: z
      .number()
      .min(0)
      .default(0.2)
      .describe('Allowed relative regression against stable (0.2 = 20 % worse).'),
    minDifference: z
      .number()
      .min(0)
      .default(0)
      .describe(
        'Absolute difference from stable that never counts as a regression (e.g. 0.01 error rate, 0.05 s latency).',
      ),
    method: z
      .enum(['tolerance', 'statistical'])
      .optional()
      .describe(
        'How this metric is compared with stable; default analysis.method (statistical needs errors or buckets).',
      ),
    samples: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PromQL: the observations behind the value in {{window}} (e.g. sum(increase(…_total{…}[{{window}}]))); below minSamples a measurement is inconclusive.',
      ),
    errors: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PromQL: failed requests in {{window}}, of `samples`: the statistical method compares the two proportions.',
      ),
    buckets: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PromQL: sum by (le) (increase(…_bucket{…}[{{window}}])): the statistical method compares the distributions (Mann-Whitney U).',
      ),
    minSamples: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Observations each side needs per measurement; default analysis.minRequests (minObservations for buckets).',
      ),
    confidence: z.number().gt(0.5).lt(1).optional().describe('Default analysis.confidence.'),
    minEffect: z
      .number()
      .min(0)
      .optional()
      .describe('Default analysis.minEffect.errorRate (errors) or .latency (buckets).'),
  })
  .strict()

const analysis = z
  .object({
    interval: positiveDuration.default('30s'),
    count: z.number().int().min(1).default(5),
    failureLimit: z.number().int().min(0).default(1),
    inconclusiveLimit: z.number().int().min(0).default(1),
    missingData: z
      .enum(['fail', 'inconclusive', 'pass'])
      .default('inconclusive')
      .describe('What a measurement without data counts as: never a silent pass unless chosen here.'),
    metrics: z.array(analysisMetric).optional().describe('Defaults: error rate, p95 and p99 latency against stable.'),
    window: positiveDuration
      .optional()
      .describe('Range of rate() and histogram queries ({{window}}); default the interval, at least 30s.'),
    consecutiveErrorLimit: z
      .number()
      .int()
      .min(0)
      .default(4)
      .describe('Failed queries (Prometheus unreachable, bad PromQL) in a row before the analysis errors.'),
    method: z
      .enum(['tolerance', 'statistical'])
      .default('statistical')
      .describe(
        'statistical: a one-sided test at `confidence` plus an effect size (two proportions for errors, Mann-Whitney U over histogram buckets for latency); tolerance: the tolerance/minDifference rule.',
      ),
    minRequests: z
      .number()
      .int()
      .min(1)
      .default(50)
      .describe('Requests the canary and stable each need in a measurement window; fewer: inconclusive.'),
    minObservations: z
      .number()
      .int()
      .min(1)
      .default(50)
      .describe('Latency observations (histogram count) each side needs in a measurement window; fewer: inconclusive.'),
    confidence: z
      .number()
      .gt(0.5)
      .lt(1)
      .default(0.95)
      .describe('Statistical: confidence level of the one-sided tests (0.95: p-value below 0.05).'),
    minEffect: z
      .object({
        errorRate: z
          .number()
          .min(0)
          .max(1)
          .default(0.01)
          .describe('Error-rate difference (canary − stable) that fails a canary: 0.01 = one percentage point.'),
        latency: z
          .number()
          .min(0)
          .max(1)
          .default(0.2)
          .describe(
            'Rank-biserial correlation that fails a canary: 0.2 = slower than stable in 60 % of request pairs.',
          ),
      })
      .strict()
      .default({errorRate: 0.01, latency: 0.2})
      .describe(
        'Statistical: the smallest difference that matters, so a significant but negligible one does not abort.',
      ),
  })
  .strict()

export const rolloutStep = z.union([
  z.object({setWeight: z.number().int().min(0).max(100)}).strict(),
  z.object({pause: z.object({duration: duration.optional()}).strict()}).strict(),
  z
    .object({
      analysis: z
        .object({count: z.number().int().min(1).optional()})
        .strict()
        .default({}),
    })
    .strict(),
  z
    .object({
      setCanaryScale: z
        .object({
          replicas: z.number().int().min(0).optional(),
          weight: z.number().int().min(0).max(100).optional(),
          matchTrafficWeight: z.boolean().optional(),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      setHeaderRoute: z
        .union([
          z.object({header: z.string(), value: z.string()}).strict(),
          z.object({cookie: z.string(), value: z.string()}).strict(),
        ])
        .describe(
          'Requests carrying this header (exact value) or cookie go to the canary from this step until promotion or abort.',
        ),
    })
    .strict(),
  z
    .object({
      setMirrorRoute: z
        .object({percent: z.number().int().min(0).max(100)})
        .strict()
        .describe(
          'Copies this share of live requests to the canary (responses discarded); 0 stops mirroring. Needs rollout.mirrorSafe.',
        ),
    })
    .strict(),
])

const rollout = z
  .object({
    strategy: z.enum(['rolling', 'canary', 'blue-green']).default('rolling'),
    router: z
      .enum(['gateway', 'nginx', 'replicas'])
      .optional()
      .describe('Traffic router; default from the environment.'),
    steps: z.array(rolloutStep).optional(),
    analysis: analysis.optional(),
    progressDeadline: positiveDuration.default('10m'),
    scaleDownDelay: duration.default('30s').describe('Blue-green: how long the old colour stays up after promotion.'),
    autoPromotion: z
      .boolean()
      .default(true)
      .describe(
        'Blue-green: switch the active Service after pre-promotion analysis without waiting for `rollout promote`.',
      ),
    previewReplicas: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Blue-green: replicas of the new colour before promotion; default the full count.'),
    routeName: z
      .string()
      .optional()
      .describe('HTTPRoute (gateway router) or Ingress (nginx router) carrying the service; default the service name.'),
    deadline: positiveDuration
      .optional()
      .describe('Whole-rollout deadline; past it the rollout returns traffic to stable and ends TimedOut.'),
    mirrorSafe: z
      .boolean()
      .optional()
      .describe(
        "The service's requests are safe to receive twice (read-only or idempotent, no side effects elsewhere): only then may canary steps mirror live traffic to it. Never assumed.",
      ),
  })
  .strict()

/** How an image is built: the same settings for a service and a job. */
function buildSettings(what: 'service' | 'job') {
  return z
    .object({
      context: z.string().default('services').describe('Build context, relative to retailops.yaml.'),
      dockerfile: z.string().optional().describe(`Relative to the context; default <${what}>/Dockerfile.`),
      args: z.record(z.string(), z.string()).default({}),
      target: z.string().optional(),
    })
    .strict()
    .default({context: 'services', args: {}})
}

const service = z
  .object({
    tier,
    description: z.string().optional(),
    build: buildSettings('service'),
    image: z.string().optional().describe('Repository name inside the registry; default <project>/<service>.'),
    port: z.number().int().min(1).max(65_535).default(8080),
    probes: probes.default({readiness: '/readyz', liveness: '/healthz', initialDelaySeconds: 0, periodSeconds: 5}),
    resources: resources.default({requests: {cpu: '100m', memory: '128Mi'}, limits: {cpu: '500m', memory: '256Mi'}}),
    scaling: scaling.default({
      minReplicas: 2,
      maxReplicas: 10,
      targetUtilization: 0.7,
      targetCPUUtilization: 70,
      metrics: [],
      provider: 'auto',
    }),
    env: z.record(z.string(), z.string()).default({}),
    secrets: z
      .array(z.string())
      .default([])
      .describe('Secrets the service mounts as environment; they must exist in the namespace.'),
    configMaps: z.array(z.string()).default([]),
    dependsOn: z.array(serviceName).default([]),
    needsServiceAccountToken: z.boolean().default(false),
    synthetic: z
      .boolean()
      .default(false)
      .describe(
        'The service honours X-Synthetic (changes nothing, labels its metrics synthetic="true", passes the header on): only then do warm-ups send it writing traffic (cart, checkout).',
      ),
    egress: z
      .array(egressPeer)
      .default([])
      .describe(
        "Destinations outside retailops' services this service calls (a payment provider, a shared database): egress is denied by default, except DNS and dependsOn.",
      ),
    route: z
      .object({
        pathPrefix: z
          .string()
          .startsWith('/')
          .optional()
          .describe('Path on the gateway; default /<service>, rewritten to / for the service.'),
        hostnames: z.array(z.string()).default([]),
      })
      .strict()
      .optional()
      .describe(
        "How the environment's gateway routes to the service (an HTTPRoute is rendered when the environment has a gateway).",
      ),
    slos: z.array(slo).default([]),
    dr: drTargets.optional().describe("Overrides the tier's RTO and RPO."),
    rollout: rollout.optional(),
    /** Share of the k6 warm-up mix that targets this service's routes. */
    traffic: z
      .record(z.string(), z.number().min(0))
      .optional()
      .describe('Route → weight for load generation, e.g. {"/products": 60}.'),
    topics: z.array(z.string()).default([]).describe('Message topics the service owns (DR recoverability).'),
    searchIndexes: z.array(z.string()).default([]).describe('Search indexes the service owns (DR recoverability).'),
    placement: placementSchema
      .optional()
      .describe(
        "Where the service's pods run: pools, spot policy and zone spread; each key overrides tiers.<tier>.placement (docs/placement.md).",
      ),
  })
  .strict()

/**
 * A batch workload: a CronJob (with a schedule) or a one-off Job (without one: deployed as a
 * suspended CronJob that only `retailops jobs run` starts). Its image is built, pushed, signed and
 * verified exactly like a service's, under the job's name in the artifacts lock.
 */
const job = z
  .object({
    tier: tier
      .default('tolerant')
      .describe(
        'Class of the job (default tolerant, the batch tier): ephemeral-storage defaults and, with placement, where it runs.',
      ),
    description: z.string().optional(),
    build: buildSettings('job'),
    image: z.string().optional().describe('Repository name inside the registry; default <project>/<job>.'),
    schedule: z
      .string()
      .refine(isCronSchedule, {
        error: (issue) => cronProblem(String(issue.input)) ?? 'a cron schedule',
      })
      .optional()
      .describe(
        'Cron schedule (five fields or @hourly/@daily/@weekly/@monthly/@yearly), e.g. "0 3 * * *". Without one the job is one-off: deployed suspended, started only by `retailops jobs run`.',
      ),
    timeZone: z
      .string()
      .refine(isTimeZone, {
        error: (issue) => timeZoneProblem(String(issue.input)) ?? 'an IANA time zone',
      })
      .optional()
      .describe(
        'IANA time zone of the schedule (CronJob.spec.timeZone), e.g. Europe/Berlin; default the cluster’s (UTC).',
      ),
    suspend: z.boolean().default(false).describe('Pause the schedule (jobs run still starts it).'),
    concurrencyPolicy: z
      .enum(['Forbid', 'Replace', 'Allow'])
      .default('Forbid')
      .describe('A run due while the last still runs: Forbid skips it, Replace stops the old one, Allow runs both.'),
    startingDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('A run missed by more than this (controller down, Forbid) is skipped instead of started late.'),
    activeDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .default(3600)
      .describe('A run still going (or still unscheduled) after this is stopped and fails with DeadlineExceeded.'),
    backoffLimit: z.number().int().min(0).default(2).describe('Retries of a failed pod before the run fails.'),
    failOnExitCodes: z
      .array(z.number().int().min(1).max(255))
      .max(255)
      .refine(eachOnce, 'each exit code once')
      .optional()
      .describe(
        "Exit codes that are the job's verdict, not a transient failure: the run fails at once, without the backoffLimit retries (rendered as the Job's podFailurePolicy FailJob rule). The bundled reconcile job's 3 (mismatches found) is one.",
      ),
    ttlSecondsAfterFinished: z
      .number()
      .int()
      .min(0)
      .default(86_400)
      .describe('How long a finished run (Job and pods) is kept for `jobs status` and logs before it is deleted.'),
    successfulJobsHistoryLimit: z.number().int().min(0).default(3),
    failedJobsHistoryLimit: z.number().int().min(0).default(3),
    command: z.array(z.string()).optional().describe("Overrides the image's entrypoint."),
    args: z.array(z.string()).optional().describe("Overrides the image's CMD."),
    resources: resources.default({requests: {cpu: '100m', memory: '128Mi'}, limits: {cpu: '500m', memory: '256Mi'}}),
    env: z.record(z.string(), z.string()).default({}),
    secrets: z
      .array(z.string())
      .default([])
      .describe('Secrets the job mounts as environment; they must exist in the namespace.'),
    configMaps: z.array(z.string()).default([]),
    dependsOn: z
      .array(serviceName)
      .default([])
      .describe(
        'Services the job calls: their URLs are set as <SERVICE>_URL and the network policies let it reach them.',
      ),
    egress: z
      .array(egressPeer)
      .default([])
      .describe(
        'Destinations outside retailops services the job calls (an ERP, a search cluster): egress is denied by default.',
      ),
    placement: placementSchema
      .optional()
      .describe(
        "Where the job's pods run: pools, spot policy and zone spread; each key overrides tiers.<tier>.placement (the tolerant tier allows spot by default; spot: required puts a batch job on the spot pool only). docs/placement.md.",
      ),
  })
  .strict()

const tenant = z
  .object({
    name,
    model: z
      .enum(['shared', 'isolated-database', 'dedicated-namespace', 'dedicated-cluster'])
      .describe(
        'shared: shared app and database; isolated-database: shared app, own database; dedicated-namespace; dedicated-cluster.',
      ),
    namespace: namespace
      .optional()
      .describe('dedicated-namespace: default <project>-<tenant> (at most 63 characters).'),
    cluster: z.string().optional().describe('dedicated-cluster: a key of clusters.'),
    database: z
      .object({
        url: z.string().optional(),
        urlEnv: z.string().optional(),
        name: z.string().optional(),
        egress: egressPeer
          .optional()
          .describe(
            "Where the database is on the network: the only database this tenant's pods may reach (egress is denied by default).",
          ),
      })
      .strict()
      .optional()
      .describe(
        "isolated-database: where this tenant's database is (urlEnv names a Secret key or variable, never the password itself).",
      ),
    quota: z
      .object({cpu: quantity.optional(), memory: quantity.optional(), pods: z.number().int().min(1).optional()})
      .strict()
      .optional(),
    services: z.array(serviceName).optional().describe('Services this tenant runs; default all.'),
  })
  .strict()

const peak = z.union([
  z.object({rps: z.number().positive()}).strict(),
  z.object({multiplier: z.number().positive()}).strict().describe('A multiple of observed traffic (Prometheus).'),
])

const campaign = z
  .object({
    name,
    start: dateTime,
    end: dateTime,
    peak: z.record(z.string(), peak).describe('Expected peak per service.'),
    buffer: z.number().min(0).max(5).default(0.3).describe('Extra capacity over the peak (0.3 = 30 %).'),
    freeze: z
      .object({start: dateTime, end: dateTime})
      .strict()
      .optional()
      .describe('No canaries of revenue-critical services inside it.'),
    prewarmLead: duration.default('2h').describe('How long before start --schedule runs the pre-warm.'),
    nodeHeadroom: z.boolean().default(true).describe('Add low-priority placeholder pods for the node shortfall.'),
    warmup: z
      .object({
        share: z.number().gt(0).max(1).default(0.5).describe('Share of the peak the warm-up ramps to.'),
        duration: positiveDuration.default('2m'),
        mix: z.record(z.string(), z.number().min(0)).default({browse: 60, search: 20, cart: 15, checkout: 5}),
        abort: z
          .object({
            errorRate: z
              .number()
              .gt(0)
              .max(1)
              .default(0.05)
              .describe(
                "Share of a service's warm-up requests failing (5xx, transport errors) that stops the warm-up.",
              ),
            p95Ms: z
              .number()
              .positive()
              .default(2000)
              .describe("p95 latency of a service's warm-up requests, in ms, that stops the warm-up."),
            after: duration
              .default('10s')
              .describe('How long the warm-up runs before these limits are judged (k6 delayAbortEval).'),
          })
          .strict()
          .default({errorRate: 0.05, p95Ms: 2000, after: '10s'})
          .describe(
            'Limits that stop the warm-up early (k6 abortOnFail): an environment degrading under the load is not pushed further.',
          ),
      })
      .strict()
      .default({
        share: 0.5,
        duration: '2m',
        mix: {browse: 60, search: 20, cart: 15, checkout: 5},
        abort: {errorRate: 0.05, p95Ms: 2000, after: '10s'},
      }),
  })
  .strict()
  .refine(endsAfterStart, {message: 'end must be after start', path: ['end']})

const validation = z
  .object({
    name,
    query: z.string().min(1),
    expect: z
      .object({
        min: z.number().optional(),
        max: z.number().optional(),
        equals: z.union([z.string(), z.number()]).optional(),
        matchesSource: z
          .boolean()
          .optional()
          .describe(
            'postgres: the restored result must equal the same query on the source, read in the snapshot pg_dump took.',
          ),
      })
      .strict()
      .optional(),
    /** The query returns the newest row's timestamp: the restored data's recovery point. */
    recoveryPoint: z.boolean().default(false),
  })
  .strict()

const datastore = superRefined(
  z
    .object({
      name,
      service: serviceName.optional(),
      tier: tier.optional().describe("Default: the owning service's tier."),
      provider: z.enum(['postgres', 'aws-backup', 'kubernetes']),
      postgres: z
        .object({
          urlEnv: z.string().default('DATABASE_URL').describe('Variable holding the source connection URL.'),
          url: z.string().optional(),
          database: z.string().optional(),
          backupFile: z.string().optional().describe('Use this pg_dump custom-format file instead of taking one.'),
          backup: z
            .object({
              source: z
                .enum(['pg-dump', 'pgbackrest', 'live'])
                .optional()
                .describe(
                  'dr drill: what is restored. pg-dump (default with a location): the newest pg_dump custom-format file in the location; pgbackrest: the newest backup of a pgBackRest repository (with archived WAL: point in time); live: a pg_dump of the source taken by the drill (the default without a location).',
                ),
              location: z
                .string()
                .optional()
                .describe(
                  'Where the backups are: s3://bucket/prefix (an S3-compatible store) or a directory (relative to retailops.yaml). For pgbackrest, the repository (repo1-path in it).',
                ),
              endpoint: z
                .url()
                .optional()
                .describe('S3 endpoint of an S3-compatible store; default RETAILOPS_S3_ENDPOINT, else AWS.'),
              region: z.string().optional().describe('S3 region; default AWS_REGION, else us-east-1.'),
              match: z
                .string()
                .default('*.dump')
                .describe('pg-dump: which objects are backups (a glob on the file name).'),
              stanza: z.string().optional().describe('pgbackrest: the stanza (default: the datastore name).'),
              targetTime: dateTime
                .optional()
                .describe('pgbackrest: recover to this point in time (--type=time); default: replay all archived WAL.'),
              osUser: z
                .string()
                .default('postgres')
                .describe(
                  'pgbackrest, when the drill runs as root: the operating-system user the scratch server runs as.',
                ),
              dbUser: z
                .string()
                .default('postgres')
                .describe('pgbackrest: the restored cluster role the validations connect as (over its own socket).'),
              verifyTls: z
                .boolean()
                .default(true)
                .describe("pgbackrest with an s3:// repository: verify the store's TLS certificate."),
              caFile: z
                .string()
                .min(1)
                .optional()
                .describe(
                  "pgbackrest with an s3:// repository: the CA certificate file (PEM) the store's TLS certificate is verified against (--repo1-storage-ca-file), relative to retailops.yaml; default: the system's CAs.",
                ),
            })
            .strict()
            .optional()
            .describe('dr drill: restore the backups you have, not a dump taken now.'),
          restoreUrlEnv: z
            .string()
            .optional()
            .describe(
              'Variable holding the URL of the server the scratch database is restored on (dr drill); default: the source server.',
            ),
        })
        .strict()
        .optional(),
      awsBackup: z
        .object({
          vaultName: z.string(),
          resourceArn: z.string().optional(),
          region: z.string().optional(),
          iamRoleArn: z.string(),
          restoreMetadata: z.record(z.string(), z.string()).default({}),
          timeout: positiveDuration.default('4h'),
        })
        .strict()
        .optional(),
      kubernetes: z
        .object({
          namespace: namespace.optional(),
          waitTimeout: positiveDuration
            .default('5m')
            .describe('dr drill: how long restored workloads may take to become available.'),
          backup: z
            .object({
              location: z
                .string()
                .min(1)
                .describe(
                  "Where the backups are: s3://bucket/prefix (the AWS SDK's credential chain; RETAILOPS_S3_ENDPOINT for an S3-compatible store) or a directory relative to retailops.yaml, holding Velero's layout (backups/<name>/velero-backup.json and <name>.tar.gz), as Velero and `retailops backup` write it.",
                ),
              name: z
                .string()
                .optional()
                .describe('Restore this backup; default the newest Completed one that includes the namespace.'),
            })
            .strict()
            .optional()
            .describe(
              'dr drill: restore the namespace from an existing backup instead of a snapshot of the live objects taken at drill time.',
            ),
        })
        .strict()
        .optional(),
      validation: z.array(validation).default([]),
    })
    .strict(),
  datastoreProviderSection,
)

const pricePair = z.object({cpuHour: z.number().min(0), memoryGiBHour: z.number().min(0)}).strict()

const prices = z
  .object({
    currency: z.string().default('USD'),
    default: pricePair
      .default({cpuHour: 0.031611, memoryGiBHour: 0.004237})
      .describe("OpenCost's default on-demand prices."),
    pools: z.record(z.string(), pricePair).default({}),
    instanceTypes: z.record(z.string(), pricePair).default({}),
    spotDiscount: z.number().min(0).max(1).default(0.7),
  })
  .strict()

const cluster = z
  .object({
    context: z.string().optional().describe('kube context; default the current context.'),
    kubeconfig: z
      .string()
      .optional()
      .describe(
        'kubeconfig file relative to retailops.yaml, or env://NAME for a variable holding its contents; default KUBECONFIG (a path or the contents) or ~/.kube/config.',
      ),
  })
  .strict()

const environment = z
  .object({
    cluster: z.string(),
    namespace: namespace.default('retail'),
    router: z.enum(['gateway', 'nginx', 'replicas']).default('gateway'),
    gateway: z
      .object({
        name: z.string(),
        namespace: namespace.optional().describe("Where the Gateway runs; default the environment's namespace."),
        podLabels: z
          .record(z.string(), z.string())
          .optional()
          .describe(
            "Labels of the gateway's pods (default gateway.networking.k8s.io/gateway-name: <name>): only they may reach the services, on their ports.",
          ),
      })
      .strict()
      .optional(),
    prometheus: z.string().url().optional(),
    autoscalingPrometheus: z
      .string()
      .url()
      .optional()
      .describe(
        "Prometheus as the autoscaler reaches it from inside the cluster (KEDA's serverAddress), when that differs from prometheus (which the CLI uses).",
      ),
    baseUrl: z.string().url().optional().describe('Where load tests reach the services.'),
    production: z.boolean().default(true),
  })
  .strict()

const tierDefaults = z
  .object({
    rto: positiveDuration,
    rpo: duration,
    minReplicas: z.number().int().min(1),
    ephemeralStorage: z
      .object({request: quantity, limit: quantity})
      .strict()
      .optional()
      .describe(
        "Ephemeral-storage request and limit of the tier's containers (services.<name>.resources override them).",
      ),
    placement: placementSchema
      .optional()
      .describe(
        "Default placement of the tier's workloads (services.<name>.placement overrides it key by key); a revenue-critical service's spot policy is never inherited.",
      ),
  })
  .strict()

const supplyChainPolicy = z
  .object({
    requireSignature: z
      .boolean()
      .default(true)
      .describe('Refuse an image without a signature made with signing.publicKey.'),
    requireSbom: z
      .boolean()
      .default(true)
      .describe(
        'Refuse an image without a CycloneDX SBOM attestation signed with signing.publicKey (`retailops sign` attaches it).',
      ),
    requireProvenance: z
      .boolean()
      .default(true)
      .describe('Refuse an image without a SLSA provenance v1 attestation signed with signing.publicKey.'),
    failOn: z
      .enum(SEVERITY_THRESHOLDS)
      .optional()
      .describe(
        'Refuse an image whose attested SBOM has a vulnerability at or above this severity (as `retailops scan --fail-on`) that no waiver covers. Needs supplyChain.vulnerabilityDatabase. Omitted: vulnerabilities do not refuse (scan still reports them).',
      ),
    waivers: z
      .string()
      .default('.retailops/waivers.yaml')
      .describe(
        'The waivers file, relative to retailops.yaml: `waivers: [{id, service, reason, expires: YYYY-MM-DD}]`. A waiver lets one vulnerability (its id or an alias such as a CVE) through for one service until the end of its expiry day (UTC); expired waivers are reported and waive nothing. A missing file has no waivers.',
      ),
  })
  .strict()

const supplyChain = z
  .object({
    vulnerabilityDatabase: z
      .string()
      .optional()
      .describe(
        "An OSV vulnerability database, relative to retailops.yaml: a directory of OSV JSON records (searched recursively) or OSV's ecosystem zip (https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip). `retailops scan` (unless --db) and supplyChain.policy.failOn read it; docs/scan.md says how to fetch and refresh it.",
      ),
    vulnerabilityDatabaseMaxAge: positiveDuration
      .optional()
      .describe(
        "How old the database's newest record may be before `retailops scan` warns that it is stale (default 7d; --max-db-age overrides it).",
      ),
    policy: supplyChainPolicy
      .optional()
      .describe(
        'Admission before deploy: every image the rendered objects run (init containers and sidecars included) is checked before anything is applied; a refused image stops the deploy (exit SUPPLY_CHAIN_REFUSED) with nothing applied. Omitted: no supply-chain admission (signing.required still applies).',
      ),
  })
  .strict()

/** `env://NAME`: the value is read from the variable NAME when a command sends (never written in the file). */
const envReference = z
  .string()
  .regex(
    /^env:\/\/[A-Za-z_][A-Za-z0-9_]*$/,
    'a variable reference env://NAME (the value is a secret: never written in the file)',
  )

const eventPattern = z.string().refine(isReleaseEventPattern, {
  error: (issue) =>
    `"${String(issue.input)}" is no event and matches none (wildcards: *, rollout.*, release.refused.*); events: ${RELEASE_EVENT_NAMES.join(', ')}`,
})

const notificationDestination = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('slack'),
      url: envReference.describe('env://NAME of the variable holding the Slack incoming-webhook URL.'),
    })
    .strict()
    .describe('A Slack incoming webhook: Block Kit blocks plus a plain-text fallback.'),
  z
    .object({
      type: z.literal('teams'),
      url: envReference.describe('env://NAME of the variable holding the Teams Workflows webhook URL.'),
    })
    .strict()
    .describe(
      'A Microsoft Teams Workflows webhook ("Post to a channel when a webhook request is received"): an Adaptive Card.',
    ),
  z
    .object({
      type: z.literal('webhook'),
      url: envReference.describe('env://NAME of the variable holding the receiver URL.'),
      secret: envReference
        .optional()
        .describe(
          'env://NAME of the variable holding the HMAC-SHA256 key: each request carries X-Retailops-Signature: sha256=<hex of HMAC(body)>.',
        ),
      source: z
        .string()
        .min(1)
        .optional()
        .describe('CloudEvents `source` attribute (a URI reference); default /retailops/<project>.'),
    })
    .strict()
    .describe(
      'A generic webhook: one CloudEvents 1.0 event per request, structured JSON (application/cloudevents+json).',
    ),
])

const notifications = z
  .object({
    destinations: z
      .record(name, notificationDestination)
      .refine(hasEntries, 'at least one destination')
      .describe('Where messages go, by a name of your choosing.'),
    subscriptions: z
      .array(
        z
          .object({
            destinations: z.array(name).min(1).describe('Names from notifications.destinations.'),
            events: z
              .array(eventPattern)
              .min(1)
              .describe('Event names or wildcards: *, rollout.*, release.refused.*, rollout.aborted…'),
            services: z
              .array(serviceName)
              .optional()
              .describe('Only events about these services (default: any). Combined with tiers: either matches.'),
            tiers: z.array(tier).optional().describe('Only events about services of these tiers (default: any).'),
          })
          .strict(),
      )
      .default([])
      .describe('Which events go where: an event goes to each destination of every subscription it matches, once.'),
    delivery: z
      .object({
        attempts: z
          .number()
          .int()
          .min(1)
          .max(10)
          .default(3)
          .describe('Attempts per message (retries on timeouts, 429 and 5xx).'),
        timeout: positiveDuration.default('2s').describe('Time one attempt may take.'),
        backoff: positiveDuration
          .default('250ms')
          .describe('Wait before the first retry; doubled before each next one.'),
        deadline: positiveDuration
          .default('5s')
          .describe(
            'Time all attempts of one message may take together; also the most a command waits at its end for deliveries.',
          ),
      })
      .strict()
      .default({attempts: 3, timeout: '2s', backoff: '250ms', deadline: '5s'})
      .describe('Delivery never blocks or fails a release: a message not delivered within these bounds is a warning.'),
  })
  .strict()

const configShape = z
  .object({
    $schema: z.string().optional(),
    apiVersion: z.literal('retailops/v1').default('retailops/v1'),
    project: name.describe('Prefix of images, namespaces and labels.'),
    version: z
      .union([z.string(), z.number()])
      .transform(String)
      .default('1')
      .describe('Configuration version, carried in image tags.'),
    registry: z
      .object({
        url: z.string().min(1).describe('host[:port] of the OCI registry, e.g. 127.0.0.1:5000'),
        repositoryPrefix: z.string().optional(),
        insecure: z
          .boolean()
          .default(false)
          .describe(
            'Plain HTTP: allowed only when url is a loopback registry (127.0.0.0/8, localhost, [::1]); credentials never travel over plain HTTP anywhere else.',
          ),
      })
      .strict(),
    signing: z
      .object({
        key: z
          .string()
          .default('.retailops/cosign.key')
          .describe(
            'Encrypted cosign private key: a path relative to retailops.yaml, or env://NAME for a variable holding its contents (CI).',
          ),
        publicKey: z
          .string()
          .default('.retailops/cosign.pub')
          .describe('Public key (PEM): a path relative to retailops.yaml, or env://NAME.'),
        passwordEnv: z.string().default('COSIGN_PASSWORD').describe('Variable holding the key passphrase.'),
        required: z.boolean().default(true),
        format: z
          .enum(['bundle', 'legacy'])
          .default('bundle')
          .describe(
            "How `retailops sign` stores signatures: bundle (what cosign v3 writes: a Sigstore bundle as an OCI 1.1 referrer) or legacy (cosign v2's `sha256-<hex>.sig` tag, for podman, CRI-O and other verifiers that read only that). Verification reads both.",
          ),
      })
      .strict()
      .default({
        key: '.retailops/cosign.key',
        publicKey: '.retailops/cosign.pub',
        passwordEnv: 'COSIGN_PASSWORD',
        required: true,
        format: 'bundle',
      }),
    supplyChain: supplyChain
      .optional()
      .describe('Supply chain: the vulnerability database and the admission policy deploy enforces.'),
    runner: z
      .object({
        image: z
          .string()
          .regex(
            /^[^@\s]+@sha256:[0-9a-f]{64}$/,
            'an image pinned by digest, REGISTRY/REPOSITORY@sha256:<64 hex> (a tag such as :latest can change under the same name)',
          )
          .optional()
          .describe(
            'The retailops runner image scheduled jobs run, by digest; default the `runner` entry `retailops runner build` records in .retailops/artifacts.lock.json. Verified with signing.publicKey before a CronJob is created.',
          ),
      })
      .strict()
      .optional()
      .describe('Work retailops runs in the cluster (prewarm --schedule).'),
    clusters: z.record(z.string(), cluster).default({default: {}}),
    environments: z.record(z.string(), environment).default({}),
    defaultEnvironment: z.string().optional(),
    promotion: z
      .object({
        order: z
          .array(z.string())
          .min(2)
          .optional()
          .describe(
            'The stages a release goes through, first to last, e.g. [staging, production]: `retailops promote` moves it one stage on, and a promotion that skips a stage is refused unless forced with --force --reason.',
          ),
        soak: duration
          .default('30m')
          .describe(
            "How long the source environment must have run a service's digests (fully rolled out) before `retailops promote` moves them on.",
          ),
      })
      .strict()
      .default({soak: '30m'})
      .describe('Promotion between environments (`retailops promote`): the order of the stages and the soak time.'),
    nodePools: nodePoolsSchema.optional(),
    tiers: z.record(z.enum(TIERS), tierDefaults).default({
      'revenue-critical': {rto: '15m', rpo: '5m', minReplicas: 2},
      operational: {rto: '1h', rpo: '15m', minReplicas: 2},
      tolerant: {rto: '4h', rpo: '24h', minReplicas: 1},
    }),
    services: z.record(serviceName, service).refine(hasEntries, 'at least one service'),
    jobs: z
      .record(serviceName, job)
      .default({})
      .describe(
        'Batch workloads (CronJobs, one-off Jobs): built, signed and deployed like services; `retailops jobs run` and `jobs status`. docs/jobs.md.',
      ),
    tenants: z.array(tenant).default([]),
    campaigns: z.array(campaign).default([]),
    datastores: z.array(datastore).default([]),
    notifications: notifications
      .optional()
      .describe(
        'Notifications on release events (rollouts, refused releases, pre-warms, drills, the SLO gate) to Slack, Teams and CloudEvents webhooks: docs/notifications.md.',
      ),
    backup: z
      .object({
        location: z
          .string()
          .min(1)
          .optional()
          .describe(
            "`retailops backup`: where snapshots of the objects retailops manages go (s3://bucket/prefix or a directory relative to retailops.yaml), in Velero's layout, so a kubernetes datastore's kubernetes.backup.location can drill them; --to overrides.",
          ),
      })
      .strict()
      .optional(),
    prices: prices.default({
      currency: 'USD',
      default: {cpuHour: 0.031611, memoryGiBHour: 0.004237},
      pools: {},
      instanceTypes: {},
      spotDiscount: 0.7,
    }),
  })
  .strict()

export const configSchema = superRefined(configShape, configProblems)

export type RetailOpsConfigInput = z.input<typeof configShape>
export type RetailOpsConfig = z.output<typeof configShape>
export type ServiceConfig = RetailOpsConfig['services'][string]
export type JobConfig = RetailOpsConfig['jobs'][string]
export type Tier = (typeof TIERS)[number]
export type TenantConfig = RetailOpsConfig['tenants'][number]
export type CampaignConfig = RetailOpsConfig['campaigns'][number]
export type DatastoreConfig = RetailOpsConfig['datastores'][number]
export type EnvironmentConfig = RetailOpsConfig['environments'][string]
export type SloConfig = ServiceConfig['slos'][number]
export type RolloutStep = z.output<typeof rolloutStep>
export type AnalysisConfig = z.output<typeof analysis>
export type NotificationsConfig = z.output<typeof notifications>
export type NotificationDestinationConfig = NotificationsConfig['destinations'][string]
export type SupplyChainPolicyConfig = z.output<typeof supplyChainPolicy>

export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, {io: 'input', unrepresentable: 'any'})
}
