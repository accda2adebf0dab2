/**
 * The two Deployments of a rollout: the stable one (the service's own) and the one that runs the
 * new version meanwhile (the canary, or blue-green's preview), with its own selector and track
 * label. Both strategies scale and wait on them the same way; the loop removes the new one at the end.
 */
import type {Deployment, Pod, PodTemplate} from '../kubernetes/kinds.js'
import {formatDuration} from '../config/duration.js'
import {explainPods} from '../kubernetes/rollout-status.js'
import {FORCED_ANNOTATION} from './gates.js'
import type {KubeObjects} from '../kubernetes/objects.js'
import {currentReplicaSet, deploymentProgress, PATHS, selectorString} from './kube.js'
import {ROLLOUT_LABEL, TRACK_LABEL} from './traffic.js'
import type {RolloutReads} from './observer.js'
import type {RolloutState} from './types.js'

/** The longest wait between two looks when nothing changes (a change wakes the waiter at once; observer.ts). */
const WAIT_MS = 1000

/** The new version's pods did not become (or stay) Ready: an abort reason, said as it is. */
export class CanaryNotReady extends Error {}

/** What a Workload needs from the loop (the state is read at each call: the loop replaces it when it takes the lease). */
interface WorkloadHost {
  readonly state: RolloutState
  readonly kube: KubeObjects
  /** The Deployments as the release observes them (waits read there, writes go to kube). */
  readonly reads: RolloutReads
  abortRequested(): Promise<boolean>
  /** Waits at most ms for a change of the rollout's Deployments or requests. */
  waitForChange(ms: number): Promise<void>
}

export class Workload {
  private unreadySince?: number
  /**
   * The generation of the new version's Deployment this CLI last wrote: an observed copy older
   * than that (the watch lags behind the write) says nothing about the pods of that write.
   */
  private written = 0

  constructor(
    private readonly host: WorkloadHost,
    /** The new version's Deployment. */
    readonly name: string,
    readonly track: 'canary' | 'preview',
  ) {}

  private get state(): RolloutState {
    return this.host.state
  }

  async stable(): Promise<Deployment> {
    const d = await this.host.kube.get<Deployment>(PATHS.deployments(this.state.namespace), this.state.service)
    if (!d) throw new Error(`Deployment ${this.state.namespace}/${this.state.service} (stable) has disappeared`)
    return d
  }

  selector(stable: Deployment): Record<string, string> {
    return {...(stable.spec?.selector?.matchLabels ?? {})}
  }

