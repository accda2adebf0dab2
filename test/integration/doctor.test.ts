import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../support/cli.js'
import {sandboxEnv} from '../support/sandbox.js'
import {randomName} from '../support/names.js'
import {KubeHttp} from '../../src/kubernetes/http.js'
import {eventually, kubeConfig} from '../support/sandbox.js'
import {SERVICE_ACCOUNT_CONTEXT, serviceAccountClient} from './helpers/service-account.js'

// Doctor against the sandbox's real Docker Engine, registry, cluster, RBAC and Prometheus.
const doctor = (cwd: string, env: Record<string, string> = {}, args: string[] = []) =>
  runCli(['doctor', '--json', ...args], {cwd, env, built: true})

type Check = {id: string; status: string; detail: string; fix?: string}
const checksOf = (stdout: string): Record<string, Check> =>
  Object.fromEntries((JSON.parse(stdout).result.checks as Check[]).map((c) => [c.id, c]))

const kc = new k8s.KubeConfig()
kc.loadFromDefault()
const core = kc.makeApiClient(k8s.CoreV1Api)
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api)
const namespace = randomName('t-doctor')
let project: string

beforeAll(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), 'ro-doctor-'))
  const init = await runCli(
    [
      'init',
      '--directory',
      project,
      '--project',
      'doc',
      '--target-namespace',
      namespace,
      '--kube-context',
      sandboxEnv().context,
      '--yes',
      '--json',
    ],
    {built: true},
  )
  expect(init.exitCode).toBe(0)
  await core.createNamespace({body: {metadata: {name: namespace}}})
})

afterAll(async () => {
  await core.deleteNamespace({name: namespace}).catch(() => undefined)
})

describe('retailops doctor', () => {
  it('passes every check against the sandbox and warns about the missing signing key', async () => {
    const r = await doctor(project)
    expect(r.exitCode).toBe(0)
    const checks = checksOf(r.stdout)
    for (const id of ['config', 'docker', 'registry', 'cluster', 'rbac', 'prometheus', 'k6'])
      expect(checks[id].status, `${id}: ${checks[id].detail}`).toBe('ok')
    expect(checks.cluster.detail).toMatch(/Kubernetes v1\.\d+\.\d+, \d+ nodes/)
    expect(checks.signing).toMatchObject({status: 'warn', fix: 'Run `retailops keys generate`.'})
  })

  it('fails with exit code 5 and a fix when Docker and Prometheus are unreachable', async () => {
    const original = await readFile(path.join(project, 'retailops.yaml'), 'utf8')
    await writeFile(path.join(project, 'broken.yaml'), original.replace('http://127.0.0.1:9090', 'http://127.0.0.1:1'))
    const r = await doctor(project, {
      DOCKER_HOST: 'unix:///nonexistent.sock',
      RETAILOPS_CONFIG: path.join(project, 'broken.yaml'),
    })
    expect(r.exitCode).toBe(5)
    const checks = checksOf(r.stdout)
    expect(checks.docker).toMatchObject({status: 'fail'})
    expect(checks.docker.fix).toContain('DOCKER_HOST')
    expect(checks.prometheus.status).toBe('fail')
    expect(checks.cluster.status).toBe('ok')
  })

  it('names each RBAC permission a restricted identity lacks', async () => {
    // A real identity with a narrow Role: a ServiceAccount that may only read Deployments.
    await core.createNamespacedServiceAccount({namespace, body: {metadata: {name: 'narrow'}}})
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: {name: 'narrow'},
        rules: [{apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch']}],
      },
    })
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: {name: 'narrow'},
        roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'narrow'},
        subjects: [{kind: 'ServiceAccount', name: 'narrow', namespace}],
      },
    })
    const token = await core.createNamespacedServiceAccountToken({
      name: 'narrow',
      namespace,
      body: {spec: {audiences: [], expirationSeconds: 600}},
    })
    const cluster = kc.getCurrentCluster()!
    const restricted = new k8s.KubeConfig()
    restricted.loadFromOptions({
      clusters: [cluster],
      users: [{name: 'narrow', token: token.status!.token}],
      contexts: [{name: 'narrow', cluster: cluster.name, user: 'narrow', namespace}],
      currentContext: 'narrow',
    })
    const file = path.join(project, 'narrow.kubeconfig')
    await writeFile(file, restricted.exportConfig())
    // --context wins over the project's configured context.
    const r = await doctor(project, {KUBECONFIG: file}, ['--context', 'narrow'])
    expect(r.exitCode).toBe(5)
    const checks = checksOf(r.stdout)
    expect(checks.rbac.status).toBe('fail')
    expect(checks.rbac.detail).toContain('patch deployments.apps (deploy, rollout)')
    expect(checks.rbac.detail).not.toContain('get deployments.apps')
    expect(checks.rbac.detail).toContain(`missing in ${namespace}`)
    expect(checks.rbac.fix).toContain('Role')
  })
})

