import type {ResolvedEnvironment} from '../../src/config/resolve.js'
import type {RetailOpsConfig} from '../../src/config/schema.js'
import {prometheusProvider} from '../../src/rollout/analysis.js'
import type {ControlDeps} from '../../src/rollout/control.js'
import {KubeObjects} from '../../src/kubernetes/objects.js'
import {observedRpsFrom} from '../../src/rollout/start.js'
import type {TrustOptions} from '../../src/rollout/trust.js'
import {errorBudgetSource} from '../../src/slo/status.js'

/**
 * The clients and metrics provider every rollout command needs for an environment. Wired here,
 * not in src/rollout: the release gates' error budget comes from src/slo, and one concept never
 * imports another.
 */
export function controlDeps(env: ResolvedEnvironment, config?: RetailOpsConfig, trust?: TrustOptions): ControlDeps {
  const url = env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL
  return {
    kube: new KubeObjects({context: env.context, kubeconfig: env.kubeconfig}),
    provider: url ? prometheusProvider(url) : undefined,
    observedRps: observedRpsFrom(url, config),
    trust,
    gates: config ? {config, errorBudget: errorBudgetSource(config, env.prometheus, env.namespace)} : undefined,
  }
}
