import {execa} from 'execa'

import type {LoadedConfig} from '../config/load.js'
import {selectServices, type ResolvedEnvironment} from '../config/resolve.js'
import {
  applyStep,
  checkStep,
  DeployTimer,
  type DeployResult,
  recordApply,
  recordRollouts,
  renderStep,
  waitStep,
} from '../deploy/engine.js'
import type {LockedImage} from '../deploy/images.js'
import {quotaFor} from '../deploy/render.js'
import {ARTIFACTS_LOCK} from '../docker/artifacts.js'
import {NotFoundError, RetailOpsError, UsageError} from '../errors/index.js'
import {kubeError, kubeHttp, statusCode} from '../kubernetes/client.js'
import type {KubeHttp} from '../kubernetes/http.js'
import {FIELD_MANAGER, FIELD_MANAGER_ENV, LABEL} from '../kubernetes/labels.js'
import {applyOwned, readObject} from '../kubernetes/objects.js'
import {type KubeObject, namedPath, objectPath} from '../kubernetes/resources.js'
import {formatDuration} from '../config/duration.js'
import type {RunContext} from '../ui/context.js'
import {PREVIEW, previewEnvironment, previewNamespace} from './names.js'

/**
 * `retailops env create NAME`: a preview environment. One namespace of its own
 * (`<project>-preview-<name>`) in the chosen environment's cluster, rendered by the deploy engine
 * as an environment of its own (`preview-<name>`, so its own applyset: no prune of another
 * environment can select it, and its prune selects nothing else), without the environment's
 * gateway (no shared route) and without tenants (no tenant namespace or database Secret is
 * shared): the services once, with a ResourceQuota and LimitRange, default-deny NetworkPolicies
 * plus traffic within the namespace, Pod Security `restricted`, and the owner, creation time and
 * expiry on the namespace. Secrets and ConfigMaps the services mount are created empty in the
 * preview, never copied. Images: the artifacts lock (the project's current images), or the lock
 * committed on a branch (--from-branch); nothing is ever built here, and every image is verified
 * and policy-checked as a deploy checks it, before the first write.
 */

export interface CreatePreviewOptions {
  project: LoadedConfig
  /** The environment whose cluster the preview goes to (--environment). */
  env: ResolvedEnvironment
  name: string
  ttlMs: number
  services?: string[]
  fromBranch?: string
  owner: string
  wait?: boolean
  timeoutMs?: number
  now?: Date
}

export interface PreviewReach {
  service: string
  port: number
  /** In-cluster DNS name. */
  host: string
  portForward: string
}

export interface CreatePreviewResult {
  name: string
  namespace: string
  environment: string
  cluster: string
  owner: string
  created: string
  expires: string
  ttl: string
  source: string
  services: string[]
  images: {service: string; image: string}[]
  /** Secrets and ConfigMaps created empty for the services (fill them with kubectl). */
  created_empty: string[]
  reach: PreviewReach[]
  outcome: DeployResult['outcome']
  apply: DeployResult['apply']
  rollouts: DeployResult['rollouts']
  /**
   * The preview's objects could not all be applied, so its namespace (made by this run) was deleted
   * rather than left half-made until its expiry. False when the apply succeeded, or when the pods
   * only failed to become Ready (the preview is kept for looking into).
   */
  removed: boolean
}

