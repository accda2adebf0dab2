import {hasEmbeddedSecret, isSecretName} from '../ui/secrets.js'
import {
  EMPTY_NODE_POOLS,
  type PlacementPolicy,
  type PodSpecPlacement,
  placementKey,
  spotOnlyReason,
} from '../config/placement.js'
import {LABEL} from './labels.js'
import {type ContainerField, containerImages} from './pods.js'
import {type KubeObject, objectRef} from './resources.js'

/**
 * Policy checks on rendered objects, before anything is applied. Pure: everything it needs
 * (signature results, whether signing is required) is passed in, so it runs the same in
 * `render`, `diff`, `deploy` and tests. Errors block a deploy; warnings are reported.
 */
export type Severity = 'error' | 'warning'

export interface PolicyFinding {
  severity: Severity
  rule: string
  /** "Deployment shop/checkout" (the first, when the same finding applies to several) */
  object: string
  /** Every object the finding applies to (the same service in several tenant namespaces). */
  objects: string[]
  message: string
  fix: string
}

export type SignatureStatus = 'verified' | 'unsigned' | 'invalid' | 'skipped' | 'unavailable'

export interface SignatureResult {
  image: string
  status: SignatureStatus
  message?: string
  /** verified: whether the signature names the image's repository (false for cosign v3's own bundles, which name none). */
  repositoryBound?: boolean
}

export interface PolicyOptions {
  /**
   * Signature results by image reference, when verification ran (deploy; not render or diff).
   * Once given, it must cover every image of every pod template: an image missing here was never
   * verified and counts like an unsigned one.
   */
  signatures?: Record<string, SignatureResult>
  /** signing.required: an unverifiable image is an error rather than a warning. */
  signingRequired?: boolean
  /** Label holding the tier (revenue-critical services get stricter checks). */
  tierLabel?: string
  /** Node pools and each service's resolved placement: revenue-critical pods are refused on spot alone. */
  placement?: PlacementPolicy
}

export interface PolicyReport {
  ok: boolean
  errors: number
  warnings: number
  findings: PolicyFinding[]
}

interface Container {
  name: string
  image?: string
  securityContext?: Record<string, unknown> & {capabilities?: {add?: string[]; drop?: string[]}}
  resources?: {requests?: Record<string, unknown>; limits?: Record<string, unknown>}
  readinessProbe?: unknown
  livenessProbe?: unknown
  ports?: {hostPort?: number}[]
  env?: {name: string; value?: string}[]
}

interface PodSpec extends PodSpecPlacement {
  containers?: Container[]
  initContainers?: Container[]
  securityContext?: Record<string, unknown>
  hostNetwork?: boolean
  hostPID?: boolean
  hostIPC?: boolean
  volumes?: {name: string; hostPath?: unknown}[]
  automountServiceAccountToken?: boolean
}

const DIGEST_REF = /@sha256:[a-f0-9]{64}$/

/** A label selector (matchLabels and matchExpressions) tested against labels. */
export function selectorMatches(
  selector:
    | {matchLabels?: Record<string, string>; matchExpressions?: {key: string; operator: string; values?: string[]}[]}
    | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return false
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key)
    const value = labels[e.key]
    if (e.operator === 'In' && !(has && e.values?.includes(value))) return false
    if (e.operator === 'NotIn' && has && e.values?.includes(value)) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

