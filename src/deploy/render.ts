import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'

import {parse as parseYaml} from 'yaml'

import type {LoadedConfig} from '../config/load.js'
import {parseDuration} from '../config/duration.js'
import {
  clusterAccess,
  ephemeralStorage,
  findTenant,
  resolveEnvironment,
  tenantRunsJob,
  selectWorkloads,
  type ResolvedEnvironment,
} from '../config/resolve.js'
import type {JobConfig, RetailOpsConfig, ServiceConfig, TenantConfig} from '../config/schema.js'
import {tenantNamespace} from '../config/vocabulary.js'
import {workloadPlacement} from '../config/placement.js'
import {UsageError} from '../errors/index.js'
import {type KubeObject} from '../kubernetes/resources.js'
import {packagePath} from '../assets/paths.js'
import {isSecretName, registerSecret, secretsInValue} from '../ui/secrets.js'
import {type ResolvedImage} from './images.js'
import {ANNOTATION, LABEL, labelValue, MANAGED_BY} from '../kubernetes/labels.js'
import {applyOverlays, cloneData, mergePatch, type Overlay} from './overlays.js'
import {formatCpu, formatMemory, quantityNumber} from '../kubernetes/quantity.js'
import {autoscalerProvider, renderAutoscaler, type ScalingChoice} from './autoscaler.js'

export type TargetModel = 'single' | 'shared' | 'dedicated-namespace' | 'dedicated-cluster'

/** One namespace in one cluster that a deploy renders into. */
export interface RenderedTarget {
  /** "cluster/namespace": how results and messages name the target. */
  id: string
  /** Key of `clusters` in retailops.yaml. */
  cluster: string
  context?: string
  kubeconfig?: string
  namespace: string
  model: TargetModel
  /** Tenants this namespace serves (all shared ones for the shared namespace). */
  tenants: string[]
  /** Value of the applyset label of every object this deploy target (project, environment, namespace, cluster) applies. */
  applySet: string
  /**
   * The applyset value earlier versions gave the same objects (project, environment and cluster,
   * without the namespace). Objects carrying it in a namespace this deploy renders are adopted:
   * relabelled when rendered, pruned when not; elsewhere they belong to another target and are left.
   */
  legacyApplySet: string
  services: string[]
  /** Jobs (CronJobs) this target renders. */
  jobs: string[]
  objects: KubeObject[]
}

export interface RenderOptions {
  project: LoadedConfig
  environment?: string
  /** The environment itself, when it is not one of retailops.yaml's (a preview's); else `environment` is resolved. */
  env?: ResolvedEnvironment
  /** Overrides the environment's namespace (the shared namespace; tenants keep theirs). */
  namespace?: string
  /** Overrides the environment's kube context (not dedicated-cluster tenants'). */
  context?: string
  services?: string[]
  tenant?: string
  images: Record<string, ResolvedImage>
  /** Overlays per service (read by readOverlays); missing means none. */
  overlays?: Record<string, Overlay[]>
  /** How services that scale on metrics get their autoscaler (--scaling-provider, what the deploy discovered). */
  scaling?: ScalingChoice
}

export interface RenderResult {
  environment: string
  project: string
  targets: RenderedTarget[]
  /** Overlays that matched nothing, and similar notes for the user. */
  notes: string[]
}

const templateCache = new Map<string, Record<string, unknown>>()

/** A base object from templates/manifests/, parsed once per process. */
export function manifestTemplate(file: string): Record<string, unknown> {
  let t = templateCache.get(file)
  if (!t) {
    t = parseYaml(readFileSync(packagePath('templates', 'manifests', file), 'utf8')) as Record<string, unknown>
    templateCache.set(file, t)
  }
  return cloneData(t)
}

function fromTemplate(file: string, fill: Record<string, unknown>): KubeObject {
  return mergePatch(manifestTemplate(file), fill) as KubeObject
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10)
}

function readableId(project: string, readable: string): string {
  return readable.length <= 63 && labelValue(readable) === readable
    ? readable
    : `${labelValue(project).slice(0, 40)}-${shortHash(readable)}`
}

/**
 * The applyset label value: one per deploy target, that is project, environment, the
 * environment's namespace and cluster (like kubectl's applyset id, which hashes its parent's
 * name and namespace). A copy of the project deployed into another namespace is another applyset,
 * so its prune can never select what the first one applied. Readable when it fits in a label.
 */
export function applySetId(project: string, environment: string, namespace: string, cluster: string): string {
  return readableId(project, `${project}.${environment}.${namespace}.${cluster}`)
}

/** The applyset value before it included the namespace (kept to adopt what those versions applied). */
export function legacyApplySetId(project: string, environment: string, cluster: string): string {
  return readableId(project, `${project}.${environment}.${cluster}`)
}

export function envName(tenant: string): string {
  return tenant.toUpperCase().replace(/[^A-Z0-9]/g, '_')
}

