/**
 * Canary: a `<service>-canary` Deployment next to the stable one, and a traffic router (Gateway
 * API, nginx, or the ratio of pods) that gives it the weight each step asks for. The canary's
 * pods are scaled and Ready before the router gives them traffic, and traffic is back on stable
 * before they go. Promotion: 100 % to the canary, the stable Deployment gets the new template,
 * traffic returns to it, the route is restored.
 */
import type {Deployment} from '../kubernetes/kinds.js'
import {canaryReplicasFor} from './capacity.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {currentReplicaSet, PATHS} from './kube.js'
import type {RolloutHost, RolloutStrategy} from './rollout-strategy.js'
import {formatStep, routingAt, scaleAt, weightOnly} from './steps.js'
import {describeMatches, ensureService, makeRouter, names, pinAutoscaler, type TrafficRouter} from './traffic.js'
import {isTerminal, type RolloutState, type Routing} from './types.js'

export class Canary implements RolloutStrategy {
  readonly track = 'canary'
  private readonly router: TrafficRouter

  constructor(private readonly host: RolloutHost) {
    this.router = makeRouter(host.state.spec.router, host.kube)
  }

  static create(host: RolloutHost): RolloutStrategy {
    return new Canary(host)
  }

  static routerName(state: RolloutState): string {
    return state.spec.router
  }

  /** The weight the router gives the canary now; none once the rollout ended (the canary is gone). */
  static async actualWeight(state: RolloutState, kube: KubeObjects): Promise<number | undefined> {
    if (isTerminal(state.phase)) return undefined
    return makeRouter(state.spec.router, kube)
      .actualWeight(state)
      .catch(() => undefined)
  }

  private get state(): RolloutState {
    return this.host.state
  }

  get workloadName(): string {
    return names(this.state.service).canaryDeployment
  }

  async setup(stable: Deployment): Promise<{replicas: number; message: string}> {
    await this.router.validate(this.state)
    if (!this.state.routeBackup && this.state.spec.router !== 'replicas') {
      await this.router.backup(this.state)
      await this.host.persist()
    }
    if (this.state.spec.router === 'replicas' && this.state.hpaBackup === undefined) {
      // The autoscaler's bounds are stored before the router pins them: restored even after a crash.
      await this.router.backup(this.state)
      await this.host.persist()
    }
    await this.router.prepare(this.state, this.host.workload.selector(stable))
    return {
      replicas: 0,
      message: `canary ${this.workloadName} created; ${this.state.spec.router} router sends 0 % to it`,
    }
  }

  /** The weight with the header, cookie and mirror steps up to the current one (kept until promotion or abort). */
  private routingFor(weight: number): Routing {
    return routingAt(this.state.spec.steps, this.state.step, weight)
  }

  /**
   * Canary pods first (Ready), then the weight: traffic never points at pods that cannot take it.
   * A mirrored share needs the pods that weight would; a header or cookie match at least one.
   * The step was stored before it began (advance), so nothing here writes the state: the new pod
   * count and the weight go with the loop's next write (the step it passes, or the lease's renewal
   * within 5 s during a long wait for pods). A CLI killed in between runs the same step again
   * (every write here is idempotent: the same pod count, the same weight) or an abort sets 0 %
   * whatever was stored.
   */
  async setWeight(weight: number, routing: Routing = this.routingFor(weight)): Promise<boolean> {
    const rps = await this.host.observedRps()
    const load = Math.max(weight, routing.mirrorPercent)
    const scale = canaryReplicasFor(this.state.spec, load, scaleAt(this.state.spec.steps, this.state.step), rps)
    if (scale.replicas === 0 && routing.headers.length > 0)
      Object.assign(scale, {
        replicas: 1,
        reason: routing.headers.map((h) => formatStep({setHeaderRoute: h})).join(', '),
      })
    if (scale.capped)
      this.host.out.warn(
        `${this.state.service}: ${weight} % needs more canary pods than maxReplicas ${this.state.spec.maxReplicas} allows; running ${scale.replicas}`,
      )
    this.state.desiredWeight = weight
    if (scale.replicas !== this.state.canaryReplicas || this.state.phase !== 'Progressing') {
      const message = `scaling ${this.track} to ${scale.replicas} pods (${scale.reason}) before sending it ${weight} %`
      // A new phase is stored before it acts; a message alone goes with the next write.
      if (this.state.phase !== 'Progressing') await this.host.transition('Progressing', message)
      else this.host.event(message)
    }
    await this.host.workload.scale(scale.replicas)
    if (scale.replicas > 0) await this.host.workload.waitReady(scale.replicas)
    if (await this.host.abortRequested()) return this.state.weight === weight
    await this.router.setRouting(this.state, routing)
    this.state.weight = weight
    const matches = describeMatches(routing)
    this.host.event(
      `${weight} % of traffic to the ${this.track}${matches ? ` and ${matches.replaceAll(',', ', ')}` : ''} (${scale.replicas} Ready pods)`,
    )
    return true
  }