/** The lock committed on a branch: `git show BRANCH:./.retailops/artifacts.lock.json`, every selected service by digest. */
export async function branchLock(
  dir: string,
  branch: string,
  services: string[],
): Promise<{lock: Record<string, LockedImage>; commit: string}> {
  if (branch.startsWith('-') || /\s/.test(branch)) throw new UsageError(`--from-branch ${branch}: not a branch name.`)
  const commit = await execa('git', ['rev-parse', '--verify', '--quiet', `${branch}^{commit}`], {
    cwd: dir,
    timeout: 10_000,
  }).then(
    (r) => r.stdout.trim(),
    () => undefined,
  )
  if (!commit)
    throw new NotFoundError(`--from-branch ${branch}: no such branch or commit in the git repository of ${dir}.`, {
      nextSteps: ['`git fetch` it first, or check the name (`git branch -a`).'],
    })
  const text = await execa('git', ['show', `${commit}:./${ARTIFACTS_LOCK}`], {cwd: dir, timeout: 10_000}).then(
    (r) => r.stdout,
    () => undefined,
  )
  const notBuilt = (missing: string[]) =>
    new NotFoundError(
      `No images built from branch ${branch} (${commit.slice(0, 7)}) for ${missing.join(', ')}: its ${ARTIFACTS_LOCK} ${text === undefined ? 'does not exist' : 'has no digest for them'}. retailops never builds for a preview.`,
      {
        nextSteps: [
          `Build, push and sign them on that branch (its CI pipeline, or \`git checkout ${branch} && retailops build && retailops push && retailops sign\`) and commit the lock; then create the preview again.`,
          'Or leave out --from-branch to deploy the current artifacts lock.',
        ],
        details: {branch, commit, missing},
      },
    )
  if (text === undefined) throw notBuilt(services)
  let parsed: {artifacts?: Record<string, {image?: string; digest?: string; tag?: string}>}
  try {
    parsed = JSON.parse(text) as typeof parsed
  } catch {
    throw new RetailOpsError(
      'CONFIG',
      `${ARTIFACTS_LOCK} on branch ${branch} (${commit.slice(0, 7)}) is not valid JSON.`,
    )
  }
  const lock: Record<string, LockedImage> = {}
  for (const [service, a] of Object.entries(parsed.artifacts ?? {}))
    if (a?.image && /@sha256:[0-9a-f]{64}$/.test(a.image))
      lock[service] = {image: a.image, digest: a.digest, version: a.tag}
  const missing = services.filter((s) => !lock[s])
  if (missing.length > 0) throw notBuilt(missing)
  return {lock, commit}
}

/** The project as a preview renders it: no tenants (their namespaces and databases belong to the real environments). */
function previewProject(project: LoadedConfig): LoadedConfig {
  return {...project, config: {...project.config, tenants: []}}
}

/** The environment a preview renders as: the base environment's cluster, its own name and namespace, no gateway, not production. */
export function previewEnv(base: ResolvedEnvironment, name: string, namespace: string): ResolvedEnvironment {
  return {
    ...base,
    name: previewEnvironment(name),
    namespace,
    gateway: undefined,
    router: 'replicas',
    baseUrl: undefined,
    production: false,
  }
}

/** Quota, default limits and traffic within the namespace, with the labels of the preview's other objects. */
function tenancyObjects(
  project: LoadedConfig,
  namespace: string,
  services: string[],
  common: Record<string, string>,
): KubeObject[] {
  const labels = {...common, [LABEL.component]: 'preview'}
  return [
    {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: {name: 'preview-quota', namespace, labels},
      spec: {hard: quotaFor(project.config, services, [])},
    },
    {
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: {name: 'preview-limits', namespace, labels},
      spec: {
        limits: [
          {
            type: 'Container',
            defaultRequest: {cpu: '100m', memory: '128Mi'},
            default: {cpu: '500m', memory: '256Mi'},
          },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {name: 'allow-within-preview', namespace, labels},
      spec: {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{from: [{podSelector: {}}]}],
        egress: [{to: [{podSelector: {}}]}],
      },
    },
  ]
}

export async function readNamespace(http: KubeHttp, namespace: string) {
  return readObject<KubeObject & {metadata: {deletionTimestamp?: string; resourceVersion?: string}}>(
    http,
    namedPath('Namespace', namespace),
  ).catch((error: unknown) => {
    throw kubeError(error, `reading namespace ${namespace}`)
  })
}

/** Deletes exactly the namespace that was read (resourceVersion precondition: not one recreated under its name); gone already is fine. */
export async function deleteNamespace(
  http: KubeHttp,
  ns: {metadata: {name: string; resourceVersion?: string}},
): Promise<void> {
  try {
    await http.request('DELETE', namedPath('Namespace', ns.metadata.name), {
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        propagationPolicy: 'Background',
        preconditions: {resourceVersion: ns.metadata.resourceVersion},
      },
    })
  } catch (error) {
    if (statusCode(error) === 404) return
    throw kubeError(error, `deleting namespace ${ns.metadata.name}`)
  }
}

