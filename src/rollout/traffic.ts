/**
 * Traffic routers. Gateway API (the default) writes HTTPRoute backendRefs weights; nginx writes
 * a canary Ingress with ingress-nginx's canary annotations; replicas approximates the weight
 * with the ratio of canary to stable pods behind the service's own Service. Every router first
 * points traffic at a `<service>-stable` Service pinned to the stable pods' pod-template-hash,
 * so canary pods never receive traffic the router did not give them, and restores the route as
 * it was when the rollout ends.
 */
import type {Deployment, HTTPRoute, HorizontalPodAutoscaler, Ingress, Service} from '../kubernetes/kinds.js'
import {NotFoundError} from '../errors/index.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {PATHS} from './kube.js'
import type {RolloutState, RouterKind} from './types.js'

export const TRACK_LABEL = 'retailops.dev/track'
export const ROLLOUT_LABEL = 'retailops.dev/rollout'
export const NGINX = 'nginx.ingress.kubernetes.io'

export const names = (service: string) => ({
  stableService: `${service}-stable`,
  canaryService: `${service}-canary`,
  previewService: `${service}-preview`,
  canaryDeployment: `${service}-canary`,
  previewDeployment: `${service}-preview`,
  canaryIngress: `${service}-canary`,
})

export interface TrafficRouter {
  readonly kind: RouterKind
  /** Checks what the router needs exists; runs before the first write. */
  validate(state: RolloutState): Promise<void>
  /** Copies the route as it is into state.routeBackup (persisted before prepare changes it). */
  backup(state: RolloutState): Promise<void>
  /** Points traffic at the pinned stable Service (weight 0 to canary). */
  prepare(state: RolloutState, selector: Record<string, string>): Promise<void>
  setWeight(state: RolloutState, weight: number): Promise<void>
  /** The weight the cluster really has now (read back from the route, the Ingress or the pods). */
  actualWeight(state: RolloutState): Promise<number>
  /** Puts the route back as it was and removes what prepare created. */
  restore(state: RolloutState): Promise<void>
}

/** A Service like the service's own (same ports), selecting `selector`. */
export async function ensureService(
  kube: KubeObjects,
  state: RolloutState,
  name: string,
  selector: Record<string, string>,
): Promise<void> {
  const ns = state.namespace
  const base = await kube.get<Service>(PATHS.services(ns), state.service)
  if (!base) throw new NotFoundError(`Service ${ns}/${state.service} does not exist; deploy renders it.`)
  const ports = (base.spec?.ports ?? []).map((p) => ({
    name: p.name,
    port: p.port,
    targetPort: p.targetPort,
    protocol: p.protocol ?? 'TCP',
  }))
  await kube.apply(PATHS.services(ns), {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      labels: {
        'app.kubernetes.io/managed-by': 'retailops',
        'retailops.dev/service': state.service,
        [ROLLOUT_LABEL]: state.id,
      },
    },
    spec: {type: 'ClusterIP', selector, ports},
  })
}

type BackendRef = {name: string; kind?: string; group?: string; port?: number; weight?: number; namespace?: string}
type Rule = {backendRefs?: BackendRef[]; [k: string]: unknown}

const isServiceRef = (ref: BackendRef, name: string) =>
  ref.name === name && (ref.kind ?? 'Service') === 'Service' && !ref.group && !ref.namespace

class GatewayRouter implements TrafficRouter {
  readonly kind = 'gateway' as const
  constructor(private readonly kube: KubeObjects) {}

  private async route(state: RolloutState): Promise<HTTPRoute> {
    const route = await this.kube.get<HTTPRoute>(PATHS.httproutes(state.namespace), state.spec.routeName)
    if (!route) {
      throw new NotFoundError(`HTTPRoute ${state.namespace}/${state.spec.routeName} does not exist (router gateway).`, {
        nextSteps: [
          'Create the HTTPRoute for the service (deploy renders one when the environment has a gateway), set rollout.routeName, or use --router replicas.',
        ],
      })
    }
    return route
  }

