import type {LoadedConfig} from '../config/load.js'
import {resolveEnvironment, type ResolvedEnvironment} from '../config/resolve.js'
import type {KubeObject} from '../kubernetes/resources.js'
import {type LockedImage, lockedImages, parseImageOverrides, resolveImages, type ResolvedImage} from './images.js'
import {readOverlays, type Overlay} from './overlays.js'
import {renderManifests, type RenderedTarget, type RenderResult} from './render.js'
import {type AutoscalerProvider, clusterConnectionKey} from './autoscaler.js'
import type {ScalingProvider} from '../config/schema.js'

/**
 * A deploy's first step on its own: retailops.yaml, the artifacts lock, --image overrides and
 * overlays rendered into objects. `retailops render` needs only this, so it lives apart from the
 * engine (engine.ts re-exports it), which loads the cluster, signing and supply-chain clients.
 */

export interface DeployPlan extends RenderResult {
  images: Record<string, ResolvedImage>
  /** Services the plan was asked for (all when none were named). */
  selection: {services?: string[]; tenant?: string}
}

export interface RenderStepOptions {
  project: LoadedConfig
  /** The resolved environment (the base command's target(): --context/--namespace applied). */
  env?: ResolvedEnvironment
  environment?: string
  services?: string[]
  tenant?: string
  /** Raw --image SERVICE=REF values. */
  images?: string[]
  /** The images to deploy instead of the project's artifacts lock (a preview from a branch: that branch's lock). */
  lock?: Record<string, LockedImage>
  /** Render `env` as given rather than resolving its name in retailops.yaml (a preview is no configured environment). */
  envAsGiven?: boolean
  /** --scaling-provider: how services with scaling.metrics get their autoscaler (wins over scaling.provider). */
  scalingProvider?: ScalingProvider
  /** Ask each target cluster whether it serves KEDA's ScaledObjects, for scaling.provider auto (deploy, diff). */
  discoverScaling?: boolean
}

/** Step 1: the artifacts lock, --image overrides and overlays, rendered into objects. */
export async function renderStep(options: RenderStepOptions): Promise<DeployPlan> {
  const {config, dir} = options.project
  const env = options.env ?? resolveEnvironment(config, options.environment, dir)
  const overrides = parseImageOverrides(options.images, config)
  const services = options.services?.length
    ? options.services
    : [...Object.keys(config.services), ...Object.keys(config.jobs)]
  const lock = options.lock ?? (await lockedImages(dir))
  const images = resolveImages(
    config,
    services.filter((s) => config.services[s] || config.jobs[s]),
    lock,
    overrides,
  )
  const overlays: Record<string, Overlay[]> = {}
  for (const s of [...Object.keys(config.services), ...Object.keys(config.jobs)])
    overlays[s] = await readOverlays(dir, s)
  const renderWith = (discovered?: Record<string, AutoscalerProvider>) =>
    renderManifests({
      project: options.project,
      environment: env.name,
      env: options.envAsGiven ? env : undefined,
      namespace: env.namespace,
      context: env.context,
      services: options.services,
      tenant: options.tenant,
      images,
      overlays,
      scaling: {override: options.scalingProvider, discovered},
    })
  let render = renderWith()
  if (options.discoverScaling && needsDiscovery(options, services)) {
    // `auto`: each target cluster is asked once whether it serves ScaledObjects, then rendered again with the answer.
    render = renderWith(await discoverProviders(render.targets))
  }
  return {
    ...render,
    images,
    selection: {services: options.services?.length ? options.services : undefined, tenant: options.tenant},
  }
}

function needsDiscovery(options: RenderStepOptions, services: string[]): boolean {
  if (options.scalingProvider && options.scalingProvider !== 'auto') return false
  return services.some((s) => {
    const scaling = options.project.config.services[s]?.scaling
    return scaling && scaling.metrics.length > 0 && scaling.provider === 'auto'
  })
}

/** keda or hpa per cluster connection of the targets: whether scaledobjects.keda.sh is served there. */
async function discoverProviders(targets: RenderedTarget[]): Promise<Record<string, AutoscalerProvider>> {
  const [{kubeHttp, kubeError}, {servesScaledObjects}] = await Promise.all([
    import('../kubernetes/client.js'),
    import('../kubernetes/autoscalers.js'),
  ])
  const out: Record<string, AutoscalerProvider> = {}
  for (const t of targets) {
    const key = clusterConnectionKey(t)
    if (out[key]) continue
    const serves = await servesScaledObjects(kubeHttp({context: t.context, kubeconfig: t.kubeconfig})).catch(
      (error: unknown) => {
        throw kubeError(error, 'asking the cluster whether it serves KEDA ScaledObjects (scaling.provider auto)')
      },
    )
    out[key] = serves ? 'keda' : 'hpa'
  }
  return out
}

export function planObjects(plan: RenderResult): KubeObject[] {
  return plan.targets.flatMap((t) => t.objects)
}

export interface DeployTargetSummary {
  id: string
  cluster: string
  context?: string
  namespace: string
  model: RenderedTarget['model']
  tenants: string[]
  services: string[]
  objects: number
}

export function summarizeTargets(plan: RenderResult): DeployTargetSummary[] {
  return plan.targets.map((t) => ({
    id: t.id,
    cluster: t.cluster,
    context: t.context,
    namespace: t.namespace,
    model: t.model,
    tenants: t.tenants,
    services: t.services,
    objects: t.objects.length,
  }))
}
