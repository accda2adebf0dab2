// `deploy --canary --detach` against the sandbox: the CLI sets the canary up, hands its lease to a
// Job in the cluster and exits 0. Everything is read back from the kube-apiserver: the Job's spec
// (runner image by digest, restricted pod admitted by Pod Security admission in dry run), its
// ServiceAccount's RBAC exercised with a real token (what driving needs works, the rest is 403),
// the lease held for the Job, a second deploy refused, and `rollout status --watch` noticing a
// deleted Job (exit 14) before `rollout resume` takes over and finishes.

import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {MEDIA_TYPES, RegistryClient} from '../../../src/docker/registry.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {PATHS} from '../../../src/rollout/kube.js'
import {eventually, sandboxEnv} from '../../support/sandbox.js'
import {randomName} from '../../support/names.js'
import {RolloutProject, routeWeights} from './helpers.js'
import {serviceAccountClient} from '../helpers/service-account.js'

const JOBS = (ns: string) => `/apis/batch/v1/namespaces/${ns}/jobs`
const ROLES = (ns: string) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`

/** A tiny real image in a repository of its own (kwok runs no containers: the spec tests need bytes that exist, by digest). */
async function pushTinyImage(): Promise<string> {
  const registry = sandboxEnv().registry
  const repo = `${randomName('t-detach')}/retailops-runner`
  const client = new RegistryClient({registry, insecure: true})
  const layer = await client.uploadBlob(repo, Buffer.from(`retailops runner detach test ${repo}\n`))
  const config = await client.uploadBlob(
    repo,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {User: '65532'},
        rootfs: {type: 'layers', diff_ids: [layer.digest]},
      }),
    ),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: {mediaType: MEDIA_TYPES.ociConfig, digest: config.digest, size: config.size},
      layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size}],
    }),
  )
  const digest = await client.putManifest(repo, 'test', manifest, MEDIA_TYPES.ociManifest)
  return `${registry}/${repo}@${digest}`
}

const service = {
  tier: 'operational',
  scaling: {minReplicas: 2, maxReplicas: 2},
  rollout: {progressDeadline: '90s'},
  env: {LOG_LEVEL: 'info'},
}
/** An inline credential in retailops.yaml: it must reach the Job through a Secret, never the ConfigMap. */
const CREDENTIAL = 'hunter22-detach'
const datastores = [
  {
    name: 'orders',
    service: 'catalog',
    provider: 'postgres',
    postgres: {url: `postgres://app:${CREDENTIAL}@127.0.0.1:5432/orders`},
  },
]

