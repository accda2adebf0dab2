// Shared set-up for the rollout integration tests: a throwaway project and namespace, the real
// CLI (test/support/cli.ts), Gateway API objects, and real service processes scraped by the sandbox's
// Prometheus through file-SD, with a bounded load generator.
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash} from 'node:crypto'
import {rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {KubeObjects, type Obj} from '../../../src/kubernetes/objects.js'
import {PATHS} from '../../../src/rollout/kube.js'
import {StateStore} from '../../../src/rollout/store.js'
import type {RolloutState} from '../../../src/rollout/types.js'
import {eventually, sandboxEnv} from '../../support/sandbox.js'
import {runCliJson, startCli, type BackgroundCli} from '../../support/cli.js'
import {randomName} from '../../support/names.js'
import {TempProject} from '../../support/project.js'

export const ROOT = path.resolve(import.meta.dirname, '../../..')

/**
 * An object read back from the cluster for assertions: tests index into the JSON the API returned
 * (and fail where it is not there) rather than narrowing each field as src/ does (kinds.ts).
 */
export type ReadBack = Obj<any, any>

export function imageDigest(version: string): string {
  return `sha256:${createHash('sha256').update(version).digest('hex')}`
}

export interface CliResult {
  exitCode: number
  json: {status: number; result?: any; error?: any; warnings: string[]}
  stderr: string
}

/**
 * The rollout suite's fixture: a project (test/support/project.ts) named shop with one environment
 * `test` in its own namespace (Gateway API router, the sandbox's Prometheus), the state store, and
 * the real CLI run in the project's folder.
 */
export class RolloutProject {
  readonly ns = randomName('t-rollout')
  readonly kube = new KubeObjects({context: sandboxEnv().context})
  readonly store = new StateStore(this.kube)
  readonly project: TempProject<Record<string, unknown>>
  private children: BackgroundCli[] = []

  constructor(
    public services: Record<string, Record<string, unknown>>,
    extra: Record<string, unknown> = {},
  ) {
    this.project = new TempProject(this.config(extra), {prefix: 't-rollout'})
  }

  get dir(): string {
    return this.project.dir
  }

  private config(extra: Record<string, unknown>): Record<string, unknown> {
    return {
      project: 'shop',
      registry: {url: '127.0.0.1:5000', insecure: true},
      signing: {required: false},
      clusters: {sandbox: {context: sandboxEnv().context}},
      environments: {
        test: {
          cluster: 'sandbox',
          namespace: this.ns,
          router: 'gateway',
          production: false,
          prometheus: sandboxEnv().prometheusUrl,
        },
      },
      services: this.services,
      ...extra,
    }
  }

  /** Writes retailops.yaml again from `services` (which a test may have changed) and `extra`. */
  writeConfig(extra: Record<string, unknown> = {}): void {
    this.project.writeConfig(this.config(extra))
  }

  overlay(service: string, entries: unknown[] | undefined): void {
    this.project.overlay(service, entries)
  }

  image(service: string, version: string): string {
    return `${service}=127.0.0.1:5000/shop/${service}:${version}@${imageDigest(version)}`
  }

  /** Runs the real CLI with --json; never throws on a non-zero exit. */
  async cli(args: string[], options: {timeoutMs?: number} = {}): Promise<CliResult> {
    const r = await runCliJson(args, {cwd: this.dir, timeoutMs: options.timeoutMs ?? 240_000})
    return {exitCode: r.exitCode, json: r.doc, stderr: r.stderr}
  }

  /** Starts the CLI in the background (to kill it mid-rollout). */
  spawnCli(args: string[]): BackgroundCli {
    const child = startCli(args, {cwd: this.dir})
    this.children.push(child)
    return child
  }

  deploy(services: string[], version: string, extra: string[] = []): Promise<CliResult> {
    return this.cli([
      'deploy',
      ...services,
      ...services.flatMap((s) => ['--image', this.image(s, version)]),
      '--skip-verify',
      ...extra,
    ])
  }

  async state(service: string): Promise<RolloutState | undefined> {
    return (await this.store.read(this.ns, service)).state
  }

  deployment(name: string): Promise<ReadBack | undefined> {
    return this.kube.get<ReadBack>(PATHS.deployments(this.ns), name)
  }

  service(name: string): Promise<ReadBack | undefined> {
    return this.kube.get<ReadBack>(PATHS.services(this.ns), name)
  }

  route(name: string): Promise<ReadBack | undefined> {
    return this.kube.get<ReadBack>(PATHS.httproutes(this.ns), name)
  }

  /** A Gateway and an HTTPRoute sending /<service> to the service's Service (no gateway controller runs: weights are read back). */
  async gatewayRoute(service: string, port = 8080): Promise<void> {
    await this.kube.apply(`/apis/gateway.networking.k8s.io/v1/namespaces/${this.ns}/gateways`, {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: {name: 'shop', namespace: this.ns},
      spec: {gatewayClassName: 'sandbox', listeners: [{name: 'http', port: 80, protocol: 'HTTP'}]},
    })
    await this.kube.apply(PATHS.httproutes(this.ns), {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: {name: service, namespace: this.ns},
      spec: {
        parentRefs: [{name: 'shop'}],
        rules: [{matches: [{path: {type: 'PathPrefix', value: `/${service}`}}], backendRefs: [{name: service, port}]}],
      },
    })
  }

  /** An ingress-nginx Ingress sending shop.test/<service> to the service's Service (no controller runs: annotations are read back). */
  async nginxIngress(service: string, port = 8080): Promise<void> {
    await this.kube.apply(PATHS.ingresses(this.ns), {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {name: service, namespace: this.ns},
      spec: {
        ingressClassName: 'nginx',
        rules: [
          {
            host: 'shop.test',
            http: {
              paths: [
                {path: `/${service}`, pathType: 'Prefix', backend: {service: {name: service, port: {number: port}}}},
              ],
            },
          },
        ],
      },
    })
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL')
    await this.kube.http.request('DELETE', `/api/v1/namespaces/${this.ns}`).catch(() => undefined)
    await this.project.cleanup()
    this.kube.close()
  }
}

/** Backend weights of an HTTPRoute's first rule, by Service name. */
export function routeWeights(route: ReadBack | undefined): Record<string, number> {
  const refs = (route?.spec?.rules?.[0]?.backendRefs ?? []) as {name: string; weight?: number}[]
  return Object.fromEntries(refs.map((r) => [r.name, r.weight ?? 1]))
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

export interface RunningService {
  url: string
  process: ChildProcess
  stop(): Promise<void>
}

/** Runs a bundled service's real process on 127.0.0.1 (Node 24 type stripping). */
export async function runService(name: string, env: Record<string, string>): Promise<RunningService> {
  const port = await freePort()
  const child = spawn(process.execPath, [path.join(ROOT, 'services', name, 'src', 'main.ts')], {
    env: {...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d) => (stderr += String(d)))
  const url = `http://127.0.0.1:${port}`
  await eventually(
    `${name} on ${url} to be ready (${stderr})`,
    async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok ? true : undefined),
    20_000,
    200,
  )
  return {
    url,
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)])
      if (child.exitCode === null) child.kill('SIGKILL')
    },
  }
}

