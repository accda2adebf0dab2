/**
 * The rollout state lives in a ConfigMap that anyone with write access to the namespace can
 * change. Before `rollout promote`, `resume`, `abort` or `undo` apply anything read back from
 * it (the new Deployment, a pod template from history, the route backup, the blue-green
 * selector, pod-template hashes, the route's name, replica counts), it passes the checks a fresh
 * deploy would make: image signatures and policy through the deploy's own policy step, and the
 * routing it would restore must point only where the route or Service points now. The namespace
 * and the service always come from the command; the stored ones are never used to address anything.
 */
import type {
  Container,
  Deployment,
  HTTPRoute,
  HorizontalPodAutoscaler,
  ScaledObject,
  Ingress,
  PodSpec,
  Service,
} from '../kubernetes/kinds.js'
import type {LoadedConfig} from '../config/load.js'
import {mirrorRefusal} from '../config/route-match.js'
import type {DeployPlan} from '../deploy/engine.js'
import type {ImageVerifier} from '../deploy/signature.js'
import {RetailOpsError} from '../errors/index.js'
import {collectionPath, type KubeObject} from '../kubernetes/resources.js'
import type {RunContext} from '../ui/context.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {ownedReplicaSets, PATHS} from './kube.js'
import {formatStep} from './steps.js'
import {names} from './traffic.js'
import {STAGES, type RolloutState} from './types.js'

export interface TrustOptions {
  project: LoadedConfig
  /** The command's --skip-verify: signatures are not checked (loud, recorded), policy still is. */
  skipVerify?: boolean
  verifyImages?: ImageVerifier
}

export class UntrustedState extends RetailOpsError {
  constructor(service: string, problems: string[], details: Record<string, unknown> = {}) {
    super(
      'STATE_UNTRUSTED',
      `The stored rollout state of ${service} fails the checks of a fresh deploy, so nothing was applied: ${problems.join('; ')}.`,
      {
        nextSteps: [
          `Inspect it with \`kubectl get configmap retailops-rollout-${service} -o yaml\`. If it was changed by hand or copied from elsewhere, release again with \`retailops deploy --canary ${service}\` after deleting it (the route and Services the rollout changed are listed in \`retailops rollout get ${service}\`).`,
          'Unsigned images: sign them (`retailops sign`), or pass --skip-verify (recorded on the Deployment) as for a deploy.',
        ],
        details: {problems, ...details},
      },
    )
  }
}

/**
 * Identity first, for every read: the state in ConfigMap retailops-rollout-<service> must be
 * about that service, and it is addressed in the command's namespace whatever it says.
 */
export function bindToCommand(
  state: RolloutState,
  namespace: string,
  service: string,
  project?: LoadedConfig,
): RolloutState {
  const problems: string[] = []
  if (state.service !== service) problems.push(`it names service "${state.service}" but is stored for ${service}`)
  const unknown = state.group.filter((s) => project && !project.config.services[s])
  if (unknown.length > 0) problems.push(`its release group names ${unknown.join(', ')}, not services of this project`)
  if (state.stage !== undefined && !(STAGES as readonly string[]).includes(state.stage))
    problems.push(`its stage "${state.stage}" is none the driver knows (${STAGES.join(', ')})`)
  if (problems.length > 0) throw new UntrustedState(service, problems)
  return {...state, namespace}
}

/** The objects policy judges a Deployment with (its disruption budget, network policies, autoscaler), as they are live. */
const COMPANIONS = [
  {
    kind: 'PodDisruptionBudget',
    apiVersion: 'policy/v1',
    path: (ns: string) => collectionPath('PodDisruptionBudget', ns),
  },
  {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    path: (ns: string) => collectionPath('NetworkPolicy', ns),
  },
  {
    kind: 'HorizontalPodAutoscaler',
    apiVersion: 'autoscaling/v2',
    path: (ns: string) => collectionPath('HorizontalPodAutoscaler', ns),
  },
]

/**
 * A Deployment (stored, or the live one with a stored template) run through the deploy's policy
 * step, with its live companions: every image's signature and every policy rule.
 */
