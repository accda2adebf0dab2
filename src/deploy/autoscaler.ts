import type {ResolvedEnvironment} from '../config/resolve.js'
import type {ScalingProvider, ServiceConfig} from '../config/schema.js'
import {RetailOpsError} from '../errors/index.js'
import {formatDecimalQuantity} from '../kubernetes/quantity.js'
import type {KubeObject} from '../kubernetes/resources.js'

/**
 * A service's autoscaler. CPU only: an autoscaling/v2 HPA. With scaling.metrics (business
 * signals from Prometheus): a KEDA ScaledObject (KEDA makes and owns its HPA, keda-hpa-<name>)
 * or, without KEDA, an HPA with one External metric per signal (served by prometheus-adapter,
 * docs/scaling.md). Either way CPU stays as a floor signal and the HPA behaviour is the same.
 */

export type AutoscalerProvider = Exclude<ScalingProvider, 'auto'>

/** How a deploy decides `auto`: KEDA where the cluster serves scaledobjects.keda.sh. */
export interface ScalingChoice {
  /** --scaling-provider: wins over every service's scaling.provider. */
  override?: ScalingProvider
  /** What the deploy found per cluster connection (clusterConnectionKey): keda when it serves ScaledObjects. */
  discovered?: Record<string, AutoscalerProvider>
}

/** The key a cluster connection is discovered under. */
export function clusterConnectionKey(target: {context?: string; kubeconfig?: string}): string {
  return `${target.kubeconfig ?? ''}|${target.context ?? ''}`
}

/**
 * The provider of one service's autoscaler in one cluster: the flag, else scaling.provider; `auto`
 * is what the deploy discovered there, or KEDA when no cluster was asked (render): a ScaledObject
 * applied where KEDA is missing fails loudly, an HPA whose External metrics nobody serves would
 * scale on CPU alone without a word.
 */
export function autoscalerProvider(
  svc: ServiceConfig,
  choice: ScalingChoice | undefined,
  target: {context?: string; kubeconfig?: string},
): {provider: AutoscalerProvider; discovered: boolean} {
  const wanted = choice?.override && choice.override !== 'auto' ? choice.override : svc.scaling.provider
  if (wanted !== 'auto') return {provider: wanted, discovered: false}
  const found = choice?.discovered?.[clusterConnectionKey(target)]
  return found ? {provider: found, discovered: true} : {provider: 'keda', discovered: false}
}

/** The External metric an HPA asks prometheus-adapter for: <service>_<metric>, [a-z0-9_] only. */
export function externalMetricName(service: string, metric: string): string {
  return `${service}_${metric}`.replace(/[^a-z0-9_]/g, '_')
}

/** Labels of the recording rule behind each External metric; the HPA selects on them. */
export const EXTERNAL_METRIC_LABELS = {service: 'retailops_service', metric: 'retailops_metric'} as const

/** The annotation on an HPA with External metrics: [{metric, query}] for the recording rules the adapter serves. */
export const EXTERNAL_QUERIES_ANNOTATION = 'retailops.dev/external-metric-queries'

/** The Prometheus the autoscaler queries: autoscalingPrometheus (as seen from the cluster), else prometheus. */
export function autoscalingPrometheus(env: ResolvedEnvironment, service: string): string {
  const url = env.autoscalingPrometheus ?? env.prometheus
  if (!url)
    throw new RetailOpsError(
      'CONFIG',
      `${service} scales on Prometheus queries (services.${service}.scaling.metrics), and environment ${env.name} does not say where Prometheus is.`,
      {
        nextSteps: [
          `Set environments.${env.name}.prometheus (or autoscalingPrometheus, the address KEDA reaches from the cluster) in retailops.yaml.`,
        ],
      },
    )
  return url
}

interface AutoscalerInput {
  service: string
  svc: ServiceConfig
  metadata: KubeObject['metadata']
  provider: AutoscalerProvider
  env: ResolvedEnvironment
  /** The behaviour retailops gives every HPA (templates/manifests/hpa.yaml). */
  behavior: Record<string, unknown>
}

const cpuResourceMetric = (svc: ServiceConfig) => ({
  type: 'Resource',
  resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: svc.scaling.targetCPUUtilization}},
})

/** The autoscaler object of one service (its Deployment scales between minReplicas and maxReplicas). */
export function renderAutoscaler(input: AutoscalerInput): KubeObject {
  const {service, svc, metadata} = input
  const {minReplicas, maxReplicas, metrics} = svc.scaling
  const target = {apiVersion: 'apps/v1', kind: 'Deployment', name: service}
  if (metrics.length > 0 && input.provider === 'keda') {
    const serverAddress = autoscalingPrometheus(input.env, service)
    return {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata,
      spec: {
        scaleTargetRef: target,
        minReplicaCount: minReplicas,
        maxReplicaCount: maxReplicas,
        advanced: {horizontalPodAutoscalerConfig: {behavior: input.behavior}},
        triggers: [
          ...metrics.map((m) => ({
            type: 'prometheus',
            name: m.name,
            metricType: m.type,
            metadata: {
              serverAddress,
              query: m.query,
              threshold: String(m.target),
              ...(m.activationTarget === undefined ? {} : {activationThreshold: String(m.activationTarget)}),
            },
          })),
          // CPU as the floor signal: the business signals can only add replicas above what CPU needs.
          {
            type: 'cpu',
            name: 'cpu',
            metricType: 'Utilization',
            metadata: {value: String(svc.scaling.targetCPUUtilization)},
          },
        ],
      },
    }
  }
  if (metrics.length > 0) autoscalingPrometheus(input.env, service)
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata:
      metrics.length > 0
        ? {
            ...metadata,
            annotations: {
              ...metadata.annotations,
              [EXTERNAL_QUERIES_ANNOTATION]: JSON.stringify(
                metrics.map((m) => ({metric: externalMetricName(service, m.name), query: m.query})),
              ),
            },
          }
        : metadata,
    spec: {
      behavior: input.behavior,
      scaleTargetRef: target,
      minReplicas,
      maxReplicas,
      metrics: [
        ...metrics.map((m) => ({
          type: 'External',
          external: {
            metric: {
              name: externalMetricName(service, m.name),
              selector: {
                matchLabels: {[EXTERNAL_METRIC_LABELS.service]: service, [EXTERNAL_METRIC_LABELS.metric]: m.name},
              },
            },
            target:
              m.type === 'AverageValue'
                ? {type: 'AverageValue', averageValue: formatDecimalQuantity(m.target)}
                : {type: 'Value', value: formatDecimalQuantity(m.target)},
          },
        })),
        cpuResourceMetric(svc),
      ],
    },
  }
}
