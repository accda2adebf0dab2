import * as Flags from '@oclif/core/flags'

import {SCALING_PROVIDERS, TIERS} from '../../src/config/vocabulary.js'

// Flags more than one command takes, defined once so their names, descriptions and parsing stay
// the same everywhere. (Flags every command takes are RetailOpsCommand.baseFlags.)

/**
 * jobs run and jobs status: the dedicated tenant whose workloads the command acts on (its namespace,
 * and its cluster for a dedicated cluster), named as deploy --tenant names it.
 */
export const tenantFlag = Flags.string({
  description:
    "Act on this tenant's workloads: a dedicated-namespace tenant's namespace, a dedicated-cluster tenant's cluster and namespace (default: the environment's namespace).",
})

/** deploy, render and diff: what is rendered. */
export const renderFlags = {
  tenant: Flags.string({description: 'Deploy only this tenant (default: all tenants).'}),
  'scaling-provider': Flags.string({
    description:
      "Autoscaler of services with scaling.metrics: keda (ScaledObject), hpa (HPA with External metrics) or auto (keda where the cluster serves scaledobjects.keda.sh; render, which asks no cluster, renders keda). Default each service's scaling.provider.",
    options: [...SCALING_PROVIDERS],
  }),
  image: Flags.string({
    description: 'Use this image for a service instead of the artifacts lock: SERVICE=REF (repeatable).',
    multiple: true,
  }),
}

/** slo, cost and prewarm: the Prometheus they query. */
export const prometheusFlag = Flags.string({
  description: "Prometheus URL (default: the environment's, or RETAILOPS_PROMETHEUS_URL).",
})

/** dr plan and dr drill: what a restore drill covers. */
export const drillSelectionFlags = {
  tier: Flags.string({
    description: 'Only datastores and services of this tier (repeatable).',
    options: [...TIERS],
    multiple: true,
  }),
  service: Flags.string({
    description: "Only this service's datastores and checks (repeatable, or comma-separated).",
    multiple: true,
    delimiter: ',',
  }),
  datastore: Flags.string({
    description: 'Only this datastore (repeatable, or comma-separated).',
    multiple: true,
    delimiter: ',',
  }),
  'allow-source-server': Flags.string({
    description:
      "Let production PostgreSQL datastores without postgres.restoreUrlEnv be restored on their source's own server; the reason is recorded in the drill's record.",
    helpValue: '<reason>',
  }),
}

/** rollout promote, resume and undo: re-applying what the rollout state names. */
export const stateSkipVerifyFlag = Flags.boolean({
  description:
    'Do not verify the signatures of the images read back from the rollout state (loud warning; recorded on the Deployment). Policy is still checked.',
})

/** rollout promote and resume: the exits of a CLI that drives a rollout on from its stored state. */
export const DRIVE_EXIT_CODES = [
  'OK',
  'USAGE',
  'CONFIG',
  'NOT_FOUND',
  'UNAVAILABLE',
  'PERMISSION',
  'REFUSED',
  'ROLLOUT_HELD',
  'ROLLOUT_ABORTED',
  'ROLLOUT_PAUSED',
  'ROLLOUT_INCONCLUSIVE',
  'ROLLOUT_TIMED_OUT',
  'TRAFFIC_NOT_RETURNED',
  'STATE_UNTRUSTED',
  'INTERRUPTED',
] as const

/** rollout promote and resume: how long they drive the rollout on. */
export const driveTimeoutFlag = Flags.string({
  description: 'Give up driving after this long (the rollout times out: traffic back on stable).',
})

/**
 * The flags a scheduled job runs with: those given on this command line, as given (defaults stay
 * the job's own), except the ones in `notPassed` (flags of the scheduling itself, or set by the
 * schedule). Every other flag is passed on, so a flag added later cannot be forgotten.
 */
export function passThroughFlags(
  flags: Record<string, unknown>,
  explicit: Set<string>,
  notPassed: Set<string>,
): string[] {
  const pass: string[] = []
  for (const name of Object.keys(flags).sort()) {
    const value = flags[name]
    if (notPassed.has(name) || !explicit.has(name) || value === undefined) continue
    if (typeof value === 'boolean') pass.push(value ? `--${name}` : `--no-${name}`)
    else if (Array.isArray(value)) for (const v of value) pass.push(`--${name}`, String(v))
    else pass.push(`--${name}`, String(value))
  }
  return pass
}

/** prewarm --schedule, dr drill --schedule and deploy --detach: the image their in-cluster jobs run. */
export function runnerImageFlag(whatRunsIt: string, options: {dependsOn?: string[]; helpGroup?: string} = {}) {
  return Flags.string({
    description: `${whatRunsIt}, by digest (default: runner.image, else the \`runner\` entry of the artifacts lock); its signature is verified first.`,
    ...options,
  })
}