export async function checkDeployment(
  deployment: Deployment,
  service: string,
  kube: KubeObjects,
  options: TrustOptions,
  ctx: RunContext,
): Promise<Deployment> {
  const d = JSON.parse(JSON.stringify(deployment)) as Deployment
  const ns = d.metadata.namespace!
  const companions = (
    await Promise.all(
      COMPANIONS.map(async (k) =>
        (await kube.list(k.path(ns))).map((o) => ({...o, kind: k.kind, apiVersion: k.apiVersion})),
      ),
    )
  ).flat()
  const plan: DeployPlan = {
    environment: '',
    project: options.project.config.project,
    notes: [],
    targets: [
      {
        id: ns,
        cluster: '',
        namespace: ns,
        model: 'single',
        tenants: [],
        applySet: '',
        legacyApplySet: '',
        services: [service],
        jobs: [],
        objects: [d as unknown as KubeObject, ...(companions as unknown as KubeObject[])],
      },
    ],
    // Every image the pod runs, so each is verified as the lock's images are on a deploy.
    images: Object.fromEntries(
      podImages(d).map((ref, i) => [i === 0 ? service : `${service}#${i}`, {service, ref, source: 'flag' as const}]),
    ),
    selection: {services: [service]},
  }
  // The deploy's policy and signature checks load the signing and supply-chain clients: only here,
  // not for every command that reads rollout state (rollout status).
  const {policyStep} = await import('../deploy/engine.js')
  const result = await policyStep(
    plan,
    {project: options.project, skipVerify: options.skipVerify, verifyImages: options.verifyImages},
    ctx,
  )
  const ref = `Deployment ${ns}/${d.metadata.name}`
  const findings = result.report.findings.filter((f) => f.objects.includes(ref))
  for (const f of findings.filter((x) => x.severity === 'warning')) ctx.out.warn(`policy: ${f.object}: ${f.message}`)
  const errors = findings.filter((f) => f.severity === 'error')
  if (errors.length > 0)
    throw new UntrustedState(
      service,
      errors.map((f) => `${f.object}: ${f.message}`),
      {findings},
    )
  return d
}

function podImages(d: Deployment): string[] {
  const spec: Partial<PodSpec> = d.spec?.template?.spec ?? {}
  const ephemeral = (spec.ephemeralContainers ?? []) as Container[]
  return [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...ephemeral]
    .map((c) => c.image)
    .filter((i: string | undefined): i is string => Boolean(i))
}

type BackendRef = {name?: string; kind?: string; group?: string; namespace?: string}

function gatewayBackends(rules: unknown): BackendRef[] {
  return ((Array.isArray(rules) ? rules : []) as {backendRefs?: BackendRef[]}[]).flatMap((r) => r.backendRefs ?? [])
}

function ingressBackends(rules: unknown): string[] {
  const out: string[] = []
  JSON.stringify(rules ?? [], (key, value: unknown) => {
    if (key === 'service' && value && typeof value === 'object' && typeof (value as {name?: unknown}).name === 'string')
      out.push((value as {name: string}).name)
    return value
  })
  return out
}

/**
 * Everything the driver would apply from the stored state, checked against the cluster and the
 * project. Returns the state with the checked Deployment (its name and namespace the command's).
 */
