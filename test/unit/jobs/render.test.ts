import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {imageRepository, selectImages, selectWorkloads} from '../../../src/config/resolve.js'
import {pruneCandidates} from '../../../src/deploy/engine.js'
import {parseImageOverrides, resolveImages} from '../../../src/deploy/images.js'
import {ONE_OFF_SCHEDULE, quotaFor, renderManifests} from '../../../src/deploy/render.js'
import {ConfigError, ExitCode, NotFoundError} from '../../../src/errors/index.js'
import {checkPolicy} from '../../../src/kubernetes/policy.js'
import {objectKey, type KubeObject} from '../../../src/kubernetes/resources.js'

const DIGEST = `sha256:${'b'.repeat(64)}`
const HEAD = 'project: shop\nregistry: {url: 127.0.0.1:5000, insecure: true}\n'
const CONFIG = `${HEAD}services:
  orders: {tier: revenue-critical, scaling: {minReplicas: 2, maxReplicas: 4}}
  inventory: {tier: operational, port: 8081}
  catalog: {tier: operational}
jobs:
  reconcile:
    dependsOn: [orders, inventory]
    schedule: "*/30 * * * *"
    timeZone: Europe/Berlin
    concurrencyPolicy: Forbid
    startingDeadlineSeconds: 300
    activeDeadlineSeconds: 900
    backoffLimit: 1
    failOnExitCodes: [3, 2]
    ttlSecondsAfterFinished: 3600
    env: {RECONCILE_MAX_MISMATCHES: "0"}
  search-reindex:
    tier: operational
    image: platform/reindex
    args: [--full]
`

function load(text = CONFIG) {
  return {file: '/tmp/shop/retailops.yaml', dir: '/tmp/shop', config: parseConfig(text, 'retailops.yaml')}
}