  /** The new version's Deployment: the new pod template, its own selector and track label. */
  private object(stable: Deployment, replicas: number): Deployment {
    const desired = this.state.desired as Deployment
    const labels = {...(desired.metadata.labels ?? {})}
    delete labels['retailops.dev/applyset']
    const selector = {...this.selector(stable), [TRACK_LABEL]: this.track}
    const template = JSON.parse(JSON.stringify(desired.spec?.template ?? {})) as PodTemplate
    template.metadata = template.metadata ?? {}
    template.metadata.labels = {...template.metadata.labels, ...selector, [ROLLOUT_LABEL]: this.state.id}
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: this.name,
        namespace: this.state.namespace,
        labels: {...labels, [TRACK_LABEL]: this.track, [ROLLOUT_LABEL]: this.state.id},
        annotations: {
          'retailops.dev/rollout-id': this.state.id,
          ...(this.state.forced ? {[FORCED_ANNOTATION]: this.state.forced.reason} : {}),
        },
      },
      spec: {
        replicas,
        selector: {matchLabels: selector},
        template,
        strategy: desired.spec?.strategy,
        revisionHistoryLimit: 2,
        progressDeadlineSeconds: Math.max(1, Math.round(this.state.spec.progressDeadlineMs / 1000)),
      },
    }
  }

  async apply(stable: Deployment, replicas: number): Promise<void> {
    const applied = await this.host.kube.apply(PATHS.deployments(this.state.namespace), this.object(stable, replicas))
    this.written = applied.metadata.generation ?? 0
  }

  /** Scales the new version's Deployment; one that already asks for `replicas` is left alone (no write). */
  async scale(replicas: number): Promise<void> {
    const existing = await this.host.reads.deployment(this.state.namespace, this.name)
    if (!existing) await this.apply(await this.stable(), replicas)
    else if (existing.spec?.replicas !== replicas) {
      const patched = await this.host.kube.mergePatch(PATHS.deployments(this.state.namespace), this.name, {
        spec: {replicas},
      })
      this.written = patched.metadata.generation ?? 0
    }
    this.state.canaryReplicas = replicas
  }

  async remove(): Promise<void> {
    await this.host.kube.delete(PATHS.deployments(this.state.namespace), this.name)
  }

  /**
   * Waits until `replicas` new pods are Ready (or an abort is asked for). Past progressDeadline it
   * throws with the pods' own reasons (CrashLoopBackOff, ImagePullBackOff, Unschedulable), which aborts the rollout.
   */
  async waitReady(replicas: number): Promise<void> {
    const since = Date.now()
    for (;;) {
      const d = await this.host.reads.deployment(this.state.namespace, this.name)
      const p = deploymentProgress(d)
      if (
        d &&
        (d.metadata.generation ?? 0) >= this.written &&
        p.ready >= replicas &&
        p.updated >= replicas &&
        (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0)
      ) {
        if (!this.state.canary.podTemplateHash) {
          const rs = await currentReplicaSet(this.host.kube, d)
          this.state.canary.podTemplateHash = rs?.metadata.labels?.['pod-template-hash']
        }
        return
      }
      if (Date.now() - since > this.state.spec.progressDeadlineMs) {
        const pods = await this.host.kube.list<Pod>(
          PATHS.pods(this.state.namespace),
          selectorString({[TRACK_LABEL]: this.track, [ROLLOUT_LABEL]: this.state.id}),
        )
        const problems = explainPods(pods)
        if (problems.length === 0) {
          const conditions = (d?.status?.conditions ?? []) as {
            type: string
            status: string
            reason?: string
            message?: string
          }[]
          problems.push(
            ...conditions
              .filter((c) => c.status === 'False' || c.type === 'ReplicaFailure')
              .map((c) => `${c.type}: ${c.message ?? c.reason}`),
          )
          if (pods.length < replicas) problems.push(`${pods.length} of ${replicas} pods exist`)
        }
        throw new CanaryNotReady(
          `${this.track} pods not Ready within progressDeadline ${formatDuration(this.state.spec.progressDeadlineMs)}: ${p.ready}/${replicas} ready${problems.length ? `; ${problems.join('; ')}` : ''}`,
        )
      }
      if (await this.host.abortRequested()) return
      await this.host.waitForChange(WAIT_MS)
    }
  }

  /**
   * While the new version takes traffic (pauses, analysis), its pods must stay Ready: when its
   * Ready pods stay below what it runs for longer than progressDeadline, this throws (an abort).
   */
  async checkStillReady(): Promise<void> {
    const d = await this.host.reads.deployment(this.state.namespace, this.name)
    const ready = d?.status?.readyReplicas ?? 0
    if (ready >= this.state.canaryReplicas) {
      this.unreadySince = undefined
      return
    }
    this.unreadySince ??= Date.now()
    if (Date.now() - this.unreadySince > this.state.spec.progressDeadlineMs) {
      const pods = await this.host.kube.list<Pod>(
        PATHS.pods(this.state.namespace),
        selectorString({[TRACK_LABEL]: this.track, [ROLLOUT_LABEL]: this.state.id}),
      )
      const problems = explainPods(pods)
      throw new CanaryNotReady(
        `${this.track} pods stopped being Ready while taking ${this.state.weight} % of traffic: ${ready}/${this.state.canaryReplicas} ready for over ${formatDuration(this.state.spec.progressDeadlineMs)}${problems.length ? `; ${problems.join('; ')}` : ''}`,
      )
    }
  }

  /**
   * Waits until the stable Deployment has rolled out, at least the generation this CLI wrote
   * (`written`, from the write's answer); past progressDeadline it throws with the pods' reasons.
   */
  async waitStableComplete(written = 0): Promise<void> {
    const since = Date.now()
    for (;;) {
      const d = await this.host.reads.deployment(this.state.namespace, this.state.service)
      if (!d) throw new Error(`Deployment ${this.state.namespace}/${this.state.service} (stable) has disappeared`)
      if ((d.metadata.generation ?? 0) >= written && deploymentProgress(d).complete) return
      if (Date.now() - since > this.state.spec.progressDeadlineMs) {
        const pods = await this.host.kube.list<Pod>(PATHS.pods(this.state.namespace), selectorString(this.selector(d)))
        throw new Error(
          `Deployment ${this.state.service} did not complete within ${formatDuration(this.state.spec.progressDeadlineMs)}: ${explainPods(pods).join('; ') || 'no pod reasons'}`,
        )
      }
      await this.host.waitForChange(WAIT_MS)
    }
  }
}
