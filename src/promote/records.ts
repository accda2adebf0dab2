/**
 * Promotion records, kept in the TARGET environment's namespace (its cluster is where the
 * promoted release runs, and where anyone asks what runs there and where it came from): one
 * ConfigMap retailops-promotion-<id> per promotion, written before anything is released
 * (outcome in-progress) and again with the outcome. A refused promotion is recorded too.
 * `retailops promote history` lists them.
 */
import {randomBytes} from 'node:crypto'

import {RetailOpsError, type ExitCodeName} from '../errors/index.js'
import type {ConfigMap} from '../kubernetes/kinds.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {FIELD_MANAGER_PROMOTE} from '../kubernetes/labels.js'
import {KubeObjects} from '../kubernetes/objects.js'
import {collectionPath} from '../kubernetes/resources.js'
import type {RunContext} from '../ui/context.js'

export const PROMOTION_PREFIX = 'retailops-promotion-'
export const PROMOTION_LABEL = 'retailops.dev/promotion'
const RECORD_KEY = 'promotion.json'

export interface ServiceChecks {
  /** The service's image, by digest, as the source runs it. */
  image: string
  /** Every image of its pod template (all verified). */
  images: string[]
  /** The source Deployment's revision. */
  revision?: string
  soak: {ok: boolean; heldSince?: string; heldFor?: string; required: string}
  slo: {ok: boolean; reasons: string[]}
  signatures: {ok: boolean; results: {image: string; status: string; message?: string}[]}
  /** The attestation types supplyChain.policy requires (none without a policy), per image. */
  attestations: {required: string[]; ok: boolean; results: {image: string; status: string; message?: string}[]}
  /** Why it may not be promoted; empty when every check passed. */
  problems: string[]
}

export interface PromotionRecord {
  id: string
  project: string
  from: {environment: string; namespace: string; cluster: string}
  to: {environment: string; namespace: string; cluster: string}
  /** Who promoted: the CI job, else the user. */
  by: string
  at: string
  finishedAt?: string
  services: string[]
  /** service → image by digest: the freight. */
  images: Record<string, string>
  order: {stages: string[]; ok: boolean; detail: string; forced?: {reason: string}}
  soak: string
  checks: Record<string, ServiceChecks>
  outcome: 'in-progress' | 'refused' | 'promoted' | 'failed'
  exit?: ExitCodeName
  /** How the target released them, per strategy. */
  release?: {strategy: string; services: string[]; exit: ExitCodeName}[]
  error?: string
}

/**
 * Sorts by time to the millisecond: 20261206-213501123-<6 hex>. History lists records newest first
 * by id, and two promotions in one second (a refusal, then a retry) must keep their order; an id
 * of the older form (20261206-213501-<6 hex>) sorts before every one of its second.
 */
export function newPromotionId(at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '-')
    .replace(/\.(\d+)Z$/, '$1')
  return `${stamp}-${randomBytes(3).toString('hex')}`
}

export class PromotionRecords {
  constructor(
    private readonly kube: KubeObjects,
    private readonly namespace: string,
  ) {}

  private get collection(): string {
    return collectionPath('ConfigMap', this.namespace)
  }

  /**
   * Writes the record (server-side apply: the first write creates it, the next ones update it).
   * Answers the ConfigMap's name, or undefined (with a warning) when the target namespace does not
   * exist yet: a promotion refused before the first release there has nowhere to be kept.
   */
  async save(record: PromotionRecord, ctx: RunContext): Promise<string | undefined> {
    const name = `${PROMOTION_PREFIX}${record.id}`
    const namespace = await this.kube.get(collectionPath('Namespace'), this.namespace)
    if (!namespace) {
      ctx.out.warn(
        `The target namespace ${this.namespace} does not exist yet: this ${record.outcome} promotion is not recorded in the cluster.`,
      )
      return undefined
    }
    await this.kube.apply(this.collection, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        namespace: this.namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'retailops',
          'app.kubernetes.io/component': 'promotion-record',
          [PROMOTION_LABEL]: record.id,
          'retailops.dev/promotion-from': record.from.environment,
          'retailops.dev/promotion-outcome': record.outcome,
        },
      },
      data: {[RECORD_KEY]: JSON.stringify(record)},
    })
    return name
  }

  /** Every record, newest first. */
  async list(): Promise<PromotionRecord[]> {
    const maps = await this.kube.list<ConfigMap>(this.collection, PROMOTION_LABEL)
    const records: PromotionRecord[] = []
    for (const m of maps) {
      try {
        records.push(JSON.parse(m.data?.[RECORD_KEY] ?? '') as PromotionRecord)
      } catch {
        throw new RetailOpsError(
          'CONFIG',
          `ConfigMap ${this.namespace}/${m.metadata.name} is not a promotion record.`,
          {
            nextSteps: [`Delete it or remove its ${PROMOTION_LABEL} label.`],
          },
        )
      }
    }
    return records.sort((a, b) => b.id.localeCompare(a.id))
  }
}

export interface PromotionHistory {
  environment: string
  namespace: string
  promotions: PromotionRecord[]
}

/** `retailops promote history`: the records kept in an environment's namespace, newest first. */
export async function promotionHistory(env: ResolvedEnvironment, limit = 20): Promise<PromotionHistory> {
  const kube = new KubeObjects({context: env.context, kubeconfig: env.kubeconfig}, FIELD_MANAGER_PROMOTE)
  try {
    const promotions = (await new PromotionRecords(kube, env.namespace).list()).slice(0, limit)
    return {environment: env.name, namespace: env.namespace, promotions}
  } finally {
    kube.close()
  }
}
