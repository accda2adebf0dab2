/**
 * Where each campaign's pre-warm stands, read from the cluster: whether it was applied (its saved
 * state ConfigMap), what it raised (HPA floors and replicas now against the values saved before),
 * the placeholder headroom, the scheduled pre-warm and restore CronJobs, and the campaign window.
 * Read only: nothing here changes the cluster.
 */

import type * as k8s from '@kubernetes/client-node'

import type {RetailOpsConfig} from '../config/schema.js'
import {kubeClients, kubeHttpOf, type KubeTarget} from '../kubernetes/client.js'
import {readObject} from '../kubernetes/objects.js'
import {namedPath} from '../kubernetes/resources.js'
import {scheduleNames} from './schedule.js'
import {readState, stateName} from './state.js'
import {KEDA_DEFAULT_MAX, KEDA_DEFAULT_MIN} from '../kubernetes/autoscalers.js'
import type {ScaledObject} from '../kubernetes/kinds.js'

export type CampaignWindow = 'upcoming' | 'active' | 'ended'

export interface ServiceCapacity {
  service: string
  /** The campaign's peak for the service: requests per second, or a multiple of observed traffic. */
  peak: string
  /** HPA or Deployment the pre-warm raised (or would raise). */
  target?: {kind: 'HorizontalPodAutoscaler' | 'ScaledObject' | 'Deployment'; name: string}
  /** The floor now (HPA minReplicas, or the Deployment's replicas) and before the pre-warm (saved). */
  floor?: number
  savedFloor?: number
  maxReplicas?: number
  readyReplicas?: number
  replicas?: number
}

export interface ScheduledRun {
  name: string
  schedule: string
  lastScheduleTime?: string
  suspended: boolean
}

export interface CampaignStatus {
  campaign: string
  start: string
  end: string
  freeze?: {start: string; end: string}
  window: CampaignWindow
  /** The saved state exists: the pre-warm ran and has not been restored. */
  applied: boolean
  savedAt?: string
  stateConfigMap: string
  headroomDeployments: string[]
  schedule: {prewarm?: ScheduledRun; restore?: ScheduledRun}
  services: ServiceCapacity[]
  /** The command that puts everything back (applied) or pre-warms now. */
  next: string
}

export interface PrewarmStatusOptions {
  config: RetailOpsConfig
  kube: KubeTarget
  namespace: string
  now?: Date
}

export function campaignWindow(campaign: {start: string; end: string}, now: Date): CampaignWindow {
  if (now.getTime() < Date.parse(campaign.start)) return 'upcoming'
  return now.getTime() <= Date.parse(campaign.end) ? 'active' : 'ended'
}

function peakText(peak: {rps: number} | {multiplier: number}): string {
  return 'rps' in peak ? `${peak.rps} rps` : `×${peak.multiplier} observed`
}

function cronRun(job: k8s.V1CronJob | undefined): ScheduledRun | undefined {
  if (!job?.metadata?.name) return undefined
  return {
    name: job.metadata.name,
    schedule: job.spec?.schedule ?? '',
    lastScheduleTime: job.status?.lastScheduleTime ? String(job.status.lastScheduleTime) : undefined,
    suspended: job.spec?.suspend ?? false,
  }
}

export async function prewarmStatus(options: PrewarmStatusOptions): Promise<CampaignStatus[]> {
  const now = options.now ?? new Date()
  const ns = options.namespace
  const k = kubeClients(options.kube)
  const http = kubeHttpOf(k)
  try {
    return await Promise.all(
      options.config.campaigns.map(async (campaign): Promise<CampaignStatus> => {
        const names = scheduleNames(ns, campaign.name)
        const [saved, prewarmJob, restoreJob] = await Promise.all([
          readState(k, ns, campaign.name),
          readObject<k8s.V1CronJob>(http, namedPath('CronJob', names.prewarm, ns)),
          readObject<k8s.V1CronJob>(http, namedPath('CronJob', names.restore, ns)),
        ])
        const targets = Object.values(saved?.state.targets ?? {})
        const services = await Promise.all(
          Object.entries(campaign.peak).map(async ([service, peak]): Promise<ServiceCapacity> => {
            const savedTarget = targets.find((t) => t.service === service)
            const hpaName = savedTarget?.kind === 'HorizontalPodAutoscaler' ? savedTarget.name : service
            const soName = savedTarget?.kind === 'ScaledObject' ? savedTarget.name : service
            // A ScaledObject (KEDA) is the autoscaler where there is one; none is read where the cluster has no KEDA.
            const [so, hpa, deployment] = await Promise.all([
              savedTarget && savedTarget.kind !== 'ScaledObject'
                ? undefined
                : readObject<ScaledObject>(http, namedPath('ScaledObject', soName, ns)),
              savedTarget && savedTarget.kind !== 'HorizontalPodAutoscaler'
                ? undefined
                : readObject<k8s.V2HorizontalPodAutoscaler>(http, namedPath('HorizontalPodAutoscaler', hpaName, ns)),
              readObject<k8s.V1Deployment>(
                http,
                namedPath('Deployment', savedTarget?.kind === 'Deployment' ? savedTarget.name : service, ns),
              ),
            ])
            const base = {
              service,
              peak: peakText(peak),
              readyReplicas: deployment ? (deployment.status?.readyReplicas ?? 0) : undefined,
              replicas: deployment?.spec?.replicas,
            }
            if (so)
              return {
                ...base,
                target: {kind: 'ScaledObject', name: soName},
                floor: so.spec?.minReplicaCount ?? KEDA_DEFAULT_MIN,
                maxReplicas: so.spec?.maxReplicaCount ?? KEDA_DEFAULT_MAX,
                savedFloor: savedTarget?.kind === 'ScaledObject' ? savedTarget.minReplicaCount.value : undefined,
              }
            if (hpa)
              return {
                ...base,
                target: {kind: 'HorizontalPodAutoscaler', name: hpaName},
                floor: hpa.spec?.minReplicas ?? 1,
                maxReplicas: hpa.spec?.maxReplicas,
                savedFloor: savedTarget?.kind === 'HorizontalPodAutoscaler' ? savedTarget.minReplicas.value : undefined,
              }
            if (deployment)
              return {
                ...base,
                target: {kind: 'Deployment', name: deployment.metadata!.name!},
                floor: deployment.spec?.replicas,
                savedFloor: savedTarget?.kind === 'Deployment' ? savedTarget.replicas.value : undefined,
              }
            return base
          }),
        )
        const applied = Boolean(saved)
        return {
          campaign: campaign.name,
          start: campaign.start,
          end: campaign.end,
          freeze: campaign.freeze,
          window: campaignWindow(campaign, now),
          applied,
          savedAt: saved?.state.savedAt,
          stateConfigMap: `${ns}/${stateName(campaign.name)}`,
          headroomDeployments: saved?.state.headroom.deployments ?? [],
          schedule: {prewarm: cronRun(prewarmJob), restore: cronRun(restoreJob)},
          services,
          next: applied
            ? `retailops prewarm restore --campaign ${campaign.name}`
            : `retailops prewarm --campaign ${campaign.name}`,
        }
      }),
    )
  } finally {
    http.close()
  }
}