  async validate(state: RolloutState): Promise<void> {
    const route = await this.route(state)
    const rules: Rule[] = state.routeBackup ? (state.routeBackup.rules as Rule[]) : (route.spec?.rules ?? [])
    const n = names(state.service)
    if (
      !rules.some((r) => r.backendRefs?.some((b) => isServiceRef(b, state.service) || isServiceRef(b, n.stableService)))
    ) {
      throw new NotFoundError(
        `HTTPRoute ${state.namespace}/${state.spec.routeName} has no backendRef to Service ${state.service}.`,
        {
          nextSteps: [`Add a rule with backendRefs: [{name: ${state.service}, port: …}] to the HTTPRoute.`],
        },
      )
    }
  }

  async prepare(state: RolloutState, selector: Record<string, string>): Promise<void> {
    const n = names(state.service)
    await ensureService(this.kube, state, n.stableService, {
      ...selector,
      'pod-template-hash': state.stable.podTemplateHash!,
    })
    await ensureService(this.kube, state, n.canaryService, {...selector, [TRACK_LABEL]: 'canary'})
    await this.setWeight(state, 0)
  }

  async backup(state: RolloutState): Promise<void> {
    if (!state.routeBackup) state.routeBackup = {rules: (await this.route(state)).spec?.rules ?? []}
  }

  /** Each rule that sent traffic to the service gets the stable and canary Services, weighted. */
  private rules(state: RolloutState, weight: number): Rule[] {
    const n = names(state.service)
    const original = state.routeBackup!.rules as Rule[]
    return original.map((rule) => {
      const ref = rule.backendRefs?.find((b) => isServiceRef(b, state.service))
      if (!ref) return rule
      const others = rule.backendRefs!.filter((b) => b !== ref)
      return {
        ...rule,
        backendRefs: [
          ...others,
          {...ref, name: n.stableService, weight: 100 - weight},
          {...ref, name: n.canaryService, weight},
        ],
      }
    })
  }

  async setWeight(state: RolloutState, weight: number): Promise<void> {
    await this.kube.mergePatch(PATHS.httproutes(state.namespace), state.spec.routeName, {
      metadata: {annotations: {'retailops.dev/canary-weight': String(weight), 'retailops.dev/rollout-id': state.id}},
      spec: {rules: this.rules(state, weight)},
    })
  }

  async actualWeight(state: RolloutState): Promise<number> {
    const route = await this.kube.get<HTTPRoute>(PATHS.httproutes(state.namespace), state.spec.routeName)
    return gatewayWeight(route, state.service)
  }

  async restore(state: RolloutState): Promise<void> {
    if (state.routeBackup) {
      await this.kube.mergePatch(PATHS.httproutes(state.namespace), state.spec.routeName, {
        metadata: {annotations: {'retailops.dev/canary-weight': null, 'retailops.dev/rollout-id': null}},
        spec: {rules: state.routeBackup.rules},
      })
    }
    const n = names(state.service)
    await this.kube.delete(PATHS.services(state.namespace), n.stableService)
    await this.kube.delete(PATHS.services(state.namespace), n.canaryService)
  }
}

/** Canary share of the weights an HTTPRoute gives the service's stable and canary Services. */
export function gatewayWeight(route: HTTPRoute | undefined, service: string): number {
  const n = names(service)
  let stable = 0
  let canary = 0
  for (const rule of (route?.spec?.rules ?? []) as Rule[]) {
    for (const b of rule.backendRefs ?? []) {
      if (isServiceRef(b, n.canaryService)) canary += b.weight ?? 1
      if (isServiceRef(b, n.stableService) || isServiceRef(b, service)) stable += b.weight ?? 1
    }
  }
  return canary + stable === 0 ? 0 : Math.round((canary / (canary + stable)) * 100)
}

class NginxRouter implements TrafficRouter {
  readonly kind = 'nginx' as const
  constructor(private readonly kube: KubeObjects) {}

  private async ingress(state: RolloutState): Promise<Ingress> {
    const ing = await this.kube.get<Ingress>(PATHS.ingresses(state.namespace), state.spec.routeName)
    if (!ing) {
      throw new NotFoundError(`Ingress ${state.namespace}/${state.spec.routeName} does not exist (router nginx).`, {
        nextSteps: ["Create the service's Ingress, set rollout.routeName, or use --router replicas."],
      })
    }
    return ing
  }