export function checkPolicy(objects: KubeObject[], options: PolicyOptions = {}): PolicyReport {
  const findings: PolicyFinding[] = []
  const tierLabel = options.tierLabel ?? 'retailops.dev/tier'
  const placement = options.placement ?? {nodePools: EMPTY_NODE_POOLS, services: {}}
  // One finding per severity, rule and message, in the order first seen (a Map: 20,000 objects repeat a few findings).
  const bySame = new Map<string, PolicyFinding>()
  const add = (severity: Severity, rule: string, obj: KubeObject, message: string, fix: string) => {
    const key = `${severity}\0${rule}\0${message}`
    const same = bySame.get(key)
    if (same) same.objects.push(objectRef(obj))
    else {
      const finding = {severity, rule, object: objectRef(obj), objects: [objectRef(obj)], message, fix}
      bySame.set(key, finding)
      findings.push(finding)
    }
  }
  // Autoscalers, disruption budgets and network policies by namespace, in render order: looked up
  // per Deployment (a search of every object per Deployment is quadratic in a large project).
  const inNamespace = (kind: string) => {
    const out = new Map<string | undefined, KubeObject[]>()
    for (const o of objects) {
      if (o.kind !== kind) continue
      const list = out.get(o.metadata.namespace)
      if (list) list.push(o)
      else out.set(o.metadata.namespace, [o])
    }
    return out
  }
  const autoscalers = inNamespace('HorizontalPodAutoscaler')
  for (const [ns, list] of inNamespace('ScaledObject')) autoscalers.set(ns, [...list, ...(autoscalers.get(ns) ?? [])])
  const budgets = inNamespace('PodDisruptionBudget')
  const networkPolicies = inNamespace('NetworkPolicy')

  // A job's CronJob gets the same pod-security, resource, secret and network checks as a service's
  // Deployment; probes and availability (replicas, disruption budgets) are a long-running service's.
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'CronJob')
  for (const d of workloads) {
    const batch = d.kind === 'CronJob'
    const spec = (batch ? (d.spec as {jobTemplate?: {spec?: unknown}} | undefined)?.jobTemplate?.spec : d.spec) as {
      replicas?: number
      template?: {metadata?: {labels?: Record<string, string>}; spec?: PodSpec}
    }
    const pod = spec?.template?.spec ?? {}
    const podLabels = spec?.template?.metadata?.labels ?? {}
    const ns = d.metadata.namespace
    const tier = d.metadata.labels?.[tierLabel] ?? podLabels[tierLabel]
    const podSc = pod.securityContext ?? {}

    if (pod.hostNetwork)
      add(
        'error',
        'host-network',
        d,
        'uses the host network namespace (hostNetwork: true)',
        'Remove hostNetwork; reach the pod through a Service.',
      )
    if (pod.hostPID || pod.hostIPC)
      add('error', 'host-namespaces', d, 'shares the host PID or IPC namespace', 'Remove hostPID and hostIPC.')
    for (const v of pod.volumes ?? []) {
      if (v.hostPath)
        add(
          'error',
          'host-path',
          d,
          `mounts a hostPath volume "${v.name}"`,
          'Use an emptyDir, a ConfigMap or a PersistentVolumeClaim instead of hostPath.',
        )
    }
    if (pod.automountServiceAccountToken !== false) {
      add(
        'warning',
        'service-account-token',
        d,
        'mounts a Kubernetes API token into its pods',
        'Set services.<name>.needsServiceAccountToken: false unless the service calls the Kubernetes API.',
      )
    }

    for (const c of [...(pod.containers ?? []), ...(pod.initContainers ?? [])]) {
      const sc = c.securityContext ?? {}
      const where = `container "${c.name}"`
      if (sc.privileged === true)
        add('error', 'privileged', d, `${where} runs privileged`, 'Remove securityContext.privileged.')
      const nonRoot = (sc.runAsNonRoot ?? podSc.runAsNonRoot) === true
      const uid = (sc.runAsUser ?? podSc.runAsUser) as number | undefined
      if (!nonRoot || uid === 0)
        add(
          'error',
          'run-as-root',
          d,
          `${where} may run as root (runAsNonRoot is not true${uid === 0 ? ', runAsUser is 0' : ''})`,
          'Set securityContext.runAsNonRoot: true and runAsUser: 65532 (the images are built to run as a non-root user).',
        )
      if (sc.allowPrivilegeEscalation !== false)
        add(
          'error',
          'privilege-escalation',
          d,
          `${where} allows privilege escalation`,
          'Set securityContext.allowPrivilegeEscalation: false.',
        )
      const drop = sc.capabilities?.drop ?? []
      if (!drop.includes('ALL'))
        add(
          'error',
          'capabilities',
          d,
          `${where} does not drop all Linux capabilities`,
          'Set securityContext.capabilities.drop: [ALL].',
        )
      const added = (sc.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE')
      if (added.length > 0)
        add(
          'error',
          'capabilities',
          d,
          `${where} adds capabilities ${added.join(', ')}`,
          'Remove capabilities.add (only NET_BIND_SERVICE is allowed).',
        )
      if (sc.readOnlyRootFilesystem !== true)
        add(
          'warning',
          'read-only-root',
          d,
          `${where} has a writable root filesystem`,
          'Set securityContext.readOnlyRootFilesystem: true and write to the /tmp emptyDir.',
        )
      const seccomp = ((sc.seccompProfile ?? podSc.seccompProfile) as {type?: string} | undefined)?.type
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
        add(
          'warning',
          'seccomp',
          d,
          `${where} has no seccomp profile`,
          'Set securityContext.seccompProfile.type: RuntimeDefault.',
        )
      for (const kind of ['cpu', 'memory']) {
        if (c.resources?.limits?.[kind] === undefined)
          add(
            'error',
            'limits',
            d,
            `${where} has no ${kind} limit`,
            `Set services.<name>.resources.limits.${kind} in retailops.yaml.`,
          )
        if (c.resources?.requests?.[kind] === undefined)
          add(
            'error',
            'requests',
            d,
            `${where} has no ${kind} request`,
            `Set services.<name>.resources.requests.${kind} in retailops.yaml.`,
          )
      }
      if (
        c.resources?.requests?.['ephemeral-storage'] === undefined ||
        c.resources?.limits?.['ephemeral-storage'] === undefined
      ) {
        add(
          'warning',
          'ephemeral-storage',
          d,
          `${where} has no ephemeral-storage request and limit: its logs and emptyDirs can fill the node's disk`,
          'Set services.<name>.resources.requests/limits.ephemeralStorage (or tiers.<tier>.ephemeralStorage) in retailops.yaml.',
        )
      }
      if (!batch && (pod.containers ?? []).includes(c)) {
        if (!c.readinessProbe)
          add(
            'error',
            'probes',
            d,
            `${where} has no readiness probe`,
            'Set services.<name>.probes.readiness (an HTTP path).',
          )
        if (!c.livenessProbe)
          add(
            'error',
            'probes',
            d,
            `${where} has no liveness probe`,
            'Set services.<name>.probes.liveness (an HTTP path).',
          )
      }
      for (const p of c.ports ?? []) {
        if (p.hostPort)
          add(
            'error',
            'host-port',
            d,
            `${where} binds host port ${p.hostPort}`,
            'Remove hostPort; expose the port through a Service.',
          )
      }
      for (const e of c.env ?? []) {
        if (typeof e.value !== 'string' || e.value === '') continue
        if (hasEmbeddedSecret(e.value))
          add(
            'error',
            'plain-text-secret',
            d,
            `${where} env ${e.name} holds a URL with a password in plain text`,
            'Put the URL in a Secret and reference it (for tenants: database.urlEnv), never inline it.',
          )
        else if (isSecretName(e.name))
          add(
            'error',
            'plain-text-secret',
            d,
            `${where} env ${e.name} looks like a secret in plain text`,
            `Move ${e.name} into a Secret listed in services.<name>.secrets.`,
          )
      }
    }

    // Placement: a spot reclaim must never take a revenue-critical service down whole.
    if (tier === 'revenue-critical') {
      const reason = spotOnlyReason(pod, placement.nodePools)
      if (reason) {
        const label = batch ? LABEL.job : LABEL.service
        const service = podLabels[label] ?? d.metadata.labels?.[label]
        const resolved = service ? (batch ? placement.jobs : placement.services)?.[service] : undefined
        const key = resolved ? `${resolved.key}.placement` : undefined
        const said =
          resolved?.spot === 'required'
            ? `${placementKey(resolved, 'spot')} is required`
            : resolved?.pools && resolved.pools.every((n) => placement.nodePools.pools[n]?.spot)
              ? `${placementKey(resolved, 'pools')} lists only spot pools (${resolved.pools.join(', ')})`
              : `${reason}${resolved ? ' (an overlay?)' : ''}`
        add(
          'error',
          'spot-placement',
          d,
          `is revenue-critical but can run only on spot capacity: ${said}. The cloud reclaims spot nodes at short notice, and a reclaim would take ${service ?? 'it'} down whole`,
          key
            ? `Set ${key}.spot to preferred or allowed (spot beside on-demand nodes) or never, and list an on-demand pool in ${key}.pools; a revenue-critical service never runs on spot alone.`
            : 'Remove the spot-only node selector or affinity, or move the workload out of the revenue-critical tier.',
        )
      }
    }

    // Network: some NetworkPolicy must select these pods.
    const netpol = (networkPolicies.get(ns) ?? []).some((o) =>
      selectorMatches((o.spec as {podSelector?: never})?.podSelector ?? {}, podLabels),
    )
    if (!netpol)
      add(
        'error',
        'network-policy',
        d,
        'no NetworkPolicy selects its pods: any pod in the cluster can reach them',
        'Restore the rendered NetworkPolicy (an overlay may have removed it).',
      )
    if (batch) continue

    // Availability: revenue-critical services keep two replicas and a disruption budget.
    const hpa = autoscalers
      .get(ns)
      ?.find((o) => (o.spec as {scaleTargetRef?: {name?: string}})?.scaleTargetRef?.name === d.metadata.name)
    // A ScaledObject without minReplicaCount scales to zero (KEDA's default).
    const minReplicas = hpa
      ? hpa.kind === 'ScaledObject'
        ? ((hpa.spec as {minReplicaCount?: number}).minReplicaCount ?? 0)
        : ((hpa.spec as {minReplicas?: number}).minReplicas ?? 1)
      : (spec.replicas ?? 1)
    const pdb = budgets.get(ns)?.find((o) => selectorMatches((o.spec as {selector?: never})?.selector, podLabels))
    if (tier === 'revenue-critical') {
      if (minReplicas < 2)
        add(
          'error',
          'replicas',
          d,
          `is revenue-critical but runs ${minReplicas} replica${minReplicas === 1 ? '' : 's'}`,
          'Set services.<name>.scaling.minReplicas to 2 or more (3 spreads over three zones).',
        )
      if (!pdb)
        add(
          'error',
          'disruption-budget',
          d,
          'is revenue-critical but has no PodDisruptionBudget',
          'Keep minReplicas at 2 or more so retailops renders a PodDisruptionBudget (maxUnavailable: 1).',
        )
    } else if (minReplicas >= 2 && !pdb) {
      add(
        'warning',
        'disruption-budget',
        d,
        'has no PodDisruptionBudget: a node drain may evict every replica at once',
        'Restore the rendered PodDisruptionBudget (an overlay may have removed it).',
      )
    }
    if (pdb) {
      const ps = pdb.spec as {maxUnavailable?: number | string; minAvailable?: number | string}
      if (
        ps.maxUnavailable === 0 ||
        ps.maxUnavailable === '0%' ||
        (typeof ps.minAvailable === 'number' && ps.minAvailable >= minReplicas) ||
        ps.minAvailable === '100%'
      ) {
        add(
          'warning',
          'disruption-budget',
          pdb,
          'allows no voluntary disruption: node drains and cluster upgrades will block',
          'Use maxUnavailable: 1.',
        )
      }
    }
  }

  // Images of every pod template (Deployments, Jobs, CronJobs, Pods…), ephemeral containers too.
  for (const c of containerImages(objects))
    checkImage(c.image, c.object, `${CONTAINER_WORDS[c.field]} "${c.container}"`, options, add)

  for (const s of objects.filter((o) => o.kind === 'Service')) {
    const st = (s.spec as {type?: string})?.type
    if (st === 'NodePort' || st === 'LoadBalancer')
      add(
        'warning',
        'service-exposure',
        s,
        `is of type ${st} and reachable from outside the cluster`,
        'Use ClusterIP and route external traffic through the gateway.',
      )
  }

  const errors = findings.filter((f) => f.severity === 'error').length
  return {ok: errors === 0, errors, warnings: findings.length - errors, findings}
}

