/**
 * The spec and status of the kinds retailops reads back through objects.ts (`kube.get<Deployment>`),
 * as the API serves them as JSON: only the fields retailops reads are named; the rest of each
 * object is kept as it came (index signatures), so an object read can be changed and applied again.
 */
import type {Obj} from './objects.js'

export type Labels = Record<string, string>

export interface LabelSelector {
  matchLabels?: Labels
  matchExpressions?: {key: string; operator: string; values?: string[]}[]
}

export interface Condition {
  type: string
  status: string
  reason?: string
  message?: string
  lastTransitionTime?: string
}

export interface Container {
  name: string
  image?: string
  env?: {name: string; value?: string; valueFrom?: unknown}[]
  resources?: {requests?: Record<string, string>; limits?: Record<string, string>}
  [field: string]: unknown
}

export interface PodSpec {
  containers: Container[]
  initContainers?: Container[]
  nodeSelector?: Labels
  serviceAccountName?: string
  [field: string]: unknown
}

export interface PodTemplate {
  metadata?: {labels?: Labels; annotations?: Labels; [field: string]: unknown}
  spec?: PodSpec
  [field: string]: unknown
}

export interface DeploymentSpec {
  replicas?: number
  selector?: LabelSelector
  template?: PodTemplate
  strategy?: Record<string, unknown>
  [field: string]: unknown
}

export interface DeploymentStatus {
  observedGeneration?: number
  replicas?: number
  updatedReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  conditions?: Condition[]
}

export type Deployment = Obj<DeploymentSpec, DeploymentStatus>
export type ReplicaSet = Obj<DeploymentSpec, DeploymentStatus>

export interface ContainerStatus {
  name: string
  ready?: boolean
  restartCount?: number
  image?: string
  imageID?: string
  state?: Record<string, {reason?: string; message?: string; exitCode?: number} | undefined>
  lastState?: Record<string, {reason?: string; message?: string; exitCode?: number} | undefined>
}

export interface PodStatus {
  phase?: string
  conditions?: Condition[]
  containerStatuses?: ContainerStatus[]
  initContainerStatuses?: ContainerStatus[]
}

export type Pod = Obj<PodSpec, PodStatus>

export interface ServiceSpec {
  selector?: Labels
  ports?: {name?: string; port: number; targetPort?: number | string; protocol?: string}[]
  [field: string]: unknown
}

export type Service = Obj<ServiceSpec>

export interface HorizontalPodAutoscalerSpec {
  scaleTargetRef: {apiVersion?: string; kind: string; name: string}
  minReplicas?: number
  maxReplicas: number
  [field: string]: unknown
}

export type HorizontalPodAutoscaler = Obj<
  HorizontalPodAutoscalerSpec,
  {currentReplicas?: number; desiredReplicas?: number; conditions?: Condition[]}
>

/**
 * KEDA's ScaledObject (keda.sh/v1alpha1): KEDA makes and owns an HPA for it (keda-hpa-<name>).
 * Absent minReplicaCount means 0 and absent maxReplicaCount 100 (KEDA's defaults).
 */
export interface ScaledObjectSpec {
  scaleTargetRef: {apiVersion?: string; kind?: string; name: string}
  minReplicaCount?: number
  maxReplicaCount?: number
  advanced?: {
    horizontalPodAutoscalerConfig?: {name?: string; behavior?: Record<string, unknown>}
    [field: string]: unknown
  }
  triggers: {type: string; name?: string; metricType?: string; metadata: Record<string, string>}[]
  [field: string]: unknown
}

export type ScaledObject = Obj<ScaledObjectSpec, {conditions?: Condition[]; hpaName?: string; [field: string]: unknown}>

export interface BackendRef {
  name: string
  port?: number
  weight?: number
  [field: string]: unknown
}

export interface HTTPRouteRule {
  matches?: unknown[]
  backendRefs?: BackendRef[]
  [field: string]: unknown
}

export type HTTPRoute = Obj<{
  parentRefs?: unknown[]
  hostnames?: string[]
  rules?: HTTPRouteRule[]
  [field: string]: unknown
}>

export interface IngressRule {
  host?: string
  http?: {
    paths: {
      path?: string
      pathType?: string
      backend: {service?: {name: string; port?: {number?: number; name?: string}}}
    }[]
  }
}

export type Ingress = Obj<{ingressClassName?: string; rules?: IngressRule[]; [field: string]: unknown}>

export interface JobSpec {
  suspend?: boolean
  template?: PodTemplate
  [field: string]: unknown
}

export type Job = Obj<
  JobSpec,
  {
    active?: number
    succeeded?: number
    failed?: number
    startTime?: string
    completionTime?: string
    conditions?: Condition[]
  }
>

export type CronJob = Obj<
  {schedule: string; timeZone?: string; suspend?: boolean; jobTemplate: {spec?: JobSpec}; [field: string]: unknown},
  {lastScheduleTime?: string; lastSuccessfulTime?: string}
>

export type PodDisruptionBudget = Obj<
  {minAvailable?: number | string; maxUnavailable?: number | string; selector?: LabelSelector},
  {currentHealthy?: number; desiredHealthy?: number; disruptionsAllowed?: number}
>

export type ConfigMap = Obj<never, never>