/** Turns the configuration into the namespaces and objects a deploy applies. Pure: no cluster access. */
export function renderManifests(options: RenderOptions): RenderResult {
  const {config, dir} = options.project
  const env = options.env ?? resolveEnvironment(config, options.environment, dir)
  const {services, jobs} = selectWorkloads(config, options.services)
  const selected = selectTenants(config, options.tenant)
  const notes: string[] = []
  const shared = config.tenants.filter((t) => t.model === 'shared' || t.model === 'isolated-database')
  const targets: RenderedTarget[] = []
  const mainNamespace = options.namespace ?? env.namespace
  const mainContext = options.context ?? env.context

  const wantsMain =
    config.tenants.length === 0 || selected.some((t) => t.model === 'shared' || t.model === 'isolated-database')
  if (wantsMain) {
    targets.push(
      renderTarget(config, env, {
        cluster: env.cluster,
        context: mainContext,
        kubeconfig: env.kubeconfig,
        namespace: mainNamespace,
        model: config.tenants.length === 0 ? 'single' : 'shared',
        tenants: shared,
        allServices: Object.keys(config.services),
        services,
        jobs,
        images: options.images,
        overlays: options.overlays,
        scaling: options.scaling,
        mainNamespace,
        notes,
      }),
    )
  }
  for (const t of selected) {
    if (t.model !== 'dedicated-namespace' && t.model !== 'dedicated-cluster') continue
    const own = (list: string[]) => list.filter((s) => !t.services || t.services.includes(s))
    // A dedicated namespace lives in the environment's cluster; a dedicated cluster is reached through its own context.
    const dedicatedCluster = t.model === 'dedicated-cluster'
    const access = dedicatedCluster
      ? clusterAccess(config, t.cluster, dir)
      : {context: mainContext, kubeconfig: env.kubeconfig}
    targets.push(
      renderTarget(config, env, {
        cluster: dedicatedCluster ? t.cluster! : env.cluster,
        context: access.context,
        kubeconfig: access.kubeconfig,
        namespace: tenantNamespace(config, t, env.namespace)!,
        model: t.model,
        tenants: [t],
        allServices: own(Object.keys(config.services)),
        services: own(services),
        jobs: jobs.filter((j) => tenantRunsJob(config, t, j)),
        images: options.images,
        overlays: options.overlays,
        scaling: options.scaling,
        mainNamespace,
        notes,
      }),
    )
  }
  // Configuration validation refuses colliding tenant namespaces; --namespace can still move the
  // shared namespace onto a tenant's, where their objects would overwrite each other.
  const seen = new Map<string, RenderedTarget>()
  for (const t of targets) {
    const key = `${t.context ?? ''}|${t.kubeconfig ?? ''}|${t.namespace}`
    const other = seen.get(key)
    if (other) {
      throw new UsageError(
        `Namespace ${t.namespace} would hold both ${describeTarget(other)} and ${describeTarget(t)}: their objects would overwrite each other.`,
        {
          nextSteps: [
            options.namespace
              ? `Pick another --namespace than ${options.namespace}.`
              : 'Give each tenant a namespace of its own (tenants[].namespace).',
          ],
        },
      )
    }
    seen.set(key, t)
  }
  return {environment: env.name, project: config.project, targets, notes}
}

function describeTarget(t: RenderedTarget): string {
  return t.model === 'single'
    ? 'the services'
    : t.model === 'shared'
      ? `the shared tenants (${t.tenants.join(', ') || 'none'})`
      : `tenant ${t.tenants[0]}`
}

function selectTenants(config: RetailOpsConfig, name?: string): TenantConfig[] {
  return name ? [findTenant(config, name)] : config.tenants
}

interface TargetInput {
  /** Every service the namespace runs (quota and network policies are sized for all of them, whatever this deploy selects). */
  allServices: string[]
  cluster: string
  context?: string
  kubeconfig?: string
  namespace: string
  model: TargetModel
  tenants: TenantConfig[]
  services: string[]
  jobs: string[]
  images: Record<string, ResolvedImage>
  overlays?: Record<string, Overlay[]>
  scaling?: ScalingChoice
  /** The environment's namespace (after --namespace): part of the applyset identity of every target of this deploy. */
  mainNamespace: string
  notes: string[]
}

