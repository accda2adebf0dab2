// What a scheduled pre-warm may do and what it carries: least-privilege RBAC, Pod Security
// `restricted`, a runner image by digest, and retailops.yaml without its inline credentials.
import {mkdir, mkdtemp, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {placeholderDeployment} from '../../../src/capacity/headroom.js'
import {resolveRunnerImage} from '../../../src/runner/resolve.js'
import {rbac, scheduleObjects} from '../../../src/capacity/schedule.js'
import {credentialPlaceholder, splitCredentials} from '../../../src/config/credentials.js'
import {parseConfig} from '../../../src/config/parse.js'
import {ConfigError} from '../../../src/errors/index.js'

const DIGEST = `sha256:${'c'.repeat(64)}`

const CONFIG = `project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
environments:
  production: {cluster: default, namespace: shop, prometheus: "http://scraper:pr0m-pass@prometheus:9090"}
services:
  checkout:
    tier: revenue-critical
    scaling: {rpsPerPod: 10}
    env: {LOG_LEVEL: info, STRIPE_API_KEY: sk_live_abc123, ORDERS_DSN: "host=db user=app", PAYMENTS_URL: "http://payments:8080"}
tenants:
  - {name: globex, model: isolated-database, database: {url: "postgres://app:hunter22@db:5432/globex"}}
datastores:
  - name: orders
    provider: postgres
    postgres: {url: "jdbc:postgresql://db:5432/orders?user=app&password=s3cret-jdbc", urlEnv: ORDERS_URL}
campaigns:
  - {name: bf, start: "2030-11-27T00:00:00Z", end: "2030-11-28T00:00:00Z", peak: {checkout: {rps: 100}}}
`
const SECRETS = ['pr0m-pass', 'sk_live_abc123', 'host=db user=app', 'hunter22', 's3cret-jdbc']

describe('retailops.yaml in a scheduled job', () => {
  it('leaves every inline credential out of the copy, keeping the rest of the file as written', () => {
    const {stripped, credentials} = splitCredentials(CONFIG)
    for (const secret of SECRETS) expect(stripped).not.toContain(secret)
    expect(credentials.map((c) => c.path.join('.'))).toEqual([
      'environments.production.prometheus',
      'services.checkout.env.STRIPE_API_KEY',
      'services.checkout.env.ORDERS_DSN',
      'tenants.0.database.url',
      'datastores.0.postgres.url',
    ])
    expect(stripped).toContain('LOG_LEVEL: info')
    expect(stripped).toContain('PAYMENTS_URL: "http://payments:8080"')
    expect(stripped).toContain(credentialPlaceholder(['services', 'checkout', 'env', 'STRIPE_API_KEY']))
  })

  it('the job gets the same configuration back from the copy and the credentials', () => {
    const {stripped, credentials} = splitCredentials(CONFIG)
    expect(parseConfig(stripped, 'cm.yaml', credentials)).toEqual(parseConfig(CONFIG))
    // A credential whose placeholder is not where it should be is an error, never silently dropped.
    expect(() =>
      parseConfig(
        stripped.replace(credentialPlaceholder(['tenants', 0, 'database', 'url']), 'x'),
        'cm.yaml',
        credentials,
      ),
    ).toThrow(ConfigError)
  })

  it('the scheduled objects: ConfigMap without credentials, Secret with them, pods Pod Security restricted', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'retailops-sched-'))
    await writeFile(path.join(dir, 'retailops.yaml'), CONFIG)
    const config = parseConfig(CONFIG)
    const built = await scheduleObjects({
      http: undefined as never,
      namespace: 'shop',
      campaign: config.campaigns[0],
      environment: 'production',
      configFile: path.join(dir, 'retailops.yaml'),
      runnerImage: `127.0.0.1:5000/retailops-runner@${DIGEST}`,
      prewarmFlags: [],
      now: new Date('2030-11-01T00:00:00Z'),
    })
    const cm = built.objects.find((o) => o.kind === 'ConfigMap') as unknown as {data: Record<string, string>}
    for (const secret of SECRETS) expect(cm.data['retailops.yaml']).not.toContain(secret)
    const secret = built.objects.find((o) => o.kind === 'Secret') as unknown as {
      metadata: {name: string}
      stringData: Record<string, string>
    }
    expect(secret.metadata.name).toBe('retailops-prewarm-bf-credentials')
    expect(JSON.parse(secret.stringData['credentials.json']).map((c: {value: string}) => c.value)).toEqual([
      'http://scraper:pr0m-pass@prometheus:9090',
      'sk_live_abc123',
      'host=db user=app',
      'postgres://app:hunter22@db:5432/globex',
      'jdbc:postgresql://db:5432/orders?user=app&password=s3cret-jdbc',
    ])
    for (const job of built.objects.filter((o) => o.kind === 'CronJob') as any[]) {
      const pod = job.spec.jobTemplate.spec.template.spec
      expect(pod.securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 10_001,
        runAsGroup: 10_001,
        fsGroup: 10_001,
        seccompProfile: {type: 'RuntimeDefault'},
      })
      const c = pod.containers[0]
      expect(c.image).toBe(`127.0.0.1:5000/retailops-runner@${DIGEST}`)
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        runAsUser: 10_001,
        capabilities: {drop: ['ALL']},
        seccompProfile: {type: 'RuntimeDefault'},
      })
      expect(c.env).toContainEqual({
        name: 'RETAILOPS_CONFIG_CREDENTIALS',
        value: '/etc/retailops-credentials/credentials.json',
      })
      expect(pod.volumes).toContainEqual({
        name: 'credentials',
        secret: {secretName: 'retailops-prewarm-bf-credentials', defaultMode: 0o440},
      })
    }
  })

  it('headroom placeholder pods pass Pod Security restricted too', () => {
    const d = placeholderDeployment({
      namespace: 'shop',
      campaign: 'bf',
      pool: {pool: 'general', placeholder: {replicas: 2, requests: {cpu: 1, memory: 2 ** 30}}} as any,
      priorityClass: 'pc',
      image: 'registry.k8s.io/pause:3.10',
      tolerations: [],
    })
    expect(d.spec.template.spec.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65_535,
      runAsGroup: 65_535,
      fsGroup: 65_535,
      seccompProfile: {type: 'RuntimeDefault'},
    })
    expect(d.spec.template.spec.containers[0].securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: {drop: ['ALL']},
      seccompProfile: {type: 'RuntimeDefault'},
    })
  })
})