describe('retailops doctor: the permissions the project needs', () => {
  // What a plain project's commands need in its namespace, and nothing more: no KEDA writes, no
  // CronJob or Job writes, no HTTPRoute writes (only the lists a deploy's prune makes).
  const plainRules = [
    {apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'create', 'patch', 'delete', 'watch']},
    {apiGroups: ['apps'], resources: ['replicasets'], verbs: ['list', 'watch']},
    {
      apiGroups: [''],
      resources: ['services', 'serviceaccounts', 'namespaces'],
      verbs: ['get', 'list', 'create', 'patch', 'delete'],
    },
    {apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'update', 'patch', 'delete']},
    {apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch']},
    {apiGroups: [''], resources: ['events', 'nodes', 'resourcequotas', 'limitranges'], verbs: ['list']},
    {apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create']},
    {
      apiGroups: ['autoscaling'],
      resources: ['horizontalpodautoscalers'],
      verbs: ['get', 'list', 'create', 'patch', 'delete'],
    },
    {apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['list', 'create', 'patch', 'delete']},
    {apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list', 'create', 'patch', 'delete']},
    {apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['list']},
    {apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['list']},
    {apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['list']},
  ]
  const head = (ns: string, env: string) => `project: doc
registry: {url: ${sandboxEnv().registry}, insecure: true}
clusters: {sandbox: {context: ${SERVICE_ACCOUNT_CONTEXT}}}
environments:
  test: {cluster: sandbox, namespace: ${ns}, production: false, prometheus: ${sandboxEnv().prometheusUrl}, ${env}}
`
  const http = new KubeHttp(kubeConfig())
  const roleBody = (rules: k8s.V1PolicyRule[]) => ({metadata: {name: 'deployer', namespace}, rules})
  let kubeconfig = ''

  beforeAll(async () => {
    await core.createNamespacedServiceAccount({namespace, body: {metadata: {name: 'deployer'}}})
    await rbac.createNamespacedRole({namespace, body: roleBody(plainRules)})
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: {name: 'deployer'},
        roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'deployer'},
        subjects: [{kind: 'ServiceAccount', name: 'deployer', namespace}],
      },
    })
    kubeconfig = (await serviceAccountClient(http, namespace, 'deployer', path.join(project, 'deployer.kubeconfig')))
      .kubeconfig
    await writeFile(
      path.join(project, 'plain.yaml'),
      `${head(namespace, 'router: replicas')}services: {orders: {tier: revenue-critical}}\n`,
    )
    await writeFile(
      path.join(project, 'everything.yaml'),
      `${head(namespace, 'gateway: {name: shop}')}services:
  orders: {tier: revenue-critical}
  cart:
    tier: revenue-critical
    scaling:
      minReplicas: 2
      maxReplicas: 10
      provider: keda
      metrics: [{name: carts, query: 'sum(rate(carts_total[1m]))', target: 5}]
jobs:
  reconcile: {dependsOn: [orders]}
datastores:
  - {name: shop-config, service: orders, provider: kubernetes}
`,
    )
  })
  afterAll(() => http.close())

  const rbacOf = async (config: string) => {
    const r = await doctor(project, {KUBECONFIG: kubeconfig, RETAILOPS_CONFIG: path.join(project, config)}, [
      '--skip',
      'k6',
    ])
    return checksOf(r.stdout).rbac
  }

  it('a ServiceAccount with what a plain project needs passes; the same one lacks what KEDA scaling, jobs, the gateway router and snapshot drills need, each named', async () => {
    const plain = await rbacOf('plain.yaml')
    expect(plain.status, plain.detail).toBe('ok')
    expect(plain.detail).toContain(`permissions granted in namespace ${namespace}`)

    const everything = await rbacOf('everything.yaml')
    expect(everything.status).toBe('fail')
    const missing = everything.detail.replace(`missing in ${namespace}: `, '').split('; ')
    expect(missing.sort()).toEqual(
      [
        ...['get', 'create', 'patch', 'delete'].map(
          (v) => `${v} scaledobjects.keda.sh (deploy, prewarm, rollout (replica router), sleep: KEDA scaling of cart)`,
        ),
        ...['create', 'patch'].map(
          (v) => `${v} triggerauthentications.keda.sh (dr drill (namespace snapshot and restore))`,
        ),
        'list triggerauthentications.keda.sh (dr drill (namespace snapshot and restore))',
        ...['get', 'create', 'patch', 'delete'].map(
          (v) =>
            `${v} cronjobs.batch (deploy, jobs run, jobs status (jobs reconcile), prewarm --schedule, dr drill --schedule)`,
        ),
        ...['get', 'list', 'create'].map((v) => `${v} jobs.batch (jobs run, jobs status (jobs reconcile))`),
        'get pods/log (jobs run (last log lines of reconcile))',
        ...['get', 'create', 'patch', 'delete'].map(
          (v) => `${v} httproutes.gateway.networking.k8s.io (deploy (HTTPRoutes), rollout (gateway router))`,
        ),
        'list roles.rbac.authorization.k8s.io (dr drill (namespace snapshot))',
        'list rolebindings.rbac.authorization.k8s.io (dr drill (namespace snapshot))',
      ].sort(),
    )

    // Granted exactly those, the same identity passes: the names doctor asks are the ones the API server authorizes.
    await rbac.replaceNamespacedRole({
      name: 'deployer',
      namespace,
      body: roleBody([
        ...plainRules,
        {apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['get', 'create', 'patch', 'delete']},
        {apiGroups: ['keda.sh'], resources: ['triggerauthentications'], verbs: ['list', 'create', 'patch']},
        {apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['get', 'create', 'patch', 'delete']},
        {apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'create']},
        {apiGroups: [''], resources: ['pods/log'], verbs: ['get']},
        {
          apiGroups: ['gateway.networking.k8s.io'],
          resources: ['httproutes'],
          verbs: ['get', 'create', 'patch', 'delete'],
        },
        {apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['list']},
      ]),
    })
    // (The authorizer sees a changed Role within moments.)
    const granted = await eventually(
      'doctor to find every permission granted',
      async () => {
        const check = await rbacOf('everything.yaml')
        return check.status === 'ok' ? check : undefined
      },
      20_000,
      1000,
    )
    expect(granted.detail).toContain(`permissions granted in namespace ${namespace}`)
  })
})