function refused(text: string): ConfigError {
  try {
    parseConfig(text, 'retailops.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected the configuration to be refused')
}

function render(text = CONFIG, names?: string[]) {
  const p = load(text)
  const all = selectImages(p.config)
  const images = resolveImages(
    p.config,
    all,
    Object.fromEntries(
      all.map((s) => [s, {image: `${imageRepository(p.config, s)}@${DIGEST}`, digest: DIGEST, version: '2.0.0'}]),
    ),
  )
  return renderManifests({project: p, images, services: names})
}

const find = (objects: KubeObject[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name)

describe('jobs configuration', () => {
  it('defaults: tolerant tier, Forbid, an hour deadline, 2 retries, a day kept; one-off without a schedule', () => {
    const job = load().config.jobs['search-reindex']
    expect(job).toMatchObject({
      tier: 'operational',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      activeDeadlineSeconds: 3600,
      backoffLimit: 2,
      ttlSecondsAfterFinished: 86_400,
      build: {context: 'services', args: {}},
    })
    expect(job.schedule).toBeUndefined()
    expect(load(`${HEAD}services: {a: {tier: operational}}\njobs: {b: {}}\n`).config.jobs.b.tier).toBe('tolerant')
  })

  it.each([
    ['61 * * * *', 'minute 61 is out of range 0-59'],
    ['* * *', 'it has 3 fields, not 5'],
    ['CRON_TZ=UTC 0 3 * * *', 'a time zone does not go in the schedule'],
    ['0 0 30 2 *', 'never run'],
  ])('refuses the schedule %j (exit 3) saying why', (schedule, why) => {
    const e = refused(
      `${HEAD}services: {a: {tier: operational}}\njobs:\n  b: {schedule: ${JSON.stringify(schedule)}}\n`,
    )
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    const issue = e.issues.find((i) => i.path === 'jobs.b.schedule')!
    expect(issue.message).toContain(why)
  })

  it('refuses failOnExitCodes outside 1-255 or repeated (exit 3), naming the key', () => {
    const e = refused(`${HEAD}services: {a: {tier: operational}}
jobs:
  b: {failOnExitCodes: [0]}
  c: {failOnExitCodes: [3, 3]}
  d: {failOnExitCodes: [256]}
`)
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    const paths = e.issues.map((i) => i.path)
    expect(paths).toEqual(
      expect.arrayContaining(['jobs.b.failOnExitCodes[0]', 'jobs.c.failOnExitCodes', 'jobs.d.failOnExitCodes[0]']),
    )
    expect(e.issues.find((i) => i.path === 'jobs.c.failOnExitCodes')!.message).toContain('each exit code once')
  })

  it('refuses a bad time zone, a time zone without schedule, an unknown dependency and a name a service has', () => {
    const e = refused(`${HEAD}services: {orders: {tier: operational}}
jobs:
  a: {schedule: "@daily", timeZone: Mars/Olympus}
  b: {timeZone: Europe/Berlin}
  c: {dependsOn: [payments]}
  orders: {schedule: "@hourly"}
`)
    const byPath = Object.fromEntries(e.issues.map((i) => [i.path, i.message]))
    expect(byPath['jobs.a.timeZone']).toContain('not a time zone name')
    expect(byPath['jobs.b.timeZone']).toContain('no schedule')
    expect(byPath['jobs.c.dependsOn']).toContain('"payments", which is not a service')
    expect(byPath['jobs.orders']).toContain('is also a service')
  })

  it('images: jobs are selected, overridden and named like services', () => {
    const c = load().config
    expect(selectImages(c)).toEqual(['orders', 'inventory', 'catalog', 'reconcile', 'search-reindex'])
    expect(imageRepository(c, 'reconcile')).toBe('127.0.0.1:5000/shop/reconcile')
    expect(imageRepository(c, 'search-reindex')).toBe('127.0.0.1:5000/platform/reindex')
    expect(parseImageOverrides([`reconcile=r@${DIGEST}`], c)).toEqual({reconcile: `r@${DIGEST}`})
    expect(() => parseImageOverrides(['nope=x'], c)).toThrow(/neither a service nor a job/)
    expect(() => selectImages(c, ['nope'])).toThrow(NotFoundError)
    expect(selectWorkloads(c, ['reconcile', 'orders'])).toEqual({services: ['orders'], jobs: ['reconcile']})
    expect(selectWorkloads(c, ['orders'])).toEqual({services: ['orders'], jobs: []})
  })
})

describe('a job placed by tier', () => {
  const POOLS = `nodePools:
  pools:
    general: {}
    spot:
      spot: true
      taints: [{key: retailops.dev/spot, value: "true", effect: NoSchedule}]
`
  it('a batch job with spot: required runs on the spot pool only, tolerating its taint; the tier default allows spot', () => {
    const plan = render(
      `${HEAD}${POOLS}services:\n  orders: {tier: revenue-critical}\njobs:\n  sync: {placement: {spot: required}}\n  reindex: {}\n`,
    )
    const pod = (name: string) =>
      (find(plan.targets[0].objects, 'CronJob', name) as KubeObject & {spec: any}).spec.jobTemplate.spec.template.spec
    expect(pod('sync').affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      {matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'In', values: ['spot']}]},
    ])
    expect(pod('sync').tolerations).toEqual([
      {key: 'retailops.dev/spot', operator: 'Equal', value: 'true', effect: 'NoSchedule'},
    ])
    expect(pod('sync').topologySpreadConstraints[0].labelSelector.matchLabels).toMatchObject({
      'retailops.dev/job': 'sync',
    })
    // tolerant's default is spot: allowed: no affinity forcing it anywhere, the spot taint tolerated.
    expect(pod('reindex').affinity).toBeUndefined()
    expect(pod('reindex').tolerations).toEqual(pod('sync').tolerations)
  })

  it('refuses a job placement that names an unknown pool (exit 3)', () => {
    const e = refused(`${HEAD}${POOLS}services: {a: {tier: operational}}\njobs:\n  b: {placement: {pools: [gpu]}}\n`)
    expect(e.issues.map((i) => i.path)).toContain('jobs.b.placement.pools[0]')
  })
})

