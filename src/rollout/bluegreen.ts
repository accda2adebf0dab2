/**
 * Blue-green: a `<service>-preview` Deployment at full size behind a `<service>-preview` Service,
 * while the service's own (active) Service stays pinned to the stable pods' pod-template-hash.
 * Its steps are fixed (see rolloutSpec): pre-promotion analysis → [pause] → switch the active
 * Service to the preview's pods → post-promotion analysis → scale-down delay; then the stable
 * Deployment gets the new template and the active Service its own selector back. Abort switches
 * the active Service back to the stable pods, which stayed up for exactly that.
 */
import type {Deployment, Service} from '../kubernetes/kinds.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {currentReplicaSet, PATHS} from './kube.js'
import type {RolloutHost, RolloutStrategy} from './rollout-strategy.js'
import {ensureService, names, TRACK_LABEL} from './traffic.js'
import type {RolloutState} from './types.js'

export class BlueGreen implements RolloutStrategy {
  readonly track = 'preview'

  constructor(private readonly host: RolloutHost) {}

  static create(host: RolloutHost): RolloutStrategy {
    return new BlueGreen(host)
  }

  static routerName(): string {
    return 'service selector'
  }

  /** All or nothing: the active Service selects the preview's pods (100) or the stable ones (0), also once the rollout ended. */
  static async actualWeight(state: RolloutState, _kube?: KubeObjects): Promise<number | undefined> {
    return state.activeColour === 'preview' ? 100 : 0
  }

  private get state(): RolloutState {
    return this.host.state
  }

  get workloadName(): string {
    return names(this.state.service).previewDeployment
  }

  private get previewService(): string {
    return names(this.state.service).previewService
  }

  async setup(stable: Deployment): Promise<{replicas: number; message: string}> {
    const active = await this.host.kube.get<Service>(PATHS.services(this.state.namespace), this.state.service)
    if (!active) throw new Error(`Service ${this.state.namespace}/${this.state.service} (active) does not exist`)
    if (!this.state.routeBackup) {
      this.state.routeBackup = {selector: active.spec?.selector}
      await this.host.persist()
    }
    await this.setActiveSelector({
      ...(this.state.routeBackup.selector as Record<string, string>),
      'pod-template-hash': this.state.stable.podTemplateHash!,
    })
    await ensureService(this.host.kube, this.state, this.previewService, {
      ...this.host.workload.selector(stable),
      [TRACK_LABEL]: 'preview',
    })
    this.state.activeColour = 'stable'
    const replicas = this.state.spec.previewReplicas ?? this.state.spec.replicas
    return {
      replicas,
      message: `preview ${this.workloadName} is up (${replicas} pods, ${this.state.canary.version}); active Service still on ${this.state.stable.version}`,
    }
  }

  /** The one weight step (100): the switch of the active Service. */
  async setWeight(): Promise<boolean> {
    await this.switchActive()
    return this.state.activeColour === 'preview'
  }

  /** Blue-green compiles no scale steps: the preview runs at its full size from setup on. */
  async rescale(): Promise<void> {}

  analysisKind(): string {
    return this.state.activeColour === 'preview' ? 'post-promotion' : 'pre-promotion'
  }

  takesTraffic(): boolean {
    return this.state.weight !== 0 && this.state.canaryReplicas !== 0 && this.state.activeColour === 'preview'
  }

  async carryAllTraffic(): Promise<void> {
    if (this.state.activeColour !== 'preview') await this.switchActive()
  }

  /** The rollout never scaled the stable Deployment: its live count stands. */
  async stableReplicas(live: Deployment): Promise<number> {
    return live.spec?.replicas ?? this.state.spec.replicas
  }

  /** The stable Deployment runs the new version: the active Service gets its own selector back (no hash pin). */
  async repin(): Promise<void> {
    await this.setActiveSelector(this.state.routeBackup!.selector as Record<string, string>)
  }

  async cleanUpAfterPromotion(): Promise<void> {
    await this.host.kube.delete(PATHS.services(this.state.namespace), this.previewService)
  }

  async returnTraffic(): Promise<void> {
    const ns = this.state.namespace
    const selector = this.state.routeBackup?.selector as Record<string, string> | undefined
    if (!selector || !this.state.stable.podTemplateHash) return
    const stable = await this.host.workload.stable()
    const stillStable =
      (await currentReplicaSet(this.host.kube, stable))?.metadata.labels?.['pod-template-hash'] ===
      this.state.stable.podTemplateHash
    const active = await this.host.kube.get<Service>(PATHS.services(ns), this.state.service)
    const onPreview =
      Boolean(this.state.canary.podTemplateHash) &&
      active?.spec?.selector?.['pod-template-hash'] === this.state.canary.podTemplateHash
    if (!stillStable) {
      if (onPreview)
        throw new Error(
          `the active Service selects the preview and the stable Deployment no longer runs ${this.state.stable.version} (pod-template-hash ${this.state.stable.podTemplateHash}) to switch back to`,
        )
      return
    }
    await this.setActiveSelector({...selector, 'pod-template-hash': this.state.stable.podTemplateHash})
    const now = await this.host.kube.get<Service>(PATHS.services(ns), this.state.service)
    if (now?.spec?.selector?.['pod-template-hash'] !== this.state.stable.podTemplateHash)
      throw new Error(`Service ${ns}/${this.state.service} does not select the stable pods after the switch back`)
    this.state.activeColour = 'stable'
  }

  async cleanUpAfterAbort(): Promise<void> {
    await this.host.kube.delete(PATHS.services(this.state.namespace), this.previewService)
    if (this.state.routeBackup?.selector)
      await this.setActiveSelector(this.state.routeBackup.selector as Record<string, string>)
  }

  private async setActiveSelector(selector: Record<string, string>): Promise<void> {
    // A merge patch cannot remove keys it does not name: replace the selector whole with null first.
    const active = await this.host.kube.get<Service>(PATHS.services(this.state.namespace), this.state.service)
    const remove = Object.fromEntries(
      Object.keys(active?.spec?.selector ?? {})
        .filter((k) => !(k in selector))
        .map((k) => [k, null]),
    )
    await this.host.kube.mergePatch(PATHS.services(this.state.namespace), this.state.service, {
      spec: {selector: {...remove, ...selector}},
    })
  }

  /** Blue-green promotion: the new colour at full scale and Ready, then the active Service switches. */
  private async switchActive(): Promise<void> {
    const n = this.state.spec.replicas
    if (this.state.canaryReplicas < n) {
      await this.host.transition('Progressing', `scaling preview to ${n} pods before switching the active Service`)
      await this.host.workload.scale(n)
      await this.host.persist()
    }
    await this.host.workload.waitReady(n)
    if (await this.host.abortRequested()) return
    await this.setActiveSelector({
      ...(this.state.routeBackup!.selector as Record<string, string>),
      'pod-template-hash': this.state.canary.podTemplateHash!,
    })
    this.state.activeColour = 'preview'
    this.state.weight = 100
    this.state.desiredWeight = 100
    this.state.promotedAt = new Date().toISOString()
    this.host.event(
      `active Service ${this.state.service} switched to ${this.state.canary.version} (${this.state.canary.podTemplateHash}); ${this.state.stable.version} stays up for instant rollback`,
    )
    await this.host.persist()
  }
}
