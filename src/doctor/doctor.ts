import {existsSync} from 'node:fs'

import type {LoadedConfig} from '../config/load.js'
import {resolveEnvironment, type ResolvedEnvironment} from '../config/resolve.js'
import type {RetailOpsConfig} from '../config/schema.js'
import {envReferenceName, resolveFileOrEnv} from '../config/secret-ref.js'
import {UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {requiredPermissions} from './permissions.js'

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

export interface CheckResult {
  id: string
  title: string
  status: CheckStatus
  detail: string
  fix?: string
  ms: number
}

export interface DoctorOptions {
  project?: LoadedConfig
  environment?: string
  context?: string
  namespace?: string
  /** Per-check deadline. */
  timeoutMs?: number
  /** Check ids not to run (reported as skip), e.g. k6 on a CI runner that never warms up. */
  skip?: string[]
}

export interface DoctorResult {
  ok: boolean
  checks: CheckResult[]
}

type Check = {id: string; title: string; run: () => Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>>}

async function timed(check: Check, timeoutMs: number): Promise<CheckResult> {
  const started = Date.now()
  let timer: NodeJS.Timeout | undefined
  try {
    const result = await Promise.race([
      check.run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs)
      }),
    ])
    return {id: check.id, title: check.title, ...result, ms: Date.now() - started}
  } catch (error) {
    return {
      id: check.id,
      title: check.title,
      status: 'fail',
      detail: (error as Error).message.split('\n')[0],
      ms: Date.now() - started,
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Runs every check in parallel; a failure never stops the others. */
export async function runDoctor(options: DoctorOptions, ctx: RunContext): Promise<DoctorResult> {
  const config = options.project?.config
  const env = config ? safe(() => resolveEnvironment(config, options.environment, options.project!.dir)) : undefined
  const context = options.context ?? env?.context
  const namespace = options.namespace ?? env?.namespace ?? 'default'
  const checks: Check[] = [
    {
      id: 'config',
      title: 'Configuration',
      run: async () =>
        options.project
          ? {status: 'ok', detail: `${options.project.file}: ${Object.keys(config!.services).length} services`}
          : {status: 'warn', detail: 'no retailops.yaml found', fix: 'Run `retailops init`, or pass --config.'},
    },
    {id: 'docker', title: 'Docker Engine', run: checkDocker},
    {
      id: 'registry',
      title: 'Registry',
      run: () => checkRegistry(config?.registry.url ?? process.env.RETAILOPS_REGISTRY, config?.registry.insecure),
    },
    {id: 'cluster', title: 'Kubernetes cluster', run: () => checkCluster(context, env?.kubeconfig)},
    {id: 'rbac', title: 'RBAC permissions', run: () => checkRbac(context, env?.kubeconfig, namespace, config, env)},
    {
      id: 'prometheus',
      title: 'Prometheus',
      run: () => checkPrometheus(env?.prometheus ?? process.env.RETAILOPS_PROMETHEUS_URL),
    },
    {
      id: 'k6',
      title: 'k6',
      run: () =>
        checkBinary(
          process.env.RETAILOPS_K6 ?? 'k6',
          ['version'],
          'Install k6 (go install go.k6.io/k6@latest) or set RETAILOPS_K6.',
        ),
    },
    {
      id: 'signing',
      title: 'Signing key',
      run: async () => {
        if (!options.project) return {status: 'skip', detail: 'no project'}
        const key = resolveFileOrEnv(config!.signing.key, options.project.dir)
        const variable = envReferenceName(key)
        if (variable) {
          // The key is a CI secret: present means the variable is set; it is decrypted when sign runs.
          return process.env[variable]?.trim()
            ? {status: 'ok', detail: `${key} (${variable} is set)`}
            : {
                status: config!.signing.required ? 'warn' : 'skip',
                detail: `${key}: ${variable} is not set`,
                fix: `Set ${variable} to the encrypted key's contents (cosign.key).`,
              }
        }
        return existsSync(key)
          ? {status: 'ok', detail: key}
          : {
              status: config!.signing.required ? 'warn' : 'skip',
              detail: `${key} does not exist`,
              fix: 'Run `retailops keys generate`.',
            }
      },
    },
    {
      id: 'aws',
      title: 'AWS credentials',
      run: () => checkAws(config?.datastores.some((d) => d.provider === 'aws-backup') ?? false),
    },
    {
      id: 'postgres-tools',
      title: 'PostgreSQL tools',
      run: async () =>
        config?.datastores.some((d) => d.provider === 'postgres')
          ? checkBinary('pg_dump', ['--version'], 'Install the PostgreSQL client (apt-get install postgresql-client).')
          : {status: 'skip', detail: 'no postgres datastores'},
    },
  ]
  const unknown = (options.skip ?? []).filter((id) => !checks.some((c) => c.id === id))
  if (unknown.length > 0) {
    throw new UsageError(`Unknown check${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in --skip.`, {
      nextSteps: [`Checks: ${checks.map((c) => c.id).join(', ')}.`],
    })
  }
  for (const c of checks) {
    if (options.skip?.includes(c.id)) c.run = async () => ({status: 'skip', detail: 'skipped (--skip)'})
  }
  const timeoutMs = options.timeoutMs ?? 10_000
  const task = ctx.out.task('Checking the tools and systems retailops uses')
  const results = await Promise.all(checks.map((c) => timed(c, timeoutMs)))
  const failed = results.filter((r) => r.status === 'fail').length
  if (failed > 0) task.fail(`${failed} of ${results.length} checks failed`)
  else task.succeed('All checks passed')
  return {ok: failed === 0, checks: results}
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn()
  } catch {
    return undefined
  }
}

async function checkDocker(): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  const {engineInfo} = await import('../docker/engine.js')
  try {
    const info = await engineInfo()
    return {
      status: 'ok',
      detail: `Engine ${info.version} (API ${info.apiVersion}, ${info.buildkit ? 'BuildKit' : 'classic builder'})`,
    }
  } catch (error) {
    return {
      status: 'fail',
      detail: (error as Error).message,
      fix: 'Start Docker (`bash scripts/sandbox.sh up` for the sandbox) or set DOCKER_HOST.',
    }
  }
}

