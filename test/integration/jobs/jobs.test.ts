// Batch jobs in the sandbox (issue 22 items 2 and 4): the bundled reconcile job is built, pushed
// and signed like a service, deployed as a CronJob (read back: schedule, policy, deadlines, Pod
// Security restricted, image by digest, spot placement), started by `jobs run` (its Job read back,
// its pod on a spot node), a one-off job that can never be scheduled fails by its deadline (36),
// times out (37) and is refused while running (Forbid, 12); `jobs status` after the runs; bad input
// creates nothing; removal prunes only this environment. kwok completes a Job's pod without running
// it, so the image's real behaviour is shown by running the CronJob's pod template, read back from
// the cluster, with Docker against the bundled orders and inventory services on loopback.
import {type ChildProcess, spawn} from 'node:child_process'
import {cp, readFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {KubeHttp} from '../../../src/kubernetes/http.js'
import {runPodTemplate} from '../helpers/run-job-pod.js'
import {runCli} from '../../support/cli.js'
import {ROOT} from '../../support/paths.js'
import {TempProject} from '../../support/project.js'
import {eventually, kubeConfig, sandboxEnv} from '../../support/sandbox.js'

type ReadBack = any

const sandbox = sandboxEnv()
const procs: ChildProcess[] = []
const PASSWORD = 'jobs-test'
const SCHEDULE = '*/30 * * * *'

function config(t: TempProject, jobs: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    project: t.name,
    registry: {url: sandbox.registry, insecure: true},
    signing: {key: '.retailops/cosign.key', publicKey: '.retailops/cosign.pub', required: true},
    clusters: {main: {context: sandbox.context}},
    environments: {
      production: {cluster: 'main', namespace: t.name},
      staging: {cluster: 'main', namespace: `${t.name}-staging`, production: false},
    },
    defaultEnvironment: 'production',
    nodePools: {
      pools: {
        general: {},
        'memory-optimised': {},
        spot: {spot: true, taints: [{key: 'retailops.dev/spot', value: 'true', effect: 'NoSchedule'}]},
      },
    },
    services: {orders: {tier: 'revenue-critical'}, inventory: {tier: 'operational'}},
    jobs,
    ...extra,
  }
}

const RECONCILE = {
  build: {context: 'services', dockerfile: 'reconcile/Dockerfile', args: {BASE_IMAGE: sandbox.baseImageRemote}},
  dependsOn: ['orders', 'inventory'],
  schedule: SCHEDULE,
  timeZone: 'Europe/Berlin',
  concurrencyPolicy: 'Forbid',
  startingDeadlineSeconds: 120,
  activeDeadlineSeconds: 120,
  backoffLimit: 1,
  failOnExitCodes: [3],
  ttlSecondsAfterFinished: 600,
  placement: {spot: 'required'},
}
// One-off, and asks for more CPU than any sandbox node has: never scheduled, so its deadline fails it.
const STUCK = {
  resources: {requests: {cpu: '64', memory: '128Mi'}, limits: {cpu: '64', memory: '256Mi'}},
  activeDeadlineSeconds: 12,
  backoffLimit: 0,
}

