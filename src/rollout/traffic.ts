/**
 * Traffic routers. Gateway API (the default) writes HTTPRoute backendRefs weights, rules ahead of
 * them that send header or cookie matches to the canary, and a RequestMirror filter; nginx writes
 * a canary Ingress with ingress-nginx's canary annotations (weight, by-header, by-cookie); replicas approximates the weight
 * with the ratio of canary to stable pods behind the service's own Service. Every router first
 * points traffic at a `<service>-stable` Service pinned to the stable pods' pod-template-hash,
 * so canary pods never receive traffic the router did not give them, and restores the route as
 * it was when the rollout ends.
 */
import type {
  Deployment,
  HTTPRoute,
  HorizontalPodAutoscaler,
  Ingress,
  ScaledObject,
  Service,
} from '../kubernetes/kinds.js'
import {cookieHeaderPattern, formatHeaderRoute, type HeaderRouteMatch} from '../config/route-match.js'
import {NotFoundError, UsageError} from '../errors/index.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {autoscalerOf, BOUND_FIELDS, listScaledObjects} from '../kubernetes/autoscalers.js'
import {kubeError} from '../kubernetes/client.js'
import {PATHS} from './kube.js'
import {routingAt, weightOnly} from './steps.js'
import type {RolloutState, RouterKind, Routing} from './types.js'

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
  /** Writes the weight, the header/cookie matches and the mirror share (all of it, absolute: idempotent). */
  setRouting(state: RolloutState, routing: Routing): Promise<void>
  /** The weight the cluster really has now (read back from the route, the Ingress or the pods). */
  actualWeight(state: RolloutState): Promise<number>
  /** What the cluster really sends to the canary now: weight, header/cookie matches, mirror share. */
  actualRouting(state: RolloutState): Promise<ActualRouting>
  /** Puts the route back as it was and removes what prepare created. */
  restore(state: RolloutState): Promise<void>
}

/** Read back from the cluster: the weight, how many header/cookie matches reach the canary, the mirrored share. */
export interface ActualRouting {
  weight: number
  headerRoutes: number
  mirrorPercent: number
}

/** The annotation on a route (or canary Ingress) naming the header, cookie and mirror steps in force, for people. */
export const CANARY_MATCH_ANNOTATION = 'retailops.dev/canary-match'

