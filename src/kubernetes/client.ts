import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'

import type * as k8s from '@kubernetes/client-node'

import {isEnvReference, normalizeSecretText, readEnvReference} from '../config/secret-ref.js'
import {NotFoundError, PermissionError, RetailOpsError, UnavailableError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'
import {KubeHttp} from './http.js'
import {type KubeCredentials, readPlainKubeconfig} from './kubeconfig.js'

const requireModule = createRequire(import.meta.url)

/**
 * @kubernetes/client-node, loaded on first use: importing it costs about 600 ms, more than
 * everything else a command loads, and render, config validate or slo rules never talk to a
 * cluster. Synchronous (require of an ES module) so kubeClients() stays synchronous.
 */
export function kubernetesLibrary(): typeof k8s {
  return requireModule('@kubernetes/client-node') as typeof k8s
}

export interface KubeTarget {
  /** kube context; default: the kubeconfig's current context. */
  context?: string
  /** kubeconfig file or env://NAME (a variable holding its contents); default: $KUBECONFIG (a path list or the contents) or ~/.kube/config. */
  kubeconfig?: string
}

export interface KubeClients {
  kc: k8s.KubeConfig
  context: string
  server: string
  core: k8s.CoreV1Api
  apps: k8s.AppsV1Api
  autoscaling: k8s.AutoscalingV2Api
  policy: k8s.PolicyV1Api
  networking: k8s.NetworkingV1Api
  batch: k8s.BatchV1Api
  scheduling: k8s.SchedulingV1Api
  authorization: k8s.AuthorizationV1Api
  custom: k8s.CustomObjectsApi
  objects: k8s.KubernetesObjectApi
  version: k8s.VersionApi
}

/**
 * The kubeconfig's contents when it is given as content rather than a path: `env://NAME`, or a
 * KUBECONFIG variable holding the document itself (how CI secrets arrive). It is parsed in memory
 * and never written anywhere.
 */
export function inlineKubeconfig(target: KubeTarget = {}): {text: string; source: string} | undefined {
  if (target.kubeconfig !== undefined) {
    return isEnvReference(target.kubeconfig)
      ? {text: readEnvReference(target.kubeconfig, 'kubeconfig'), source: target.kubeconfig}
      : undefined
  }
  const value = process.env.KUBECONFIG
  if (!value || !looksLikeKubeconfigContent(value)) return undefined
  registerSecret(value)
  return {text: normalizeSecretText(value), source: 'the KUBECONFIG variable (contents)'}
}

/** A path list never holds a newline or starts a YAML/JSON document; a one-line base64 document is not an existing file. */
export function looksLikeKubeconfigContent(value: string): boolean {
  const v = value.trim()
  if (
    v.includes('\n') ||
    /^(apiVersion|kind|clusters|contexts|current-context|users|preferences)\s*:/.test(v) ||
    v.startsWith('{')
  )
    return true
  if (existsSync(v) || v.includes(path.delimiter)) return false
  return normalizeSecretText(v) !== v
}

export function loadKubeConfig(target: KubeTarget = {}): k8s.KubeConfig {
  const kc = new (kubernetesLibrary().KubeConfig)()
  const inline = inlineKubeconfig(target)
  if (inline) {
    try {
      kc.loadFromString(inline.text)
    } catch (error) {
      throw new UnavailableError(
        `Cannot read the kubeconfig from ${inline.source}: ${(error as Error).message.split('\n')[0]}`,
        {
          nextSteps: [
            'The variable must hold a whole kubeconfig (YAML, or that YAML base64-encoded), e.g. the output of `kubectl config view --raw --minify`.',
          ],
        },
      )
    }
  } else {
    const files = (target.kubeconfig ?? process.env.KUBECONFIG ?? path.join(os.homedir(), '.kube', 'config'))
      .split(path.delimiter)
      .filter(Boolean)
    if (!process.env.KUBERNETES_SERVICE_HOST && !files.some((f) => existsSync(f))) {
      throw new UnavailableError(`No kubeconfig found (looked for ${files.join(', ')}).`, {
        nextSteps: [
          'Set KUBECONFIG to a file or to the kubeconfig\'s contents (for the sandbox: `eval "$(bash scripts/sandbox.sh env)"`), or clusters.<name>.kubeconfig in retailops.yaml (a path or env://NAME).',
        ],
      })
    }
    try {
      if (target.kubeconfig) kc.loadFromFile(target.kubeconfig)
      else kc.loadFromDefault()
    } catch (error) {
      throw new UnavailableError(
        `Cannot read kubeconfig${target.kubeconfig ? ` ${target.kubeconfig}` : ''}: ${(error as Error).message}`,
        {
          nextSteps: ['Set KUBECONFIG or clusters.<name>.kubeconfig in retailops.yaml.'],
        },
      )
    }
  }
  for (const user of kc.getUsers())
    for (const secret of [user.token, user.password, user.keyData]) registerSecret(secret)
  const context = target.context ?? process.env.RETAILOPS_KUBE_CONTEXT
  if (context) {
    if (!kc.getContextObject(context)) {
      throw new NotFoundError(`kube context "${context}" is not in the kubeconfig.`, {
        nextSteps: [
          `Known contexts: ${
            kc
              .getContexts()
              .map((c) => c.name)
              .join(', ') || '(none)'
          }.`,
        ],
      })
    }
    kc.setCurrentContext(context)
  }
  if (!kc.getCurrentCluster()) {
    throw new UnavailableError('The kubeconfig has no current cluster.', {
      nextSteps: ['Pass --context, or set clusters.<name>.context in retailops.yaml.'],
    })
  }
  return kc
}

const cache = new Map<string, KubeClients>()

/** One set of API clients per kubeconfig and context, shared by everything in a run. */
export function kubeClients(target: KubeTarget = {}): KubeClients {
  const key = `${target.kubeconfig ?? process.env.KUBECONFIG ?? ''}|${target.context ?? process.env.RETAILOPS_KUBE_CONTEXT ?? ''}`
  const hit = cache.get(key)
  if (hit) return hit
  const kc = loadKubeConfig(target)
  const k8s = kubernetesLibrary()
  const clients: KubeClients = {
    kc,
    context: kc.getCurrentContext(),
    server: kc.getCurrentCluster()!.server,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    autoscaling: kc.makeApiClient(k8s.AutoscalingV2Api),
    policy: kc.makeApiClient(k8s.PolicyV1Api),
    networking: kc.makeApiClient(k8s.NetworkingV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    scheduling: kc.makeApiClient(k8s.SchedulingV1Api),
    authorization: kc.makeApiClient(k8s.AuthorizationV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
    version: kc.makeApiClient(k8s.VersionApi),
  }
  cache.set(key, clients)
  return clients
}

export function statusCode(error: unknown): number | undefined {
  const e = error as {code?: unknown; statusCode?: unknown; response?: {statusCode?: number}}
  if (typeof e?.code === 'number') return e.code
  if (typeof e?.statusCode === 'number') return e.statusCode
  return e?.response?.statusCode
}

/** The API server's own explanation (Status.message), when it sent one. */
export function serverMessage(error: unknown): string {
  const body = (error as {body?: unknown})?.body
  let parsed: unknown = body
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body)
    } catch {
      return body
    }
  }
  const message = (parsed as {message?: string})?.message
  return message ?? (error instanceof Error ? error.message.split('\n')[0] : String(error))
}

