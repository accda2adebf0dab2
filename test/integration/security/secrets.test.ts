// Secrets never leak through an output channel: render's YAML and --json, the --json error
// envelope, and the rollout state ConfigMap and Deployment annotations read back from the
// sandbox's apiserver. The masking itself is unit-tested in test/unit/ui/secrets.test.ts.
import {readFileSync} from 'node:fs'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Obj} from '../../../src/kubernetes/objects.js'
import {deploymentProgress, PATHS} from '../../../src/rollout/kube.js'
import {cli as drCli, createSourceDb, dbUrl, dropDb, random, sandboxUrl, drProject} from '../dr/helpers.js'
import {eventually} from '../../support/sandbox.js'
import {RolloutProject} from '../rollout/helpers.js'
import {runCli} from '../../support/cli.js'

// Distinctive values, short ones included: none of them may appear in any output.
const SECRETS = {
  DB_PASSWORD: 'pw1',
  SENTRY_DSN: 'https://k3yx9@sentry.example/1',
  CACHE_URL: 'redis://:rpw9@cache:6379/0',
  ORDERS_JDBC: 'jdbc:postgresql://db/shop?user=app&password=jpw7',
  STRIPE_SK: 'sk_test_51Hx',
  GCP_CREDENTIALS: 'gcpcred42',
}
const LEAKS = ['pw1', 'k3yx9', 'rpw9', 'jpw7', 'sk_test_51Hx', 'gcpcred42']

function leaked(text: string): string[] {
  return LEAKS.filter((s) => text.includes(s))
}

describe('render masks secrets in every format', () => {
  const p = new RolloutProject({catalog: {tier: 'operational', env: {...SECRETS, LOG_LEVEL: 'info'}}})
  afterAll(() => p.cleanup())

  it('render --json holds none of the secret values, and still says which variables hold one', async () => {
    const r = await p.cli(['render', 'catalog', '--kind', 'Deployment', '--image', p.image('catalog', 'v1')])
    expect(r.exitCode, r.stderr).toBe(0)
    const text = JSON.stringify(r.json)
    expect(leaked(text)).toEqual([])
    const env = r.json.result.objects[0].spec.template.spec.containers[0].env as {name: string; value?: string}[]
    const byName = Object.fromEntries(env.map((e) => [e.name, e.value]))
    expect(byName).toMatchObject({
      DB_PASSWORD: '***',
      SENTRY_DSN: '***',
      CACHE_URL: 'redis://:***@cache:6379/0',
      ORDERS_JDBC: 'jdbc:postgresql://db/shop?user=app&password=***',
      STRIPE_SK: '***',
      GCP_CREDENTIALS: '***',
      LOG_LEVEL: 'info',
    })
    // Policy still refuses each of them by name.
    const refused = r.json.result.policy.findings
      .filter((f: {rule: string}) => f.rule === 'plain-text-secret')
      .map((f: {message: string}) => f.message)
    for (const name of Object.keys(SECRETS)) expect(refused.join('\n')).toContain(`env ${name} `)
  })

  it('plain render (YAML on stdout, policy on stderr) holds none either', async () => {
    const r = await runCli(['render', 'catalog', '--image', p.image('catalog', 'v1')], {
      cwd: p.dir,
      env: {NO_COLOR: '1'},
    })
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('name: DB_PASSWORD')
    expect(leaked(r.stdout + r.stderr)).toEqual([])
  })

  it('the --json error envelope masks a password in a URL it names', async () => {
    p.writeConfig({
      environments: {test: {cluster: 'sandbox', namespace: p.ns, prometheus: 'http://admin:promPw9@127.0.0.1:9/'}},
    })
    const r = await p.cli(['slo'])
    p.writeConfig()
    expect(r.exitCode).not.toBe(0)
    const text = JSON.stringify(r.json)
    expect(r.json.error.message).toContain('127.0.0.1:9')
    expect(text).not.toContain('promPw9')
    expect(r.stderr).not.toContain('promPw9')
  })
})

