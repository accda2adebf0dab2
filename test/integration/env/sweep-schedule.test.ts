// env sweep --schedule against the sandbox: the runner image verified by digest before anything is
// created; the CronJob, ClusterRole and admission policy read back; the sweep's ServiceAccount may
// delete this project's previews' namespaces and nothing else (the ValidatingAdmissionPolicy
// refuses what RBAC cannot express); the CronJob's own pod, in the real runner image, deletes only
// the expired preview; --unschedule removes everything.
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
import {eventually, sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
const PROJECT = randomName('t-sweep')
const HOME = PROJECT
const REPO = `${PROJECT}/retailops-runner`
const ns = (name: string) => `${PROJECT}-preview-${name}`
const digest = `sha256:${'d'.repeat(64)}`

const config = (required: boolean) => `
project: ${PROJECT}
registry: {url: "${sandbox.registry}", insecure: true}
signing: {key: .retailops/cosign.key, publicKey: .retailops/cosign.pub, passwordEnv: T_SWEEP_PW, required: ${required}}
clusters: {main: {context: ${sandbox.context}}}
environments:
  staging: {cluster: main, namespace: ${HOME}, production: false}
services:
  catalog: {tier: tolerant, scaling: {minReplicas: 1, maxReplicas: 1}}
`
const LOCK = JSON.stringify({
  lockfileVersion: 1,
  artifacts: {
    catalog: {
      repository: `${sandbox.registry}/${PROJECT}/catalog`,
      digest,
      image: `${sandbox.registry}/${PROJECT}/catalog@${digest}`,
      tag: '1',
      pushedAt: '2026-12-06T00:00:00Z',
    },
  },
})

type Obj = {
  metadata: {name: string; labels?: Record<string, string>}
  spec?: any
  rules?: unknown[]
  subjects?: unknown[]
}

describe('env sweep --schedule', () => {
  const http = kubeHttp({context: sandbox.context})
  let project: TempProject
  let runner: string
  const cli = (args: string[]) => runCliJson(args, {cwd: project.dir})
  const get = <T = Obj>(p: string) =>
    http.request<T>('GET', p).then(
      (o) => o,
      () => undefined,
    )
  const names = {
    cronJob: `retailops-env-sweep-${PROJECT}`,
    clusterRole: `retailops-env-sweep-${HOME}-${PROJECT}`,
  }

  beforeAll(async () => {
    project = await tempProject(
      config(true),
      {'loose.yaml': config(false), '.retailops/artifacts.lock.json': LOCK},
      't-sweep',
    )
    await writeKeyPair({
      keyPath: path.join(project.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(project.dir, '.retailops/cosign.pub'),
      passphrase: 'sweep-pw',
    })
    await http.request('POST', '/api/v1/namespaces', {
      body: {metadata: {name: HOME, labels: {'pod-security.kubernetes.io/enforce': 'restricted'}}},
    })
    // Previews of unverifiable test digests: created with a copy of the configuration that does not require signatures.
    for (const [name, ttl] of [
      ['old', '1m'],
      ['fresh', '2h'],
    ])
      expect(
        (
          await cli([
            'env',
            'create',
            name,
            '--ttl',
            ttl,
            '--no-wait',
            '--config',
            path.join(project.dir, 'loose.yaml'),
          ])
        ).exitCode,
      ).toBe(0)
    runner = await copyRunnerImage(await sandboxRunnerImage(), REPO)
  }, 900_000)

  afterAll(async () => {
    await cli(['env', 'sweep', '--unschedule']).catch(() => undefined)
    for (const n of [HOME, ns('old'), ns('fresh'), ns('probe'), `${PROJECT}-bystander`])
      await http.request('DELETE', `/api/v1/namespaces/${n}`).catch(() => undefined)
    http.close()
    await project?.remove()
  })

  it('an unsigned runner or a bad schedule is refused before anything is created', async () => {
    const unsigned = await cli(['env', 'sweep', '--schedule', '*/10 * * * *', '--runner-image', runner])
    expect(unsigned.exitCode, unsigned.stderr).toBe(9)
    const bad = await cli(['env', 'sweep', '--schedule', '*/10 * * *'])
    expect(bad.exitCode).toBe(2)
    const zone = await cli(['env', 'sweep', '--schedule', '@hourly', '--time-zone', 'Mars/Olympus'])
    expect(zone.exitCode).toBe(2)
    expect(await get(`/apis/batch/v1/namespaces/${HOME}/cronjobs/${names.cronJob}`)).toBeUndefined()
    expect(await get(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${names.clusterRole}`)).toBeUndefined()
  })

  it('creates the CronJob with the runner by digest, its ClusterRole and the admission policy confining it', async () => {
    process.env.T_SWEEP_PW = 'sweep-pw'
    await signImages({project: await project.load(), targets: [runner], passphrase: {env: 'T_SWEEP_PW'}}, testContext())
    delete process.env.T_SWEEP_PW
    const r = await cli([
      'env',
      'sweep',
      '--schedule',
      '*/15 * * * *',
      '--time-zone',
      'Europe/Berlin',
      '--runner-image',
      runner,
    ])
    expect(r.exitCode, r.stderr).toBe(0)
    const cron = (await get<Obj>(`/apis/batch/v1/namespaces/${HOME}/cronjobs/${names.cronJob}`))!
    expect(cron.spec).toMatchObject({schedule: '*/15 * * * *', timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid'})
    const pod = cron.spec.jobTemplate.spec.template.spec
    expect(pod.containers[0].image).toBe(runner)
    expect(pod.containers[0].args).toEqual([
      'env',
      'sweep',
      '--environment',
      'staging',
      '--namespace',
      HOME,
      '--context',
      'inClusterContext',
      '--yes',
    ])
    expect(pod.serviceAccountName).toBe('retailops-env-sweep')
    const role = (await get<Obj>(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${names.clusterRole}`))!
    expect(role.rules).toEqual([{apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'delete']}])
    const policy = (await get<Obj>(
      `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${names.clusterRole}`,
    ))!
    expect(JSON.stringify(policy.spec.validations)).toContain(`retailops.dev/preview-of`)
    expect(
      (await get<Obj>(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${names.clusterRole}`))!
        .spec,
    ).toMatchObject({validationActions: ['Deny']})
  })

  it("the sweep's token may delete this project's previews' namespaces and no other namespace", async () => {
    await http.request('POST', '/api/v1/namespaces', {
      body: {
        metadata: {name: ns('probe'), labels: {'retailops.dev/preview-of': PROJECT, 'retailops.dev/preview': 'probe'}},
      },
    })
    await http.request('POST', '/api/v1/namespaces', {body: {metadata: {name: `${PROJECT}-bystander`}}})
    const {http: as} = await serviceAccountClient(
      http,
      HOME,
      'retailops-env-sweep',
      path.join(project.dir, 'token', 'kubeconfig'),
    )
    const status = statusOf
    try {
      // A new admission policy takes effect once the API server has loaded it (about a second): a
      // server-side dry run tells when, and changes nothing.
      await eventually(
        'the admission policy to be in force',
        async () =>
          (await status(as.request('DELETE', `/api/v1/namespaces/${PROJECT}-bystander`, {query: {dryRun: 'All'}}))) ===
          403
            ? true
            : undefined,
        20_000,
        200,
      )
      expect(await status(as.request('DELETE', `/api/v1/namespaces/${PROJECT}-bystander`))).toBe(403)
      expect(await status(as.request('DELETE', `/api/v1/namespaces/${HOME}`))).toBe(403)
      expect(await status(as.request('DELETE', '/api/v1/namespaces/default'))).toBe(403)
      expect(await status(as.request('POST', '/api/v1/namespaces', {body: {metadata: {name: `${PROJECT}-x`}}}))).toBe(
        403,
      )
      expect(await status(as.request('GET', `/api/v1/namespaces/${HOME}/secrets`))).toBe(403)
      expect(await status(as.request('DELETE', `/api/v1/namespaces/${ns('probe')}`))).toBe(200)
    } finally {
      as.close()
    }
    expect(await get(`/api/v1/namespaces/${PROJECT}-bystander`)).toBeDefined()
  })

  it("the CronJob's own pod deletes only the expired preview", async () => {
    await eventually(
      'preview old to expire',
      async () => {
        const o = await get<Obj & {metadata: {annotations?: Record<string, string>}}>(`/api/v1/namespaces/${ns('old')}`)
        return Date.parse(o!.metadata.annotations!['retailops.dev/preview-expires']) < Date.now() ? true : undefined
      },
      90_000,
      1000,
    )
    const template = (await get<Obj>(`/apis/batch/v1/namespaces/${HOME}/cronjobs/${names.cronJob}`))!.spec.jobTemplate
      .spec.template
    const run = await runPodTemplate({namespace: HOME, template})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    expect(run.stdout + run.stderr).toContain('Deleted preview old')
    await eventually(
      'namespace old to go',
      async () => ((await get(`/api/v1/namespaces/${ns('old')}`)) ? undefined : true),
      120_000,
      1000,
    )
    const fresh = await get<Obj & {metadata: {deletionTimestamp?: string}}>(`/api/v1/namespaces/${ns('fresh')}`)
    expect(fresh?.metadata.deletionTimestamp).toBeUndefined()
    expect(await get(`/api/v1/namespaces/${PROJECT}-bystander`)).toBeDefined()
  })

  it('--unschedule removes the CronJob, its configuration, permissions and policy', async () => {
    const r = await cli(['env', 'sweep', '--unschedule'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(await get(`/apis/batch/v1/namespaces/${HOME}/cronjobs/${names.cronJob}`)).toBeUndefined()
    expect(await get(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${names.clusterRole}`)).toBeUndefined()
    expect(await get(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${names.clusterRole}`)).toBeUndefined()
    expect(
      await get(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${names.clusterRole}`),
    ).toBeUndefined()
    expect(await get(`/api/v1/namespaces/${HOME}/serviceaccounts/retailops-env-sweep`)).toBeUndefined()
  })
})