  async validate(state: RolloutState): Promise<void> {
    await this.ingress(state)
  }

  /** The Ingress rules with backends renamed from one Service to another. */
  private renamed(rules: unknown[], from: string, to: string): unknown[] {
    return JSON.parse(JSON.stringify(rules), (key, value: unknown) =>
      key === 'service' && value && typeof value === 'object' && (value as {name?: string}).name === from
        ? {...value, name: to}
        : value,
    ) as unknown[]
  }

  async prepare(state: RolloutState, selector: Record<string, string>): Promise<void> {
    const n = names(state.service)
    await ensureService(this.kube, state, n.stableService, {
      ...selector,
      'pod-template-hash': state.stable.podTemplateHash!,
    })
    await ensureService(this.kube, state, n.canaryService, {...selector, [TRACK_LABEL]: 'canary'})
    const ing = await this.ingress(state)
    const rules = state.routeBackup!.rules as unknown[]
    // The stable Ingress sends to the pinned stable Service; the canary Ingress mirrors it for the canary.
    await this.kube.mergePatch(PATHS.ingresses(state.namespace), state.spec.routeName, {
      spec: {rules: this.renamed(rules, state.service, n.stableService)},
    })
    await this.kube.apply(PATHS.ingresses(state.namespace), {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: n.canaryIngress,
        namespace: state.namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'retailops',
          'retailops.dev/service': state.service,
          [ROLLOUT_LABEL]: state.id,
        },
        annotations: {[`${NGINX}/canary`]: 'true', [`${NGINX}/canary-weight`]: '0'},
      },
      spec: {
        ...(ing.spec?.ingressClassName ? {ingressClassName: ing.spec.ingressClassName} : {}),
        rules: this.renamed(rules, state.service, n.canaryService),
      },
    })
  }

  async backup(state: RolloutState): Promise<void> {
    if (!state.routeBackup) state.routeBackup = {rules: (await this.ingress(state)).spec?.rules ?? []}
  }

  async setWeight(state: RolloutState, weight: number): Promise<void> {
    await this.kube.mergePatch(PATHS.ingresses(state.namespace), names(state.service).canaryIngress, {
      metadata: {annotations: {[`${NGINX}/canary-weight`]: String(weight)}},
    })
  }

  async actualWeight(state: RolloutState): Promise<number> {
    const ing = await this.kube.get<Ingress>(PATHS.ingresses(state.namespace), names(state.service).canaryIngress)
    return ing ? Number(ing.metadata.annotations?.[`${NGINX}/canary-weight`] ?? 0) : 0
  }

  async restore(state: RolloutState): Promise<void> {
    const n = names(state.service)
    await this.kube.delete(PATHS.ingresses(state.namespace), n.canaryIngress)
    if (state.routeBackup)
      await this.kube.mergePatch(PATHS.ingresses(state.namespace), state.spec.routeName, {
        spec: {rules: state.routeBackup.rules},
      })
    await this.kube.delete(PATHS.services(state.namespace), n.stableService)
    await this.kube.delete(PATHS.services(state.namespace), n.canaryService)
  }
}

/**
 * No router: the service's own Service selects stable and canary pods alike, so the weight is
 * the share of canary pods. The stable Deployment is scaled down as the canary is scaled up
 * (after the canary's pods are Ready) and scaled back before the canary goes away.
 */
class ReplicaRouter implements TrafficRouter {
  readonly kind = 'replicas' as const
  constructor(private readonly kube: KubeObjects) {}

  async validate(): Promise<void> {}

  /** The stable Deployment's autoscaler, as it is, into state.hpaBackup (persisted before it is pinned). */
  async backup(state: RolloutState): Promise<void> {
    if (state.hpaBackup !== undefined) return
    const hpa = await findAutoscaler(this.kube, state)
    // An autoscaler always has a spec with maxReplicas (the API requires it).
    state.hpaBackup = hpa?.spec
      ? {
          name: hpa.metadata.name,
          ...(hpa.spec.minReplicas === undefined ? {} : {minReplicas: hpa.spec.minReplicas}),
          maxReplicas: hpa.spec.maxReplicas,
        }
      : null
  }

