// dr drill --schedule against the sandbox's real kube-apiserver (RBAC, Pod Security and
// ValidatingAdmissionPolicy admission on), registry and PostgreSQL: bad input and an unsigned
// runner leave nothing behind; the CronJob, its Secret, ConfigMap, RBAC and admission policy are
// read back; the job's pod is admitted by a namespace enforcing `restricted`; the ServiceAccount's
// token can do what the drill does and is refused everything else; the scheduled drill runs with
// that token (restored data validated, record kept in the cluster and read by `dr history` from a
// workstation, scratch database and namespace gone); --unschedule removes every object.
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {MEDIA_TYPES, RegistryClient, registryClient} from '../../../src/docker/registry.js'
import {kubeClients} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {runCli} from '../../support/cli.js'
import {runPodTemplate} from '../helpers/run-job-pod.js'
import {
  expectRestrictedAdmission,
  SERVICE_ACCOUNT_CONTEXT,
  serviceAccountClient,
  statusOf,
} from '../helpers/service-account.js'
import {randomName} from '../../support/names.js'
import {tempProject, type TempProject} from '../../support/project.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {createSourceDb, dbUrl, drillDatabases, dropDb} from './helpers.js'

const sandbox = sandboxEnv()
const CONTEXT = sandbox.context
const cli = (args: string[], cwd: string, env: Record<string, string> = {}) => runCli(args, {cwd, env, json: true})
const NS = randomName('t-drsched')
const REGISTRY = sandbox.registry
const PROJECT = `t-drsched-${randomBytes(3).toString('hex')}`
const SOURCE = `t_drsched_${randomBytes(3).toString('hex')}`
const ORDERS_URL = 'T_DRSCHED_ORDERS_URL'
const PW = 'drsched-pw'
const labels = {'app.kubernetes.io/managed-by': 'retailops', 'app.kubernetes.io/name': 'orders'}

interface Rule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
  resourceNames?: string[]
}

const config = (runner = '') => `
project: ${PROJECT}
registry: {url: ${REGISTRY}, insecure: true}
signing: {key: .retailops/cosign.key, publicKey: .retailops/cosign.pub, passwordEnv: T_DRSCHED_PW}
${runner}
clusters: {main: {context: ${CONTEXT}}}
environments:
  test: {cluster: main, namespace: ${NS}, production: false}
defaultEnvironment: test
services:
  orders: {tier: revenue-critical, env: {LOG_LEVEL: info, PAYMENT_API_TOKEN: tok-live-drsched}}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres: {urlEnv: ${ORDERS_URL}}
    validation:
      - {name: order-count, query: "select count(*) from orders", expect: {equals: 300}}
      - {name: checksum, query: "select md5(string_agg(id || ':' || total, ',' order by id)) from orders", expect: {matchesSource: true}}
      - {name: newest-order, query: "select max(created_at) from orders", recoveryPoint: true}
  - name: shop-config
    service: orders
    provider: kubernetes
    kubernetes: {waitTimeout: 1m}
`

/** A tiny real image (one layer), never signed: kwok runs no containers, the bytes only need to exist. */
async function pushUnsignedImage(): Promise<string> {
  const client = new RegistryClient({registry: REGISTRY, insecure: true})
  const repo = `${PROJECT}/unsigned-runner`
  const layer = await client.uploadBlob(repo, Buffer.from(`unsigned ${NS}\n`))
  const configBlob = await client.uploadBlob(
    repo,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: {type: 'layers', diff_ids: [layer.digest]},
      }),
    ),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: {mediaType: MEDIA_TYPES.ociConfig, digest: configBlob.digest, size: configBlob.size},
      layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size}],
    }),
  )
  return `${REGISTRY}/${repo}@${await client.putManifest(repo, 'test', manifest, MEDIA_TYPES.ociManifest)}`
}

