/**
 * Rollout state in the cluster: one ConfigMap per service, `retailops-rollout-<service>`, with
 * the current rollout (`state.json`), past rollouts (`history.json`) and a pending request from
 * another CLI (`request.json`). Writes are compare-and-swap on resourceVersion; a lease inside
 * the state says which CLI drives the rollout, so two never drive the same one.
 */
import os from 'node:os'
import {randomUUID} from 'node:crypto'

import {RefusedError} from '../errors/index.js'
import {kubeError} from '../kubernetes/client.js'
import {redactDeep} from '../ui/secrets.js'
import {KubeHttpError, PATHS, type Obj, type RolloutKube} from './kube.js'
import type {HistoryEntry, Lease, RolloutRequest, RolloutState} from './types.js'

export const STATE_PREFIX = 'retailops-rollout-'
export const HISTORY_LIMIT = 10
export const LEASE_TTL_SECONDS = 20

export function stateName(service: string): string {
  return `${STATE_PREFIX}${service}`
}

/** Who this process is, for leases and requests: "host/pid/uuid". */
export const HOLDER = `${os.hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`

export interface Stored {
  state?: RolloutState
  history: HistoryEntry[]
  request?: RolloutRequest
  resourceVersion?: string
}

function parse<T>(text: string | undefined): T | undefined {
  if (!text) return undefined
  try {
    return JSON.parse(text) as T
  } catch {
    return undefined
  }
}

export class StateStore {
  /** What this process last read or wrote per ConfigMap: its resourceVersion, history and request. */
  private cache = new Map<string, {version: string; history: HistoryEntry[]; request?: RolloutRequest}>()

  constructor(private readonly kube: RolloutKube) {}

  async read(namespace: string, service: string): Promise<Stored> {
    const key = `${namespace}/${service}`
    const cm = await this.kube.get(PATHS.configmaps(namespace), stateName(service))
    if (!cm) {
      this.cache.delete(key)
      return {history: []}
    }
    const stored: Stored = {
      state: parse<RolloutState>(cm.data?.['state.json']),
      history: parse<HistoryEntry[]>(cm.data?.['history.json']) ?? [],
      request: parse<RolloutRequest>(cm.data?.['request.json']),
      resourceVersion: cm.metadata.resourceVersion,
    }
    this.cache.set(key, {version: cm.metadata.resourceVersion!, history: stored.history, request: stored.request})
    return stored
  }

  /** Every rollout state in a namespace (for `rollout status` without a service). */
  async list(namespace: string): Promise<RolloutState[]> {
    const items = await this.kube.list(PATHS.configmaps(namespace), 'retailops.dev/rollout-state=true')
    return items.map((cm) => parse<RolloutState>(cm.data?.['state.json'])).filter((s): s is RolloutState => Boolean(s))
  }

  /**
   * Writes the state with compare-and-swap on resourceVersion. On a conflict (another CLI wrote a
   * request in between) it re-reads and writes again: the driver owns everything but the request,
   * which is kept unless `clearRequest` says the driver has acted on it.
   */
  async write(state: RolloutState, options: {history?: HistoryEntry[]; clearRequest?: boolean} = {}): Promise<void> {
    const key = `${state.namespace}/${state.service}`
    state.updatedAt = new Date().toISOString()
    for (let attempt = 0; ; attempt++) {
      if (!this.cache.has(key)) await this.read(state.namespace, state.service)
      const known = this.cache.get(key)
      const history = (options.history ?? known?.history ?? []).slice(-HISTORY_LIMIT)
      const request = options.clearRequest ? undefined : known?.request
      const cm: Obj = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: stateName(state.service),
          namespace: state.namespace,
          labels: {'app.kubernetes.io/managed-by': 'retailops', 'retailops.dev/service': state.service, 'retailops.dev/rollout-state': 'true'},
          annotations: {'retailops.dev/phase': state.phase, 'retailops.dev/rollout-id': state.id},
          ...(known ? {resourceVersion: known.version} : {}),
        },
        // Masked like every output: a ConfigMap is readable by anyone who may list the namespace.
        data: {'state.json': JSON.stringify(redactDeep(state)), 'history.json': JSON.stringify(redactDeep(history)), ...(request ? {'request.json': JSON.stringify(redactDeep(request))} : {})},
      }
      try {
        const saved = known ? await this.kube.replace(PATHS.configmaps(state.namespace), cm) : await this.kube.create(PATHS.configmaps(state.namespace), cm)
        this.cache.set(key, {version: saved.metadata.resourceVersion!, history, request})
        return
      } catch (error) {
        const code = error instanceof KubeHttpError ? error.statusCode : undefined
        if ((code === 409 || code === 404) && attempt < 8) {
          this.cache.delete(key)
          continue
        }
        throw kubeError(error, `saving rollout state ${stateName(state.service)}`)
      }
    }
  }

  /** A request from another CLI: merge-patched, so it never overwrites the driver's state. */
  async request(namespace: string, service: string, request: RolloutRequest): Promise<void> {
    await this.kube.mergePatch(PATHS.configmaps(namespace), stateName(service), {data: {'request.json': JSON.stringify(redactDeep(request))}})
  }

  async delete(namespace: string, service: string): Promise<void> {
    await this.kube.delete(PATHS.configmaps(namespace), stateName(service))
    this.cache.delete(`${namespace}/${service}`)
  }
}

export function leaseAlive(lease: Lease | undefined, now = Date.now()): boolean {
  if (!lease) return false
  if (Date.parse(lease.renewedAt) + lease.ttlSeconds * 1000 < now) return false
  // A holder on this machine whose process is gone (kill -9) holds nothing.
  if (lease.host === os.hostname() && lease.pid !== process.pid) {
    try {
      process.kill(lease.pid, 0)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    }
  }
  return true
}

export function newLease(now = new Date()): Lease {
  return {holder: HOLDER, host: os.hostname(), pid: process.pid, acquiredAt: now.toISOString(), renewedAt: now.toISOString(), ttlSeconds: LEASE_TTL_SECONDS}
}

export function ownsLease(state: RolloutState): boolean {
  return state.lease?.holder === HOLDER
}

/** Refuses to drive a rollout another live CLI drives. */
export function assertLeaseFree(state: RolloutState): void {
  if (state.lease && !ownsLease(state) && leaseAlive(state.lease)) {
    const l = state.lease
    throw new RefusedError(`The rollout of ${state.service} is being driven by ${l.host} (pid ${l.pid}) since ${l.acquiredAt}.`, {
      nextSteps: [
        '`retailops rollout promote` and `retailops rollout abort` signal the running CLI; no need to stop it.',
        `If that CLI is gone, its lease expires ${LEASE_TTL_SECONDS}s after ${l.renewedAt}; then run \`retailops rollout resume ${state.service}\`.`,
      ],
      details: {lease: l},
    })
  }
}

