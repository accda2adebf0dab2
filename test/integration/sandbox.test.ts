// Smoke tests of the sandbox (scripts/sandbox.sh): every component is the real thing, reached
// on 127.0.0.1 through the environment `sandbox.sh env` prints. Nothing here is faked.
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {rename, rm, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {promisify} from 'node:util'

import * as k8s from '@kubernetes/client-node'
import Docker from 'dockerode'
import {pack} from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {eventually, kubeConfig, sandboxEnv, type SandboxEnv} from '../support/sandbox.js'
import {randomSuffix} from '../support/names.js'

const run = promisify(execFile)
const suffix = randomSuffix()

let env: SandboxEnv
let kc: k8s.KubeConfig
let core: k8s.CoreV1Api
let apps: k8s.AppsV1Api
const namespace = `sandbox-smoke-${suffix}`

beforeAll(async () => {
  env = sandboxEnv()
  kc = kubeConfig(env)
  core = kc.makeApiClient(k8s.CoreV1Api)
  apps = kc.makeApiClient(k8s.AppsV1Api)
  await core.createNamespace({body: {metadata: {name: namespace, labels: {'retailops.dev/test': 'sandbox-smoke'}}}})
  // Pods need the namespace's default ServiceAccount, which the controller-manager creates.
  await eventually('the default service account', async () =>
    (await core.readNamespacedServiceAccount({name: 'default', namespace}).catch(() => undefined)) ? true : undefined,
  )
})

afterAll(async () => {
  await core?.deleteNamespace({name: namespace}).catch(() => undefined)
})

/** Watches one object through client-node's Watch until `done(obj)` holds; resolves with it. */
async function watchUntil<T extends k8s.KubernetesObject>(
  apiPath: string,
  name: string,
  done: (obj: T) => boolean,
  timeoutMs = 120_000,
): Promise<T> {
  const watch = new k8s.Watch(kc)
  let controller: AbortController | undefined
  let timer: NodeJS.Timeout | undefined
  let events = 0
  try {
    return await new Promise<T>((resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`watch of ${apiPath}/${name}: condition not met in ${timeoutMs} ms after ${events} events`)),
        timeoutMs,
      )
      watch
        .watch(
          apiPath,
          {fieldSelector: `metadata.name=${name}`},
          (phase, obj: T) => {
            events++
            if (phase === 'DELETED') reject(new Error(`${name} was deleted`))
            else if (done(obj)) resolve(obj)
          },
          (err) =>
            reject(
              err instanceof Error
                ? err
                : new Error(`watch of ${apiPath} closed before ${name} was ready (${events} events)`),
            ),
        )
        .then((c) => (controller = c), reject)
    })
  } finally {
    clearTimeout(timer)
    controller?.abort()
  }
}

function dockerClient(): Docker {
  const host = env.dockerHost
  if (!host.startsWith('unix://')) throw new Error(`DOCKER_HOST should be a unix socket, not ${host}`)
  return new Docker({socketPath: host.slice('unix://'.length)})
}

async function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<any[]> {
  const events: any[] = await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: any[]) => (err ? reject(err) : resolve(out))),
  )
  const failed = events.find((e) => e.error || e.errorDetail)
  if (failed) throw new Error(failed.error ?? failed.errorDetail?.message)
  return events
}

function cpuCores(q: string): number {
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q)
}

async function prom(query: string): Promise<Array<{metric: Record<string, string>; value: [number, string]}>> {
  const res = await fetch(`${env.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`)
  expect(res.status).toBe(200)
  const body = (await res.json()) as {status: string; data: {resultType: string; result: any[]}}
  expect(body.status).toBe('success')
  return body.data.result
}