function renderTarget(config: RetailOpsConfig, env: ResolvedEnvironment, input: TargetInput): RenderedTarget {
  const applySet = applySetId(config.project, env.name, input.mainNamespace, input.cluster)
  const tenantLabel = input.model === 'single' ? undefined : input.model === 'shared' ? 'shared' : input.tenants[0].name
  const common: Record<string, string> = {
    [LABEL.partOf]: config.project,
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.environment]: labelValue(env.name),
    [LABEL.applySet]: applySet,
    ...(tenantLabel ? {[LABEL.tenant]: tenantLabel} : {}),
  }
  const ns = input.namespace
  const objects: KubeObject[] = []

  // The namespace and, for tenant namespaces, its quota, limits and isolation policies.
  const nsLabels: Record<string, string> = {...common, [LABEL.component]: 'namespace'}
  if (input.model === 'shared') for (const t of input.tenants) nsLabels[`tenant.retailops.dev/${t.name}`] = t.model
  objects.push(fromTemplate('namespace.yaml', {metadata: {name: ns, labels: nsLabels}}))
  if (input.model !== 'single') {
    const tenancy = {...common, [LABEL.component]: 'tenancy'}
    objects.push(
      fromTemplate('resourcequota.yaml', {
        metadata: {name: 'tenant-quota', namespace: ns, labels: tenancy},
        spec: {hard: quotaFor(config, input.allServices, input.tenants, Object.keys(config.jobs))},
      }),
      fromTemplate('limitrange.yaml', {metadata: {name: 'tenant-limits', namespace: ns, labels: tenancy}}),
    )
  }
  // Every model: default-deny ingress and egress, then only the paths the configuration declares.
  objects.push(...isolationPolicies(config, env, ns, {...common, [LABEL.component]: 'isolation'}))
  for (const t of input.tenants) {
    if (t.database && !t.database.egress && (t.model === 'isolated-database' || input.model !== 'shared')) {
      const note = `Tenant ${t.name}'s pods cannot reach its database under default-deny egress until tenants[].database.egress says where it is (cidrs or namespace, and ports).`
      if (!input.notes.includes(note)) input.notes.push(note)
    }
  }

  for (const service of input.services) {
    const svc = config.services[service]
    const image = input.images[service]
    let rendered = renderService(config, env, {
      service,
      svc,
      image,
      namespace: ns,
      common,
      model: input.model,
      tenants: input.tenants,
      dependents: dependentsOf(config, service, input.allServices),
      jobDependents: input.jobs.filter((j) => config.jobs[j].dependsOn.includes(service)),
      present: input.allServices,
      scaling: input.scaling,
      cluster: {context: input.context, kubeconfig: input.kubeconfig},
      notes: input.notes,
    })
    const overlays = input.overlays?.[service] ?? []
    if (overlays.length > 0) {
      const result = applyOverlays(rendered, overlays, `overlays/${service}.yaml`)
      rendered = result.objects
      for (const n of result.unmatched) if (!input.notes.includes(n)) input.notes.push(n)
    }
    objects.push(...rendered)
  }
  for (const job of input.jobs) {
    let rendered = renderJob(config, env, {
      job,
      spec: config.jobs[job],
      image: input.images[job],
      namespace: ns,
      common,
      model: input.model,
      tenants: input.tenants,
      present: input.allServices,
    })
    const overlays = input.overlays?.[job] ?? []
    if (overlays.length > 0) {
      const result = applyOverlays(rendered, overlays, `overlays/${job}.yaml`)
      rendered = result.objects
      for (const n of result.unmatched) if (!input.notes.includes(n)) input.notes.push(n)
    }
    objects.push(...rendered)
  }
  return {
    id: `${input.cluster}/${ns}`,
    cluster: input.cluster,
    context: input.context,
    kubeconfig: input.kubeconfig,
    namespace: ns,
    model: input.model,
    tenants: input.tenants.map((t) => t.name),
    applySet,
    legacyApplySet: legacyApplySetId(config.project, env.name, input.cluster),
    services: input.services,
    jobs: input.jobs,
    objects: objects.map(canonicalOrder),
  }
}

function ordered<T extends Record<string, unknown>>(obj: T, first: string[]): T {
  const out: Record<string, unknown> = {}
  for (const k of first) if (k in obj) out[k] = obj[k]
  for (const [k, v] of Object.entries(obj)) if (!(k in out)) out[k] = v
  return out as T
}

/** apiVersion, kind, metadata, spec first (and name, image first in containers), so rendered YAML reads like a hand-written manifest. */
export function canonicalOrder(obj: KubeObject): KubeObject {
  const top = ordered(obj, ['apiVersion', 'kind', 'metadata', 'automountServiceAccountToken', 'spec'])
  top.metadata = ordered(top.metadata, ['name', 'namespace', 'labels', 'annotations'])
  const spec = top.spec as Record<string, unknown> | undefined
  const template = spec?.template as {metadata?: Record<string, unknown>; spec?: Record<string, unknown>} | undefined
  if (spec && template?.spec) {
    top.spec = ordered(spec, [
      'replicas',
      'selector',
      'progressDeadlineSeconds',
      'revisionHistoryLimit',
      'strategy',
      'template',
    ])
    const t = ordered(template as Record<string, unknown>, ['metadata', 'spec']) as typeof template
    const ps = ordered(t.spec!, ['serviceAccountName', 'automountServiceAccountToken', 'securityContext', 'containers'])
    ps.containers = ((ps.containers as Record<string, unknown>[]) ?? []).map((c) =>
      ordered(c, [
        'name',
        'image',
        'imagePullPolicy',
        'ports',
        'env',
        'envFrom',
        'resources',
        'readinessProbe',
        'livenessProbe',
        'securityContext',
      ]),
    )
    t.spec = ps
    ;(top.spec as Record<string, unknown>).template = t
  }
  return top
}

function dependentsOf(config: RetailOpsConfig, service: string, present: string[]): string[] {
  return present.filter((s) => config.services[s].dependsOn.includes(service))
}

/**
 * Room for every service at maxReplicas plus a 25 % rolling-update surge, and a pod per job (two
 * when its concurrencyPolicy lets runs overlap), unless the tenant sets its own.
 */