/** Registers targets with the sandbox's Prometheus (file-SD), labelled like the Kubernetes objects. */
export function registerTargets(file: string, targets: {url: string; labels: Record<string, string>}[]): () => void {
  const sd = path.join(sandboxEnv().prometheusSdDir, `${file}.json`)
  writeFileSync(sd, JSON.stringify(targets.map((t) => ({targets: [new URL(t.url).host], labels: t.labels}))))
  return () => rmSync(sd, {force: true})
}

/** A bounded load generator: `rps` GET requests per second to each URL until stopped (at most `maxMs`). */
export function generateLoad(
  urls: string[],
  options: {rps: number; maxMs: number},
): {stop: () => Promise<{sent: number; errors: number}>} {
  let running = true
  let sent = 0
  let errors = 0
  const until = Date.now() + options.maxMs
  const loops = urls.map(async (url) => {
    const gap = 1000 / options.rps
    const inflight = new Set<Promise<void>>()
    while (running && Date.now() < until) {
      const p = fetch(url, {signal: AbortSignal.timeout(5000)})
        .then(async (r) => {
          await r.arrayBuffer()
          if (r.status >= 500) errors++
        })
        .catch(() => void errors++)
        .finally(() => inflight.delete(p))
      inflight.add(p)
      sent++
      if (inflight.size > 50) await Promise.race(inflight)
      await sleep(gap)
    }
    await Promise.allSettled(inflight)
  })
  return {
    stop: async () => {
      running = false
      await Promise.allSettled(loops)
      return {sent, errors}
    },
  }
}