describe('sandbox: Kubernetes control plane and kwok nodes', () => {
  it('serves the real kube-apiserver version and three node pools across three zones', async () => {
    const version = await kc.makeApiClient(k8s.VersionApi).getCode()
    expect(version.gitVersion).toMatch(/^v1\.3[4-6]\.\d+$/)

    // Only the sandbox's own nodes: other tests add nodes of their own to the same cluster.
    const nodes = (await core.listNode({labelSelector: 'retailops.dev/sandbox-node=true'})).items
    expect(nodes.length).toBeGreaterThanOrEqual(9)
    const pools = new Map<string, Set<string>>()
    for (const node of nodes) {
      const labels = node.metadata!.labels!
      expect(node.metadata!.annotations!['kwok.x-k8s.io/node']).toBe('fake')
      expect(labels['node.kubernetes.io/instance-type']).toMatch(/^[a-z0-9]+\.[a-z0-9]+$/)
      const zone = labels['topology.kubernetes.io/zone']
      expect(zone).toBeTruthy()
      const pool = labels['retailops.dev/pool']
      if (!pools.has(pool)) pools.set(pool, new Set())
      pools.get(pool)!.add(zone)
      // Realistic capacity, and kwok's node stages report the node Ready.
      expect(cpuCores(node.status!.allocatable!.cpu)).toBeGreaterThanOrEqual(3.5)
      expect(cpuCores(node.status!.allocatable!.cpu)).toBeLessThan(cpuCores(node.status!.capacity!.cpu))
      expect(node.status!.allocatable!.memory).toMatch(/^\d+Ki$/)
      expect(Number(node.status!.allocatable!.pods)).toBeGreaterThanOrEqual(29)
      expect(node.status!.capacity!.cpu).toMatch(/^\d+$/)
      expect(node.status!.conditions!.find((c) => c.type === 'Ready')?.status).toBe('True')
      const spotTaint = node.spec!.taints?.find((t) => t.key === 'retailops.dev/spot')
      if (pool === 'spot') expect(spotTaint).toMatchObject({value: 'true', effect: 'NoSchedule'})
      else expect(spotTaint).toBeUndefined()
    }
    expect([...pools.keys()].sort()).toEqual(['general', 'memory-optimised', 'spot'])
    for (const zones of pools.values()) expect(zones.size).toBe(3)
    expect(new Set(nodes.map((n) => n.metadata!.labels!['topology.kubernetes.io/zone'])).size).toBe(3)
  })

  it('rolls out a 3-replica Deployment to Available, spread over three zones, seen through a Watch', async () => {
    const name = 'web'
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: {name},
        spec: {
          replicas: 3,
          selector: {matchLabels: {app: name}},
          template: {
            metadata: {labels: {app: name}},
            spec: {
              nodeSelector: {'retailops.dev/sandbox-node': 'true'},
              containers: [{name, image: env.baseImageRemote, resources: {requests: {cpu: '250m', memory: '256Mi'}}}],
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: 'topology.kubernetes.io/zone',
                  whenUnsatisfiable: 'DoNotSchedule',
                  labelSelector: {matchLabels: {app: name}},
                },
              ],
            },
          },
        },
      },
    })
    const available = await watchUntil<k8s.V1Deployment>(
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      name,
      (d) =>
        d.status?.availableReplicas === 3 &&
        Boolean(d.status.conditions?.some((c) => c.type === 'Available' && c.status === 'True')),
    )
    expect(available.status!.readyReplicas).toBe(3)

    const pods = (await core.listNamespacedPod({namespace, labelSelector: `app=${name}`})).items
    expect(pods).toHaveLength(3)
    const zones = new Set<string>()
    for (const pod of pods) {
      expect(pod.status!.phase).toBe('Running')
      expect(pod.status!.conditions!.find((c) => c.type === 'Ready')?.status).toBe('True')
      const node = await core.readNode({name: pod.spec!.nodeName!})
      zones.add(node.metadata!.labels!['topology.kubernetes.io/zone'])
      // The scheduler kept ordinary pods off the tainted spot pool.
      expect(node.metadata!.labels!['retailops.dev/pool']).not.toBe('spot')
    }
    expect(zones.size).toBe(3)
  })

  it('keeps a pod labelled retailops.dev/simulate=crashloop Running but NotReady in CrashLoopBackOff', async () => {
    const name = 'crasher'
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: {name, labels: {app: name, 'retailops.dev/simulate': 'crashloop'}},
        spec: {
          nodeSelector: {'retailops.dev/sandbox-node': 'true'},
          containers: [{name: 'app', image: env.baseImageRemote}],
        },
      },
    })
    const crashing = await watchUntil<k8s.V1Pod>(
      `/api/v1/namespaces/${namespace}/pods`,
      name,
      (p) =>
        p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff',
    )
    expect(crashing.status!.containerStatuses![0].restartCount).toBeGreaterThan(0)
    expect(crashing.status!.containerStatuses![0].lastState?.terminated?.exitCode).toBe(1)
    // Stays that way: not Ready later on, restarts keep counting up.
    await new Promise((r) => setTimeout(r, 12_000))
    const later = await core.readNamespacedPod({name, namespace})
    expect(later.status!.phase).toBe('Running')
    expect(later.status!.conditions!.find((c) => c.type === 'Ready')?.status).toBe('False')
    expect(later.status!.containerStatuses![0].ready).toBe(false)
    expect(later.status!.containerStatuses![0].state?.waiting?.reason).toBe('CrashLoopBackOff')
    expect(later.status!.containerStatuses![0].restartCount).toBeGreaterThanOrEqual(
      crashing.status!.containerStatuses![0].restartCount,
    )
  })

  it('has the Gateway API standard CRDs established and serving v1 HTTPRoutes', async () => {
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api)
    const crds = (await ext.listCustomResourceDefinition()).items.filter(
      (c) => c.spec.group === 'gateway.networking.k8s.io',
    )
    const names = crds.map((c) => c.spec.names.plural).sort()
    expect(names).toEqual(
      expect.arrayContaining(['gatewayclasses', 'gateways', 'grpcroutes', 'httproutes', 'referencegrants']),
    )
    for (const crd of crds) {
      expect(crd.status!.conditions!.find((c) => c.type === 'Established')?.status).toBe('True')
      expect(crd.metadata!.annotations!['gateway.networking.k8s.io/channel']).toBe('standard')
    }
    const custom = kc.makeApiClient(k8s.CustomObjectsApi)
    const route = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: {name: 'web', namespace},
      spec: {
        parentRefs: [{name: 'public'}],
        rules: [
          {
            backendRefs: [
              {name: 'web-stable', port: 80, weight: 90},
              {name: 'web-canary', port: 80, weight: 10},
            ],
          },
        ],
      },
    }
    await custom.createNamespacedCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      namespace,
      plural: 'httproutes',
      body: route,
    })
    const back = await custom.getNamespacedCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      namespace,
      plural: 'httproutes',
      name: 'web',
    })
    expect(back.spec.rules[0].backendRefs.map((b: any) => b.weight)).toEqual([90, 10])
    // The CRD's validation is real: a negative weight is refused.
    await expect(
      custom.createNamespacedCustomObject({
        group: 'gateway.networking.k8s.io',
        version: 'v1',
        namespace,
        plural: 'httproutes',
        body: {
          ...route,
          metadata: {name: 'bad', namespace},
          spec: {rules: [{backendRefs: [{name: 'x', port: 80, weight: -1}]}]},
        },
      }),
    ).rejects.toThrow()
  })
})