export function quotaFor(
  config: RetailOpsConfig,
  services: string[],
  tenants: TenantConfig[],
  jobs: string[] = [],
): Record<string, string> {
  let reqCpu = 0
  let reqMem = 0
  let limCpu = 0
  let limMem = 0
  let pods = 0
  for (const s of services) {
    const svc = config.services[s]
    const n = svc.scaling.maxReplicas + Math.ceil(svc.scaling.maxReplicas * 0.25)
    reqCpu += n * quantityNumber(svc.resources.requests.cpu)
    reqMem += n * quantityNumber(svc.resources.requests.memory)
    limCpu += n * quantityNumber(svc.resources.limits.cpu)
    limMem += n * quantityNumber(svc.resources.limits.memory)
    pods += n
  }
  for (const j of jobs) {
    const job = config.jobs[j]
    const n = job.concurrencyPolicy === 'Forbid' ? 1 : 2
    reqCpu += n * quantityNumber(job.resources.requests.cpu)
    reqMem += n * quantityNumber(job.resources.requests.memory)
    limCpu += n * quantityNumber(job.resources.limits.cpu)
    limMem += n * quantityNumber(job.resources.limits.memory)
    pods += n
  }
  const hard: Record<string, string> = {
    'requests.cpu': formatCpu(reqCpu),
    'requests.memory': formatMemory(reqMem),
    'limits.cpu': formatCpu(limCpu),
    'limits.memory': formatMemory(limMem),
    pods: String(pods),
  }
  // A tenant's own quota wins; a shared namespace gets the sum of its tenants' quotas when all set one.
  const sum = (key: 'cpu' | 'memory' | 'pods') =>
    tenants.length > 0 && tenants.every((t) => t.quota?.[key] !== undefined)
      ? tenants.reduce((a, t) => a + quantityNumber(t.quota![key]!), 0)
      : undefined
  const cpu = sum('cpu')
  const memory = sum('memory')
  const podCount = sum('pods')
  if (cpu !== undefined) hard['requests.cpu'] = formatCpu(cpu)
  if (memory !== undefined) hard['requests.memory'] = formatMemory(memory)
  if (podCount !== undefined) hard.pods = String(podCount)
  return hard
}

const METADATA_NAME = 'kubernetes.io/metadata.name'
/** The gateway's pods, when the Gateway does not say otherwise (Istio, NGINX Gateway Fabric and others set it). */
export const GATEWAY_POD_LABEL = 'gateway.networking.k8s.io/gateway-name'

/**
 * Where the gateway runs and which pods are it: gateway.namespace, else the environment's own
 * namespace. Its pods are selected by label (gateway.podLabels, else the Gateway API's
 * gateway-name label) whenever it shares a namespace with services, so the rest of that namespace
 * never counts as "the gateway"; a namespace of its own is selected as a whole unless podLabels says.
 */
export function gatewayPeer(
  env: ResolvedEnvironment,
): {namespace: string; peer: Record<string, unknown>; podLabels?: Record<string, string>} | undefined {
  if (!env.gateway) return undefined
  const namespace = env.gateway.namespace ?? env.namespace
  const podLabels =
    env.gateway.podLabels ?? (namespace === env.namespace ? {[GATEWAY_POD_LABEL]: env.gateway.name} : undefined)
  return {
    namespace,
    podLabels,
    peer: {
      namespaceSelector: {matchLabels: {[METADATA_NAME]: namespace}},
      ...(podLabels ? {podSelector: {matchLabels: podLabels}} : {}),
    },
  }
}

/**
 * Namespace-wide policies of every tenancy model: deny all ingress and egress, then allow DNS to
 * the cluster's resolver. Per-service policies (renderService) add each service's own paths; a
 * gateway running in this namespace gets its own entry and exit.
 */
function isolationPolicies(
  config: RetailOpsConfig,
  env: ResolvedEnvironment,
  ns: string,
  labels: Record<string, string>,
): KubeObject[] {
  const base = (name: string, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {name, namespace: ns, labels},
    spec,
  })
  const out = [
    base('default-deny', {podSelector: {}, policyTypes: ['Ingress', 'Egress']}),
    base('allow-dns', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: {matchLabels: {[METADATA_NAME]: 'kube-system'}},
              podSelector: {matchLabels: {'k8s-app': 'kube-dns'}},
            },
          ],
          ports: [
            {port: 53, protocol: 'UDP'},
            {port: 53, protocol: 'TCP'},
          ],
        },
      ],
    }),
  ]
  const gw = gatewayPeer(env)
  if (gw?.podLabels && gw.namespace === ns) {
    // The gateway is the way in: reachable from anywhere, and it reaches the project's services on their ports only.
    const ports = [...new Set(Object.values(config.services).map((s) => s.port))].sort((a, b) => a - b)
    out.push(
      base('allow-gateway', {
        podSelector: {matchLabels: gw.podLabels},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{}],
        egress: [
          {
            to: [
              {
                namespaceSelector: {matchLabels: {[LABEL.partOf]: config.project}},
                podSelector: {matchExpressions: [{key: LABEL.service, operator: 'Exists'}]},
              },
            ],
            ports: ports.map((port) => ({port, protocol: 'TCP'})),
          },
        ],
      }),
    )
  }
  return out
}