export async function createPreview(options: CreatePreviewOptions, ctx: RunContext): Promise<CreatePreviewResult> {
  const {project, name} = options
  const {config} = project
  const namespace = previewNamespace(config.project, name)
  const services = selectServices(config, options.services)
  const taken = Object.entries(config.environments).find(([, e]) => e.namespace === namespace)
  if (taken)
    throw new UsageError(`Preview ${name}'s namespace ${namespace} is environment ${taken[0]}'s namespace.`, {
      nextSteps: ['Pick another preview name.'],
    })
  const now = options.now ?? new Date()
  const expires = new Date(now.getTime() + options.ttlMs)
  const branch = options.fromBranch ? await branchLock(project.dir, options.fromBranch, services) : undefined
  const source = branch ? `branch ${options.fromBranch} (${branch.commit.slice(0, 12)})` : 'artifacts lock'
  const env = previewEnv(options.env, name, namespace)

  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  try {
    const existing = await readNamespace(http, namespace)
    if (existing) {
      const ours =
        existing.metadata.labels?.[PREVIEW.of] === config.project && existing.metadata.labels?.[PREVIEW.name] === name
      throw new RetailOpsError(
        'PREVIEW_EXISTS',
        existing.metadata.deletionTimestamp
          ? `Preview ${name}'s namespace ${namespace} is still being deleted.`
          : ours
            ? `Preview ${name} already exists (namespace ${namespace}, expires ${existing.metadata.annotations?.[PREVIEW.expires] ?? 'unknown'}).`
            : `Namespace ${namespace} exists and is not preview ${name} of project ${config.project}; it was left alone.`,
        {
          nextSteps: ours
            ? [
                `\`retailops env extend ${name} --ttl 8h\` gives it more time; \`retailops env destroy ${name}\` removes it.`,
              ]
            : ['Pick another preview name.'],
        },
      )
    }

    const timer = new DeployTimer()
    const plan = await renderStep({
      discoverScaling: true,
      project: previewProject(project),
      env,
      envAsGiven: true,
      services,
      lock: branch?.lock,
    })
    const target = plan.targets[0]
    const nsObject = target.objects.find((o) => o.kind === 'Namespace')!
    const common = Object.fromEntries(
      Object.entries(nsObject.metadata.labels ?? {}).filter(
        ([k]) => k !== LABEL.component && !k.startsWith('pod-security'),
      ),
    )
    nsObject.metadata.labels = {...nsObject.metadata.labels, [PREVIEW.name]: name, [PREVIEW.of]: config.project}
    nsObject.metadata.annotations = {
      ...nsObject.metadata.annotations,
      [PREVIEW.owner]: options.owner,
      [PREVIEW.created]: now.toISOString(),
      [PREVIEW.expires]: expires.toISOString(),
      [PREVIEW.ttl]: formatDuration(options.ttlMs),
      [PREVIEW.source]: source,
      [PREVIEW.services]: services.join(','),
    }
    target.objects.push(...tenancyObjects(project, namespace, services, common))

    // Signatures and policy, as a deploy checks them: nothing is written when they fail.
    const checked = await checkStep(plan, {project}, ctx, {strategy: 'preview', timer})
    if (checked.done) {
      const errors = checked.result.policy.findings.filter((f) => f.severity === 'error')
      throw new RetailOpsError(
        'POLICY',
        `Preview ${name} was not created: policy found ${errors.length} error(s); nothing was applied:\n${errors.map((f) => `  • ${f.message}`).join('\n')}`,
        {
          nextSteps: ['Push and sign the images (`retailops push`, `retailops sign`), or fix the findings.'],
          details: {policy: checked.result.policy},
        },
      )
    }

    // The namespace, then the services' Secrets and ConfigMaps (created empty, never copied), then the rest.
    const task = ctx.out.task(`Creating preview ${name} in namespace ${namespace}`)
    const createdEmpty: string[] = []
    let namespaceCreated = false
    const removeHalfMade = () =>
      namespaceCreated ? removeFailedPreview(http, namespace, config.project, name, now, ctx) : Promise.resolve(false)
    try {
      await applyOwned(http, objectPath(nsObject), nsObject, FIELD_MANAGER)
      namespaceCreated = true
      const previewLabels: Record<string, string> = {
        ...common,
        [LABEL.component]: 'preview-config',
        [PREVIEW.name]: name,
      }
      delete previewLabels[LABEL.applySet]
      for (const s of services) {
        const svc = config.services[s]
        for (const secret of svc.secrets) {
          await applyOwned(
            http,
            namedPath('Secret', secret, namespace),
            {
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: {name: secret, namespace, labels: previewLabels},
              type: 'Opaque',
            },
            FIELD_MANAGER_ENV,
          )
          createdEmpty.push(`Secret/${secret}`)
        }
        for (const cm of svc.configMaps) {
          await applyOwned(
            http,
            namedPath('ConfigMap', cm, namespace),
            {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: cm, namespace, labels: previewLabels}},
            FIELD_MANAGER_ENV,
          )
          createdEmpty.push(`ConfigMap/${cm}`)
        }
      }
    } catch (error) {
      task.fail()
      await removeHalfMade()
      throw kubeError(error, `creating preview ${name}`)
    }
    task.succeed(`Namespace ${namespace} created (expires ${expires.toISOString()})`)
    for (const c of createdEmpty)
      ctx.out.warn(
        `${c} was created empty in ${namespace} (a preview never copies another environment's): fill it with kubectl if the service needs values.`,
      )

    const applied = await timer
      .time('apply', () => applyStep(plan, {prune: true}, ctx))
      .catch(async (error) => {
        await removeHalfMade()
        throw error
      })
    const result = checked.result
    const complete = recordApply(result, applied)
    if (complete && options.wait !== false)
      recordRollouts(result, await timer.time('wait', () => waitStep(plan, {timeoutMs: options.timeoutMs}, ctx)))
    const removed = complete ? false : await removeHalfMade()

    return {
      name,
      namespace,
      environment: env.name,
      cluster: target.cluster,
      owner: options.owner,
      created: now.toISOString(),
      expires: expires.toISOString(),
      ttl: formatDuration(options.ttlMs),
      source,
      services,
      images: services.map((s) => ({service: s, image: plan.images[s].ref})),
      created_empty: createdEmpty,
      reach: services.map((s) => ({
        service: s,
        port: config.services[s].port,
        host: `${s}.${namespace}.svc.cluster.local:${config.services[s].port}`,
        portForward: `kubectl -n ${namespace} port-forward service/${s} ${config.services[s].port}:${config.services[s].port}`,
      })),
      outcome: result.outcome,
      apply: result.apply,
      rollouts: result.rollouts,
      removed,
    }
  } finally {
    http.close()
  }
}