const CONTAINER_WORDS: Record<ContainerField, string> = {
  containers: 'container',
  initContainers: 'init container',
  ephemeralContainers: 'ephemeral container',
}

function checkImage(
  image: string,
  d: KubeObject,
  where: string,
  options: PolicyOptions,
  add: (s: Severity, rule: string, obj: KubeObject, message: string, fix: string) => void,
): void {
  const required = options.signingRequired ?? true
  if (!DIGEST_REF.test(image)) {
    const unverifiable = options.signatures && required ? '; a tag cannot be verified, and signing is required' : ''
    add(
      'error',
      'image-digest',
      d,
      `${where} uses image "${image}" by tag, not by digest: what runs could change under the same name${unverifiable}`,
      'Run `retailops push` (it records digests in .retailops/artifacts.lock.json) or pass --image SERVICE=REPO@sha256:…; in an overlay, write the image as REPO@sha256:….',
    )
    return
  }
  if (!options.signatures) return
  const sig = options.signatures[image]
  if (!sig) {
    add(
      required ? 'error' : 'warning',
      'signature',
      d,
      `${where}: image ${image} has no signature verification result (it was never verified)`,
      'Verify every image of the rendered objects before policy (deploy does); `retailops verify IMAGE` checks one by hand.',
    )
  } else if (sig.status === 'verified' && sig.repositoryBound === false) {
    add(
      'warning',
      'signature',
      d,
      `${where}: the signature of ${image} names no repository (cosign v3's default), so it is not bound to this one: the same signed content copied into another repository would verify there too`,
      'Sign with `retailops sign` (its bundles and .sig payloads name the repository), or accept the risk.',
    )
  } else if (sig.status === 'skipped') {
    add(
      'warning',
      'signature',
      d,
      `${where}: signature verification of ${image} was SKIPPED (--skip-verify)`,
      'Deploy without --skip-verify once the image is signed (`retailops sign`).',
    )
  } else if (sig.status === 'unsigned' || sig.status === 'invalid') {
    add(
      required ? 'error' : 'warning',
      'signature',
      d,
      `${where}: image ${image} ${sig.status === 'unsigned' ? 'has no valid signature' : 'failed signature verification'}${sig.message ? ` (${sig.message})` : ''}`,
      'Sign it with `retailops sign` (or `retailops sign REGISTRY/REPO@sha256:…` for an image outside the lock), or check signing.publicKey.',
    )
  } else if (sig.status === 'unavailable') {
    add(
      required ? 'error' : 'warning',
      'signature',
      d,
      `${where}: the signature of ${image} could not be verified${sig.message ? ` (${sig.message})` : ''}`,
      'Check that the registry is reachable and signing.publicKey exists; --skip-verify deploys anyway (recorded on the Deployment).',
    )
  }
}