interface ServiceInput {
  service: string
  svc: ServiceConfig
  image: ResolvedImage
  namespace: string
  common: Record<string, string>
  model: TargetModel
  tenants: TenantConfig[]
  dependents: string[]
  /** Jobs of this namespace that call the service (jobs.<name>.dependsOn). */
  jobDependents: string[]
  /** Every service the namespace runs (dependencies outside it are not reachable there). */
  present: string[]
  scaling?: ScalingChoice
  /** The cluster connection of the target (where `auto` was discovered). */
  cluster: {context?: string; kubeconfig?: string}
  notes: string[]
}

function renderService(config: RetailOpsConfig, env: ResolvedEnvironment, input: ServiceInput): KubeObject[] {
  const {service, svc, image, namespace, common} = input
  const tenantSuffix =
    input.model === 'dedicated-namespace' || input.model === 'dedicated-cluster' ? `-${input.tenants[0].name}` : ''
  const instance = labelValue(`${service}${tenantSuffix}`)
  const selector = {[LABEL.name]: service, [LABEL.instance]: instance}
  const version = labelValue(image.version ?? config.version) || 'unknown'
  const labels: Record<string, string> = {
    ...common,
    ...selector,
    [LABEL.version]: version,
    [LABEL.component]: 'service',
    [LABEL.service]: service,
    [LABEL.tier]: svc.tier,
  }
  const meta = (extra: Record<string, unknown> = {}) => ({name: service, namespace, labels, ...extra})
  const {minReplicas, maxReplicas} = svc.scaling
  const autoscaled = maxReplicas > minReplicas
  const revenueCritical = svc.tier === 'revenue-critical'
  const progressDeadline = Math.round((parseDuration(svc.rollout?.progressDeadline ?? '10m') ?? 600_000) / 1000)

  const podLabels = {
    ...selector,
    [LABEL.version]: version,
    [LABEL.partOf]: config.project,
    [LABEL.service]: service,
    [LABEL.tier]: svc.tier,
    ...(common[LABEL.tenant] ? {[LABEL.tenant]: common[LABEL.tenant]} : {}),
  }
  // initialDelaySeconds 0 is omitted: the API server drops zero values, and the live object should read back as rendered.
  const probe = (p: string) => ({
    httpGet: {path: p, port: 'http'},
    ...(svc.probes.initialDelaySeconds > 0 ? {initialDelaySeconds: svc.probes.initialDelaySeconds} : {}),
    periodSeconds: svc.probes.periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  })
  const base = manifestTemplate('deployment.yaml') as {
    spec: {template: {spec: {containers: Record<string, unknown>[]}}}
  }
  // Without it a pod's logs and /tmp can fill its node's disk and get other pods evicted.
  const storage = ephemeralStorage(config, svc)
  const container = {
    ...base.spec.template.spec.containers[0],
    name: service,
    image: image.ref,
    ports: [{name: 'http', containerPort: svc.port, protocol: 'TCP'}],
    env: containerEnv(config, env, input),
    ...containerSources(svc, storage),
    readinessProbe: probe(svc.probes.readiness),
    livenessProbe: probe(svc.probes.liveness),
  }
  const deployment = fromTemplate('deployment.yaml', {
    metadata: meta({annotations: {[ANNOTATION.image]: image.ref, [ANNOTATION.configVersion]: config.version}}),
    spec: {
      // An HPA owns the count of an autoscaled Deployment: rendered without replicas, so whoever applies
      // this output (GitOps, kubectl) does not reset it. retailops' own apply sets it (preserveReplicas).
      ...(autoscaled ? {} : {replicas: minReplicas}),
      selector: {matchLabels: selector},
      progressDeadlineSeconds: progressDeadline,
      // Revenue-critical services never drop below their ready count during a rollout.
      strategy: {type: 'RollingUpdate', rollingUpdate: {maxSurge: '25%', maxUnavailable: revenueCritical ? 0 : '25%'}},
      template: {
        metadata: {labels: podLabels},
        spec: {
          serviceAccountName: service,
          automountServiceAccountToken: svc.needsServiceAccountToken,
          containers: [container],
          // Pools, spot policy and zone spread (tiers.<tier>.placement, services.<name>.placement).
          ...workloadPlacement(config, svc, `services.${service}`, selector),
        },
      },
    },
  })

  const objects: KubeObject[] = [
    fromTemplate('serviceaccount.yaml', {metadata: meta(), automountServiceAccountToken: svc.needsServiceAccountToken}),
    fromTemplate('service.yaml', {
      metadata: meta(),
      spec: {selector, ports: [{name: 'http', port: svc.port, targetPort: 'http', protocol: 'TCP'}]},
    }),
    fromTemplate('networkpolicy.yaml', {
      metadata: meta(),
      spec: {
        podSelector: {matchLabels: selector},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{from: ingressPeers(env, input), ports: [{port: svc.port, protocol: 'TCP'}]}],
        ...egressRules(config, input),
      },
    }),
    deployment,
  ]
  if (minReplicas >= 2) {
    objects.push(fromTemplate('pdb.yaml', {metadata: meta(), spec: {selector: {matchLabels: selector}}}))
  }
  if (autoscaled) {
    const {provider, discovered} = autoscalerProvider(svc, input.scaling, input.cluster)
    if (svc.scaling.metrics.length > 0 && !discovered && (input.scaling?.override ?? svc.scaling.provider) === 'auto') {
      const note = `${service} scales on metrics with scaling.provider auto and no cluster was asked: rendered as a KEDA ScaledObject (pass --scaling-provider hpa for a cluster without KEDA).`
      if (!input.notes.includes(note)) input.notes.push(note)
    }
    const behavior = (manifestTemplate('hpa.yaml') as {spec: {behavior: Record<string, unknown>}}).spec.behavior
    objects.push(renderAutoscaler({service, svc, metadata: meta(), provider, env, behavior}))
  }
  const router = svc.rollout?.router ?? env.router
  if (env.gateway && router === 'gateway') {
    const prefix = svc.route?.pathPrefix ?? `/${service}`
    objects.push({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: meta(),
      spec: {
        // A tenant namespace's route names the gateway's namespace (default the environment's), never its own.
        parentRefs: [
          {
            name: env.gateway.name,
            ...(env.gateway.namespace || gatewayPeer(env)!.namespace !== namespace
              ? {namespace: gatewayPeer(env)!.namespace}
              : {}),
          },
        ],
        ...(svc.route?.hostnames.length ? {hostnames: svc.route.hostnames} : {}),
        rules: [
          {
            matches: [{path: {type: 'PathPrefix', value: prefix}}],
            ...(prefix === '/'
              ? {}
              : {
                  filters: [
                    {type: 'URLRewrite', urlRewrite: {path: {type: 'ReplacePrefixMatch', replacePrefixMatch: '/'}}},
                  ],
                }),
            backendRefs: [{name: service, port: svc.port}],
          },
        ],
      },
    })
  }
  return objects
}

