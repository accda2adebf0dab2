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
import {scaleAt} from './steps.js'
import {ensureService, makeRouter, names, pinAutoscaler, type TrafficRouter} from './traffic.js'
import {isTerminal, type RolloutState} from './types.js'

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

  /** Canary pods first (Ready), then the weight: traffic never points at pods that cannot take it. */
  async setWeight(weight: number): Promise<boolean> {
    const rps = await this.host.observedRps()
    const scale = canaryReplicasFor(this.state.spec, weight, scaleAt(this.state.spec.steps, this.state.step), rps)
    if (scale.capped)
      this.host.out.warn(
        `${this.state.service}: ${weight} % needs more canary pods than maxReplicas ${this.state.spec.maxReplicas} allows; running ${scale.replicas}`,
      )
    this.state.desiredWeight = weight
    if (scale.replicas !== this.state.canaryReplicas || this.state.phase !== 'Progressing') {
      await this.host.transition(
        'Progressing',
        `scaling ${this.track} to ${scale.replicas} pods (${scale.reason}) before sending it ${weight} %`,
      )
    }
    await this.host.workload.scale(scale.replicas)
    await this.host.persist()
    if (scale.replicas > 0) await this.host.workload.waitReady(scale.replicas)
    if (await this.host.abortRequested()) return this.state.weight === weight
    await this.router.setWeight(this.state, weight)
    this.state.weight = weight
    this.host.event(`${weight} % of traffic to the ${this.track} (${scale.replicas} Ready pods)`)
    await this.host.persist()
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
    return this.state.weight !== 0 && this.state.canaryReplicas !== 0
  }

  async carryAllTraffic(): Promise<void> {
    await this.setWeight(100)
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
    await this.router.setWeight(this.state, 0)
  }

  async cleanUpAfterPromotion(): Promise<void> {
    await this.router.restore(this.state)
  }

  async returnTraffic(): Promise<void> {
    if (this.state.spec.router === 'replicas') {
      await pinAutoscaler(this.host.kube, this.state, this.state.spec.replicas)
      await this.host.kube.mergePatch(PATHS.deployments(this.state.namespace), this.state.service, {
        spec: {replicas: this.state.spec.replicas},
      })
      // The canary's pods share the Service with stable: they go only once stable carries it all again.
      await this.host.workload.waitStableComplete()
    } else if (this.state.routeBackup) {
      await this.router.setWeight(this.state, 0)
      const actual = await this.router.actualWeight(this.state)
      if (actual !== 0)
        throw new Error(`the ${this.state.spec.router} router still gives the canary ${actual} % after setting 0 %`)
    }
  }

  async cleanUpAfterAbort(): Promise<void> {
    await this.router.restore(this.state)
  }
}