/** Waits until Prometheus has a request rate for each version of a service in a namespace. */
export async function waitForMetrics(
  service: string,
  namespace: string,
  versions: string[],
  instances: string[] = [],
): Promise<void> {
  const url = sandboxEnv().prometheusUrl
  // Wait for the processes just started (by instance), not for a stopped process of an earlier
  // test that reported the same version: its samples linger in the window and would answer first.
  for (const [i, version] of versions.entries()) {
    const instance = instances[i] ? `,instance="${instances[i]}"` : ''
    await eventually(
      `Prometheus to scrape ${service} ${version} in ${namespace}${instance}`,
      async () => {
        const q = `sum(rate(http_requests_total{service="${service}",namespace="${namespace}",version="${version}"${instance}}[20s]))`
        const body = (await (await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as {
          data: {result: {value: [number, string]}[]}
        }
        const v = Number(body.data.result[0]?.value[1])
        return v > 0 ? v : undefined
      },
      90_000,
      1000,
    )
  }
}

/**
 * Real processes of one service with traffic, scraped by Prometheus with the labels of the
 * Kubernetes objects (service, namespace): what a canary analysis reads. One per test file;
 * stop() after each test.
 */
export class ServiceTraffic {
  private running: RunningService[] = []
  private unregister: (() => void) | undefined
  private load: ReturnType<typeof generateLoad> | undefined
  private serial = 0

  constructor(
    private readonly p: RolloutProject,
    private readonly service: string,
    private readonly options: {versionPrefix: string; maxMs: number},
  ) {}

  /** A version no earlier test used: Prometheus keeps old series inside the query window. */
  freshVersion(): string {
    return `${this.options.versionPrefix}${Date.now().toString(36)}${this.serial++}`
  }

  /** The version the stable Deployment runs. */
  async runningVersion(): Promise<string> {
    return (await this.p.deployment(this.service))!.spec.template.metadata.labels['app.kubernetes.io/version'] as string
  }

  /** Starts a process of `version` (env: fault injection), not yet scraped or loaded: see send(). */
  async run(version: string, env: Record<string, string> = {}): Promise<RunningService> {
    const r = await runService(this.service, {APP_VERSION: version, ...env})
    this.running.push(r)
    return r
  }

  /** Scrapes these processes and sends them load (replacing what was sent before). */
  async send(processes: RunningService[]): Promise<void> {
    await this.load?.stop()
    this.unregister = registerTargets(
      `${this.p.ns}-${this.service}`,
      processes.map((r) => ({url: r.url, labels: {service: this.service, namespace: this.p.ns}})),
    )
    this.load = generateLoad(
      processes.map((r) => `${r.url}/products`),
      {rps: 20, maxMs: this.options.maxMs},
    )
  }

  /** Waits until Prometheus has a request rate for each of these processes. */
  scraped(processes: RunningService[], versions: string[]): Promise<void> {
    return waitForMetrics(
      this.service,
      this.p.ns,
      versions,
      processes.map((r) => new URL(r.url).host),
    )
  }

  /** Stable (the running version) and a fresh canary version (with canaryFault), both with traffic and scraped. */
  async serve(canaryFault: Record<string, string>): Promise<{stable: string; canary: string}> {
    const stable = await this.runningVersion()
    const canary = this.freshVersion()
    const s = await this.run(stable)
    const c = await this.run(canary, canaryFault)
    await this.send([s, c])
    await this.scraped([s, c], [stable, canary])
    return {stable, canary}
  }

  async stop(): Promise<void> {
    await this.load?.stop()
    this.load = undefined
    this.unregister?.()
    this.unregister = undefined
    await Promise.all(this.running.map((r) => r.stop()))
    this.running = []
  }
}
