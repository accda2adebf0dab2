// The sandbox's endpoints, read from the environment that `scripts/sandbox.sh env` prints:
//   eval "$(bash scripts/sandbox.sh env)"
// Integration tests import these instead of re-reading process.env themselves.
import {existsSync} from 'node:fs'

import * as k8s from '@kubernetes/client-node'

export interface SandboxEnv {
  kubeconfig: string
  context: string
  dockerHost: string
  registry: string
  prometheusUrl: string
  prometheusSdDir: string
  postgresUrl: string
  k6: string
  cosign: string
  /** cosign v3 (`cosign3`), beside v2 (`cosign`); empty when the loaded environment predates it. */
  cosign3: string
  baseImage: string
  baseImageRemote: string
}

const REQUIRED = [
  'KUBECONFIG',
  'RETAILOPS_KUBE_CONTEXT',
  'DOCKER_HOST',
  'RETAILOPS_REGISTRY',
  'RETAILOPS_PROMETHEUS_URL',
  'RETAILOPS_PROMETHEUS_SD_DIR',
  'RETAILOPS_POSTGRES_URL',
  'RETAILOPS_K6',
  'RETAILOPS_COSIGN',
  'RETAILOPS_BASE_IMAGE',
] as const

/** True when `sandbox.sh env` has been loaded into this process's environment. */
export function sandboxLoaded(env: NodeJS.ProcessEnv = process.env): boolean {
  return REQUIRED.every((k) => Boolean(env[k]))
}

/** The sandbox's endpoints; throws with the fix when the environment is not loaded. */
export function sandboxEnv(env: NodeJS.ProcessEnv = process.env): SandboxEnv {
  const missing = REQUIRED.filter((k) => !env[k])
  if (missing.length > 0) {
    throw new Error(`The sandbox environment is not loaded (missing ${missing.join(', ')}): run \`bash scripts/sandbox.sh up\` and \`eval "$(bash scripts/sandbox.sh env)"\``)
  }
  return {
    kubeconfig: env.KUBECONFIG!,
    context: env.RETAILOPS_KUBE_CONTEXT!,
    dockerHost: env.DOCKER_HOST!,
    registry: env.RETAILOPS_REGISTRY!,
    prometheusUrl: env.RETAILOPS_PROMETHEUS_URL!.replace(/\/+$/, ''),
    prometheusSdDir: env.RETAILOPS_PROMETHEUS_SD_DIR!,
    postgresUrl: env.RETAILOPS_POSTGRES_URL!,
    k6: env.RETAILOPS_K6!,
    cosign: env.RETAILOPS_COSIGN!,
    cosign3: env.RETAILOPS_COSIGN3 ?? '',
    baseImage: env.RETAILOPS_BASE_IMAGE!,
    baseImageRemote: env.RETAILOPS_BASE_IMAGE_REMOTE ?? `${env.RETAILOPS_REGISTRY}/${env.RETAILOPS_BASE_IMAGE}`,
  }
}

/** A KubeConfig for the sandbox cluster: its kubeconfig file, its context selected. */
export function kubeConfig(env: SandboxEnv = sandboxEnv()): k8s.KubeConfig {
  if (!existsSync(env.kubeconfig)) throw new Error(`No kubeconfig at ${env.kubeconfig}: is the sandbox up? (bash scripts/sandbox.sh up)`)
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(env.kubeconfig)
  kc.setCurrentContext(env.context)
  return kc
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