/** `header:X-Canary=staff,mirror:10%`, or null (the annotation goes) when there is neither. */
export function describeMatches(routing: Routing): string | null {
  const parts = [
    ...routing.headers.map(formatHeaderRoute),
    ...(routing.mirrorPercent > 0 ? [`mirror:${routing.mirrorPercent}%`] : []),
  ]
  return parts.length > 0 ? parts.join(',') : null
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
type HeaderMatch = {name: string; type?: string; value: string}
type Match = {headers?: HeaderMatch[]; [k: string]: unknown}
type Filter = {type: string; requestMirror?: {backendRef: BackendRef; percent?: number}; [k: string]: unknown}
type Rule = {backendRefs?: BackendRef[]; matches?: Match[]; filters?: Filter[]; [k: string]: unknown}

const isServiceRef = (ref: BackendRef, name: string) =>
  ref.name === name && (ref.kind ?? 'Service') === 'Service' && !ref.group && !ref.namespace

/** Gateway API v1.3 limits (HTTPRoute CRD): rules, matches per rule and in all, headers per match, filters per rule. */
export const GATEWAY_LIMITS = {rules: 16, matchesPerRule: 64, matches: 128, headersPerMatch: 16, filtersPerRule: 16}

/** The HTTPRoute header match for a header step (Exact) or a cookie step (RegularExpression on Cookie). */
export function gatewayHeaderMatch(match: HeaderRouteMatch): HeaderMatch {
  return 'cookie' in match
    ? {name: 'Cookie', type: 'RegularExpression', value: cookieHeaderPattern(match.cookie, match.value)}
    : {name: match.header, type: 'Exact', value: match.value}
}

/**
 * The route's rules for `routing`, from the rules as they were before the rollout: each rule that
 * sent traffic to the service is preceded by one rule per header/cookie match (the same matches
 * with the header added, the same filters, only the canary Service as backend) and gets the
 * stable and canary Services, weighted, with a RequestMirror filter to the canary while mirroring.
 * Rules that did not send traffic to the service are left exactly as they were.
 */
export function gatewayRules(original: Rule[], service: string, routing: Routing): Rule[] {
  const n = names(service)
  return original.flatMap((rule) => {
    const ref = rule.backendRefs?.find((b) => isServiceRef(b, service))
    if (!ref) return [rule]
    const {weight: _weight, ...port} = ref
    const canary: BackendRef = {...port, name: n.canaryService}
    const staff = routing.headers.map((h): Rule => {
      const header = gatewayHeaderMatch(h)
      const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [{}]
      // A rule's `name` (experimental channel) must stay unique: the copy goes without it.
      const {name: _name, backendRefs: _refs, matches: _matches, ...rest} = rule
      return {
        ...rest,
        matches: matches.map((m) => ({...m, headers: [...(m.headers ?? []), header]})),
        backendRefs: [canary],
      }
    })
    const others = rule.backendRefs!.filter((b) => b !== ref)
    const mirror: Filter[] =
      routing.mirrorPercent > 0
        ? [{type: 'RequestMirror', requestMirror: {backendRef: canary, percent: routing.mirrorPercent}}]
        : []
    const filters = [...(rule.filters ?? []), ...mirror]
    const weighted: Rule = {
      ...rule,
      ...(filters.length > 0 ? {filters} : {}),
      backendRefs: [
        ...others,
        {...ref, name: n.stableService, weight: 100 - routing.weight},
        {...ref, name: n.canaryService, weight: routing.weight},
      ],
    }
    return [...staff, weighted]
  })
}

/**
 * Why the route cannot carry the rollout's header, cookie and mirror steps (the Gateway API's
 * limits, a header the rule already matches on), checked before the first write.
 */
export function gatewayRoutingProblems(original: Rule[], service: string, routing: Routing): string[] {
  const problems: string[] = []
  const rules = gatewayRules(original, service, routing)
  if (rules.length > GATEWAY_LIMITS.rules)
    problems.push(
      `the header and cookie steps need ${rules.length} rules, and an HTTPRoute holds at most ${GATEWAY_LIMITS.rules} (${original.length} now)`,
    )
  const matches = rules.reduce((sum, r) => sum + Math.max(1, r.matches?.length ?? 0), 0)
  if (matches > GATEWAY_LIMITS.matches)
    problems.push(
      `the rules would hold ${matches} matches in all; an HTTPRoute holds at most ${GATEWAY_LIMITS.matches}`,
    )
  for (const [i, rule] of original.entries()) {
    if (!rule.backendRefs?.some((b) => isServiceRef(b, service))) continue
    for (const h of routing.headers) {
      const header = gatewayHeaderMatch(h).name.toLowerCase()
      for (const m of rule.matches ?? []) {
        if ((m.headers ?? []).some((x) => x.name.toLowerCase() === header))
          problems.push(
            `rule ${i + 1} already matches on header ${header}, so ${formatHeaderRoute(h)} could never match there: pick another header`,
          )
        else if ((m.headers?.length ?? 0) >= GATEWAY_LIMITS.headersPerMatch)
          problems.push(
            `rule ${i + 1} already matches ${GATEWAY_LIMITS.headersPerMatch} headers, the most a match may have`,
          )
      }
    }
    if (routing.mirrorPercent > 0 && (rule.filters?.length ?? 0) >= GATEWAY_LIMITS.filtersPerRule)
      problems.push(
        `rule ${i + 1} already has ${GATEWAY_LIMITS.filtersPerRule} filters; a mirror filter would exceed them`,
      )
  }
  return [...new Set(problems)]
}

/** The fullest routing a rollout's steps ask for: every header step, and a mirror if any step mirrors. */
export function fullestRouting(state: RolloutState): Routing {
  const steps = state.spec.steps
  const all = routingAt(steps, steps.length - 1, 0)
  const mirrors = steps.some((s) => 'setMirrorRoute' in s && s.setMirrorRoute.percent > 0)
  return {...all, mirrorPercent: mirrors ? 1 : 0}
}

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
    const rules = (state.routeBackup ? state.routeBackup.rules : (route.spec?.rules ?? [])) as Rule[]
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
    const problems = gatewayRoutingProblems(rules, state.service, fullestRouting(state))
    if (problems.length > 0)
      throw new UsageError(
        `HTTPRoute ${state.namespace}/${state.spec.routeName} cannot carry the steps of ${state.service}: ${problems.join('; ')}.`,
        {nextSteps: ['Use fewer header/cookie steps, or split the route; nothing was changed.']},
      )
  }

  async prepare(state: RolloutState, selector: Record<string, string>): Promise<void> {
    const n = names(state.service)
    await ensureService(this.kube, state, n.stableService, {
      ...selector,
      'pod-template-hash': state.stable.podTemplateHash!,
    })
    await ensureService(this.kube, state, n.canaryService, {...selector, [TRACK_LABEL]: 'canary'})
    await this.setRouting(state, weightOnly(0))
  }

  async backup(state: RolloutState): Promise<void> {
    if (!state.routeBackup) state.routeBackup = {rules: (await this.route(state)).spec?.rules ?? []}
  }

  async setRouting(state: RolloutState, routing: Routing): Promise<void> {
    await this.kube.mergePatch(PATHS.httproutes(state.namespace), state.spec.routeName, {
      metadata: {
        annotations: {
          'retailops.dev/canary-weight': String(routing.weight),
          'retailops.dev/rollout-id': state.id,
          [CANARY_MATCH_ANNOTATION]: describeMatches(routing),
        },
      },
      spec: {rules: gatewayRules(state.routeBackup!.rules as Rule[], state.service, routing)},
    })
  }

  async actualWeight(state: RolloutState): Promise<number> {
    return (await this.actualRouting(state)).weight
  }

  async actualRouting(state: RolloutState): Promise<ActualRouting> {
    const route = await this.kube.get<HTTPRoute>(PATHS.httproutes(state.namespace), state.spec.routeName)
    return gatewayRouting(route, state.service)
  }

  async restore(state: RolloutState): Promise<void> {
    if (state.routeBackup) {
      await this.kube.mergePatch(PATHS.httproutes(state.namespace), state.spec.routeName, {
        metadata: {
          annotations: {
            'retailops.dev/canary-weight': null,
            'retailops.dev/rollout-id': null,
            [CANARY_MATCH_ANNOTATION]: null,
          },
        },
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
  return gatewayRouting(route, service).weight
}

/**
 * What an HTTPRoute sends to the service's canary: its share of the weighted rules (those that
 * also send to stable), the rules that send only to it (header and cookie matches), and the
 * largest share mirrored to it.
 */
export function gatewayRouting(route: HTTPRoute | undefined, service: string): ActualRouting {
  const n = names(service)
  let stable = 0
  let canary = 0
  let headerRoutes = 0
  let mirrorPercent = 0
  for (const rule of (route?.spec?.rules ?? []) as Rule[]) {
    const refs = rule.backendRefs ?? []
    const toStable = refs.filter((b) => isServiceRef(b, n.stableService) || isServiceRef(b, service))
    const toCanary = refs.filter((b) => isServiceRef(b, n.canaryService))
    if (toStable.length > 0) {
      for (const b of toStable) stable += b.weight ?? 1
      for (const b of toCanary) canary += b.weight ?? 1
    } else if (toCanary.some((b) => (b.weight ?? 1) > 0)) headerRoutes += 1
    for (const f of rule.filters ?? []) {
      const target = f.requestMirror?.backendRef
      if (f.type === 'RequestMirror' && target && isServiceRef(target, n.canaryService))
        mirrorPercent = Math.max(mirrorPercent, f.requestMirror?.percent ?? 100)
    }
  }
  return {
    weight: canary + stable === 0 ? 0 : Math.round((canary / (canary + stable)) * 100),
    headerRoutes,
    mirrorPercent,
  }
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

  /** canary-weight, and canary-by-header(-value) / canary-by-cookie for the header and cookie steps. */
  async setRouting(state: RolloutState, routing: Routing): Promise<void> {
    if (routing.mirrorPercent > 0)
      throw new UsageError('the nginx router cannot mirror a share of traffic; mirror steps need the gateway router')
    await this.kube.mergePatch(PATHS.ingresses(state.namespace), names(state.service).canaryIngress, {
      metadata: {annotations: nginxCanaryAnnotations(routing)},
    })
  }

  async actualWeight(state: RolloutState): Promise<number> {
    return (await this.actualRouting(state)).weight
  }

  async actualRouting(state: RolloutState): Promise<ActualRouting> {
    const ing = await this.kube.get<Ingress>(PATHS.ingresses(state.namespace), names(state.service).canaryIngress)
    const a = ing?.metadata.annotations ?? {}
    return {
      weight: ing ? Number(a[`${NGINX}/canary-weight`] ?? 0) : 0,
      headerRoutes: (a[`${NGINX}/canary-by-header`] ? 1 : 0) + (a[`${NGINX}/canary-by-cookie`] ? 1 : 0),
      mirrorPercent: 0,
    }
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
 * ingress-nginx's canary annotations for `routing` (null removes one): the header match as
 * canary-by-header with canary-by-header-value (exact), the cookie as canary-by-cookie (ingress-nginx
 * routes on the value "always"; steps with another value are refused before the rollout starts).
 */
export function nginxCanaryAnnotations(routing: Routing): Record<string, string | null> {
  const header = routing.headers.find((h): h is {header: string; value: string} => 'header' in h)
  const cookie = routing.headers.find((h): h is {cookie: string; value: string} => 'cookie' in h)
  return {
    [`${NGINX}/canary-weight`]: String(routing.weight),
    [`${NGINX}/canary-by-header`]: header?.header ?? null,
    [`${NGINX}/canary-by-header-value`]: header?.value ?? null,
    [`${NGINX}/canary-by-cookie`]: cookie?.cookie ?? null,
    [CANARY_MATCH_ANNOTATION]: describeMatches(routing),
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
    const found = await findAutoscaler(this.kube, state)
    if (found?.kind === 'ScaledObject') {
      // Either bound may be absent (KEDA's defaults, 0 and 100): absent is saved as absent, and restored so.
      const spec = found.object.spec
      state.hpaBackup = {
        kind: 'ScaledObject',
        name: found.object.metadata.name,
        ...(spec?.minReplicaCount === undefined ? {} : {minReplicas: spec.minReplicaCount}),
        ...(spec?.maxReplicaCount === undefined ? {} : {maxReplicas: spec.maxReplicaCount}),
      }
      return
    }
    const hpa = found?.object
    // An HPA always has a spec with maxReplicas (the API requires it).
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

  async setRouting(state: RolloutState, routing: Routing): Promise<void> {
    if (routing.headers.length > 0 || routing.mirrorPercent > 0)
      throw new UsageError('the replicas router cannot match headers or mirror; those steps need the gateway router')
    const weight = routing.weight
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

  async actualRouting(state: RolloutState): Promise<ActualRouting> {
    return {weight: await this.actualWeight(state), headerRoutes: 0, mirrorPercent: 0}
  }

  async restore(state: RolloutState): Promise<void> {
    // The stable Deployment's replicas are put back by the engine (abort) or by applying the new
    // Deployment (promotion); the autoscaler's bounds are put back here, exactly as they were.
    await restoreAutoscaler(this.kube, state)
  }
}

/**
 * The autoscaler of the service's (stable) Deployment: its KEDA ScaledObject when it has one
 * (KEDA's own HPA for it is KEDA's to set), else its HorizontalPodAutoscaler.
 */
export async function findAutoscaler(kube: KubeObjects, state: RolloutState): Promise<ReturnType<typeof autoscalerOf>> {
  const stored = state.spec.autoscaler
  if (stored === null) return undefined
  if (stored) {
    // The one the release rendered, decided when it began: read by its kind and name, never chosen again.
    const found =
      stored.kind === 'ScaledObject'
        ? await kube.get<ScaledObject>(PATHS.scaledobjects(state.namespace), stored.name)
        : await kube.get<HorizontalPodAutoscaler>(PATHS.hpas(state.namespace), stored.name)
    return stored.kind === 'ScaledObject'
      ? chooseAutoscaler(state, [], found ? [found as ScaledObject] : [])
      : chooseAutoscaler(state, found ? [found as HorizontalPodAutoscaler] : [], [])
  }
  const [hpas, scaledObjects] = await Promise.all([
    kube.list<HorizontalPodAutoscaler>(PATHS.hpas(state.namespace)),
    listScaledObjects(kube.http, state.namespace).catch((error: unknown) => {
      throw kubeError(error, `listing ScaledObjects in ${state.namespace}`, kube.server)
    }),
  ])
  return chooseAutoscaler(state, hpas, scaledObjects)
}

/**
 * The autoscaler a rollout acts on: the one its release stored (state.spec.autoscaler: the kind and
 * name deploy rendered when the release began; null: none), else (a state written before it was
 * stored) whichever autoscalerOf finds among the live ones.
 */
export function chooseAutoscaler(
  state: RolloutState,
  hpas: HorizontalPodAutoscaler[],
  scaledObjects: ScaledObject[],
): ReturnType<typeof autoscalerOf> {
  const stored = state.spec.autoscaler
  if (stored === null) return undefined
  if (!stored) return autoscalerOf(state.service, hpas, scaledObjects)
  if (stored.kind === 'ScaledObject') {
    const object = scaledObjects.find((o) => o.metadata.name === stored.name)
    return object ? {kind: 'ScaledObject', object} : undefined
  }
  const object = hpas.find((o) => o.metadata.name === stored.name)
  return object ? {kind: 'HorizontalPodAutoscaler', object} : undefined
}

/** Where the saved autoscaler lives and the names of its bounds. */
function autoscalerFields(backup: NonNullable<RolloutState['hpaBackup']>, namespace: string) {
  return backup.kind === 'ScaledObject'
    ? {path: PATHS.scaledobjects(namespace), ...BOUND_FIELDS.ScaledObject}
    : {path: PATHS.hpas(namespace), ...BOUND_FIELDS.HorizontalPodAutoscaler}
}

/**
 * While the replica router splits traffic by pod count, the stable Deployment's autoscaler is
 * held at exactly the count the router sets (min = max), so it can neither undo the split nor
 * drift from it. At 0 stable pods it is held at 1: an autoscaler leaves a target at 0 alone.
 * A ScaledObject is held the same way, on minReplicaCount and maxReplicaCount (docs/scaling.md
 * says why not KEDA's paused-replicas annotation).
 */
export async function pinAutoscaler(kube: KubeObjects, state: RolloutState, replicas: number): Promise<void> {
  if (!state.hpaBackup) return
  const n = Math.max(1, replicas)
  const f = autoscalerFields(state.hpaBackup, state.namespace)
  await kube.mergePatch(f.path, state.hpaBackup.name, {spec: {[f.min]: n, [f.max]: n}})
}

/** Puts the autoscaler's bounds back as they were before the rollout (idempotent; absent ones removed). */
export async function restoreAutoscaler(kube: KubeObjects, state: RolloutState): Promise<void> {
  if (!state.hpaBackup) return
  const f = autoscalerFields(state.hpaBackup, state.namespace)
  const exists = await kube.get(f.path, state.hpaBackup.name)
  if (!exists) return
  await kube.mergePatch(f.path, state.hpaBackup.name, {
    spec: {[f.min]: state.hpaBackup.minReplicas ?? null, [f.max]: state.hpaBackup.maxReplicas ?? null},
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
