/**
 * The seam between the rollout driver's loop (engine.ts: lease, persist-then-act, requests,
 * abort) and a release strategy: how the new version gets traffic. canary.ts moves traffic by
 * weights through a traffic router; bluegreen.ts brings up a preview and switches the active
 * Service. Argo Rollouts keeps canary and blue-green behind one reconcile loop the same way.
 */
import type {Deployment} from '../kubernetes/kinds.js'
import type {Output} from '../ui/output.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {BlueGreen} from './bluegreen.js'
import {Canary} from './canary.js'
import type {Phase, RolloutState, Strategy} from './types.js'
import type {Workload} from './workload.js'

/** What the loop gives a strategy. Every change a strategy makes is persisted through it before the next one. */
export interface RolloutHost {
  readonly state: RolloutState
  readonly kube: KubeObjects
  /** The new version's Deployment and the stable one. */
  readonly workload: Workload
  readonly out: Output
  /** Observed requests per second of the service (for capacity-based canary scaling), when known. */
  observedRps(): Promise<number | undefined>
  persist(): Promise<void>
  event(message: string): void
  /** Records a transition, then persists it: nothing acts on a phase that is not stored. */
  transition(phase: Phase, message: string, patch?: Partial<RolloutState>): Promise<void>
  /** An abort is asked for (by a request, or by another member of the release): stop before the next change. */
  abortRequested(): Promise<boolean>
}

/** What a release strategy does at each point of the loop. */
export interface RolloutStrategy {
  /** The retailops.dev/track label of the new version's Deployment and pods. */
  readonly track: 'canary' | 'preview'
  /** The Deployment that runs the new version while the rollout lasts. */
  readonly workloadName: string
  /**
   * Backs up the routing (persisted before it is changed) and prepares it so the new version gets
   * no traffic yet. Returns how many pods the new version starts with, and what to say once they are up.
   */
  setup(stable: Deployment): Promise<{replicas: number; message: string}>
  /**
   * A setWeight step. True when it took effect; false when an abort stopped it first (the loop acts
   * on the abort). The weight it leaves in the state is stored by the loop, with the step it passes.
   */
  setWeight(weight: number): Promise<boolean>
  /** A setCanaryScale step. */
  rescale(): Promise<void>
  /** What the analysis of step `index` is called in the state and its events. */
  analysisKind(index: number): string
  /** The new version takes traffic now, so its pods must stay Ready. */
  takesTraffic(): boolean
  /** Promotion, first: the new version carries all traffic. */
  carryAllTraffic(): Promise<void>
  /**
   * Promotion: the replica count the stable Deployment gets with the new template (`live`: the
   * stable Deployment now), holding anything that must not move it while the template rolls out.
   */
  stableReplicas(live: Deployment): Promise<number>
  /** Promotion: traffic goes back to the stable Deployment, which now runs the new version. */
  repin(stable: Deployment): Promise<void>
  /** Promotion, last (the new version's Deployment is gone): what the rollout added to the routing goes. */
  cleanUpAfterPromotion(): Promise<void>
  /** Abort, first: all traffic back to stable, read back. Throws when either fails: the new version's pods are then kept. */
  returnTraffic(): Promise<void>
  /** Abort, last (the new version's Deployment is gone): the routing is as it was before the rollout. */
  cleanUpAfterAbort(): Promise<void>
}

/**
 * A strategy as the loop creates it and as status readers see it without driving it (rollout
 * status, the release tree): each strategy file answers for itself, so neither the loop nor the
 * readers ask which strategy a rollout uses.
 */
export interface StrategyKind {
  create(host: RolloutHost): RolloutStrategy
  /** What moves traffic, as status shows it. */
  routerName(state: RolloutState): string
  /** The share of traffic the new version gets now, read back (undefined when it cannot be read). */
  actualWeight(state: RolloutState, kube: KubeObjects): Promise<number | undefined>
}

const KINDS: Record<Strategy, StrategyKind> = {canary: Canary, 'blue-green': BlueGreen}

export function strategyKind(state: Pick<RolloutState, 'spec'>): StrategyKind {
  return KINDS[state.spec.strategy]
}