/**
 * Deletes the namespace a failed `env create` made, so that a preview is either whole or absent.
 * Only the namespace this run created: same preview labels and the creation time this run wrote
 * (a namespace recreated in between by someone else is left alone), deleted as it was read. A failure to delete is a warning naming the command that finishes the job, never
 * a second error hiding the first.
 */
async function removeFailedPreview(
  http: KubeHttp,
  namespace: string,
  project: string,
  name: string,
  created: Date,
  ctx: RunContext,
): Promise<boolean> {
  const leftover = `Preview ${name}'s namespace ${namespace} was left behind half-made: \`retailops env destroy ${name}\` removes it (the sweep would at its expiry).`
  try {
    const ns = await readNamespace(http, namespace)
    if (!ns) return true
    const labels = ns.metadata.labels ?? {}
    if (
      labels[PREVIEW.of] !== project ||
      labels[PREVIEW.name] !== name ||
      ns.metadata.annotations?.[PREVIEW.created] !== created.toISOString()
    ) {
      ctx.out.warn(`Namespace ${namespace} is no longer the one this run created; it was left alone.`)
      return false
    }
    await deleteNamespace(http, ns)
    ctx.out.warn(`Preview ${name} could not be created whole; its namespace ${namespace} was deleted.`)
    return true
  } catch {
    ctx.out.warn(leftover)
    return false
  }
}
