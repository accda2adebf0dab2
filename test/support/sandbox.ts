// The sandbox's endpoints, read from the environment that `scripts/sandbox.sh env` prints:
//   eval "$(bash scripts/sandbox.sh env)"
// Integration tests import these instead of re-reading process.env themselves. The integration
// project's globalSetup (test/support/global-setup.ts) checks once that every one is there and
// answers: a half-loaded sandbox fails the run with the fix, it never skips tests.
import {constants, existsSync} from 'node:fs'
import {access, readFile} from 'node:fs/promises'
import {Agent as HttpsAgent} from 'node:https'

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
  /** cosign v3 (`cosign3`), beside v2 (`cosign`). */
  cosign3: string
  kubeScore: string
  baseImage: string
  baseImageRemote: string
  /** The S3-compatible object store (versitygw): endpoint, the bucket `up` made, its region. */
  s3Endpoint: string
  s3Bucket: string
  s3Region: string
  /** The same store over TLS (what pgBackRest needs), and the CA its certificate is signed by. */
  s3TlsEndpoint: string
  s3Ca: string
  /** Debian's chromium, driven headless by playwright-core (the dashboard's browser test). */
  chromium: string
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
  'RETAILOPS_COSIGN3',
  'RETAILOPS_KUBE_SCORE',
  'RETAILOPS_BASE_IMAGE',
  'RETAILOPS_S3_ENDPOINT',
  'RETAILOPS_S3_BUCKET',
  'RETAILOPS_S3_TLS_ENDPOINT',
  'RETAILOPS_S3_CA',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
] as const

/** What to do when the sandbox is not (fully) there: the last lines of every readiness failure. */
export const SANDBOX_FIX =
  'Start it (idempotent): bash scripts/sandbox.sh up\nLoad it into this shell: eval "$(bash scripts/sandbox.sh env)"'

/** True when `sandbox.sh env` has been loaded into this process's environment. */
export function sandboxLoaded(env: NodeJS.ProcessEnv = process.env): boolean {
  return REQUIRED.every((k) => Boolean(env[k]))
}

/** The sandbox's endpoints; throws with the fix when the environment is not loaded. */
export function sandboxEnv(env: NodeJS.ProcessEnv = process.env): SandboxEnv {
  const missing = REQUIRED.filter((k) => !env[k])
  if (missing.length > 0) {
    throw new Error(`The sandbox environment is not loaded (missing ${missing.join(', ')}).\n${SANDBOX_FIX}`)
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
    cosign3: env.RETAILOPS_COSIGN3!,
    kubeScore: env.RETAILOPS_KUBE_SCORE!,
    baseImage: env.RETAILOPS_BASE_IMAGE!,
    baseImageRemote: env.RETAILOPS_BASE_IMAGE_REMOTE ?? `${env.RETAILOPS_REGISTRY}/${env.RETAILOPS_BASE_IMAGE}`,
    s3Endpoint: env.RETAILOPS_S3_ENDPOINT!.replace(/\/+$/, ''),
    s3Bucket: env.RETAILOPS_S3_BUCKET!,
    s3Region: env.AWS_REGION ?? 'us-east-1',
    s3TlsEndpoint: env.RETAILOPS_S3_TLS_ENDPOINT!.replace(/\/+$/, ''),
    s3Ca: env.RETAILOPS_S3_CA!,
    // Not required in the environment (a shell loaded before it was added still works); the check below asks the file.
    chromium: env.RETAILOPS_CHROMIUM || '/usr/bin/chromium',
  }
}

/** A KubeConfig for the sandbox cluster: its kubeconfig file, its context selected. */
export function kubeConfig(env: SandboxEnv = sandboxEnv()): k8s.KubeConfig {
  if (!existsSync(env.kubeconfig))
    throw new Error(`No kubeconfig at ${env.kubeconfig}: is the sandbox up? (bash scripts/sandbox.sh up)`)
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(env.kubeconfig)
  kc.setCurrentContext(env.context)
  return kc
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      )
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The CRDs the sandbox installs (scripts/sandbox.sh up), each one Established in the cluster. */
export const SANDBOX_CRDS = ['httproutes.gateway.networking.k8s.io', 'scaledobjects.keda.sh'] as const

/** Throws when the CustomResourceDefinition `name` is missing or not Established, naming the fix. */
export async function crdEstablished(s: SandboxEnv, name: string): Promise<void> {
  const api = kubeConfig(s).makeApiClient(k8s.ApiextensionsV1Api)
  const crd = await api.readCustomResourceDefinition({name}).catch((error: {code?: number}) => {
    if (error.code === 404) throw new Error(`not installed (bash scripts/sandbox.sh up installs it)`)
    throw error
  })
  const established = crd.status?.conditions?.find((c) => c.type === 'Established')
  if (established?.status !== 'True') throw new Error(`not Established: ${established?.message ?? 'no condition yet'}`)
}