async function checkRegistry(url?: string, insecure?: boolean): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  if (!url) return {status: 'skip', detail: 'no registry configured'}
  const {pingRegistry} = await import('../docker/registry-ping.js')
  return pingRegistry(url, insecure ?? false)
}

async function checkCluster(context?: string, kubeconfig?: string): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  const {kubeClients, kubeError, kubeHttpOf} = await import('../kubernetes/client.js')
  const {listObjects} = await import('../kubernetes/objects.js')
  const {collectionPath} = await import('../kubernetes/resources.js')
  try {
    const k = kubeClients({context, kubeconfig})
    const http = kubeHttpOf(k)
    const v = await http.request<{gitVersion?: string}>('GET', '/version')
    const nodes = await listObjects(http, collectionPath('Node'))
    return {status: 'ok', detail: `${k.context} at ${k.server}: Kubernetes ${v.gitVersion}, ${nodes.length} nodes`}
  } catch (error) {
    const e = kubeError(error, 'reading the server version')
    return {status: 'fail', detail: e.message, fix: e.nextSteps[0] ?? 'Check KUBECONFIG and --context.'}
  }
}

/**
 * The permissions the project's commands need (requiredPermissions: derived from retailops.yaml and
 * what the cluster serves), each asked of the API server with a SelfSubjectAccessReview.
 */