describe('rollout state written to the cluster', () => {
  const p = new RolloutProject({
    catalog: {tier: 'operational', scaling: {minReplicas: 2, maxReplicas: 2}, rollout: {progressDeadline: '90s'}},
  })

  beforeAll(async () => {
    const first = await p.deploy(['catalog'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
  })
  afterAll(() => p.cleanup())

  async function setEnv(env: {name: string; value: string}[] | null): Promise<void> {
    const d = (await p.deployment('catalog'))!
    const container = d.spec.template.spec.containers[0].name as string
    // What `kubectl set env` does: another field manager, outside retailops.
    await p.kube.http.request('PATCH', `${PATHS.deployments(p.ns)}/catalog`, {
      query: {fieldManager: 'kubectl-set'},
      contentType: 'application/strategic-merge-patch+json',
      body: {
        spec: {
          template: {spec: {containers: [{name: container, env: env ?? [{name: 'DB_PASSWORD', $patch: 'delete'}]}]}},
        },
      },
    })
    await eventually(
      'the Deployment to settle',
      async () => (deploymentProgress(await p.deployment('catalog')).complete ? true : undefined),
      90_000,
    )
  }

  it('a rollout over a pod template with a plain-text secret is refused before anything is written', async () => {
    await setEnv([{name: 'DB_PASSWORD', value: 'pw1'}])
    const r = await p.cli([
      'deploy',
      'catalog',
      '--image',
      p.image('catalog', 'v2'),
      '--skip-verify',
      '--canary',
      '--steps',
      '100',
    ])
    expect(r.exitCode, JSON.stringify(r.json)).toBe(10)
    expect(r.json.error.message).toContain('catalog: DB_PASSWORD')
    expect(leaked(JSON.stringify(r.json) + r.stderr)).toEqual([])
    expect(await p.kube.get(PATHS.configmaps(p.ns), 'retailops-rollout-catalog')).toBeUndefined()
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect((await p.deployment('catalog'))!.spec.template.spec.containers[0].image).toContain(':v1@')
    await setEnv(null)
  })

  it('the state ConfigMap and the Deployment hold no secret from a forced release reason', async () => {
    const reason = 'hotfix; failing DSN was postgres://app:pw1@db/shop and the hook ?token=t0k3nz'
    const r = await p.cli([
      'deploy',
      'catalog',
      '--image',
      p.image('catalog', 'v2'),
      '--skip-verify',
      '--canary',
      '--steps',
      '100',
      '--force-release',
      '--reason',
      reason,
    ])
    expect(r.exitCode, JSON.stringify(r.json.error)).toBe(0)
    const cm = (await p.kube.get(PATHS.configmaps(p.ns), 'retailops-rollout-catalog')) as Obj
    const raw = JSON.stringify(cm.data)
    expect(raw).toContain('postgres://app:***@db/shop')
    expect(raw).toContain('token=***')
    expect(raw).not.toContain('pw1')
    expect(raw).not.toContain('t0k3nz')
    const d = (await p.deployment('catalog'))!
    expect(d.spec.template.spec.containers[0].image).toContain(':v2@')
    const annotations = JSON.stringify(d.metadata.annotations)
    expect(annotations).toContain('postgres://app:***@db/shop')
    expect(annotations).not.toContain('pw1')
  })
})

describe('DR drill evidence files', () => {
  const source = `t_sec_${random()}`
  beforeAll(() => createSourceDb(source, 50, 60))
  afterAll(() => dropDb(source))

  it("record.json, report.md and report.html hold no password: not the source URL's, not one inside a validation query", async () => {
    // A dblink-style connection string inside a validation query is free text that lands in the evidence.
    const p = drProject(`
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  orders: {tier: revenue-critical}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres: {urlEnv: T_SEC_SOURCE_URL}
    validation:
      - {name: order-count, query: "select count(*) from orders where 'host=replica password=dbl9x' <> ''", expect: {equals: 50}}
`)
    const r = await drCli(
      [
        'dr',
        'drill',
        '--json',
        '--no-recoverability',
        '--allow-source-server',
        'the sandbox has one PostgreSQL server',
      ],
      {cwd: p.dir, env: {T_SEC_SOURCE_URL: dbUrl(source)}},
    )
    const doc = JSON.parse(r.stdout)
    expect(r.exitCode, r.stderr).toBe(0)
    const password = decodeURIComponent(new URL(sandboxUrl()).password)
    expect(password.length).toBeGreaterThan(0)
    const files = [doc.result.files.record, doc.result.files.markdown, doc.result.files.html] as string[]
    for (const file of files) {
      const text = readFileSync(file, 'utf8')
      expect(text, file).toContain('password=***')
      expect(text, file).not.toContain('dbl9x')
      expect(text, file).not.toContain(password)
    }
    expect(r.stdout + r.stderr).not.toContain('dbl9x')
    expect(r.stdout + r.stderr).not.toContain(password)
  })
})
