/** Label and annotation keys retailops puts on what it renders. */
export const LABEL = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  version: 'app.kubernetes.io/version',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  service: 'retailops.dev/service',
  /** A job's CronJob, its pods and its other objects (never on a service's: gateway egress selects pods by the service label). */
  job: 'retailops.dev/job',
  tier: 'retailops.dev/tier',
  tenant: 'retailops.dev/tenant',
  environment: 'retailops.dev/environment',
  /** Every object one deploy manages in one cluster carries the same value: prune finds them by it (like kubectl's applyset part-of label). */
  applySet: 'retailops.dev/applyset',
  /** The pod-template label the sandbox's kwok stage turns into a simulated CrashLoopBackOff. */
  simulate: 'retailops.dev/simulate',
} as const

export const ANNOTATION = {
  /** verified | skipped | unverified: how the image's signature was checked at deploy time. */
  signature: 'retailops.dev/signature-verification',
  /** admitted | refused | overridden: what the supply-chain policy (supplyChain.policy) decided at deploy time. */
  supplyChain: 'retailops.dev/supply-chain',
  /** The reason of a recorded override of the supply-chain policy (--skip-verify --force-release --reason). */
  supplyChainOverride: 'retailops.dev/supply-chain-override',
  image: 'retailops.dev/image',
  configVersion: 'retailops.dev/config-version',
  tenants: 'retailops.dev/tenants',
} as const

export const MANAGED_BY = 'retailops'
export const FIELD_MANAGER = 'retailops'
/** The rollout driver's manager: it owns route weights and canary scale only while a rollout runs. */
export const FIELD_MANAGER_ROLLOUT = 'retailops-rollout'
/** The field manager of every change the pre-warm makes: a deploy during a campaign names it in its conflict. */
export const FIELD_MANAGER_PREWARM = 'retailops-prewarm'
/** The manager of `retailops sleep` and `wake` (Deployment replicas, HPA bounds, the saved state). */
export const FIELD_MANAGER_SLEEP = 'retailops-sleep'
/** The manager of preview environments' own objects outside the deploy (expiry, extension). */
export const FIELD_MANAGER_ENV = 'retailops-env'
/** The restore drill's manager for the objects it restores into a scratch namespace. */
export const FIELD_MANAGER_DR = 'retailops-dr'
/** `retailops promote`: its records in the target namespace. */
export const FIELD_MANAGER_PROMOTE = 'retailops-promote'

/** A string made safe for a label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends. */
export function labelValue(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63)
  return cleaned.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '')
}
