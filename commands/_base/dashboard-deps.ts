import {prewarmStatus} from '../../src/capacity/status.js'
import type {LoadedConfig} from '../../src/config/load.js'
import {recoveryTargets, type ResolvedEnvironment} from '../../src/config/resolve.js'
import {runCost} from '../../src/cost/cost.js'
import type {DashboardProviders} from '../../src/dashboard/views.js'
import {readHistory} from '../../src/dr/cluster-history.js'
import {KubeObjects} from '../../src/kubernetes/objects.js'
import {rolloutOverview} from '../../src/rollout/overview.js'
import {prometheusUrlFor, sloStatus} from '../../src/slo/status.js'
import {type Output, silentOutput} from '../../src/ui/output.js'

/**
 * The dashboard's data, read from the engines the other commands use (rollout, slo, cost, capacity,
 * dr): src/dashboard imports none of them, and joining concepts is the commands' job. The engines
 * report through an output that keeps their progress off the terminal (the page shows their
 * failures), while their warnings go to the dashboard's debug output.
 */
export function dashboardProviders(
  project: LoadedConfig,
  env: ResolvedEnvironment,
  options: {costWindow: string; costWindowMs: number; out: Output},
): DashboardProviders {
  const config = project.config
  const kube = new KubeObjects({context: env.context, kubeconfig: env.kubeconfig})
  const quiet = (signal?: AbortSignal) => ({
    out: {...silentOutput, warn: (m: string) => options.out.debug(`dashboard: ${m}`)},
    signal,
  })
  const prometheus = env.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL
  return {
    project: config.project,
    environment: env.name,
    namespace: env.namespace,
    services: Object.keys(config.services).sort(),
    rollouts: () => rolloutOverview(env.namespace, {kube}),
    slo: (signal) =>
      sloStatus(
        {config, prometheusUrl: prometheusUrlFor(env.prometheus), history: true, namespace: env.namespace},
        quiet(signal),
      ),
    cost: (signal) =>
      runCost(
        {
          config,
          kube: {context: env.context, kubeconfig: env.kubeconfig},
          prometheusUrl: prometheus,
          windowMs: options.costWindowMs,
          window: options.costWindow,
          by: ['service'],
          shareIdle: 'none',
          usage: 'auto',
        },
        quiet(signal),
      ),
    prewarm: () =>
      prewarmStatus({config, kube: {context: env.context, kubeconfig: env.kubeconfig}, namespace: env.namespace}),
    drills: async (signal) => {
      const history = await readHistory({project, environment: env, cluster: true, filter: {limit: 50}}, quiet(signal))
      return {
        drills: history.drills,
        targets: Object.entries(config.services).map(([service, s]) => ({
          service,
          ...recoveryTargets(config, s.tier, s),
        })),
        scheduled: history.scheduled,
      }
    },
    close: () => kube.close(),
  }
}
