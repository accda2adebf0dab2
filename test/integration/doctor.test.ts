import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../support/cli.js'
import {sandboxEnv} from '../support/sandbox.js'
import {randomName} from '../support/names.js'

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