export function isNotFound(error: unknown): boolean {
  return statusCode(error) === 404
}

/** Maps transport and HTTP failures to the exit-code policy, naming what was being done. */
export function kubeError(error: unknown, doing: string, server?: string): RetailOpsError {
  if (error instanceof RetailOpsError) return error
  const code = statusCode(error)
  const cause = (error as {cause?: {code?: string}})?.cause?.code ?? (error as {code?: unknown})?.code
  if (code === undefined && typeof cause === 'string') {
    return new UnavailableError(
      `Cannot reach the Kubernetes API${server ? ` at ${server}` : ''} while ${doing} (${cause}).`,
      {
        nextSteps: [
          'Check the cluster is up (`scripts/sandbox.sh status` for the local one) and that --context names it.',
        ],
        cause: error,
      },
    )
  }
  if (code === 401 || code === 403) {
    return new PermissionError(`Kubernetes refused ${doing}: ${serverMessage(error)}`, {
      nextSteps: ['`retailops doctor` lists the RBAC permissions retailops needs and which are missing.'],
      cause: error,
    })
  }
  if (code === 404) return new NotFoundError(`Not found while ${doing}: ${serverMessage(error)}`, {cause: error})
  return new RetailOpsError(
    'DEPLOY_FAILED',
    `Kubernetes API error while ${doing}${code ? ` (HTTP ${code})` : ''}: ${serverMessage(error)}`,
    {cause: error},
  )
}

const httpCache = new WeakMap<KubeClients, KubeHttp>()

/** Raw JSON requests over keep-alive connections, for bulk work (apply, prune, list by label). */
export function kubeHttp(target: KubeTarget = {}): KubeHttp {
  return kubeHttpOf(kubeClients(target))
}

/** The keep-alive HTTP client beside a set of API clients (same kubeconfig and context). */
export function kubeHttpOf(clients: KubeClients): KubeHttp {
  let h = httpCache.get(clients)
  if (!h) {
    h = new KubeHttp(clients.kc)
    httpCache.set(clients, h)
  }
  return h
}

const credentialsCache = new Map<string, KubeCredentials>()

/**
 * The current cluster's server and credentials for raw requests (KubeHttp), without loading
 * @kubernetes/client-node when the kubeconfig is a plain one (kubeconfig.ts); otherwise the
 * client's KubeConfig, with everything it supports (exec plugins, auth providers, in-cluster).
 */
export function kubeCredentials(target: KubeTarget = {}): KubeCredentials {
  const context = target.context ?? process.env.RETAILOPS_KUBE_CONTEXT
  const key = `${target.kubeconfig ?? process.env.KUBECONFIG ?? ''}|${context ?? ''}`
  let credentials = credentialsCache.get(key)
  if (!credentials) {
    credentials =
      (!inlineKubeconfig(target) && readPlainKubeconfig(target.kubeconfig, context)) || kubeClients(target).kc
    credentialsCache.set(key, credentials)
  }
  return credentials
}