describe('jobs: the reconcile CronJob deployed, run, followed and reported (sandbox cluster, registry, Docker)', () => {
  const t = new TempProject<Record<string, unknown>>({}, {prefix: 't-jobs'})
  const http = new KubeHttp(kubeConfig())
  let image = ''
  const cli = (args: string[], timeoutMs = 180_000) =>
    runCli(args, {cwd: t.dir, json: true, env: {COSIGN_PASSWORD: PASSWORD}, timeoutMs})
  const get = (p: string): Promise<ReadBack> => http.request('GET', p)
  const cronJob = (ns: string, name: string) => get(`/apis/batch/v1/namespaces/${ns}/cronjobs/${name}`)
  const jobs = async (ns: string, job: string): Promise<ReadBack[]> =>
    (
      (await get(`/apis/batch/v1/namespaces/${ns}/jobs?labelSelector=retailops.dev%2Fjob%3D${job}`)) as {
        items: ReadBack[]
      }
    ).items

  beforeAll(async () => {
    for (const entry of [
      'package.json',
      'package-lock.json',
      'lib',
      'orders',
      'inventory',
      'reconcile',
      'node_modules',
    ])
      await cp(path.join(ROOT, 'services', entry), path.join(t.dir, 'services', entry), {recursive: true})
    t.writeConfig(config(t, {reconcile: RECONCILE, stuck: STUCK}))
    t.onCleanup(async () => {
      for (const ns of [t.name, `${t.name}-staging`])
        await http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
    })
    const steps: string[][] = [
      ['keys', 'generate'],
      ['build', 'reconcile'],
      ['push', 'reconcile'],
      ['sign', 'reconcile'],
    ]
    for (const step of steps) {
      const r = await cli(step)
      expect(r.exitCode, `${step.join(' ')}: ${r.stdout}\n${r.stderr}`).toBe(0)
    }
    const lock = JSON.parse(await readFile(path.join(t.dir, '.retailops/artifacts.lock.json'), 'utf8'))
    image = lock.artifacts.reconcile.image
    const deploy = await cli(['deploy', 'reconcile', 'stuck', '--image', `stuck=${image}`])
    expect(deploy.exitCode, JSON.stringify(deploy.doc?.error ?? deploy.doc?.result?.policy)).toBe(0)
    expect(deploy.doc!.result.signatureVerification).toBe('verified')
  }, 300_000)

  afterAll(async () => {
    for (const p of procs) p.kill('SIGTERM')
    await t.cleanup()
    http.close()
  })

  it('deploys the CronJob as configured: schedule, policy, deadlines, restricted pod, signed image by digest, on spot', async () => {
    expect(image).toMatch(new RegExp(`^${sandbox.registry}/${t.name}/reconcile@sha256:[0-9a-f]{64}$`))
    const cron = await cronJob(t.name, 'reconcile')
    expect(cron.metadata.labels).toMatchObject({
      'retailops.dev/job': 'reconcile',
      'app.kubernetes.io/managed-by': 'retailops',
    })
    expect(cron.metadata.annotations['retailops.dev/signature-verification']).toBe('verified')
    expect(cron.spec).toMatchObject({
      schedule: SCHEDULE,
      timeZone: 'Europe/Berlin',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 120,
      jobTemplate: {spec: {activeDeadlineSeconds: 120, backoffLimit: 1, ttlSecondsAfterFinished: 600}},
    })
    // Mismatches found (exit 3) are the job's verdict: the run fails at once, not after retries.
    expect(cron.spec.jobTemplate.spec.podFailurePolicy).toEqual({
      rules: [{action: 'FailJob', onExitCodes: {containerName: 'reconcile', operator: 'In', values: [3]}}],
    })
    const pod = cron.spec.jobTemplate.spec.template.spec
    expect(pod.containers[0].image).toBe(image)
    expect(pod.securityContext).toMatchObject({runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}})
    expect(pod.containers[0].securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: {drop: ['ALL']},
    })
    expect(pod.automountServiceAccountToken).toBe(false)
    expect(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      {matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'In', values: ['spot']}]},
    ])
    expect(pod.tolerations).toContainEqual({
      key: 'retailops.dev/spot',
      operator: 'Equal',
      value: 'true',
      effect: 'NoSchedule',
    })
    const stuck = await cronJob(t.name, 'stuck')
    expect(stuck.spec.suspend).toBe(true)
    expect(stuck.spec.jobTemplate.spec.template.spec.containers[0].image).toBe(image)
    // The restricted Pod Security level admits the pod template as rendered.
    const dryRun: ReadBack = await http.request('POST', `/api/v1/namespaces/${t.name}/pods`, {
      query: {dryRun: 'All'},
      body: {apiVersion: 'v1', kind: 'Pod', metadata: {name: 'restricted-check'}, spec: pod},
    })
    expect(dryRun.metadata.name).toBe('restricted-check')
  })

  it('jobs run: a Job from the CronJob (manual, owned by it) succeeds on a spot node; exit 0', async () => {
    const r = await cli(['jobs', 'run', 'reconcile', '--timeout', '90s'])
    expect(r.exitCode, r.stderr).toBe(0)
    const result = r.doc!.result
    expect(result).toMatchObject({
      job: 'reconcile',
      outcome: 'succeeded',
      image,
      run: {outcome: 'succeeded', trigger: 'manual'},
    })
    const cron = await cronJob(t.name, 'reconcile')
    const job = await get(`/apis/batch/v1/namespaces/${t.name}/jobs/${result.name}`)
    expect(job.metadata.annotations['cronjob.kubernetes.io/instantiate']).toBe('manual')
    expect(job.metadata.ownerReferences).toEqual([
      expect.objectContaining({kind: 'CronJob', name: 'reconcile', uid: cron.metadata.uid, controller: true}),
    ])
    expect(job.spec.template.spec.containers[0].image).toBe(image)
    // The pod ran where the placement says: a node of the spot pool.
    expect(result.pods).toHaveLength(1)
    const node = await get(`/api/v1/nodes/${result.pods[0].node}`)
    expect(node.metadata.labels['retailops.dev/capacity-type']).toBe('spot')
  })

  it('a run that cannot be scheduled: --timeout first (37, Job left running), refused while it runs (Forbid, 12), then fails by its deadline (36)', async () => {
    const timedOut = await cli(['jobs', 'run', 'stuck', '--timeout', '1s'])
    expect(timedOut.exitCode, timedOut.stderr).toBe(37)
    expect(timedOut.doc!.result.outcome).toBe('timed-out')
    const refused = await cli(['jobs', 'run', 'stuck'])
    expect(refused.exitCode).toBe(12)
    expect(refused.doc!.error.message).toContain('concurrencyPolicy is Forbid')
    expect((await jobs(t.name, 'stuck')).map((j) => j.metadata.name)).toEqual([timedOut.doc!.result.name])
    await eventually(
      'the first stuck run to fail by its deadline',
      async () => {
        const [job] = await jobs(t.name, 'stuck')
        return job.status.conditions?.find((c: ReadBack) => c.type === 'Failed' && c.reason === 'DeadlineExceeded')
      },
      30_000,
    )
    const failed = await cli(['jobs', 'run', 'stuck', '--timeout', '60s'])
    expect(failed.exitCode, failed.stderr).toBe(36)
    const result = failed.doc!.result
    expect(result.run).toMatchObject({outcome: 'failed', reason: 'DeadlineExceeded'})
    expect(result.explanation.join(' ')).toMatch(/Insufficient cpu|not scheduled|FailedScheduling|didn't|cpu/i)
    expect(await jobs(t.name, 'stuck')).toHaveLength(2)
  })

  it('jobs status: last runs, the failure with its reason, the next run in the time zone; exit 36 while the newest run failed', async () => {
    const r = await cli(['jobs', 'status'])
    expect(r.exitCode).toBe(36)
    const byJob = Object.fromEntries((r.doc!.result.jobs as ReadBack[]).map((j) => [j.job, j]))
    expect(r.doc!.result.failing).toEqual(['stuck'])
    expect(byJob.reconcile).toMatchObject({
      deployed: true,
      oneOff: false,
      schedule: SCHEDULE,
      suspended: false,
    })
    expect(byJob.reconcile.lastFailure).toBeUndefined()
    expect(byJob.reconcile.runs[0]).toMatchObject({outcome: 'succeeded', trigger: 'manual'})
    const next = new Date(byJob.reconcile.nextRun)
    expect(next.getTime()).toBeGreaterThan(Date.now())
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(30 * 60_000)
    expect([0, 30]).toContain(next.getUTCMinutes())
    expect(byJob.stuck).toMatchObject({oneOff: true, suspended: true, lastFailure: {reason: 'DeadlineExceeded'}})
    expect(byJob.stuck.nextRun).toBeUndefined()
    expect(byJob.stuck.runs).toHaveLength(2)
    const one = await cli(['jobs', 'status', 'reconcile'])
    expect(one.exitCode).toBe(0)
  })

  it('bad input changes nothing: an unknown job (4), a job not deployed there (4), a bad schedule (3)', async () => {
    const before = (await jobs(t.name, 'reconcile')).length
    const unknown = await cli(['jobs', 'run', 'nope'])
    expect(unknown.exitCode).toBe(4)
    expect(unknown.doc!.error.nextSteps.join(' ')).toContain('Known jobs: reconcile, stuck')
    const elsewhere = await cli(['jobs', 'run', 'reconcile', '--environment', 'staging'])
    expect(elsewhere.exitCode).toBe(4)
    expect(elsewhere.doc!.error.message).toContain('not deployed')
    t.writeConfig(config(t, {reconcile: {...RECONCILE, schedule: '61 * * * *'}, stuck: STUCK}))
    const bad = await cli(['deploy', 'reconcile'])
    expect(bad.exitCode).toBe(3)
    expect(JSON.stringify(bad.doc!.error)).toContain('jobs.reconcile.schedule')
    expect((await cronJob(t.name, 'reconcile')).spec.schedule).toBe(SCHEDULE)
    expect(await jobs(t.name, 'reconcile')).toHaveLength(before)
  })

  it("jobs run --tenant: a dedicated tenant's job runs in its namespace from its CronJob; jobs status reads it; unknown, shared and not-rendered tenants create nothing", async () => {
    const tenantNs = `${t.name}-acme`
    t.onCleanup(() => http.request('DELETE', `/api/v1/namespaces/${tenantNs}`).catch(() => undefined))
    const tenants = [
      {name: 'acme', model: 'dedicated-namespace'},
      {name: 'beta', model: 'shared'},
      {name: 'gamma', model: 'dedicated-namespace', services: ['orders']},
    ]
    t.writeConfig(config(t, {reconcile: RECONCILE, stuck: STUCK}, {tenants}))
    try {
      const deploy = await cli(['deploy', 'reconcile', '--tenant', 'acme'])
      expect(deploy.exitCode, JSON.stringify(deploy.doc?.error ?? deploy.doc?.result?.policy)).toBe(0)
      const tenantCron = await cronJob(tenantNs, 'reconcile')
      expect(tenantCron.metadata.labels['retailops.dev/tenant']).toBe('acme')
      const mainBefore = (await jobs(t.name, 'reconcile')).length

      const r = await cli(['jobs', 'run', 'reconcile', '--tenant', 'acme', '--timeout', '90s'])
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.doc!.result).toMatchObject({job: 'reconcile', tenant: 'acme', namespace: tenantNs, outcome: 'succeeded'})
      // Read back: the Job is in the tenant's namespace, made from the tenant's CronJob, with its tenant's variables.
      const job = await get(`/apis/batch/v1/namespaces/${tenantNs}/jobs/${r.doc!.result.name}`)
      expect(job.metadata.ownerReferences).toEqual([
        expect.objectContaining({kind: 'CronJob', name: 'reconcile', uid: tenantCron.metadata.uid, controller: true}),
      ])
      expect(job.metadata.labels['retailops.dev/tenant']).toBe('acme')
      expect(job.spec.template.spec.containers[0].env).toContainEqual({name: 'RETAILOPS_TENANT', value: 'acme'})
      expect(job.spec.template.spec.containers[0].image).toBe(image)
      // The environment's namespace got no run.
      expect(await jobs(t.name, 'reconcile')).toHaveLength(mainBefore)

      const status = await cli(['jobs', 'status', 'reconcile', '--tenant', 'acme'])
      expect(status.exitCode, status.stderr).toBe(0)
      expect(status.doc!.result).toMatchObject({tenant: 'acme', namespace: tenantNs})
      expect(status.doc!.result.jobs[0].runs.map((x: ReadBack) => x.name)).toEqual([r.doc!.result.name])

      // Bad input: nothing created anywhere.
      const unknown = await cli(['jobs', 'run', 'reconcile', '--tenant', 'nobody'])
      expect(unknown.exitCode).toBe(4)
      expect(unknown.doc!.error.message).toBe('Unknown tenant "nobody".')
      expect(unknown.doc!.error.nextSteps.join(' ')).toContain('Known tenants: acme, beta, gamma')
      const shared = await cli(['jobs', 'run', 'reconcile', '--tenant', 'beta'])
      expect(shared.exitCode).toBe(2)
      expect(shared.doc!.error.message).toContain('Tenant beta is shared')
      const notRendered = await cli(['jobs', 'run', 'reconcile', '--tenant', 'gamma'])
      expect(notRendered.exitCode).toBe(4)
      expect(notRendered.doc!.error.message).toContain('dependsOn inventory, which the tenant does not run')
      expect(await jobs(tenantNs, 'reconcile')).toHaveLength(1)
      expect(await jobs(t.name, 'reconcile')).toHaveLength(mainBefore)
      await expect(get(`/api/v1/namespaces/${t.name}-gamma`)).rejects.toMatchObject({statusCode: 404})
    } finally {
      t.writeConfig(config(t, {reconcile: RECONCILE, stuck: STUCK}))
      await http.request('DELETE', `/api/v1/namespaces/${tenantNs}`).catch(() => undefined)
    }
  })

  it('a job removed from the configuration is pruned from its environment only', async () => {
    t.writeConfig(config(t, {reconcile: RECONCILE, stuck: STUCK}))
    const staging = await cli(['deploy', 'reconcile', 'stuck', '--environment', 'staging', '--image', `stuck=${image}`])
    expect(staging.exitCode, JSON.stringify(staging.doc?.error)).toBe(0)
    t.writeConfig(config(t, {reconcile: RECONCILE}))
    const r = await cli(['deploy', 'reconcile', '--environment', 'staging'])
    expect(r.exitCode, JSON.stringify(r.doc?.error)).toBe(0)
    // A selection prunes only what it names: stuck stays until a full deploy or `deploy stuck`.
    expect(await cronJob(`${t.name}-staging`, 'stuck')).toBeDefined()
    // The services take the job's signed image: only the objects matter here (--no-wait).
    const full = await cli([
      'deploy',
      '--environment',
      'staging',
      '--image',
      `orders=${image}`,
      '--image',
      `inventory=${image}`,
      '--no-wait',
    ])
    expect(full.doc!.result?.pruned?.map((p: ReadBack) => p.ref) ?? [], JSON.stringify(full.doc?.error)).toEqual(
      expect.arrayContaining([`CronJob ${t.name}-staging/stuck`]),
    )
    await expect(cronJob(`${t.name}-staging`, 'stuck')).rejects.toMatchObject({statusCode: 404})
    expect((await cronJob(t.name, 'stuck')).spec.suspend).toBe(true)
    expect((await cronJob(`${t.name}-staging`, 'reconcile')).spec.schedule).toBe(SCHEDULE)
  })

  it('the image against the bundled orders and inventory services: a clean run (exit 0), a released and an orphaned reservation reported (exit 3), nothing changed', async () => {
    const [orders, inventory] = await Promise.all([start('orders'), start('inventory')])
    // A checkout's writes: reserve, then the order naming the reservation.
    const reservation = await post(`${inventory}/reservations`, {
      items: [{sku: 'SKU-1001', quantity: 2}],
      reference: 'c1',
    })
    await post(`${orders}/orders`, {
      customerId: 'c1',
      items: [{sku: 'SKU-1001', quantity: 2, unitPriceCents: 1500}],
      totalCents: 3000,
      currency: 'EUR',
      reservationId: reservation.id,
      authorizationId: 'auth_1',
    })
    // The job's pod as the cluster holds it (restricted, read-only root, the image by digest), with
    // the services' loopback addresses for the in-cluster ones.
    const template = (await cronJob(t.name, 'reconcile')).spec.jobTemplate.spec.template
    const run = (env: Record<string, string>) =>
      runPodTemplate({
        namespace: t.name,
        template,
        env: {ORDERS_URL: orders, INVENTORY_URL: inventory, ...env},
        timeoutMs: 120_000,
      })

    const clean = await run({})
    expect(clean.exitCode, clean.stderr).toBe(0)
    expect(JSON.parse(clean.stdout)).toMatchObject({ok: true, orders: 1, reservations: 1, mismatches: []})

    // An orphaned reservation (a checkout that died after reserving), and the order's reservation released.
    const orphan = await post(`${inventory}/reservations`, {items: [{sku: 'SKU-1002', quantity: 1}], reference: 'c2'})
    await post(`${inventory}/reservations/${reservation.id}/release`, {})
    const stockBefore: unknown = await (await fetch(`${inventory}/stock/SKU-1002`)).json()
    const dirty = await run({RECONCILE_GRACE_SECONDS: '0'})
    expect(dirty.exitCode, dirty.stderr).toBe(3)
    const report = JSON.parse(dirty.stdout)
    expect(report.ok).toBe(false)
    expect(report.mismatches.map((m: ReadBack) => [m.type, m.reservationId])).toEqual([
      ['order-reservation-released', reservation.id],
      ['orphaned-reservation', orphan.id],
    ])
    expect(dirty.stderr).toContain('2 mismatch(es)')
    // Read-only: the services hold exactly what they held.
    expect(await (await fetch(`${inventory}/stock/SKU-1002`)).json()).toEqual(stockBefore)
    expect(((await (await fetch(`${orders}/orders`)).json()) as ReadBack).total).toBe(1)
  }, 240_000)
})

/** Spawns a bundled service from the repository on a loopback port; it is stopped after the file. */
async function start(name: string): Promise<string> {
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const child = spawn(process.execPath, [`${name}/src/main.ts`], {
    cwd: path.join(ROOT, 'services'),
    env: {PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), SHUTDOWN_DELAY_MS: '0'},
    stdio: 'ignore',
  })
  procs.push(child)
  const url = `http://127.0.0.1:${port}`
  await eventually(
    `${name} to answer /readyz`,
    async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok ? true : undefined),
    30_000,
  )
  return url
}

async function post(url: string, body: unknown): Promise<ReadBack> {
  const r = await fetch(url, {
    method: 'POST',
    headers: {'content-type': 'application/json', 'idempotency-key': crypto.randomUUID()},
    body: JSON.stringify(body),
  })
  const text = await r.text()
  expect(r.status, text).toBeLessThan(300)
  return JSON.parse(text)
}