export async function verifyStoredState(
  state: RolloutState,
  kube: KubeObjects,
  options: TrustOptions & {
    /** Check the new Deployment too (not for an abort, which never applies it: an abort must stay possible). */
    deployment: boolean
  },
  ctx: RunContext,
): Promise<RolloutState> {
  const problems: string[] = []
  const {service, namespace} = state
  const n = names(service)
  const config = options.project.config.services[service]
  if (!config) problems.push(`${service} is not a service of this project`)

  // The route it weights is the one the project names, not one the state names.
  const routeName = config?.rollout?.routeName ?? service
  if (state.spec.routeName !== routeName)
    problems.push(
      `it weights route "${state.spec.routeName}", but the project's route for ${service} is "${routeName}"`,
    )

  // Mirroring repeats live requests: only where the project says the service is safe for it (an abort removes it, so is allowed).
  const mirror = state.spec.steps.find((s) => 'setMirrorRoute' in s && s.setMirrorRoute.percent > 0)
  if (options.deployment && mirror && config && mirrorRefusal(service, config))
    problems.push(
      `it would mirror live traffic to the canary (${formatStep(mirror)}), but the project does not declare ${service} safe to mirror (rollout.mirrorSafe)`,
    )

  const stable = await kube.get<Deployment>(PATHS.deployments(namespace), service)
  if (!stable) problems.push(`Deployment ${namespace}/${service} does not exist`)
  // A campaign's prewarm may have raised the autoscaler's ceiling above the configured one: that counts too.
  // (An identity that may not read autoscalers gets no such allowance.)
  // The autoscaler the release stored (its kind and name as rendered when it began), else either kind by the service's name.
  const stored = state.spec.autoscaler
  const hpaName = stored === undefined ? service : stored?.kind === 'HorizontalPodAutoscaler' ? stored.name : undefined
  const scaledObjectName = stored === undefined ? service : stored?.kind === 'ScaledObject' ? stored.name : undefined
  const hpa = hpaName
    ? await kube
        .get<HorizontalPodAutoscaler>(collectionPath('HorizontalPodAutoscaler', namespace), hpaName)
        .catch(() => undefined)
    : undefined
  // A KEDA ScaledObject's ceiling likewise (none where the cluster has no KEDA).
  const scaledObject = scaledObjectName
    ? await kube.get<ScaledObject>(collectionPath('ScaledObject', namespace), scaledObjectName).catch(() => undefined)
    : undefined
  const maxReplicas = Math.max(
    config?.scaling.maxReplicas ?? 0,
    stable?.spec?.replicas ?? 0,
    hpa?.spec?.maxReplicas ?? 0,
    scaledObject?.spec?.maxReplicaCount ?? 0,
  )
  if (!Number.isInteger(state.spec.replicas) || state.spec.replicas < 0 || state.spec.replicas > maxReplicas)
    problems.push(
      `it would scale ${service} to ${state.spec.replicas} replicas (at most ${maxReplicas}: scaling.maxReplicas, the live count or the autoscaler's ceiling)`,
    )
  if (state.spec.maxReplicas > maxReplicas)
    problems.push(
      `its canary may grow to ${state.spec.maxReplicas} replicas (at most ${maxReplicas}: scaling.maxReplicas, the live count or the autoscaler's ceiling)`,
    )

  // Pod-template hashes pin the stable and canary Services: each must be a ReplicaSet of the right Deployment.
  if (stable && state.stable.podTemplateHash) {
    const hashes = (await ownedReplicaSets(kube, stable)).map((rs) => rs.metadata.labels?.['pod-template-hash'])
    if (!hashes.includes(state.stable.podTemplateHash))
      problems.push(
        `its stable pod-template-hash ${state.stable.podTemplateHash} is not a ReplicaSet of Deployment ${service}`,
      )
  }
  const canaryName = state.spec.strategy === 'blue-green' ? n.previewDeployment : n.canaryDeployment
  const canary = state.canary.podTemplateHash
    ? await kube.get<Deployment>(PATHS.deployments(namespace), canaryName)
    : undefined
  if (canary && state.canary.podTemplateHash) {
    const hashes = (await ownedReplicaSets(kube, canary)).map((rs) => rs.metadata.labels?.['pod-template-hash'])
    if (!hashes.includes(state.canary.podTemplateHash))
      problems.push(
        `its canary pod-template-hash ${state.canary.podTemplateHash} is not a ReplicaSet of Deployment ${canaryName}`,
      )
  }

  // What it would restore may send traffic only where the route or Service sends it now (or to the service itself).
  if (state.routeBackup) {
    if (state.spec.strategy === 'blue-green') {
      const selector = state.routeBackup.selector as Record<string, string> | undefined
      const active = await kube.get<Service>(PATHS.services(namespace), service)
      const now = {...(active?.spec?.selector ?? {})} as Record<string, string>
      delete now['pod-template-hash']
      const podLabels = (stable?.spec?.template?.metadata?.labels ?? {}) as Record<string, string>
      const valid = selector && typeof selector === 'object' && Object.keys(selector).length > 0
      const selectsService =
        valid && Object.entries(selector).every(([k, v]) => podLabels[k] === v && k !== 'pod-template-hash')
      if (
        !valid ||
        !selectsService ||
        JSON.stringify(Object.entries(selector).sort()) !== JSON.stringify(Object.entries(now).sort())
      ) {
        problems.push(
          `its stored active-Service selector ${JSON.stringify(selector)} is not the selector of Service ${service} (${JSON.stringify(now)})`,
        )
      }
    } else if (state.spec.router === 'gateway') {
      const route = await kube.get<HTTPRoute>(PATHS.httproutes(namespace), routeName)
      const allowed = new Set([
        service,
        ...gatewayBackends(route?.spec?.rules)
          .map((b) => b.name)
          .filter((x) => x !== n.stableService && x !== n.canaryService),
      ])
      const bad = gatewayBackends(state.routeBackup.rules).filter(
        (b) =>
          !b.name ||
          !allowed.has(b.name) ||
          (b.kind ?? 'Service') !== 'Service' ||
          Boolean(b.group) ||
          (b.namespace !== undefined && b.namespace !== namespace),
      )
      if (!Array.isArray(state.routeBackup.rules) || bad.length > 0)
        problems.push(
          `its route backup sends traffic to ${bad.map((b) => `${b.namespace ? `${b.namespace}/` : ''}${b.name}`).join(', ') || 'nothing valid'}, where HTTPRoute ${routeName} does not`,
        )
    } else if (state.spec.router === 'nginx') {
      const ingress = await kube.get<Ingress>(PATHS.ingresses(namespace), routeName)
      const allowed = new Set([service, ...ingressBackends(ingress?.spec?.rules).filter((x) => x !== n.stableService)])
      const bad = ingressBackends(state.routeBackup.rules).filter((name) => !allowed.has(name))
      if (!Array.isArray(state.routeBackup.rules) || bad.length > 0)
        problems.push(
          `its Ingress backup sends traffic to ${bad.join(', ') || 'nothing valid'}, where Ingress ${routeName} does not`,
        )
    }
  }

  // The new Deployment: the command's name and namespace, then signatures and policy as on a deploy.
  const desired = state.desired as Deployment
  if (options.deployment && (!desired || desired.kind !== 'Deployment' || !desired.spec?.template))
    problems.push('its new Deployment is missing or not a Deployment')
  if (problems.length > 0) throw new UntrustedState(service, problems)
  if (!options.deployment) return state
  const bound = {...desired, metadata: {...desired.metadata, name: service, namespace}}
  const checked = await checkDeployment(bound, service, kube, options, ctx)
  return {...state, desired: checked as unknown as Record<string, unknown>}
}