describe('dr drill --schedule: a CronJob running the drill in the cluster, least privilege, restricted, verified runner', () => {
  const k = () => kubeClients({context: CONTEXT})
  let http: KubeHttp
  let project: TempProject
  let runner: string
  const env = () => ({[ORDERS_URL]: dbUrl(SOURCE), T_DRSCHED_PW: PW})
  const exists = (p: string) =>
    http.request('GET', p).then(
      () => true,
      () => false,
    )
  const RBAC = '/apis/rbac.authorization.k8s.io/v1'
  const VAP = '/apis/admissionregistration.k8s.io/v1'

  beforeAll(async () => {
    http = new KubeHttp(k().kc)
    project = await tempProject(config(), {}, 't-drsched')
    await writeKeyPair({
      keyPath: path.join(project.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(project.dir, '.retailops/cosign.pub'),
      passphrase: PW,
    })
    await createSourceDb(SOURCE, 300, 90)
    await k().core.createNamespace({
      body: {
        metadata: {
          name: NS,
          labels: {
            'retailops.dev/test': 'drill-schedule',
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    })
    // What the kubernetes datastore snapshots: a ConfigMap and a Deployment (restricted) of the base image by digest.
    const client = await registryClient(sandbox.registry, {insecure: true})
    const [repo, tag] = sandbox.baseImage.split(':')
    const image = `${sandbox.registry}/${repo}@${(await client.headManifest(repo, tag))!.digest}`
    await k().core.createNamespacedConfigMap({
      namespace: NS,
      body: {metadata: {name: 'orders-config', labels}, data: {LOG_LEVEL: 'info'}},
    })
    await k().apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: {name: 'orders', labels},
        spec: {
          replicas: 1,
          selector: {matchLabels: {'app.kubernetes.io/name': 'orders'}},
          template: {
            metadata: {labels},
            spec: {
              securityContext: {runAsNonRoot: true, runAsUser: 65_532, seccompProfile: {type: 'RuntimeDefault'}},
              containers: [
                {
                  name: 'app',
                  image,
                  envFrom: [{configMapRef: {name: 'orders-config'}}],
                  securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['ALL']}},
                },
              ],
            },
          },
        },
      },
    })
  })

  afterAll(async () => {
    if (!http) return
    await cli(['dr', 'drill', '--unschedule'], project.dir, env()).catch(() => {})
    await k()
      .core.deleteNamespace({name: NS})
      .catch(() => {})
    await dropDb(SOURCE).catch(() => {})
    http.close()
  })

  const names = {
    cronJob: 'retailops-dr-drill-all',
    role: 'retailops-dr-drill-all',
    clusterRole: `retailops-dr-drill-${NS}-all`,
    restoreRole: `retailops-dr-restore-${NS}-all`,
    policy: `retailops-dr-drill-${NS}-all`,
    configMap: 'retailops-dr-drill-all-config',
    secret: 'retailops-dr-drill-all-credentials',
  }

  const nothingScheduled = async () => {
    const left = []
    for (const p of [
      `/apis/batch/v1/namespaces/${NS}/cronjobs/${names.cronJob}`,
      `/api/v1/namespaces/${NS}/configmaps/${names.configMap}`,
      `/api/v1/namespaces/${NS}/secrets/${names.secret}`,
      `/api/v1/namespaces/${NS}/serviceaccounts/retailops-dr-drill`,
      `${RBAC}/namespaces/${NS}/roles/${names.role}`,
      `${RBAC}/namespaces/${NS}/rolebindings/${names.role}`,
      `${RBAC}/clusterroles/${names.clusterRole}`,
      `${RBAC}/clusterroles/${names.restoreRole}`,
      `${RBAC}/clusterrolebindings/${names.clusterRole}`,
      `${VAP}/validatingadmissionpolicies/${names.policy}`,
      `${VAP}/validatingadmissionpolicybindings/${names.policy}`,
    ]) {
      if (await exists(p)) left.push(p)
    }
    expect(left).toEqual([])
  }

  it('bad input, a missing variable, no runner image and an unsigned one: a clear error each, nothing created', async () => {
    const schedule = (args: string[], extra: Record<string, string> = env()) =>
      cli(['dr', 'drill', ...args], project.dir, extra)
    const fields = await schedule(['--schedule', '0 3 * *'])
    expect(fields.exitCode, fields.stdout).toBe(2)
    expect(fields.doc!.error.message).toContain('it has 4 fields, not 5')
    const tz = await schedule(['--schedule', '0 3 * * *', '--time-zone', 'Mars/Olympus'])
    expect(tz.exitCode, tz.stdout).toBe(2)
    expect(tz.doc!.error.message).toContain('Mars/Olympus is not a time zone name')
    const orphanTz = await schedule(['--time-zone', 'Europe/Berlin'])
    expect(orphanTz.exitCode, orphanTz.stdout + orphanTz.stderr).toBe(2)
    const variable = await schedule(['--schedule', '@daily'], {T_DRSCHED_PW: PW})
    expect(variable.exitCode, variable.stdout).toBe(3)
    expect(variable.doc!.error.message).toContain(ORDERS_URL)
    const none = await schedule(['--schedule', '@daily'])
    expect(none.exitCode, none.stdout).toBe(4)
    expect(none.doc!.error.nextSteps.join(' ')).toContain('retailops runner build')
    const unsigned = await schedule(['--schedule', '@daily', '--runner-image', await pushUnsignedImage()])
    expect(unsigned.exitCode, unsigned.stdout).toBe(9)
    expect(unsigned.doc!.error.message).toContain('is not signed')
    const tag = await schedule(['--schedule', '@daily', '--runner-image', `${REGISTRY}/retailops-runner:latest`])
    expect(tag.exitCode, tag.stdout).toBe(2)
    await nothingScheduled()
  })

  it('builds and signs the runner image on the PostgreSQL-client base (pg_dump, pg_restore for the drill)', async () => {
    // The sandbox builds it (scripts/sandbox.sh: build_base_pg_image).
    const base = process.env.RETAILOPS_BASE_PG_IMAGE ?? 'retailops/node-base-pg:24'
    const built = await cli(['runner', 'build', '--base-image', base], project.dir, {
      COSIGN_PASSWORD: PW,
      T_DRSCHED_PW: PW,
    })
    expect(
      built.exitCode,
      `${built.stdout}\n${built.stderr}\nNo ${base}? Run \`bash scripts/sandbox.sh up\` (it builds it) and \`eval "$(bash scripts/sandbox.sh env)"\`.`,
    ).toBe(0)
    runner = built.doc!.result.image
    expect(runner).toMatch(new RegExp(`^${REGISTRY}/${PROJECT}/retailops-runner@sha256:[0-9a-f]{64}$`))
  }, 600_000)

  it('a signed runner: the CronJob, its Secret and ConfigMap, RBAC and admission policy read back; the JSON and `dr history` give the next run', async () => {
    const r = await cli(
      [
        'dr',
        'drill',
        '--schedule',
        '0 3 * * *',
        '--time-zone',
        'Europe/Berlin',
        '--concurrency',
        '2',
        '--no-recoverability',
      ],
      project.dir,
      env(),
    )
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const result = r.doc!.result
    expect(result.scheduled).toMatchObject({
      name: 'all',
      namespace: NS,
      cronJob: names.cronJob,
      schedule: '0 3 * * *',
      timeZone: 'Europe/Berlin',
    })
    // 03:00 in Berlin is 01:00 or 02:00 UTC.
    expect(result.scheduled.nextRun).toMatch(/T0[12]:00:00\.000Z$/)
    expect(Date.parse(result.scheduled.nextRun) - Date.now()).toBeLessThanOrEqual(86_400_000)
    for (const s of ['drsched-pw', 'tok-live-drsched', new URL(dbUrl(SOURCE)).password])
      expect(r.stdout).not.toContain(s)

    const cron = await k().batch.readNamespacedCronJob({name: names.cronJob, namespace: NS})
    expect(cron.spec).toMatchObject({
      schedule: '0 3 * * *',
      timeZone: 'Europe/Berlin',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
    })
    const job = cron.spec!.jobTemplate.spec!
    expect(job.backoffLimit).toBe(0)
    // No --timeout: the kubernetes datastore's 1m wait + 30m, at least 1h; the Job gets 15 more minutes to clean up.
    expect(job.activeDeadlineSeconds).toBe(3600 + 900)
    const pod = job.template.spec!
    const c = pod.containers[0]
    expect(c.image).toBe(runner)
    expect(pod.serviceAccountName).toBe('retailops-dr-drill')
    // The same drill as the scheduling command line: its flags passed on, the rest set by the schedule.
    expect(c.args).toEqual([
      'dr',
      'drill',
      '--environment',
      'test',
      '--namespace',
      NS,
      '--context',
      'inClusterContext',
      '--yes',
      '--record-in-cluster',
      '--timeout',
      '1h',
      '--concurrency',
      '2',
      '--no-recoverability',
    ])
    // Credentials only by reference; their values are in the Secret, never in the ConfigMap or the CronJob.
    const spec = JSON.stringify(cron)
    const cm = await k().core.readNamespacedConfigMap({name: names.configMap, namespace: NS})
    for (const s of [new URL(dbUrl(SOURCE)).password, 'tok-live-drsched']) {
      expect(spec).not.toContain(s)
      expect(cm.data!['retailops.yaml']).not.toContain(s)
    }
    expect(c.env).toContainEqual({
      name: ORDERS_URL,
      valueFrom: {secretKeyRef: {name: names.secret, key: `env.${ORDERS_URL}`}},
    })
    const secret = await k().core.readNamespacedSecret({name: names.secret, namespace: NS})
    expect(Buffer.from(secret.data![`env.${ORDERS_URL}`], 'base64').toString()).toBe(dbUrl(SOURCE))
    expect(Buffer.from(secret.data!['credentials.json'], 'base64').toString()).toContain('tok-live-drsched')

    const role = await http.request<{rules: Rule[]}>('GET', `${RBAC}/namespaces/${NS}/roles/${names.role}`)
    expect(role.rules[0]).toEqual({apiGroups: [''], resources: ['configmaps'], verbs: ['create']})
    // --no-recoverability: no reads of Secrets; the snapshot's kinds are only listed.
    for (const rule of role.rules.slice(1)) expect(rule.verbs).toEqual(['list'])
    const clusterRole = await http.request<{rules: Rule[]}>('GET', `${RBAC}/clusterroles/${names.clusterRole}`)
    expect(clusterRole.rules).toEqual([
      {apiGroups: [''], resources: ['namespaces'], verbs: ['create', 'get', 'list', 'delete']},
      {apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create']},
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        verbs: ['bind'],
        resourceNames: [names.restoreRole],
      },
    ])
    const crb = await http.request<{subjects: unknown[]}>('GET', `${RBAC}/clusterrolebindings/${names.clusterRole}`)
    expect(crb.subjects).toEqual([{kind: 'ServiceAccount', name: 'retailops-dr-drill', namespace: NS}])
    // Nothing binds the restore role yet: the drill binds it inside the namespace it creates.
    const bindings = await http.request<{items: {roleRef: {name: string}}[]}>('GET', `${RBAC}/clusterrolebindings`)
    expect(bindings.items.filter((b) => b.roleRef.name === names.restoreRole)).toEqual([])
    const policy = await http.request<{spec: {matchConditions: unknown[]}}>(
      'GET',
      `${VAP}/validatingadmissionpolicies/${names.policy}`,
    )
    expect(policy.spec.matchConditions).toEqual([
      {
        name: 'drill-runner',
        expression: `request.userInfo.username == 'system:serviceaccount:${NS}:retailops-dr-drill'`,
      },
    ])

    const history = await cli(['dr', 'history'], project.dir, env())
    expect(history.exitCode, history.stdout + history.stderr).toBe(0)
    expect(history.doc!.result.scheduled).toMatchObject([
      {
        name: 'all',
        cronJob: names.cronJob,
        schedule: '0 3 * * *',
        timeZone: 'Europe/Berlin',
        nextRun: result.scheduled.nextRun,
        suspended: false,
      },
    ])

    // Scheduling again with the same selection updates the schedule in place.
    const again = await cli(
      ['dr', 'drill', '--schedule', '30 2 * * 1-5', '--concurrency', '2', '--no-recoverability'],
      project.dir,
      env(),
    )
    expect(again.exitCode, again.stdout + again.stderr).toBe(0)
    const updated = await k().batch.readNamespacedCronJob({name: names.cronJob, namespace: NS})
    expect(updated.spec).toMatchObject({schedule: '30 2 * * 1-5', timeZone: 'Etc/UTC'})
    expect(updated.metadata!.uid).toBe(cron.metadata!.uid)
  })

  it("Pod Security restricted admits the job's pod (and rejects a non-compliant one)", async () => {
    const cron = await k().batch.readNamespacedCronJob({name: names.cronJob, namespace: NS})
    const spec = cron.spec!.jobTemplate.spec!.template.spec!
    const loose = {
      ...spec,
      containers: [
        {
          ...spec.containers[0],
          securityContext: {...spec.containers[0].securityContext, allowPrivilegeEscalation: true},
        },
      ],
    }
    await expectRestrictedAdmission(http, NS, {'drill-admission': spec}, loose)
    expect((await k().core.readNamespacedPod({name: 'drill-admission', namespace: NS})).spec!.serviceAccountName).toBe(
      'retailops-dr-drill',
    )
    await k().core.deleteNamespacedPod({name: 'drill-admission', namespace: NS, gracePeriodSeconds: 0})
  })

  /** A kubeconfig with a token of the drill's ServiceAccount, as the pod gets it. */
  async function runnerKubeconfig(dir: string): Promise<string> {
    const {http: client, kubeconfig} = await serviceAccountClient(
      http,
      NS,
      'retailops-dr-drill',
      path.join(dir, 'kubeconfig'),
    )
    client.close()
    return kubeconfig
  }

  it('the ServiceAccount can do what the drill does, and is refused everything else', async () => {
    const kubeconfig = await runnerKubeconfig(path.join(project.dir, 'token'))
    const as = new KubeHttp(kubeClients({kubeconfig, context: SERVICE_ACCOUNT_CONTEXT}).kc)
    const drillNs = `retailops-drill-t${randomBytes(3).toString('hex')}-probe`
    const status = statusOf
    try {
      // Allowed: its record, reading the source namespace's snapshot kinds, a drill namespace and binding the restore role inside it.
      expect(
        await status(
          as.request('POST', `/api/v1/namespaces/${NS}/configmaps`, {
            body: {metadata: {name: 'retailops-dr-record-probe'}},
          }),
        ),
      ).toBe(200)
      expect(await status(as.request('GET', `/apis/apps/v1/namespaces/${NS}/deployments`))).toBe(200)
      expect(await status(as.request('POST', '/api/v1/namespaces', {body: {metadata: {name: drillNs}}}))).toBe(200)
      const bind = (roleName: string, ns = drillNs) =>
        as.request('POST', `${RBAC}/namespaces/${ns}/rolebindings`, {
          body: {
            metadata: {name: `b-${roleName.slice(0, 40)}`},
            roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName},
            subjects: [{kind: 'ServiceAccount', name: 'retailops-dr-drill', namespace: NS}],
          },
        })
      expect(await status(bind(names.restoreRole))).toBe(200)
      // Refused: another role (RBAC escalation), binding outside drill namespaces, other namespaces (admission policy).
      expect(await status(bind('admin'))).toBe(403)
      expect(await status(bind(names.restoreRole, NS))).toBe(403)
      expect(await status(bind(names.restoreRole, 'default'))).toBe(403)
      expect(await status(as.request('POST', '/api/v1/namespaces', {body: {metadata: {name: `${NS}-evil`}}}))).toBe(403)
      expect(await status(as.request('DELETE', `/api/v1/namespaces/${NS}`))).toBe(403)
      expect(await status(as.request('DELETE', '/api/v1/namespaces/default'))).toBe(403)
      // Refused by RBAC: writes in the source namespace, Secrets anywhere, other ConfigMaps, the schedule itself.
      expect(
        await status(
          as.request('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/orders`, {
            body: {spec: {replicas: 0}},
            contentType: 'application/merge-patch+json',
          }),
        ),
      ).toBe(403)
      expect(await status(as.request('GET', `/api/v1/namespaces/${NS}/secrets/${names.secret}`))).toBe(403)
      expect(await status(as.request('GET', '/api/v1/secrets'))).toBe(403)
      expect(
        await status(
          as.request('PATCH', `/api/v1/namespaces/${NS}/configmaps/orders-config`, {
            body: {data: {a: 'b'}},
            contentType: 'application/merge-patch+json',
          }),
        ),
      ).toBe(403)
      expect(await status(as.request('DELETE', `/apis/batch/v1/namespaces/${NS}/cronjobs/${names.cronJob}`))).toBe(403)
      expect(
        await status(
          as.request('POST', '/api/v1/namespaces/default/configmaps', {body: {metadata: {name: `${NS}-x`}}}),
        ),
      ).toBe(403)
      // Inside the drill namespace it bound the restore role to: restore writes, but not deletes.
      const inDrill = async (): Promise<number> => {
        for (let i = 0; i < 20; i++) {
          const s = await status(
            as.request('POST', `/api/v1/namespaces/${drillNs}/configmaps`, {body: {metadata: {name: 'restored'}}}),
          )
          if (s !== 403) return s
          await new Promise((r) => setTimeout(r, 250))
        }
        return 403
      }
      expect(await inDrill()).toBe(200)
      expect(await status(as.request('DELETE', `/api/v1/namespaces/${drillNs}/configmaps/restored`))).toBe(403)
      expect(await status(as.request('DELETE', `/api/v1/namespaces/${drillNs}`))).toBe(200)
    } finally {
      as.close()
      await http.request('DELETE', `/api/v1/namespaces/${NS}/configmaps/retailops-dr-record-probe`).catch(() => {})
      await http.request('DELETE', `/api/v1/namespaces/${drillNs}`).catch(() => {})
    }
  })

  it("the scheduled drill's pod runs in the runner image: data restored and validated, record in the cluster read by `dr history`, scratch objects gone", async () => {
    const cron = await k().batch.readNamespacedCronJob({name: names.cronJob, namespace: NS})
    const databasesBefore = await drillDatabases()

    // The CronJob's exact pod (image, args, env from the Secret, mounts, in-cluster token, securityContext) in Docker.
    const run = await runPodTemplate({
      namespace: NS,
      template: cron.spec!.jobTemplate.spec!.template,
      timeoutMs: 280_000,
    })
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0)
    // What an operator sees in the Job's log.
    expect(run.stdout).toMatch(/Drill \S+: PASSED/)
    // The record is in the cluster: a workstation's `dr history` lists it, and `dr history <id>` copies it into its files.
    const history = await cli(['dr', 'history'], project.dir, env())
    expect(history.exitCode, history.stdout + history.stderr).toBe(0)
    const listed = history.doc!.result.drills
    expect(listed).toMatchObject([
      {
        status: 'passed',
        where: 'cluster',
        ranBy: `CronJob ${NS}/${names.cronJob}`,
        datastores: ['orders-db', 'shop-config'],
      },
    ])
    const id: string = listed[0].id
    expect(run.stdout).toContain(`Drill ${id}: PASSED`)
    const shown = await cli(['dr', 'history', id], project.dir, env())
    expect(shown.exitCode, shown.stdout + shown.stderr).toBe(0)
    const record = shown.doc!.result
    expect(record.ranBy.ci).toBe(`CronJob ${NS}/${names.cronJob}`)
    expect(record.clusterRecord).toEqual({namespace: NS, configMap: `retailops-dr-record-${id}`})
    // The restored data, validated in the scratch database by the pod's own pg_dump and pg_restore.
    const orders = record.datastores.find((d: {name: string}) => d.name === 'orders-db')
    expect(orders.status).toBe('passed')
    expect(orders.validations.map((v: {name: string; value: string; passed: boolean}) => [v.name, v.passed])).toEqual([
      ['order-count', true],
      ['checksum', true],
      ['newest-order', true],
    ])
    expect(orders.validations[0].value).toBe('300')
    expect(orders.evidence.pgDump).toMatch(/pg_dump \(PostgreSQL\) 15/)
    const config = record.datastores.find((d: {name: string}) => d.name === 'shop-config')
    expect(config.status).toBe('passed')
    expect(config.evidence.restoreRole).toBe(
      `ClusterRole ${names.restoreRole} bound to ServiceAccount ${NS}:retailops-dr-drill in retailops-drill-${id}-shop-config`,
    )
    // Cleaned up: the local dump, the scratch database and the drill namespace are gone.
    expect(record.cleanup.map((a: {kind: string; status: string}) => [a.kind, a.status]).sort()).toEqual([
      ['local dump', 'removed'],
      ['namespace', 'removed'],
      ['scratch database', 'removed'],
    ])
    expect(record.cleanup.find((a: {kind: string}) => a.kind === 'local dump').resource).toBe(
      `/tmp/dr-work/${id}/orders-db.dump`,
    )
    expect((await drillDatabases()).filter((d) => !databasesBefore.includes(d))).toEqual([])
    expect(await exists(`/api/v1/namespaces/retailops-drill-${id}-shop-config`)).toBe(false)
    expect(record.files.dir).toBe(path.join(project.dir, '.retailops/drills', id))
    for (const f of ['drill.json', 'report.md', 'report.html', 'shop-config-snapshot.yaml'])
      expect(existsSync(path.join(project.dir, '.retailops/drills', id, f)), f).toBe(true)
    expect((await cli(['dr', 'history'], project.dir, env())).doc!.result.drills[0]).toMatchObject({id, where: 'files'})
  })

  it('--unschedule removes the CronJob, its config and credentials, its permissions, admission policy and ServiceAccount', async () => {
    const un = await cli(['dr', 'drill', '--unschedule'], project.dir, env())
    expect(un.exitCode, un.stdout + un.stderr).toBe(0)
    expect(un.doc!.result.unscheduled).toEqual([
      `CronJob/${names.cronJob}`,
      `ConfigMap/${names.configMap}`,
      `Secret/${names.secret}`,
      `RoleBinding/${names.role}`,
      `Role/${names.role}`,
      `ClusterRoleBinding/${names.clusterRole}`,
      `ClusterRole/${names.clusterRole}`,
      `ClusterRole/${names.restoreRole}`,
      `ValidatingAdmissionPolicyBinding/${names.policy}`,
      `ValidatingAdmissionPolicy/${names.policy}`,
      'ServiceAccount/retailops-dr-drill',
    ])
    await nothingScheduled()
    const again = await cli(['dr', 'drill', '--unschedule'], project.dir, env())
    expect(again.exitCode).toBe(0)
    expect(again.doc!.result.unscheduled).toEqual([])
    expect((await cli(['dr', 'history'], project.dir, env())).doc!.result.scheduled).toEqual([])
  })
})