async function checkRbac(
  context: string | undefined,
  kubeconfig: string | undefined,
  namespace: string,
  config: RetailOpsConfig | undefined,
  env: ResolvedEnvironment | undefined,
): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  const {kubeClients, kubeError, kubeHttpOf} = await import('../kubernetes/client.js')
  const {collectionPath} = await import('../kubernetes/resources.js')
  const {servesResource} = await import('../kubernetes/discovery.js')
  try {
    const http = kubeHttpOf(kubeClients({context, kubeconfig}))
    const [scaledObjects, httpRoutes] = await Promise.all([
      servesResource(http, 'keda.sh/v1alpha1', 'scaledobjects'),
      servesResource(http, 'gateway.networking.k8s.io/v1', 'httproutes'),
    ])
    const required = requiredPermissions(config, env, {scaledObjects, httpRoutes})
    const reviews = required.flatMap((p) => p.verbs.map((verb) => ({...p, verb})))
    const answers = await Promise.all(
      reviews.map(async (r) => {
        const review = await http.request<{status?: {allowed?: boolean}}>(
          'POST',
          collectionPath('SelfSubjectAccessReview'),
          {
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: {
                resourceAttributes: {
                  group: r.group,
                  resource: r.resource,
                  ...(r.subresource ? {subresource: r.subresource} : {}),
                  verb: r.verb,
                  namespace,
                },
              },
            },
          },
        )
        return {...r, allowed: Boolean(review.status?.allowed)}
      }),
    )
    const denied = answers.filter((a) => !a.allowed)
    if (denied.length === 0)
      return {status: 'ok', detail: `all ${answers.length} permissions granted in namespace ${namespace}`}
    return {
      status: 'fail',
      detail: `missing in ${namespace}: ${denied.map((d) => `${d.verb} ${d.resource}${d.subresource ? `/${d.subresource}` : ''}${d.group ? `.${d.group}` : ''} (${d.usedBy})`).join('; ')}`,
      fix: 'Grant them with a Role/ClusterRole bound to your user or CI service account.',
    }
  } catch (error) {
    return {status: 'fail', detail: kubeError(error, 'checking permissions').message}
  }
}

async function checkPrometheus(url?: string): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  if (!url)
    return {
      status: 'warn',
      detail: 'no Prometheus URL configured',
      fix: 'Set environments.<name>.prometheus in retailops.yaml; canary analysis and slo need it.',
    }
  const {PrometheusClient} = await import('../prometheus/client.js')
  const prometheus = new PrometheusClient(url, {infinity: 'no-data', timeoutMs: 5000})
  try {
    const status = await prometheus.readiness()
    if (status < 200 || status > 299)
      return {
        status: 'fail',
        detail: `${url} answered ${status} to /-/ready`,
        fix: 'Wait for Prometheus to finish starting, or check its logs.',
      }
    const info = await prometheus.buildInfo()
    return {status: 'ok', detail: `${url}: Prometheus ${info.version ?? 'unknown version'}`}
  } catch (error) {
    return {status: 'fail', detail: (error as Error).message, fix: 'Start Prometheus or fix the URL in retailops.yaml.'}
  }
}

async function checkBinary(
  bin: string,
  args: string[],
  fix: string,
): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  const {execa} = await import('execa')
  try {
    const r = await execa(bin, args, {timeout: 5000})
    return {status: 'ok', detail: `${bin}: ${(r.stdout || r.stderr).split('\n')[0]}`}
  } catch (error) {
    return {
      status: 'fail',
      detail: `${bin}: ${(error as {code?: string}).code === 'ENOENT' ? 'not found' : (error as Error).message.split('\n')[0]}`,
      fix,
    }
  }
}

async function checkAws(needed: boolean): Promise<Omit<CheckResult, 'id' | 'title' | 'ms'>> {
  if (!needed) return {status: 'skip', detail: 'no aws-backup datastores'}
  try {
    const {defaultProvider} = await import('@aws-sdk/credential-provider-node')
    const creds = await defaultProvider({timeout: 3000, maxRetries: 0})()
    return {status: 'ok', detail: `credentials found (access key ${creds.accessKeyId.slice(0, 4)}…)`}
  } catch (error) {
    return {
      status: 'fail',
      detail: `no AWS credentials: ${(error as Error).message.split('\n')[0]}`,
      fix: 'Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use an instance/workload role.',
    }
  }
}
