import {runCost} from '../../src/cost/cost.js'
import type {LoadedConfig} from '../../src/config/load.js'
import type {ResolvedEnvironment} from '../../src/config/resolve.js'
import type {PreviewInfo} from '../../src/env/manage.js'
import type {RunContext} from '../../src/ui/context.js'

/**
 * `env list`'s cost so far: what the cost engine (src/cost, one run over the window since the
 * oldest preview was created, pod requests priced by node pool as `retailops cost` prices them)
 * allocates to each preview's namespace. Previews (src/env) may not import the cost concept:
 * joining the two is the command's job, as rollout-deps.ts joins rollout and slo.
 */
export async function addCostSoFar(
  previews: PreviewInfo[],
  project: LoadedConfig,
  env: ResolvedEnvironment,
  ctx: RunContext,
  now = new Date(),
): Promise<{currency: string; pricing: string}> {
  const oldest = Math.max(0, ...previews.map((p) => p.ageMs ?? 0))
  if (previews.length === 0 || oldest <= 0) return {currency: project.config.prices.currency, pricing: 'none'}
  const report = await runCost(
    {
      config: project.config,
      kube: {context: env.context, kubeconfig: env.kubeconfig},
      windowMs: oldest,
      window: `${Math.ceil(oldest / 60_000)}m`,
      by: ['namespace'],
      shareIdle: 'none',
      usage: 'requests',
      now,
    },
    ctx,
  )
  const byNamespace = new Map(report.allocations.map((a) => [a.name, a.totalCost]))
  for (const p of previews) p.costSoFar = byNamespace.get(p.namespace) ?? 0
  return {currency: report.currency, pricing: report.pricing.note}
}
