// sleep --at against the sandbox: the runner image is verified by digest before anything is
// created; the sleep and wake CronJobs read back (schedule, timeZone, image digest, restricted pod);
// the ServiceAccount's token may do what sleep and wake do in the environment's namespace and is
// refused the rest; the CronJobs' own pods, run in the real runner image (Docker, in-cluster
// token), put the environment to sleep and wake it exactly; --unschedule removes everything.
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {kubeHttp} from '../../../src/kubernetes/client.js'
import {signImages} from '../../../src/signing/images.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {runPodTemplate} from '../helpers/run-job-pod.js'
import {serviceAccountClient, statusOf} from '../helpers/service-account.js'
import {copyRunnerImage, sandboxRunnerImage} from '../helpers/runner-image.js'
import {runCliJson} from '../../support/cli.js'
import {testContext} from '../../support/context.js'
import {randomName} from '../../support/names.js'
import {tempProject, type TempProject} from '../../support/project.js'
import {sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
const PROJECT = randomName('t-sleepsched')
const STAGING = `${PROJECT}-staging`
const PROD = `${PROJECT}-prod`
const REPO = `${PROJECT}/retailops-runner`
const RBAC = '/apis/rbac.authorization.k8s.io/v1'

const yaml = `
project: ${PROJECT}
registry: {url: "${sandbox.registry}", insecure: true}
signing: {key: .retailops/cosign.key, publicKey: .retailops/cosign.pub, passwordEnv: T_SLEEP_PW}
clusters: {main: {context: ${sandbox.context}}}
environments:
  staging: {cluster: main, namespace: ${STAGING}, production: false}
  production: {cluster: main, namespace: ${PROD}}
defaultEnvironment: staging
services:
  catalog: {tier: operational}
`

type Obj = {metadata: {name: string}; spec?: any; rules?: unknown[]; subjects?: unknown[]}

describe('sleep --at: scheduled sleep and wake in the cluster', () => {
  const http = kubeHttp({context: sandbox.context})
  let project: TempProject
  let runner: string
  const cli = (args: string[]) => runCliJson(args, {cwd: project.dir})
  const get = <T = Obj>(p: string) =>
    http.request<T>('GET', p).then(
      (o) => o,
      () => undefined,
    )
  const replicas = async (ns: string) => {
    const list = await http.request<{items: Obj[]}>('GET', `/apis/apps/v1/namespaces/${ns}/deployments`)
    return Object.fromEntries(list.items.map((d) => [d.metadata.name, d.spec.replicas as number]))
  }
  const hpa = async () =>
    (await get<Obj>(`/apis/autoscaling/v2/namespaces/${STAGING}/horizontalpodautoscalers/catalog`))!.spec

  beforeAll(async () => {
    project = await tempProject(yaml, {}, 't-sleepsched')
    await writeKeyPair({
      keyPath: path.join(project.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(project.dir, '.retailops/cosign.pub'),
      passphrase: 'sleep-pw',
    })
    for (const ns of [STAGING, PROD]) {
      await http.request('POST', '/api/v1/namespaces', {
        body: {
          metadata: {
            name: ns,
            labels: {'pod-security.kubernetes.io/enforce': 'restricted', 'retailops.dev/test': 'sleep-schedule'},
          },
        },
      })
      for (const [name, n] of [
        ['catalog', 3],
        ['cart', 2],
      ] as const) {
        const labels = {'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': PROJECT}
        await http.request('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
          body: {
            metadata: {name, labels},
            spec: {
              replicas: n,
              selector: {matchLabels: {'app.kubernetes.io/name': name}},
              template: {
                metadata: {labels},
                spec: {
                  securityContext: {runAsNonRoot: true, runAsUser: 65_532, seccompProfile: {type: 'RuntimeDefault'}},
                  containers: [
                    {
                      name,
                      image: `${sandbox.registry}/${PROJECT}/${name}@sha256:${'c'.repeat(64)}`,
                      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['ALL']}},
                    },
                  ],
                },
              },
            },
          },
        })
      }
    }
    await http.request('POST', `/apis/autoscaling/v2/namespaces/${STAGING}/horizontalpodautoscalers`, {
      body: {
        metadata: {name: 'catalog', labels: {'app.kubernetes.io/part-of': PROJECT}},
        spec: {
          scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'catalog'},
          minReplicas: 2,
          maxReplicas: 7,
          metrics: [{type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 60}}}],
        },
      },
    })
    // The real runner image under this test's own repository (same digest, no signatures yet).
    runner = await copyRunnerImage(await sandboxRunnerImage(), REPO)
  }, 900_000)

  afterAll(async () => {
    for (const ns of [STAGING, PROD]) await http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
    http.close()
    await project?.remove()
  })

  const nothingScheduled = async () => {
    for (const p of [
      `/apis/batch/v1/namespaces/${STAGING}/cronjobs/retailops-sleep-staging`,
      `/apis/batch/v1/namespaces/${STAGING}/cronjobs/retailops-wake-staging`,
      `/api/v1/namespaces/${STAGING}/configmaps/retailops-sleep-staging-config`,
      `/api/v1/namespaces/${STAGING}/secrets/retailops-sleep-staging-credentials`,
      `/api/v1/namespaces/${STAGING}/serviceaccounts/retailops-sleep`,
      `${RBAC}/namespaces/${STAGING}/roles/retailops-sleep-staging`,
      `${RBAC}/namespaces/${STAGING}/rolebindings/retailops-sleep-staging`,
    ])
      expect(await get(p), p).toBeUndefined()
  }

  it('an unsigned runner image is refused (SIGNATURE) and a tag is a usage error: nothing created', async () => {
    const unsigned = await cli(['sleep', '--at', 'Mon-Fri 20:00-07:00', '--runner-image', runner])
    expect(unsigned.exitCode, unsigned.stderr).toBe(9)
    const tag = await cli([
      'sleep',
      '--at',
      'Mon-Fri 20:00-07:00',
      '--runner-image',
      `${sandbox.registry}/${REPO}:latest`,
    ])
    expect(tag.exitCode).toBe(2)
    await nothingScheduled()
    expect(await replicas(STAGING)).toEqual({catalog: 3, cart: 2})
  })

  it('creates the sleep and wake CronJobs: runner by digest, the time zone, restricted pods, least privilege', async () => {
    process.env.T_SLEEP_PW = 'sleep-pw'
    await signImages({project: await project.load(), targets: [runner], passphrase: {env: 'T_SLEEP_PW'}}, testContext())
    delete process.env.T_SLEEP_PW
    const r = await cli([
      'sleep',
      '--at',
      'Mon-Fri 20:00-07:00',
      '--timezone',
      'Europe/Berlin',
      '--runner-image',
      runner,
    ])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.doc.result.sleep.nextRuns).toHaveLength(3)
    // Scheduling changes nothing now.
    expect(await replicas(STAGING)).toEqual({catalog: 3, cart: 2})

    for (const [name, schedule, command] of [
      ['retailops-sleep-staging', '0 20 * * 1-5', 'sleep'],
      ['retailops-wake-staging', '0 7 * * 1-5', 'wake'],
    ] as const) {
      const cron = (await get<Obj>(`/apis/batch/v1/namespaces/${STAGING}/cronjobs/${name}`))!
      expect(cron.spec).toMatchObject({schedule, timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid'})
      const pod = cron.spec.jobTemplate.spec.template.spec
      expect(pod.serviceAccountName).toBe('retailops-sleep')
      expect(pod.securityContext).toMatchObject({runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}})
      const container = pod.containers[0]
      expect(container.image).toBe(runner)
      expect(container.image).toMatch(/@sha256:[0-9a-f]{64}$/)
      expect(container.args).toEqual([
        command,
        '--environment',
        'staging',
        '--namespace',
        STAGING,
        '--context',
        'inClusterContext',
        '--yes',
      ])
      expect(container.securityContext).toMatchObject({allowPrivilegeEscalation: false, capabilities: {drop: ['ALL']}})
    }
    const role = (await get<Obj>(`${RBAC}/namespaces/${STAGING}/roles/retailops-sleep-staging`))!
    expect(role.rules).toEqual([
      {apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch']},
      {apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'list', 'patch']},
      {apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['get', 'list', 'patch']},
      {apiGroups: [''], resources: ['configmaps'], verbs: ['create']},
      {
        apiGroups: [''],
        resources: ['configmaps'],
        verbs: ['get', 'patch', 'delete'],
        resourceNames: ['retailops-sleep-state'],
      },
    ])
    const binding = (await get<Obj>(`${RBAC}/namespaces/${STAGING}/rolebindings/retailops-sleep-staging`))!
    expect(binding.subjects).toEqual([{kind: 'ServiceAccount', name: 'retailops-sleep', namespace: STAGING}])
    // Nothing in production.
    expect(await get(`${RBAC}/namespaces/${PROD}/roles/retailops-sleep-staging`)).toBeUndefined()
  })

  it("the ServiceAccount's token may scale staging and is refused production, Secrets and other ConfigMaps", async () => {
    const {http: as} = await serviceAccountClient(
      http,
      STAGING,
      'retailops-sleep',
      path.join(project.dir, 'token', 'kubeconfig'),
    )
    const status = statusOf
    const scale = (ns: string) =>
      as.request('PATCH', `/apis/apps/v1/namespaces/${ns}/deployments/cart`, {
        body: {spec: {replicas: 2}},
        contentType: 'application/merge-patch+json',
      })
    try {
      expect(await status(as.request('GET', `/apis/apps/v1/namespaces/${STAGING}/deployments`))).toBe(200)
      expect(await status(scale(STAGING))).toBe(200)
      expect(await status(scale(PROD))).toBe(403)
      expect(await status(as.request('GET', `/api/v1/namespaces/${STAGING}/secrets`))).toBe(403)
      expect(
        await status(
          as.request('PATCH', `/api/v1/namespaces/${STAGING}/configmaps/retailops-sleep-staging-config`, {
            body: {data: {a: 'b'}},
            contentType: 'application/merge-patch+json',
          }),
        ),
      ).toBe(403)
      expect(
        await status(as.request('DELETE', `/apis/batch/v1/namespaces/${STAGING}/cronjobs/retailops-wake-staging`)),
      ).toBe(403)
    } finally {
      as.close()
    }
  })

  it("the CronJobs' own pods put staging to sleep and wake it exactly as it was", async () => {
    const before = {replicas: await replicas(STAGING), hpa: await hpa()}
    const prodBefore = await replicas(PROD)
    const template = async (name: string) =>
      (await get<Obj>(`/apis/batch/v1/namespaces/${STAGING}/cronjobs/${name}`))!.spec.jobTemplate.spec.template
    const slept = await runPodTemplate({namespace: STAGING, template: await template('retailops-sleep-staging')})
    expect(slept.exitCode, slept.stdout + slept.stderr).toBe(0)
    expect(await replicas(STAGING)).toEqual({catalog: 0, cart: 0})
    expect(await replicas(PROD)).toEqual(prodBefore)
    expect(await get(`/api/v1/namespaces/${STAGING}/configmaps/retailops-sleep-state`)).toBeDefined()
    const woke = await runPodTemplate({namespace: STAGING, template: await template('retailops-wake-staging')})
    expect(woke.exitCode, woke.stdout + woke.stderr).toBe(0)
    expect({replicas: await replicas(STAGING), hpa: await hpa()}).toEqual(before)
    expect(await get(`/api/v1/namespaces/${STAGING}/configmaps/retailops-sleep-state`)).toBeUndefined()
  })

  it('--unschedule removes the CronJobs, their configuration and permissions', async () => {
    const r = await cli(['sleep', '--unschedule'])
    expect(r.exitCode, r.stderr).toBe(0)
    await nothingScheduled()
    const prod = await cli(['sleep', '--unschedule', '--environment', 'production'])
    expect(prod.exitCode).toBe(33)
  })
})