function ingressPeers(env: ResolvedEnvironment, input: ServiceInput): Record<string, unknown>[] {
  const peers: Record<string, unknown>[] = []
  if (input.dependents.length > 0) {
    peers.push({podSelector: {matchExpressions: [{key: LABEL.service, operator: 'In', values: input.dependents}]}})
  }
  if (input.jobDependents.length > 0) {
    peers.push({podSelector: {matchExpressions: [{key: LABEL.job, operator: 'In', values: input.jobDependents}]}})
  }
  const gw = gatewayPeer(env)
  if (gw) peers.push(gw.peer)
  // An entry service nobody in the project calls, without a gateway, stays reachable from its own namespace.
  if (peers.length === 0) peers.push({podSelector: {}})
  return peers
}

function peerRule(peer: {
  cidrs?: string[]
  namespace?: string
  podLabels?: Record<string, string>
  ports: number[]
}): Record<string, unknown> {
  const to = peer.cidrs
    ? peer.cidrs.map((cidr) => ({ipBlock: {cidr}}))
    : [
        {
          ...(peer.namespace ? {namespaceSelector: {matchLabels: {[METADATA_NAME]: peer.namespace}}} : {}),
          ...(peer.podLabels ? {podSelector: {matchLabels: peer.podLabels}} : {}),
        },
      ]
  return {to, ports: peer.ports.map((port) => ({port, protocol: 'TCP'}))}
}

/**
 * Where a service's pods may connect (besides DNS): the services it dependsOn, its declared
 * egress, its tenants' own databases. None: no egress key at all (the API server drops an empty
 * list, and the live object must read back as rendered), which with policyType Egress denies all.
 */
function egressRules(config: RetailOpsConfig, input: ServiceInput): {egress?: Record<string, unknown>[]} {
  const rules: Record<string, unknown>[] = []
  for (const dep of input.svc.dependsOn.filter((d) => input.present.includes(d))) {
    rules.push({
      to: [{podSelector: {matchLabels: {[LABEL.service]: dep}}}],
      ports: [{port: config.services[dep].port, protocol: 'TCP'}],
    })
  }
  for (const peer of input.svc.egress) rules.push(peerRule(peer))
  for (const t of databaseTenants(input)) if (t.database?.egress) rules.push(peerRule(t.database.egress))
  return rules.length > 0 ? {egress: rules} : {}
}

/**
 * The tenants whose database this service's pods connect to: a dedicated tenant's own, and in the
 * shared namespace only the isolated-database tenants that run this service (tenants[].services),
 * so no pod holds a tenant's credentials it does not serve.
 */
function databaseTenants(input: ServiceInput): TenantConfig[] {
  if (input.model === 'single') return []
  if (input.model !== 'shared') return input.tenants[0].database ? [input.tenants[0]] : []
  return input.tenants.filter(
    (t) => t.model === 'isolated-database' && (!t.services || t.services.includes(input.service)),
  )
}