describe('deploy --canary --detach', () => {
  const p = new RolloutProject({catalog: service, cart: service}, {datastores})
  let runner: string
  let http: KubeHttp

  /** A client acting as the driver's ServiceAccount, with a TokenRequest token (what the Job's pod gets). */
  async function asDriver(): Promise<KubeHttp> {
    const file = path.join(p.dir, 'driver.kubeconfig')
    return (await serviceAccountClient(http, p.ns, 'retailops-rollout-driver', file)).http
  }

  beforeAll(async () => {
    http = p.kube.http
    runner = await pushTinyImage()
    // The namespace enforces Pod Security `restricted`: the Job's pod is admitted there or not at all.
    await http.request('POST', '/api/v1/namespaces', {
      body: {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: p.ns,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    })
    const first = await p.deploy(['catalog', 'cart'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    for (const s of ['catalog', 'cart']) await p.gatewayRoute(s)
  }, 240_000)
  afterAll(() => p.cleanup())

  it('refuses --detach without a release strategy, or with --no-wait, changing nothing', async () => {
    const rolling = await p.deploy(['catalog'], 'v9', ['--detach', '--runner-image', runner])
    expect(rolling.exitCode).toBe(2)
    expect(rolling.json.error.message).toContain('--canary or --blue-green')
    const noWait = await p.deploy(['catalog'], 'v9', ['--canary', '--detach', '--no-wait', '--runner-image', runner])
    expect(noWait.exitCode).toBe(2)
    const tag = await p.deploy(['catalog'], 'v9', [
      '--canary',
      '--detach',
      '--runner-image',
      `${sandboxEnv().registry}/retailops-runner:latest`,
    ])
    expect(tag.exitCode).toBe(2)
    expect(tag.json.error.message).toContain('pinned by digest')
    expect(await p.state('catalog')).toBeUndefined()
    expect((await http.request<{items: unknown[]}>('GET', JOBS(p.ns))).items).toHaveLength(0)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')
  })

  it('sets the canary up, hands the lease to a restricted Job running the runner by digest, and exits 0', async () => {
    const r = await p.deploy(['catalog'], 'v2', [
      '--canary',
      '--steps',
      '50,pause:1m,100',
      '--detach',
      '--runner-image',
      runner,
      '--timeout',
      '20m',
    ])
    expect(r.exitCode, JSON.stringify(r.json.error ?? r.json.result?.release)).toBe(0)
    const detached = r.json.result.release.detached
    expect(detached).toMatchObject({namespace: p.ns, serviceAccount: 'retailops-rollout-driver', runnerImage: runner})
    expect(r.json.result.release.rollouts[0]).toMatchObject({service: 'catalog', phase: 'Progressing', weight: 0})
    for (const w of r.json.warnings) expect(w).not.toContain(CREDENTIAL)

    // The setup ran here: canary Deployment at 0, the route pins stable and gives the canary 0 %.
    expect((await p.deployment('catalog-canary'))?.spec.replicas).toBe(0)
    expect(routeWeights(await p.route('catalog'))).toEqual({'catalog-stable': 100, 'catalog-canary': 0})
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')

    // The lease is the Job's: its run id is the one the Job's pod gets, pending until the pod takes it.
    const state = (await p.state('catalog'))!
    expect(state).toMatchObject({phase: 'Progressing', stage: 'steps'})
    expect(state.lease).toMatchObject({
      holder: `job/${p.ns}/${detached.name}`,
      job: {namespace: p.ns, name: detached.name, pending: true},
      ttlSeconds: 300,
    })
    expect(state.lease!.id).toBe(detached.runId)
    expect(state.events.map((e) => e.message)).toContain(
      `handed over to Job ${p.ns}/${detached.name}, which drives it from here`,
    )

    const job = await http.request<any>('GET', `${JOBS(p.ns)}/${detached.name}`)
    expect(job.metadata.uid).toBe(state.lease!.job!.uid)
    expect(job.spec).toMatchObject({
      suspend: false,
      backoffLimit: 0,
      ttlSecondsAfterFinished: 86_400,
      activeDeadlineSeconds: 20 * 60 + 900,
    })
    const pod = job.spec.template.spec
    expect(pod).toMatchObject({
      serviceAccountName: 'retailops-rollout-driver',
      restartPolicy: 'Never',
      automountServiceAccountToken: true,
      securityContext: {runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}},
    })
    const container = pod.containers[0]
    expect(container.image).toBe(runner)
    expect(container.args).toEqual([
      'rollout',
      'resume',
      'catalog',
      '--environment',
      'test',
      '--namespace',
      p.ns,
      '--context',
      'inClusterContext',
      '--timeout',
      '1200s',
      '--json',
      '--skip-verify',
    ])
    expect(container.env).toContainEqual({name: 'RETAILOPS_RUN_ID', value: state.lease!.id})
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: {drop: ['ALL']},
    })

    // Pod Security admission (restricted, enforced on the namespace) admits the Job's pod.
    await http.request('POST', `/api/v1/namespaces/${p.ns}/pods`, {
      query: {dryRun: 'All'},
      body: {apiVersion: 'v1', kind: 'Pod', metadata: {name: 'driver-admission'}, spec: pod},
    })
    // …and rejects the same pod without its seccomp profile (so the check above is real).
    const {securityContext: podSecurity, ...rest} = pod
    await expect(
      http.request('POST', `/api/v1/namespaces/${p.ns}/pods`, {
        query: {dryRun: 'All'},
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {name: 'violates'},
          spec: {
            ...rest,
            securityContext: {...podSecurity, seccompProfile: undefined},
            containers: [{...container, securityContext: {...container.securityContext, seccompProfile: undefined}}],
          },
        },
      }),
    ).rejects.toMatchObject({message: expect.stringContaining('PodSecurity')})

    // The ConfigMap holds retailops.yaml without the inline credential; the Secret holds it. Both, and the Role, go with the Job.
    const cm = await http.request<any>('GET', `${PATHS.configmaps(p.ns)}/${detached.configMap}`)
    expect(cm.data['retailops.yaml']).toContain('LOG_LEVEL: info')
    expect(cm.data['retailops.yaml']).not.toContain(CREDENTIAL)
    const secret = await http.request<any>(
      'GET',
      `/api/v1/namespaces/${p.ns}/secrets/${detached.credentialsSecretName}`,
    )
    expect(Buffer.from(secret.data['credentials.json'], 'base64').toString()).toContain(CREDENTIAL)
    for (const o of [cm, secret, await http.request<any>('GET', `${ROLES(p.ns)}/${detached.role}`)])
      expect(o.metadata.ownerReferences).toEqual([
        expect.objectContaining({kind: 'Job', name: detached.name, uid: job.metadata.uid}),
      ])
  })

  it("the Job's ServiceAccount may do what driving needs, by name, and nothing else (403)", async () => {
    const detached = (await p.state('catalog'))!.lease!.job!
    const role = await http.request<{rules: {resources: string[]; verbs: string[]; resourceNames?: string[]}[]}>(
      'GET',
      `${ROLES(p.ns)}/${detached.name}`,
    )
    const configmaps = role.rules.find((r) => r.resources.includes('configmaps'))!
    expect(configmaps.resourceNames).toEqual(['retailops-rollout-catalog', 'retailops-rollout-catalog.request'])
    expect(role.rules.find((r) => r.resources.includes('httproutes'))).toMatchObject({
      verbs: ['get', 'patch'],
      resourceNames: ['catalog'],
    })
    for (const r of role.rules) expect(r.resources).not.toContain('secrets')

    const driver = await asDriver()
    try {
      // What a driver does: read and replace its state, weight its route, scale and delete its canary.
      const cm = await driver.request<any>('GET', `${PATHS.configmaps(p.ns)}/retailops-rollout-catalog`)
      await driver.request('PUT', `${PATHS.configmaps(p.ns)}/retailops-rollout-catalog`, {
        body: cm,
        query: {dryRun: 'All'},
      })
      await driver.request('GET', `${PATHS.httproutes(p.ns)}/catalog`)
      await driver.request('PATCH', `${PATHS.deployments(p.ns)}/catalog-canary`, {
        body: {spec: {replicas: 0}},
        contentType: 'application/merge-patch+json',
        query: {dryRun: 'All'},
      })
      await driver.request('DELETE', `${PATHS.deployments(p.ns)}/catalog-canary`, {query: {dryRun: 'All'}})
      await driver.request('GET', PATHS.replicasets(p.ns))
      // Nothing more: another service's state, its Deployment and route, deleting stable, Secrets, other namespaces.
      const forbidden = [
        () => driver.request('GET', `${PATHS.configmaps(p.ns)}/retailops-rollout-cart`),
        () =>
          driver.request('PATCH', `${PATHS.deployments(p.ns)}/cart`, {
            body: {spec: {replicas: 5}},
            contentType: 'application/merge-patch+json',
          }),
        () =>
          driver.request('PATCH', `${PATHS.httproutes(p.ns)}/cart`, {
            body: {metadata: {labels: {x: 'y'}}},
            contentType: 'application/merge-patch+json',
          }),
        () => driver.request('DELETE', `${PATHS.deployments(p.ns)}/catalog`),
        () =>
          driver.request('POST', PATHS.deployments(p.ns), {
            body: {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              metadata: {name: 'miner'},
              spec: {
                selector: {matchLabels: {a: 'b'}},
                template: {metadata: {labels: {a: 'b'}}, spec: {containers: [{name: 'x', image: 'x'}]}},
              },
            },
          }),
        () => driver.request('GET', `/api/v1/namespaces/${p.ns}/secrets`),
        () => driver.request('GET', `${PATHS.configmaps('default')}/kube-root-ca.crt`),
        () =>
          driver.request('POST', JOBS(p.ns), {
            body: {
              apiVersion: 'batch/v1',
              kind: 'Job',
              metadata: {name: 'x'},
              spec: {template: {spec: {restartPolicy: 'Never', containers: [{name: 'x', image: 'x'}]}}},
            },
          }),
      ]
      for (const f of forbidden) await expect(f()).rejects.toMatchObject({statusCode: 403})
    } finally {
      driver.close()
    }
  })

  it('refuses a second deploy while the Job holds the lease (13, naming the Job); status shows the Job', async () => {
    const again = await p.deploy(['catalog'], 'v3', ['--canary'])
    expect(again.exitCode).toBe(13)
    expect(again.json.error.message).toMatch(/driven by Job t-rollout-\w+\/retailops-drive-/)
    const rolling = await p.deploy(['catalog'], 'v3')
    expect(rolling.exitCode).toBe(12)
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')
    const status = await p.cli(['rollout', 'status', 'catalog'])
    expect(status.exitCode).toBe(0)
    expect(status.json.result.rollouts[0]).toMatchObject({
      phase: 'Progressing',
      orphaned: false,
      driver: {alive: true},
      job: {name: (await p.state('catalog'))!.lease!.job!.name, gone: false},
    })
  })

  it('a deleted Job leaves the rollout orphaned: status --watch says so (14) with the next step, and resume takes over at once', async () => {
    const job = (await p.state('catalog'))!.lease!.job!
    await http.request('DELETE', `${JOBS(p.ns)}/${job.name}`, {body: {propagationPolicy: 'Background'}})
    const watch = await p.cli(['rollout', 'status', 'catalog', '--watch', '--timeout', '2m'])
    expect(watch.exitCode).toBe(14)
    expect(watch.json.result.rollouts[0]).toMatchObject({
      phase: 'Progressing',
      orphaned: true,
      job: {name: job.name, phase: 'deleted', gone: true},
    })
    expect(watch.json.warnings.join(' ')).toContain(
      `Job ${p.ns}/${job.name}, which drove it, was deleted; run \`retailops rollout resume catalog\``,
    )
    // The Job's Role, ConfigMap and Secret go with it (owner references, garbage collector).
    await eventually(
      "the Job's Role to be collected",
      async () =>
        (await http.request('GET', `${ROLES(p.ns)}/${job.name}`).then(
          () => false,
          () => true,
        ))
          ? true
          : undefined,
      60_000,
      500,
    )

    const started = Date.now()
    const resumed = await p.cli(['rollout', 'resume', 'catalog'], {timeoutMs: 300_000})
    expect(resumed.exitCode, JSON.stringify(resumed.json.error)).toBe(0)
    // It did not wait for the 300 s start grace of the lease handed to the deleted Job.
    expect(Date.now() - started).toBeLessThan(200_000)
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Healthy')
    expect(state.events.map((e) => e.message).join('\n')).toContain(
      `Job ${p.ns}/${job.name}, which drove it, was deleted`,
    )
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
  }, 400_000)
})