  /** The canary's pods for the weight it has now (the step's scale applies from here on). */
  async rescale(): Promise<void> {
    await this.setWeight(this.state.weight)
  }

  analysisKind(index: number): string {
    return `step ${index + 1}`
  }

  takesTraffic(): boolean {
    const routing = this.routingFor(this.state.weight)
    const routed = this.state.weight !== 0 || routing.headers.length > 0 || routing.mirrorPercent > 0
    return routed && this.state.canaryReplicas !== 0
  }

  async carryAllTraffic(): Promise<void> {
    // Mirroring stops: at 100 % the canary would receive its own requests twice. Header routes stay until the re-pin.
    await this.setWeight(100, {...this.routingFor(100), mirrorPercent: 0})
    await this.host.persist()
    if (this.state.spec.router === 'replicas')
      await this.host.kube.mergePatch(PATHS.deployments(this.state.namespace), this.state.service, {
        spec: {replicas: 0},
      })
  }

  async stableReplicas(live: Deployment): Promise<number> {
    const n = this.state.spec.replicas
    // The replica router scaled the stable Deployment itself: it gets the count the rollout began
    // with back, its autoscaler held at that count while the new template rolls out (restored at
    // cleanup). Otherwise the rollout never touched it, and the live count stands (an autoscaler
    // or a campaign's prewarm may have raised it meanwhile: 30 stays 30).
    if (this.state.spec.router !== 'replicas') return live.spec?.replicas ?? n
    await pinAutoscaler(this.host.kube, this.state, n)
    return n
  }

  async repin(stable: Deployment): Promise<void> {
    if (this.state.spec.router === 'replicas') return
    const rs = await currentReplicaSet(this.host.kube, stable)
    const hash = rs?.metadata.labels?.['pod-template-hash']
    if (!hash) return
    await ensureService(this.host.kube, this.state, names(this.state.service).stableService, {
      ...this.host.workload.selector(stable),
      'pod-template-hash': hash,
    })
    // Everything to the re-pinned stable Service (the new version now): header routes and mirror end here.
    await this.router.setRouting(this.state, weightOnly(0))
  }

  async cleanUpAfterPromotion(): Promise<void> {
    await this.router.restore(this.state)
  }

  async returnTraffic(): Promise<void> {
    if (this.state.spec.router === 'replicas') {
      await pinAutoscaler(this.host.kube, this.state, this.state.spec.replicas)
      const patched = await this.host.kube.mergePatch(PATHS.deployments(this.state.namespace), this.state.service, {
        spec: {replicas: this.state.spec.replicas},
      })
      // The canary's pods share the Service with stable: they go only once stable carries it all again.
      await this.host.workload.waitStableComplete(patched.metadata.generation)
    } else if (this.state.routeBackup) {
      // Header and cookie routes and the mirror go too: no request reaches the canary any more.
      await this.router.setRouting(this.state, weightOnly(0))
      const actual = await this.router.actualRouting(this.state)
      if (actual.weight !== 0)
        throw new Error(
          `the ${this.state.spec.router} router still gives the canary ${actual.weight} % after setting 0 %`,
        )
      if (actual.headerRoutes > 0 || actual.mirrorPercent > 0)
        throw new Error(
          `the ${this.state.spec.router} router still sends ${actual.headerRoutes} header/cookie route(s) and ${actual.mirrorPercent} % mirrored requests to the canary after removing them`,
        )
    }
  }

  async cleanUpAfterAbort(): Promise<void> {
    await this.router.restore(this.state)
  }
}