function containerEnv(
  config: RetailOpsConfig,
  env: ResolvedEnvironment,
  input: ServiceInput,
): Record<string, unknown>[] {
  const {service, svc} = input
  const vars: Record<string, unknown>[] = [
    {name: 'SERVICE_NAME', value: service},
    // The services label their metrics with APP_VERSION; taken from the pod's own version label, it
    // always equals what canary analysis queries for, on stable and canary pods alike.
    {name: 'APP_VERSION', valueFrom: {fieldRef: {fieldPath: `metadata.labels['${LABEL.version}']`}}},
    {name: 'RETAILOPS_ENVIRONMENT', value: env.name},
    {name: 'POD_NAME', valueFrom: {fieldRef: {fieldPath: 'metadata.name'}}},
    {name: 'POD_NAMESPACE', valueFrom: {fieldRef: {fieldPath: 'metadata.namespace'}}},
  ]
  if (input.model === 'shared') {
    const served = input.tenants.filter((t) => !t.services || t.services.includes(service))
    vars.push({name: 'RETAILOPS_TENANTS', value: served.map((t) => t.name).join(',')})
    for (const t of databaseTenants(input)) vars.push(...databaseEnv(config, t, `TENANT_${envName(t.name)}_`))
  } else if (input.model !== 'single') {
    const t = input.tenants[0]
    vars.push({name: 'RETAILOPS_TENANT', value: t.name})
    for (const own of databaseTenants(input)) vars.push(...databaseEnv(config, own, ''))
  }
  for (const [name, value] of Object.entries(svc.env)) {
    // Policy refuses these; until then they are masked in everything printed (render output too).
    maskSecret(name, value)
    const i = vars.findIndex((v) => v.name === name)
    if (i >= 0) vars.splice(i, 1)
    vars.push({name, value})
  }
  return vars
}

/** Masks the value of a secret-named variable, or just the password a URL or DSN carries. */
function maskSecret(name: string, value: string): void {
  const inside = secretsInValue(value)
  if (inside.length > 0) for (const s of inside) registerSecret(s)
  else if (isSecretName(name)) registerSecret(value)
}

/** The Secret each tenant's database URL is read from (the key is database.urlEnv, default DATABASE_URL). */
export function tenantDatabaseSecret(config: RetailOpsConfig, tenant: string): string {
  return `${config.project}-${tenant}-database`
}

/** Per-tenant database settings: the name in plain text, the URL only ever by Secret reference. */
function databaseEnv(config: RetailOpsConfig, t: TenantConfig, prefix: string): Record<string, unknown>[] {
  const db = t.database ?? {}
  const out: Record<string, unknown>[] = [
    {name: `${prefix}DATABASE_NAME`, value: db.name ?? `${config.project}_${t.name}`.replace(/-/g, '_')},
  ]
  if (db.url) maskSecret('DATABASE_URL', db.url)
  if (db.url && !db.urlEnv) {
    // A URL without credentials may be inlined; policy rejects one with a password.
    out.push({name: `${prefix}DATABASE_URL`, value: db.url})
  } else {
    out.push({
      name: `${prefix}DATABASE_URL`,
      valueFrom: {secretKeyRef: {name: tenantDatabaseSecret(config, t.name), key: db.urlEnv ?? 'DATABASE_URL'}},
    })
  }
  return out
}

interface JobInput {
  job: string
  spec: JobConfig
  image: ResolvedImage
  namespace: string
  common: Record<string, string>
  model: TargetModel
  tenants: TenantConfig[]
  /** Every service the namespace runs (a dependency elsewhere is not reachable from here). */
  present: string[]
}

/**
 * A schedule that can never fire (the 31st of February): a one-off job's CronJob is suspended and
 * only ever instantiated by `retailops jobs run`, and stays inert even if someone unsuspends it.
 */
export const ONE_OFF_SCHEDULE = '0 0 31 2 *'

/** The variable a job reads a service's URL from: ORDERS_URL for orders, SEARCH_INDEX_URL for search-index. */
export function serviceUrlVariable(service: string): string {
  return `${envName(service)}_URL`
}

/**
 * A job's objects: its ServiceAccount (no token), a NetworkPolicy (no ingress; egress to the
 * services it dependsOn and its declared egress) and the CronJob, whose pod template is Pod
 * Security "restricted". A job without a schedule is a suspended CronJob that `jobs run` starts.
 */