describe('a job rendered', () => {
  const plan = render()
  const objects = plan.targets[0].objects
  const cron = find(objects, 'CronJob', 'reconcile')! as KubeObject & {spec: any}

  it('is a CronJob with the schedule, time zone, policy, deadlines and history, its image by digest', () => {
    expect(plan.targets[0].jobs).toEqual(['reconcile', 'search-reindex'])
    expect(cron.metadata.labels).toMatchObject({
      'retailops.dev/job': 'reconcile',
      'app.kubernetes.io/component': 'job',
      'retailops.dev/tier': 'tolerant',
      'app.kubernetes.io/version': '2.0.0',
    })
    expect(cron.metadata.labels!['retailops.dev/service']).toBeUndefined()
    expect(cron.metadata.labels!['retailops.dev/applyset']).toBe(plan.targets[0].applySet)
    expect(cron.spec).toMatchObject({
      schedule: '*/30 * * * *',
      timeZone: 'Europe/Berlin',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {spec: {backoffLimit: 1, activeDeadlineSeconds: 900, ttlSecondsAfterFinished: 3600}},
    })
    // A verdict exit code fails the run at once instead of being retried backoffLimit times.
    expect(cron.spec.jobTemplate.spec.podFailurePolicy).toEqual({
      rules: [{action: 'FailJob', onExitCodes: {containerName: 'reconcile', operator: 'In', values: [2, 3]}}],
    })
    expect(
      (find(objects, 'CronJob', 'search-reindex')! as KubeObject & {spec: any}).spec.jobTemplate.spec.podFailurePolicy,
    ).toBeUndefined()
    const pod = cron.spec.jobTemplate.spec.template.spec
    expect(pod.containers[0].image).toBe(`127.0.0.1:5000/shop/reconcile@${DIGEST}`)
    expect(pod.restartPolicy).toBe('Never')
    expect(pod.serviceAccountName).toBe('reconcile')
    expect(pod.automountServiceAccountToken).toBe(false)
  })

  it('runs Pod Security restricted: non-root, read-only root, no capabilities, RuntimeDefault seccomp', () => {
    const pod = cron.spec.jobTemplate.spec.template.spec
    expect(pod.securityContext).toMatchObject({runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}})
    expect(pod.containers[0].securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: {drop: ['ALL']},
    })
    expect(pod.containers[0].resources).toEqual({
      requests: {cpu: '100m', memory: '128Mi', 'ephemeral-storage': '128Mi'},
      limits: {cpu: '500m', memory: '256Mi', 'ephemeral-storage': '512Mi'},
    })
  })

  it('gets its dependencies’ URLs and may reach only them; the services let it in', () => {
    const env = cron.spec.jobTemplate.spec.template.spec.containers[0].env as {name: string; value?: string}[]
    expect(env).toEqual(
      expect.arrayContaining([
        {name: 'JOB_NAME', value: 'reconcile'},
        {name: 'ORDERS_URL', value: 'http://orders:8080'},
        {name: 'INVENTORY_URL', value: 'http://inventory:8081'},
        {name: 'RECONCILE_MAX_MISMATCHES', value: '0'},
      ]),
    )
    const policy = find(objects, 'NetworkPolicy', 'reconcile')! as KubeObject & {spec: any}
    expect(policy.spec.podSelector.matchLabels).toMatchObject({'retailops.dev/job': 'reconcile'})
    expect(policy.spec.ingress).toBeUndefined()
    expect(policy.spec.egress).toEqual([
      {to: [{podSelector: {matchLabels: {'retailops.dev/service': 'orders'}}}], ports: [{port: 8080, protocol: 'TCP'}]},
      {
        to: [{podSelector: {matchLabels: {'retailops.dev/service': 'inventory'}}}],
        ports: [{port: 8081, protocol: 'TCP'}],
      },
    ])
    const inventory = find(objects, 'NetworkPolicy', 'inventory')! as KubeObject & {spec: any}
    expect(inventory.spec.ingress[0].from).toContainEqual({
      podSelector: {matchExpressions: [{key: 'retailops.dev/job', operator: 'In', values: ['reconcile']}]},
    })
    const catalog = find(objects, 'NetworkPolicy', 'catalog')! as KubeObject & {spec: any}
    expect(JSON.stringify(catalog.spec)).not.toContain('retailops.dev/job')
  })

  it('one-off: suspended, with a schedule that never fires; its args and image kept', () => {
    const oneOff = find(objects, 'CronJob', 'search-reindex')! as KubeObject & {spec: any}
    expect(oneOff.spec).toMatchObject({schedule: ONE_OFF_SCHEDULE, suspend: true})
    expect(oneOff.spec.timeZone).toBeUndefined()
    expect(oneOff.spec.jobTemplate.spec.template.spec.containers[0]).toMatchObject({
      args: ['--full'],
      image: `127.0.0.1:5000/platform/reindex@${DIGEST}`,
    })
  })

  it('passes the deploy policy; a privileged or root job, or one without limits, is refused', () => {
    const report = checkPolicy(objects, {signingRequired: true, tierLabel: 'retailops.dev/tier'})
    expect(report.findings.filter((f) => f.object.startsWith('CronJob'))).toEqual([])
    const bad = structuredClone(cron)
    const c = bad.spec.jobTemplate.spec.template.spec.containers[0]
    c.securityContext = {privileged: true, runAsUser: 0}
    delete c.resources.limits.memory
    const rules = checkPolicy([bad, ...objects.filter((o) => o !== cron)], {
      signingRequired: true,
      tierLabel: 'retailops.dev/tier',
    })
      .findings.filter((f) => f.object === 'CronJob retail/reconcile' && f.severity === 'error')
      .map((f) => f.rule)
    expect(rules).toEqual(
      expect.arrayContaining(['privileged', 'run-as-root', 'privilege-escalation', 'capabilities', 'limits']),
    )
  })

  it('a selection renders only the named workloads; prune of a selection leaves the others', () => {
    const onlyJob = render(CONFIG, ['reconcile'])
    expect(onlyJob.targets[0].services).toEqual([])
    expect(onlyJob.targets[0].jobs).toEqual(['reconcile'])
    const live = new Map(objects.map((o) => [objectKey(o), o]))
    const rendered = new Set(onlyJob.targets[0].objects.map(objectKey))
    const scope = {namespaces: new Set(['retail']), full: false, services: ['reconcile']}
    expect(pruneCandidates(live, rendered, scope).prune).toEqual([])
    // Removed from the configuration: a full deploy prunes its CronJob, ServiceAccount and NetworkPolicy.
    const without = render(CONFIG.replace(/ {2}search-reindex:\n[\s\S]*$/, ''))
    const gone = pruneCandidates(live, new Set(without.targets[0].objects.map(objectKey)), {
      namespaces: new Set(['retail']),
      full: true,
    }).prune.map((o) => `${o.kind}/${o.metadata.name}`)
    expect(gone.sort()).toEqual([
      'CronJob/search-reindex',
      'NetworkPolicy/search-reindex',
      'ServiceAccount/search-reindex',
    ])
  })

  it('quota: a tenant namespace has room for a pod per job, two when runs may overlap', () => {
    const c = load().config
    const none = quotaFor(c, ['orders'], [])
    const one = quotaFor(c, ['orders'], [], ['reconcile'])
    expect(Number(one.pods) - Number(none.pods)).toBe(1)
    c.jobs.reconcile.concurrencyPolicy = 'Allow'
    expect(Number(quotaFor(c, ['orders'], [], ['reconcile']).pods) - Number(none.pods)).toBe(2)
  })
})