describe('sandbox: Docker Engine, registry and base image', () => {
  const repo = `${sandboxEnv().registry}/sandbox-smoke/app-${suffix}`
  const tag = `${repo}:1`

  afterAll(async () => {
    const docker = dockerClient()
    for (const ref of [tag])
      await docker
        .getImage(ref)
        .remove({force: true})
        .catch(() => undefined)
  })

  it('builds an image from the local base image, pushes it, and pulls it back by digest', async () => {
    const docker = dockerClient()
    const info = await docker.info()
    expect(info.Driver).toBe('overlay2')
    const token = randomBytes(8).toString('hex')

    const context = pack()
    context.entry(
      {name: 'Dockerfile'},
      'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY smoke.js /app/smoke.js\nCMD ["node", "/app/smoke.js"]\n',
    )
    context.entry({name: 'smoke.js'}, `console.log('smoke ${token} ' + process.version + ' uid=' + process.getuid())\n`)
    context.finalize()
    await follow(
      docker,
      await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
        t: tag,
        networkmode: 'host',
        buildargs: {BASE_IMAGE: env.baseImage},
        rm: true,
      }),
    )

    const pushed = await follow(docker, await docker.getImage(tag).push({authconfig: {serveraddress: env.registry}}))
    const digest: string | undefined = pushed.find((e) => e.aux?.Digest)?.aux.Digest
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)

    // The registry itself serves the manifest under that digest.
    const manifest = await fetch(`http://${env.registry}/v2/sandbox-smoke/app-${suffix}/manifests/${digest}`, {
      headers: {
        accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
      },
    })
    expect(manifest.status).toBe(200)
    expect(manifest.headers.get('docker-content-digest')).toBe(digest)

    // Drop the local copy, then pull by digest and run what came back.
    await docker.getImage(tag).remove({force: true})
    await expect(docker.getImage(tag).inspect()).rejects.toThrow()
    const byDigest = `${repo}@${digest}`
    await follow(docker, await docker.pull(byDigest))
    const pulled = await docker.getImage(byDigest).inspect()
    expect(pulled.RepoDigests).toContain(byDigest)

    const container = await docker.createContainer({
      Image: byDigest,
      HostConfig: {NetworkMode: 'host', ReadonlyRootfs: true},
    })
    try {
      await container.start()
      const exit = await container.wait()
      const logs = (await container.logs({stdout: true, stderr: true})).toString('utf8')
      expect(exit.StatusCode).toBe(0)
      expect(logs).toContain(`smoke ${token} v24.`)
      expect(logs).toContain('uid=65532')
    } finally {
      await container.remove({force: true})
      await docker
        .getImage(pulled.Id)
        .remove({force: true})
        .catch(() => undefined)
    }
  })
})