  async prepare(state: RolloutState): Promise<void> {
    await pinAutoscaler(this.kube, state, state.spec.replicas)
  }

  async setWeight(state: RolloutState, weight: number): Promise<void> {
    const stable = stableReplicasFor(state.spec.replicas, weight)
    // The autoscaler first: with its bounds at the count set here it cannot move the split.
    await pinAutoscaler(this.kube, state, stable)
    await this.kube.mergePatch(PATHS.deployments(state.namespace), state.service, {spec: {replicas: stable}})
  }

  async actualWeight(state: RolloutState): Promise<number> {
    const [stable, canary] = await Promise.all([
      this.kube.get<Deployment>(PATHS.deployments(state.namespace), state.service),
      this.kube.get<Deployment>(PATHS.deployments(state.namespace), names(state.service).canaryDeployment),
    ])
    const s = stable?.status?.readyReplicas ?? 0
    const c = canary?.status?.readyReplicas ?? 0
    return s + c === 0 ? 0 : Math.round((c / (s + c)) * 100)
  }

  async restore(state: RolloutState): Promise<void> {
    // The stable Deployment's replicas are put back by the engine (abort) or by applying the new
    // Deployment (promotion); the autoscaler's bounds are put back here, exactly as they were.
    await restoreAutoscaler(this.kube, state)
  }
}

/** The HorizontalPodAutoscaler whose target is the service's (stable) Deployment. */
export async function findAutoscaler(
  kube: KubeObjects,
  state: RolloutState,
): Promise<HorizontalPodAutoscaler | undefined> {
  const hpas = await kube.list<HorizontalPodAutoscaler>(PATHS.hpas(state.namespace))
  return hpas.find((h) => h.spec?.scaleTargetRef?.kind === 'Deployment' && h.spec.scaleTargetRef.name === state.service)
}

/**
 * While the replica router splits traffic by pod count, the stable Deployment's autoscaler is
 * held at exactly the count the router sets (min = max), so it can neither undo the split nor
 * drift from it. At 0 stable pods it is held at 1: an autoscaler leaves a target at 0 alone.
 */
export async function pinAutoscaler(kube: KubeObjects, state: RolloutState, replicas: number): Promise<void> {
  if (!state.hpaBackup) return
  const n = Math.max(1, replicas)
  await kube.mergePatch(PATHS.hpas(state.namespace), state.hpaBackup.name, {spec: {minReplicas: n, maxReplicas: n}})
}

/** Puts the autoscaler's bounds back as they were before the rollout (idempotent). */
export async function restoreAutoscaler(kube: KubeObjects, state: RolloutState): Promise<void> {
  if (!state.hpaBackup) return
  const exists = await kube.get<HorizontalPodAutoscaler>(PATHS.hpas(state.namespace), state.hpaBackup.name)
  if (!exists) return
  await kube.mergePatch(PATHS.hpas(state.namespace), state.hpaBackup.name, {
    spec: {minReplicas: state.hpaBackup.minReplicas ?? null, maxReplicas: state.hpaBackup.maxReplicas},
  })
}

/** Stable pods when the canary should get `weight` % by pod count (Argo's rounding). */
export function stableReplicasFor(replicas: number, weight: number): number {
  return Math.max(0, replicas - canaryReplicasByRatio(replicas, weight))
}

export function canaryReplicasByRatio(replicas: number, weight: number): number {
  if (weight <= 0) return 0
  if (weight >= 100) return replicas
  return Math.min(replicas, Math.max(1, Math.round((replicas * weight) / 100)))
}

export function makeRouter(kind: RouterKind, kube: KubeObjects): TrafficRouter {
  if (kind === 'gateway') return new GatewayRouter(kube)
  if (kind === 'nginx') return new NginxRouter(kube)
  return new ReplicaRouter(kube)
}
