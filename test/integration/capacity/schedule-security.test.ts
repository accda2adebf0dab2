// prewarm --schedule against the sandbox's real kube-apiserver (RBAC and Pod Security admission on)
// and registry: the runner image is verified by digest before anything is created; the jobs' pods
// and the headroom placeholders are admitted by a namespace that enforces Pod Security
// `restricted` (a non-compliant pod is rejected there, so the check is real); the runner's RBAC is
// read back and exercised: the CronJobs' pod templates run in the real runner image (Docker on the
// host network, test/integration/helpers/run-job-pod.ts) with the mounts, environment, security
// context and in-cluster ServiceAccount token a pod gets, and the cluster state they leave is read back.
import {writeFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {placeholderDeployment} from '../../../src/capacity/headroom.js'
import {removeRunnerRbac} from '../../../src/capacity/schedule.js'
import {kubeClients} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {signImages} from '../../../src/signing/images.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {runPodTemplate} from '../helpers/run-job-pod.js'
import {expectRestrictedAdmission, serviceAccountClient} from '../helpers/service-account.js'
import {copyRunnerImage, sandboxRunnerImage} from '../helpers/runner-image.js'
import {cli, CONTEXT, hours, randomName} from './helpers.js'
import {tempProject, type TempProject} from '../../support/project.js'
import {testContext} from '../../support/context.js'
import {sandboxEnv} from '../../support/sandbox.js'

const NS = randomName('t-sched')
const REGISTRY = sandboxEnv().registry
const REPO = `${randomName('t-sched')}/retailops-runner`
const SECRETS = ['tok-live-9f8e7d', 'hunter22-db', 'pr0m-pw']

interface Role {
  rules: {apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[]}[]
}
interface Binding {
  roleRef: {kind: string; name: string}
  subjects: {kind: string; name: string; namespace?: string}[]
}

const config = (runner: string) => `
project: shop
registry: {url: ${REGISTRY}, insecure: true}
signing: {key: .retailops/cosign.key, publicKey: .retailops/cosign.pub, passwordEnv: T_SCHED_PW}
${runner}
clusters: {main: {context: ${CONTEXT}}}
environments:
  test: {cluster: main, namespace: ${NS}, production: false, prometheus: "http://scraper:pr0m-pw@127.0.0.1:9"}
defaultEnvironment: test
services:
  catalog:
    tier: operational
    scaling: {rpsPerPod: 20, targetUtilization: 0.5, minReplicas: 1, maxReplicas: 10}
    env: {LOG_LEVEL: info, PAYMENT_API_TOKEN: tok-live-9f8e7d}
tenants:
  - {name: globex, model: isolated-database, database: {url: "postgres://app:hunter22-db@db:5432/globex"}}
campaigns:
  - name: bf
    start: "${hours(3)}"
    end: "${hours(27)}"
    buffer: 0.2
    prewarmLead: 2h
    nodeHeadroom: false
    peak: {catalog: {rps: 40}}
`

describe('prewarm --schedule: least privilege, restricted pods, a verified runner by digest', () => {
  const k = () => kubeClients({context: CONTEXT})
  let http: KubeHttp
  let project: TempProject
  let runner: string
  const setConfig = (runnerLine: string) => writeFile(project.file, config(runnerLine))
  const exists = (p: string) =>
    http.request('GET', p).then(
      () => true,
      () => false,
    )

  beforeAll(async () => {
    http = new KubeHttp(k().kc)
    project = await tempProject(config(''), {}, 't-capacity')
    await k().core.createNamespace({
      body: {
        metadata: {
          name: NS,
          labels: {
            'retailops.dev/test': 'schedule',
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    })
    const security = {runAsNonRoot: true, runAsUser: 65_532, seccompProfile: {type: 'RuntimeDefault'}}
    await k().apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: {name: 'catalog', labels: {'app.kubernetes.io/name': 'catalog'}},
        spec: {
          replicas: 1,
          selector: {matchLabels: {'app.kubernetes.io/name': 'catalog'}},
          template: {
            metadata: {labels: {'app.kubernetes.io/name': 'catalog'}},
            spec: {
              securityContext: security,
              containers: [
                {
                  name: 'catalog',
                  image: `${REGISTRY}/shop/catalog:it`,
                  resources: {requests: {cpu: '50m', memory: '64Mi'}, limits: {cpu: '200m', memory: '128Mi'}},
                  securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['ALL']}},
                },
              ],
            },
          },
        },
      },
    })
    await k().autoscaling.createNamespacedHorizontalPodAutoscaler({
      namespace: NS,
      body: {
        metadata: {name: 'catalog'},
        spec: {
          scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'catalog'},
          minReplicas: 1,
          maxReplicas: 10,
          metrics: [{type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}}],
        },
      },
    })
    for (let i = 0; i < 60; i++) {
      const d = await k().apps.readNamespacedDeployment({name: 'catalog', namespace: NS})
      if ((d.status?.readyReplicas ?? 0) >= 1) break
      await new Promise((r) => setTimeout(r, 1000))
    }
    await writeKeyPair({
      keyPath: path.join(project.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(project.dir, '.retailops/cosign.pub'),
      passphrase: 'sched-pw',
    })
    // The real runner image, copied unsigned into a repository of this test's own (same digest).
    runner = await copyRunnerImage(await sandboxRunnerImage(), REPO)
  })

  afterAll(async () => {
    if (!http) return
    await k()
      .core.deleteNamespace({name: NS})
      .catch(() => {})
    await removeRunnerRbac(http, NS, 'bf').catch(() => {})
    http.close()
  })

  const nothingScheduled = async () => {
    expect(await exists(`/apis/batch/v1/namespaces/${NS}/cronjobs/retailops-prewarm-bf`)).toBe(false)
    expect(await exists(`/api/v1/namespaces/${NS}/configmaps/retailops-prewarm-bf-config`)).toBe(false)
    expect(await exists(`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles/retailops-prewarm-bf`)).toBe(false)
    expect(await exists(`/apis/rbac.authorization.k8s.io/v1/clusterroles/retailops-prewarm-${NS}-bf`)).toBe(false)
  }

  it('without a runner image: NOT_FOUND saying how to build one, nothing created', async () => {
    const r = await cli(['prewarm', '--campaign', 'bf', '--schedule', '--no-warm'], project.dir)
    expect(r.exitCode, r.stdout).toBe(4)
    expect(r.doc!.error.nextSteps.join(' ')).toContain('retailops runner build')
    await nothingScheduled()
  })

  it('a tag is refused (--runner-image: USAGE; runner.image: CONFIG), nothing created', async () => {
    const flag = await cli(
      ['prewarm', '--campaign', 'bf', '--schedule', '--no-warm', '--runner-image', `${REGISTRY}/retailops:latest`],
      project.dir,
    )
    expect(flag.exitCode, flag.stdout).toBe(2)
    await setConfig(`runner: {image: "${REGISTRY}/retailops:latest"}`)
    const conf = await cli(['prewarm', '--campaign', 'bf', '--schedule', '--no-warm'], project.dir)
    expect(conf.exitCode, conf.stdout).toBe(3)
    expect(conf.stdout).toContain('runner.image')
    await nothingScheduled()
  })

  it('an unsigned runner image is refused (SIGNATURE), nothing created', async () => {
    await setConfig(`runner: {image: "${runner}"}`)
    const r = await cli(['prewarm', '--campaign', 'bf', '--schedule', '--no-warm'], project.dir)
    expect(r.exitCode, r.stdout).toBe(9)
    expect(r.doc!.error.message).toContain('is not signed')
    await nothingScheduled()
  })

  it('a signed runner by digest: CronJobs run it; RBAC, ConfigMap and Secret read back as least privilege and without credentials', async () => {
    process.env.T_SCHED_PW = 'sched-pw'
    await signImages({project: await project.load(), targets: [runner], passphrase: {env: 'T_SCHED_PW'}}, testContext())
    delete process.env.T_SCHED_PW
    const r = await cli(
      ['prewarm', '--campaign', 'bf', '--schedule', '--no-warm', '--rate-window', '10m', '--lookback', '3d'],
      project.dir,
    )
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    for (const secret of SECRETS) expect(r.stdout).not.toContain(secret)

    for (const name of ['retailops-prewarm-bf', 'retailops-restore-bf']) {
      const cron = await k().batch.readNamespacedCronJob({name, namespace: NS})
      const pod = cron.spec!.jobTemplate.spec!.template.spec!
      expect(pod.containers[0].image).toBe(runner)
      expect(pod.serviceAccountName).toBe('retailops-prewarm')
      expect(cron.spec!.timeZone).toBe('Etc/UTC')
    }
    // One-shot schedules: the minute prewarmLead before the start, the minute after the end.
    const bf = (await project.load()).config.campaigns[0]
    const cron = (d: Date) => `${d.getUTCMinutes()} ${d.getUTCHours()} ${d.getUTCDate()} ${d.getUTCMonth() + 1} *`
    const at = new Date(Math.floor((Date.parse(bf.start) - 2 * 3_600_000) / 60_000) * 60_000)
    const end = new Date(Math.ceil((Date.parse(bf.end) + 60_000) / 60_000) * 60_000)
    const pre = await k().batch.readNamespacedCronJob({name: 'retailops-prewarm-bf', namespace: NS})
    expect(pre.spec!.schedule).toBe(cron(at))
    // Every flag given is passed on as given (--rate-window was once dropped); defaults stay the job's own.
    expect(pre.spec!.jobTemplate.spec!.template.spec!.containers[0].args).toEqual([
      'prewarm',
      '--campaign',
      'bf',
      '--environment',
      'test',
      '--namespace',
      NS,
      '--context',
      'inClusterContext',
      '--yes',
      '--allow-below-current',
      '--lookback',
      '3d',
      '--rate-window',
      '10m',
      '--no-warm',
    ])
    const post = await k().batch.readNamespacedCronJob({name: 'retailops-restore-bf', namespace: NS})
    expect(post.spec!.schedule).toBe(cron(end))
    expect(post.spec!.jobTemplate.spec!.template.spec!.containers[0].args).toEqual([
      'prewarm',
      'restore',
      '--campaign',
      'bf',
      '--environment',
      'test',
      '--namespace',
      NS,
      '--context',
      'inClusterContext',
      '--yes',
      '--unschedule',
    ])
    const role = await http.request<Role>(
      'GET',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles/retailops-prewarm-bf`,
    )
    const binding = await http.request<Binding>(
      'GET',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings/retailops-prewarm-bf`,
    )
    expect(binding.roleRef).toMatchObject({kind: 'Role', name: 'retailops-prewarm-bf'})
    expect(binding.subjects).toEqual([{kind: 'ServiceAccount', name: 'retailops-prewarm', namespace: NS}])
    for (const rule of role.rules) {
      if (rule.resources.includes('configmaps') && rule.verbs.some((v) => ['update', 'patch', 'delete'].includes(v)))
        expect(rule.resourceNames).toEqual(['retailops-prewarm-bf', 'retailops-prewarm-bf-config'])
      if (rule.resources.includes('secrets'))
        expect(rule).toMatchObject({verbs: ['delete'], resourceNames: ['retailops-prewarm-bf-credentials']})
    }
    const clusterRole = await http.request<Role>(
      'GET',
      `/apis/rbac.authorization.k8s.io/v1/clusterroles/retailops-prewarm-${NS}-bf`,
    )
    expect(
      clusterRole.rules.some((rule) => rule.resources.includes('configmaps') || rule.resources.includes('*')),
    ).toBe(false)
    for (const rule of clusterRole.rules) {
      if (rule.resources.includes('priorityclasses'))
        expect(rule.resourceNames).toEqual([`retailops-headroom-${NS}-bf`])
      else expect(rule.verbs).toEqual(['list'])
    }
    const crb = await http.request<Binding>(
      'GET',
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/retailops-prewarm-${NS}-bf`,
    )
    expect(crb.subjects).toEqual([{kind: 'ServiceAccount', name: 'retailops-prewarm', namespace: NS}])

    const cm = await k().core.readNamespacedConfigMap({name: 'retailops-prewarm-bf-config', namespace: NS})
    for (const secret of SECRETS) expect(cm.data!['retailops.yaml']).not.toContain(secret)
    expect(cm.data!['retailops.yaml']).toContain('LOG_LEVEL: info')
    const secret = await k().core.readNamespacedSecret({name: 'retailops-prewarm-bf-credentials', namespace: NS})
    const stored = Buffer.from(secret.data!['credentials.json'], 'base64').toString('utf8')
    for (const s of SECRETS) expect(stored).toContain(s)
  })

  it("Pod Security restricted admits the jobs' pods and the headroom placeholders (and rejects a non-compliant pod)", async () => {
    const admitted: Record<string, unknown> = {}
    for (const name of ['retailops-prewarm-bf', 'retailops-restore-bf']) {
      const cron = await k().batch.readNamespacedCronJob({name, namespace: NS})
      admitted[`${name}-admission`] = cron.spec!.jobTemplate.spec!.template.spec
    }
    const placeholder = placeholderDeployment({
      namespace: NS,
      campaign: 'bf',
      pool: {pool: 'general', placeholder: {replicas: 1, requests: {cpu: 0.01, memory: 16 * 2 ** 20}}} as never,
      priorityClass: '',
      image: 'registry.k8s.io/pause:3.10',
      tolerations: [],
    })
    const {priorityClassName: _, ...placeholderPod} = placeholder.spec.template.spec
    admitted['headroom-admission'] = placeholderPod
    // The control: the same placeholder pod without its seccomp profile.
    const {securityContext: podSecurity, ...rest} = placeholderPod
    const container = {
      ...rest.containers[0],
      securityContext: {...rest.containers[0].securityContext, seccompProfile: undefined},
    }
    await expectRestrictedAdmission(http, NS, admitted, {
      ...rest,
      securityContext: {...podSecurity, seccompProfile: undefined},
      containers: [container],
    })
  })

  it('the scheduled pre-warm and restore run as their pods would (runner image, mounts, in-cluster token): enough permission, and no more', async () => {
    const pre = await k().batch.readNamespacedCronJob({name: 'retailops-prewarm-bf', namespace: NS})
    const post = await k().batch.readNamespacedCronJob({name: 'retailops-restore-bf', namespace: NS})

    // The pre-warm job's pod, exactly as the CronJob would create it.
    const run = await runPodTemplate({namespace: NS, template: pre.spec!.jobTemplate.spec!.template})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    for (const secret of SECRETS) expect(run.stdout + run.stderr).not.toContain(secret)
    const hpa = await k().autoscaling.readNamespacedHorizontalPodAutoscaler({name: 'catalog', namespace: NS})
    // ceil(40 × 1.2 / (20 × 0.5)) = 5
    expect(hpa.spec!.minReplicas).toBe(5)
    // The job recorded what the restore puts back (the HPA's minReplicas 1) in the campaign's state ConfigMap.
    const state = await k().core.readNamespacedConfigMap({name: 'retailops-prewarm-bf', namespace: NS})
    const saved = JSON.parse(Object.values(state.data!)[0]) as {
      targets: Record<string, {minReplicas?: {present: boolean; value?: number}}>
    }
    expect(saved.targets['HorizontalPodAutoscaler/catalog'].minReplicas).toEqual({present: true, value: 1})

    // The same ServiceAccount's token may not write elsewhere: another ConfigMap, another namespace, another PriorityClass.
    const {http: asRunner} = await serviceAccountClient(
      http,
      NS,
      'retailops-prewarm',
      path.join(project.dir, 'runner.kubeconfig'),
    )
    await expect(
      asRunner.request('PATCH', `/api/v1/namespaces/${NS}/configmaps/someone-elses`, {
        body: {data: {a: 'b'}},
        contentType: 'application/merge-patch+json',
      }),
    ).rejects.toMatchObject({statusCode: 403})
    await expect(
      asRunner.request('POST', '/api/v1/namespaces/default/configmaps', {body: {metadata: {name: `${NS}-x`}}}),
    ).rejects.toMatchObject({statusCode: 403})
    await expect(
      asRunner.request('DELETE', '/apis/scheduling.k8s.io/v1/priorityclasses/system-cluster-critical'),
    ).rejects.toMatchObject({statusCode: 403})
    // Its own PriorityClass it may create by server-side apply (create is authorised with the name).
    const pc = `retailops-headroom-${NS}-bf`
    await asRunner.request('PATCH', `/apis/scheduling.k8s.io/v1/priorityclasses/${pc}`, {
      body: {
        apiVersion: 'scheduling.k8s.io/v1',
        kind: 'PriorityClass',
        metadata: {name: pc, labels: {'retailops.io/campaign': 'bf', 'retailops.io/namespace': NS}},
        value: -10,
        preemptionPolicy: 'Never',
      },
      contentType: 'application/apply-patch+yaml',
      query: {fieldManager: 'test', force: true},
    })
    await expect(
      asRunner.request('PATCH', `/apis/scheduling.k8s.io/v1/priorityclasses/${pc}-other`, {
        body: {apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: {name: `${pc}-other`}, value: -10},
        contentType: 'application/apply-patch+yaml',
        query: {fieldManager: 'test', force: true},
      }),
    ).rejects.toMatchObject({statusCode: 403})
    await asRunner.request('DELETE', `/apis/scheduling.k8s.io/v1/priorityclasses/${pc}`)
    asRunner.close()

    // The restore job's pod: the HPA is back, and --unschedule removed the CronJobs, the ConfigMap
    // and the Secret with the runner's own permissions (its RBAC stays: a job cannot delete what authorises it).
    const restore = await runPodTemplate({namespace: NS, template: post.spec!.jobTemplate.spec!.template})
    expect(restore.exitCode, restore.stdout + restore.stderr).toBe(0)
    expect(
      (await k().autoscaling.readNamespacedHorizontalPodAutoscaler({name: 'catalog', namespace: NS})).spec!.minReplicas,
    ).toBe(1)
    expect(await exists(`/apis/batch/v1/namespaces/${NS}/cronjobs/retailops-prewarm-bf`)).toBe(false)
    expect(await exists(`/apis/batch/v1/namespaces/${NS}/cronjobs/retailops-restore-bf`)).toBe(false)
    expect(await exists(`/api/v1/namespaces/${NS}/configmaps/retailops-prewarm-bf-config`)).toBe(false)
    expect(await exists(`/api/v1/namespaces/${NS}/secrets/retailops-prewarm-bf-credentials`)).toBe(false)
    expect(await exists(`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles/retailops-prewarm-bf`)).toBe(true)
  })

  it("--unschedule from a workstation also removes the campaign's runner permissions", async () => {
    const r = await cli(['prewarm', '--campaign', 'bf', '--schedule', '--no-warm'], project.dir)
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const un = await cli(['prewarm', '--campaign', 'bf', '--unschedule'], project.dir)
    expect(un.exitCode, un.stdout + un.stderr).toBe(0)
    expect(un.doc!.result.unscheduled).toEqual([
      'CronJob/retailops-prewarm-bf',
      'CronJob/retailops-restore-bf',
      'ConfigMap/retailops-prewarm-bf-config',
      'Secret/retailops-prewarm-bf-credentials',
      `ClusterRoleBinding/retailops-prewarm-${NS}-bf`,
      `ClusterRole/retailops-prewarm-${NS}-bf`,
      'RoleBinding/retailops-prewarm-bf',
      'Role/retailops-prewarm-bf',
      'ServiceAccount/retailops-prewarm',
    ])
    await nothingScheduled()
  })
})