/** HeadBucket on the sandbox's bucket through `endpoint` (over TLS: trusting only `ca`). */
async function headBucket(s: SandboxEnv, env: NodeJS.ProcessEnv, endpoint: string, ca?: string): Promise<void> {
  // The keys of the environment being checked (the sandbox env's AWS_ACCESS_KEY_ID and
  // AWS_SECRET_ACCESS_KEY, what the SDK's default chain finds when retailops reads backups).
  const {S3Client, HeadBucketCommand} = await import('@aws-sdk/client-s3')
  const client = new S3Client({
    endpoint,
    region: s.s3Region,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: {accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY!},
    ...(ca ? {requestHandler: {httpsAgent: new HttpsAgent({ca})}} : {}),
  })
  const failure = await client.send(new HeadBucketCommand({Bucket: s.s3Bucket})).then(
    () => undefined,
    (error: unknown) => error as Error & {$metadata?: {httpStatusCode?: number}},
  )
  client.destroy()
  if (!failure) return
  // An HTTP answer (403: wrong keys, 404: no bucket) says enough; no answer names the cause.
  const status = failure.$metadata?.httpStatusCode
  if (status)
    throw new Error(`HeadBucket answered ${status}${status === 404 ? ' (no such bucket: run sandbox.sh up)' : ''}`)
  throw new Error('fetch failed', {cause: failure})
}

/**
 * What is missing or not answering in the loaded sandbox, one line each (empty: all there).
 * Every component is asked for real: the cluster's readiness, Docker's ping, the registry's /v2/
 * and the base image in it, Prometheus' readiness, a PostgreSQL query, the tools' executables.
 */
export async function sandboxProblems(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const missing = REQUIRED.filter((k) => !env[k])
  if (missing.length > 0) return [`not loaded into this environment: ${missing.join(', ')}`]
  const s = sandboxEnv(env)
  const checks: [string, () => Promise<unknown>][] = [
    [
      `Kubernetes API (${s.context})`,
      async () => {
        const kc = kubeConfig(s)
        const cluster = kc.getCurrentCluster()
        if (!cluster) throw new Error(`context ${s.context} is not in ${s.kubeconfig}`)
        await kc.makeApiClient(k8s.CoreV1Api).listNamespace({limit: 1})
      },
    ],
    [
      `Docker Engine (${s.dockerHost})`,
      async () => {
        const {default: Docker} = await import('dockerode')
        await new Docker().ping()
      },
    ],
    [
      `registry (${s.registry})`,
      async () => {
        const answer = await fetch(`http://${s.registry}/v2/`)
        if (answer.status !== 200 && answer.status !== 401) throw new Error(`GET /v2/ answered ${answer.status}`)
      },
    ],
    [
      `base image (${s.baseImageRemote})`,
      async () => {
        const [, repository, tag] = /^[^/]+\/(.+):([^:/]+)$/.exec(s.baseImageRemote) ?? []
        const answer = await fetch(`http://${s.registry}/v2/${repository}/manifests/${tag}`, {
          method: 'HEAD',
          headers: {
            accept:
              'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
          },
        })
        if (answer.status !== 200) throw new Error(`not in the registry (HEAD manifest answered ${answer.status})`)
      },
    ],
    [
      `Prometheus (${s.prometheusUrl})`,
      async () => {
        const answer = await fetch(`${s.prometheusUrl}/-/ready`)
        if (answer.status !== 200) throw new Error(`/-/ready answered ${answer.status}`)
      },
    ],
    [
      'PostgreSQL (RETAILOPS_POSTGRES_URL)',
      async () => {
        const {default: pg} = await import('pg')
        const client = new pg.Client({connectionString: s.postgresUrl, connectionTimeoutMillis: 5000})
        try {
          await client.connect()
          await client.query('select 1')
        } finally {
          await client.end().catch(() => undefined)
        }
      },
    ],
    ...SANDBOX_CRDS.map((name): [string, () => Promise<unknown>] => [`CRD ${name}`, () => crdEstablished(s, name)]),
    [`object store (${s.s3Endpoint}, bucket ${s.s3Bucket})`, () => headBucket(s, env, s.s3Endpoint)],
    [
      `object store over TLS (${s.s3TlsEndpoint}, CA ${s.s3Ca})`,
      async () => headBucket(s, env, s.s3TlsEndpoint, await readFile(s.s3Ca, 'utf8')),
    ],
    ...(
      [
        ['k6', s.k6],
        ['cosign', s.cosign],
        ['cosign3', s.cosign3],
        ['kube-score', s.kubeScore],
        ['chromium', s.chromium],
      ] as const
    ).map(([tool, file]): [string, () => Promise<unknown>] => [
      `${tool} (${file})`,
      () => access(file, constants.X_OK),
    ]),
  ]
  const results = await Promise.all(
    checks.map(async ([what, check]) => {
      try {
        await within(10_000, what, check)
        return undefined
      } catch (error) {
        const cause = (error as Error & {cause?: {code?: string; message?: string}}).cause
        const why = cause?.code ?? cause?.message
        return `${what}: ${(error as Error).message.split('\n')[0]}${why ? ` (${why})` : ''}`
      }
    }),
  )
  return results.filter((r): r is string => r !== undefined)
}