function renderJob(config: RetailOpsConfig, env: ResolvedEnvironment, input: JobInput): KubeObject[] {
  const {job, spec, image, namespace, common} = input
  const tenantSuffix =
    input.model === 'dedicated-namespace' || input.model === 'dedicated-cluster' ? `-${input.tenants[0].name}` : ''
  const selector = {[LABEL.job]: job, [LABEL.instance]: labelValue(`${job}${tenantSuffix}`)}
  const version = labelValue(image.version ?? config.version) || 'unknown'
  const labels: Record<string, string> = {
    ...common,
    ...selector,
    [LABEL.name]: job,
    [LABEL.version]: version,
    [LABEL.component]: 'job',
    [LABEL.tier]: spec.tier,
  }
  const podLabels: Record<string, string> = {
    ...selector,
    [LABEL.name]: job,
    [LABEL.version]: version,
    [LABEL.partOf]: config.project,
    [LABEL.tier]: spec.tier,
    ...(common[LABEL.tenant] ? {[LABEL.tenant]: common[LABEL.tenant]} : {}),
  }
  const meta = (extra: Record<string, unknown> = {}) => ({name: job, namespace, labels, ...extra})
  const reachable = spec.dependsOn.filter((d) => input.present.includes(d))
  const storage = ephemeralStorage(config, spec)
  const base = manifestTemplate('cronjob.yaml') as {
    spec: {jobTemplate: {spec: {template: {spec: {containers: Record<string, unknown>[]}}}}}
  }
  const vars: Record<string, unknown>[] = [
    {name: 'JOB_NAME', value: job},
    {name: 'APP_VERSION', valueFrom: {fieldRef: {fieldPath: `metadata.labels['${LABEL.version}']`}}},
    {name: 'RETAILOPS_ENVIRONMENT', value: env.name},
    {name: 'POD_NAME', valueFrom: {fieldRef: {fieldPath: 'metadata.name'}}},
    {name: 'POD_NAMESPACE', valueFrom: {fieldRef: {fieldPath: 'metadata.namespace'}}},
    ...reachable.map((d) => ({name: serviceUrlVariable(d), value: `http://${d}:${config.services[d].port}`})),
  ]
  if (input.model === 'shared')
    vars.push({name: 'RETAILOPS_TENANTS', value: input.tenants.map((t) => t.name).join(',')})
  else if (input.model !== 'single') vars.push({name: 'RETAILOPS_TENANT', value: input.tenants[0].name})
  for (const [name, value] of Object.entries(spec.env)) {
    maskSecret(name, value)
    const i = vars.findIndex((v) => v.name === name)
    if (i >= 0) vars.splice(i, 1)
    vars.push({name, value})
  }
  const container = {
    ...base.spec.jobTemplate.spec.template.spec.containers[0],
    name: job,
    image: image.ref,
    ...(spec.command ? {command: spec.command} : {}),
    ...(spec.args ? {args: spec.args} : {}),
    env: vars,
    ...containerSources(spec, storage),
  }
  const egress: Record<string, unknown>[] = [
    ...reachable.map((d) => ({
      to: [{podSelector: {matchLabels: {[LABEL.service]: d}}}],
      ports: [{port: config.services[d].port, protocol: 'TCP'}],
    })),
    ...spec.egress.map(peerRule),
  ]
  const cronJob = fromTemplate('cronjob.yaml', {
    metadata: meta({annotations: {[ANNOTATION.image]: image.ref, [ANNOTATION.configVersion]: config.version}}),
    spec: {
      schedule: spec.schedule ?? ONE_OFF_SCHEDULE,
      ...(spec.timeZone ? {timeZone: spec.timeZone} : {}),
      suspend: spec.schedule ? spec.suspend : true,
      concurrencyPolicy: spec.concurrencyPolicy,
      ...(spec.startingDeadlineSeconds ? {startingDeadlineSeconds: spec.startingDeadlineSeconds} : {}),
      successfulJobsHistoryLimit: spec.successfulJobsHistoryLimit,
      failedJobsHistoryLimit: spec.failedJobsHistoryLimit,
      jobTemplate: {
        metadata: {labels: podLabels},
        spec: {
          backoffLimit: spec.backoffLimit,
          ...(spec.failOnExitCodes?.length
            ? {
                podFailurePolicy: {
                  rules: [
                    {
                      action: 'FailJob',
                      // The API wants the values in ascending order.
                      onExitCodes: {
                        containerName: container.name,
                        operator: 'In',
                        values: [...spec.failOnExitCodes].sort((a, b) => a - b),
                      },
                    },
                  ],
                },
              }
            : {}),
          activeDeadlineSeconds: spec.activeDeadlineSeconds,
          ttlSecondsAfterFinished: spec.ttlSecondsAfterFinished,
          template: {
            metadata: {labels: podLabels},
            spec: {
              serviceAccountName: job,
              containers: [container],
              ...workloadPlacement(config, spec, `jobs.${job}`, selector),
            },
          },
        },
      },
    },
  })
  return [
    fromTemplate('serviceaccount.yaml', {metadata: meta(), automountServiceAccountToken: false}),
    fromTemplate('networkpolicy.yaml', {
      metadata: meta(),
      spec: {
        podSelector: {matchLabels: selector},
        policyTypes: ['Ingress', 'Egress'],
        ...(egress.length > 0 ? {egress} : {}),
      },
    }),
    cronJob,
  ]
}

/** A service's or job's container: its ConfigMaps and Secrets as environment, its requests and limits. */
function containerSources(
  w: Pick<ServiceConfig, 'secrets' | 'configMaps' | 'resources'>,
  storage: {request: string; limit: string},
): Record<string, unknown> {
  return {
    ...(w.secrets.length + w.configMaps.length > 0
      ? {
          envFrom: [
            ...w.configMaps.map((name) => ({configMapRef: {name}})),
            ...w.secrets.map((name) => ({secretRef: {name}})),
          ],
        }
      : {}),
    resources: {
      requests: {
        cpu: String(w.resources.requests.cpu),
        memory: String(w.resources.requests.memory),
        'ephemeral-storage': storage.request,
      },
      limits: {
        cpu: String(w.resources.limits.cpu),
        memory: String(w.resources.limits.memory),
        'ephemeral-storage': storage.limit,
      },
    },
  }
}