describe('sandbox: Prometheus with file-based service discovery', () => {
  let server: Server
  let sdFile: string
  const job = `sandbox-smoke-${suffix}`
  const token = randomBytes(4).toString('hex')

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end()
      res.writeHead(200, {'content-type': 'text/plain; version=0.0.4'})
      res.end(
        `# HELP retailops_sandbox_smoke A value only this test serves.\n# TYPE retailops_sandbox_smoke gauge\nretailops_sandbox_smoke{token="${token}"} 42\n`,
      )
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    sdFile = path.join(env.prometheusSdDir, `${job}.json`)
  })

  afterAll(async () => {
    await rm(sdFile, {force: true})
    await new Promise((r) => server?.close(r))
  })

  it('scrapes a target added through a file-SD file and answers queries about it', async () => {
    const {port} = server.address() as AddressInfo
    const tmp = `${sdFile}.tmp`
    await writeFile(tmp, JSON.stringify([{targets: [`127.0.0.1:${port}`], labels: {job, env: 'sandbox'}}]))
    await rename(tmp, sdFile)

    const up = await eventually(
      `up{job="${job}"} == 1`,
      async () => {
        const r = await prom(`up{job="${job}"}`)
        return r.length === 1 && r[0].value[1] === '1' ? r[0] : undefined
      },
      90_000,
      1000,
    )
    expect(up.metric.instance).toBe(`127.0.0.1:${port}`)
    const value = await prom(`retailops_sandbox_smoke{job="${job}"}`)
    expect(value).toHaveLength(1)
    expect(value[0].metric.token).toBe(token)
    expect(value[0].value[1]).toBe('42')

    // Prometheus also scrapes itself.
    const self = await prom('up{job="prometheus"}')
    expect(self[0]?.value[1]).toBe('1')

    // Removing the file removes the target.
    await rm(sdFile)
    await eventually(
      'the target to be dropped',
      async () => {
        const res = await fetch(`${env.prometheusUrl}/api/v1/targets?state=active`)
        const body = (await res.json()) as {data: {activeTargets: Array<{labels: Record<string, string>}>}}
        return body.data.activeTargets.some((t) => t.labels.job === job) ? undefined : true
      },
      60_000,
      1000,
    )

    // The admin API is on (tests may delete their series).
    const del = await fetch(
      `${env.prometheusUrl}/api/v1/admin/tsdb/delete_series?match[]=${encodeURIComponent(`{job="${job}"}`)}`,
      {method: 'POST'},
    )
    expect(del.status).toBe(204)
    expect(await prom(`up{job="${job}"}`)).toHaveLength(0)
  })
})

describe('sandbox: PostgreSQL, k6 and cosign', () => {
  it('accepts the superuser URL on 127.0.0.1', async () => {
    const url = new URL(env.postgresUrl)
    expect(url.hostname).toBe('127.0.0.1')
    const {stdout} = await run('psql', [
      env.postgresUrl,
      '-XAtc',
      "select current_setting('server_version_num'), rolsuper from pg_roles where rolname = current_user",
    ])
    const [version, superuser] = stdout.trim().split('|')
    expect(Number(version)).toBeGreaterThanOrEqual(150000)
    expect(superuser).toBe('t')
  })

  it('has k6 and cosign binaries that run', async () => {
    const k6 = await run(env.k6, ['version'])
    expect(k6.stdout).toMatch(/k6 v\d+\.\d+\.\d+/)
    const cosign = await run(env.cosign, ['version'])
    expect(cosign.stdout + cosign.stderr).toMatch(/GitVersion:\s+v2\.\d+\.\d+/)
  })

  it('has cosign v3 beside v2, as cosign3', async () => {
    expect(env.cosign3, 'RETAILOPS_COSIGN3 is not set: eval "$(bash scripts/sandbox.sh env)" again').not.toBe('')
    expect(path.basename(env.cosign3)).toBe('cosign3')
    const cosign3 = await run(env.cosign3, ['version'])
    expect(cosign3.stdout + cosign3.stderr).toMatch(/GitVersion:\s+v3\.\d+\.\d+/)
  })
})