describe("the runner's permissions", () => {
  const objects = rbac('shop', 'bf') as any[]
  const role = objects.find((o) => o.kind === 'Role')
  const clusterRole = objects.find((o) => o.kind === 'ClusterRole')

  it("cluster-wide: only reads of nodes and pods, and the campaign's own PriorityClass by name", () => {
    expect(clusterRole.rules).toEqual([
      {apiGroups: [''], resources: ['nodes', 'pods'], verbs: ['list']},
      {
        apiGroups: ['scheduling.k8s.io'],
        resources: ['priorityclasses'],
        verbs: ['get', 'create', 'patch', 'delete'],
        resourceNames: ['retailops-headroom-shop-bf'],
      },
    ])
  })

  it("namespaced: ConfigMap, Secret and CronJob writes limited to the campaign's own objects", () => {
    expect(role.metadata.namespace).toBe('shop')
    const writes = (resource: string) =>
      role.rules.filter(
        (r: any) =>
          r.resources.includes(resource) && r.verbs.some((v: string) => ['update', 'patch', 'delete'].includes(v)),
      )
    expect(writes('configmaps')).toEqual([
      {
        apiGroups: [''],
        resources: ['configmaps'],
        verbs: ['get', 'update', 'patch', 'delete'],
        resourceNames: ['retailops-prewarm-bf', 'retailops-prewarm-bf-config'],
      },
    ])
    expect(writes('secrets')).toEqual([
      {apiGroups: [''], resources: ['secrets'], verbs: ['delete'], resourceNames: ['retailops-prewarm-bf-credentials']},
    ])
    expect(writes('cronjobs')).toEqual([
      {
        apiGroups: ['batch'],
        resources: ['cronjobs'],
        verbs: ['get', 'delete'],
        resourceNames: ['retailops-prewarm-bf', 'retailops-restore-bf'],
      },
    ])
    expect(role.rules.some((r: any) => r.resources.includes('secrets') && r.verbs.includes('get'))).toBe(false)
  })
})

describe('the runner image', () => {
  const project = async (runner = '', lock?: Record<string, unknown>) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'retailops-runner-'))
    if (lock) {
      await mkdir(path.join(dir, '.retailops'))
      await writeFile(
        path.join(dir, '.retailops/artifacts.lock.json'),
        JSON.stringify({lockfileVersion: 1, artifacts: lock}),
      )
    }
    return {
      dir,
      file: path.join(dir, 'retailops.yaml'),
      config: parseConfig(
        `project: shop\nregistry: {url: 127.0.0.1:5000}\n${runner}services:\n  catalog: {tier: operational}\n`,
      ),
    }
  }

  it("comes from --runner-image, runner.image or the lock's `runner` entry, always by digest", async () => {
    const byDigest = `127.0.0.1:5000/retailops-runner@${DIGEST}`
    expect(await resolveRunnerImage(await project(), byDigest)).toEqual({image: byDigest, source: 'flag'})
    expect(await resolveRunnerImage(await project(`runner: {image: "${byDigest}"}\n`))).toEqual({
      image: byDigest,
      source: 'config',
    })
    const locked = {
      repository: '127.0.0.1:5000/shop/retailops-runner',
      digest: DIGEST,
      image: `127.0.0.1:5000/shop/retailops-runner@${DIGEST}`,
      tag: 'x',
      pushedAt: '2030-01-01T00:00:00Z',
    }
    expect(await resolveRunnerImage(await project('', {runner: locked}))).toEqual({image: locked.image, source: 'lock'})
  })

  it('refuses tags: a usage error for the flag, a configuration error for runner.image', async () => {
    await expect(resolveRunnerImage(await project(), '127.0.0.1:5000/retailops:latest')).rejects.toMatchObject({
      exit: 'USAGE',
      message: expect.stringContaining('never a tag'),
    })
    expect(() =>
      parseConfig(
        'project: shop\nregistry: {url: 127.0.0.1:5000}\nrunner: {image: "127.0.0.1:5000/retailops:latest"}\nservices:\n  catalog: {tier: operational}\n',
      ),
    ).toThrow(/runner\.image/)
  })

  it('says how to build one when there is none', async () => {
    await expect(resolveRunnerImage(await project())).rejects.toMatchObject({
      exit: 'NOT_FOUND',
      nextSteps: [expect.stringContaining('retailops runner build'), expect.stringContaining('runner.image')],
    })
  })
})
