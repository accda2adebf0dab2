// dr drill --schedule: the objects a scheduled drill is made of, built and checked before anything
// is written (the integration test reads them back from the cluster and runs the job's pod).
import {describe, expect, it} from 'vitest'

import {
  buildDrillSchedule,
  defaultTimeoutMs,
  type DrillScheduleOptions,
  drillScheduleNames,
  neededVariables,
  scheduleNameFor,
  startingDeadlineSeconds,
} from '../../../src/dr/schedule.js'
import {CONFIG, environment, project} from './fixtures.js'

const IMAGE = `127.0.0.1:5000/shop/retailops-runner@sha256:${'a'.repeat(64)}`
const ENV = {
  ORDERS_URL: 'postgres://app:orders-pw-1@db:5432/orders',
  DATABASE_URL: 'postgres://app:catalog-pw-2@db:5432/catalog',
  REGISTRY_USERNAME: 'ci',
  REGISTRY_PASSWORD: 'reg-pw-3',
}
const SECRETS = ['orders-pw-1', 'catalog-pw-2', 'reg-pw-3']

const options = (over: Partial<DrillScheduleOptions> = {}): DrillScheduleOptions => ({
  project: project(),
  environment,
  filters: {},
  recoverability: true,
  cron: '0 3 * * *',
  scratchSize: '10Gi',
  drillFlags: [],
  env: ENV,
  now: new Date('2026-05-01T12:00:00Z'),
  ...over,
})

const find = (objects: any[], kind: string, name?: string) =>
  objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))

describe("the scheduled drill's CronJob", () => {
  it('runs the same drill in the cluster: Forbid, deadlines, no retry, the runner by digest, restricted', async () => {
    const built = await buildDrillSchedule(
      options({
        filters: {tiers: ['revenue-critical']},
        cron: '30 2 * * 1-5',
        timeZone: 'Europe/Berlin',
        drillFlags: ['--concurrency', '2', '--no-recoverability', '--tier', 'revenue-critical'],
      }),
      IMAGE,
    )
    const cj = find(built.objects, 'CronJob')
    expect(cj.metadata).toMatchObject({name: 'retailops-dr-drill-revenue-critical', namespace: 'shop'})
    expect(cj.spec).toMatchObject({
      schedule: '30 2 * * 1-5',
      timeZone: 'Europe/Berlin',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
    })
    const job = cj.spec.jobTemplate.spec
    // payments-rds (aws-backup, timeout 1s) → at least an hour; plus 15 minutes to clean up.
    expect(job).toMatchObject({backoffLimit: 0, activeDeadlineSeconds: 3600 + 900})
    const pod = job.template.spec
    expect(pod).toMatchObject({
      serviceAccountName: 'retailops-dr-drill',
      automountServiceAccountToken: true,
      restartPolicy: 'Never',
      securityContext: {runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}},
    })
    const c = pod.containers[0]
    expect(c.image).toBe(IMAGE)
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: {drop: ['ALL']},
    })
    expect(c.args).toEqual([
      'dr',
      'drill',
      '--environment',
      'default',
      '--namespace',
      'shop',
      '--context',
      'inClusterContext',
      '--yes',
      '--record-in-cluster',
      '--timeout',
      '1h',
      '--concurrency',
      '2',
      '--no-recoverability',
      '--tier',
      'revenue-critical',
    ])
    expect(pod.volumes).toContainEqual({name: 'tmp', emptyDir: {sizeLimit: '10Gi'}})
    expect(built.runs.map((r) => r.toISOString())).toEqual([
      '2026-05-04T00:30:00.000Z',
      '2026-05-05T00:30:00.000Z',
      '2026-05-06T00:30:00.000Z',
    ])
  })

  it('credentials come from the Secret: never in the ConfigMap or the CronJob', async () => {
    const withInline = project(
      CONFIG.replace(
        'provider: postgres\n    postgres: {urlEnv: ORDERS_URL}',
        'provider: postgres\n    postgres: {urlEnv: ORDERS_URL, url: "postgres://app:inline-pw-4@db:5432/orders"}',
      ),
    )
    const built = await buildDrillSchedule(options({project: withInline}), IMAGE)
    const cj = JSON.stringify(find(built.objects, 'CronJob'))
    const cm = JSON.stringify(find(built.objects, 'ConfigMap'))
    for (const s of [...SECRETS, 'inline-pw-4']) {
      expect(cj).not.toContain(s)
      expect(cm).not.toContain(s)
    }
    const secret = find(built.objects, 'Secret')
    expect(secret.metadata.name).toBe('retailops-dr-drill-all-credentials')
    // orders-db's URL is inline now (in credentials.json); catalog-db reads DATABASE_URL.
    expect(Object.keys(secret.stringData).sort()).toEqual([
      'credentials.json',
      'env.DATABASE_URL',
      'env.REGISTRY_PASSWORD',
      'env.REGISTRY_USERNAME',
    ])
    expect(secret.stringData['credentials.json']).toContain('inline-pw-4')
    expect(secret.stringData['env.DATABASE_URL']).toBe(ENV.DATABASE_URL)
    const env = find(built.objects, 'CronJob').spec.jobTemplate.spec.template.spec.containers[0].env
    expect(env).toContainEqual({
      name: 'DATABASE_URL',
      valueFrom: {secretKeyRef: {name: 'retailops-dr-drill-all-credentials', key: 'env.DATABASE_URL'}},
    })
    expect(env).toContainEqual({name: 'RETAILOPS_DR_RESTORE_ROLE', value: 'retailops-dr-restore-shop-all'})
    expect(env).toContainEqual({name: 'RETAILOPS_DRILLS_DIR', value: '/tmp/drills'})
    expect(built.credentials).toEqual(['datastores[0].postgres.url'])
  })

  it('bad input is refused before anything is built: cron, time zone, name, size, missing variables, production on the source server', async () => {
    await expect(buildDrillSchedule(options({cron: '0 3 * *'}), IMAGE)).rejects.toMatchObject({exit: 'USAGE'})
    await expect(buildDrillSchedule(options({timeZone: 'Mars/Olympus'}), IMAGE)).rejects.toMatchObject({exit: 'USAGE'})
    await expect(buildDrillSchedule(options({scheduleName: 'Nightly_Orders'}), IMAGE)).rejects.toMatchObject({
      exit: 'USAGE',
    })
    await expect(buildDrillSchedule(options({scratchSize: 'lots'}), IMAGE)).rejects.toMatchObject({exit: 'USAGE'})
    await expect(buildDrillSchedule(options({env: {}}), IMAGE)).rejects.toMatchObject({
      exit: 'CONFIG',
      message: expect.stringContaining('ORDERS_URL'),
    })
    await expect(
      buildDrillSchedule(
        options({environment: {...environment, production: true}, filters: {datastores: ['orders-db']}}),
        IMAGE,
      ),
    ).rejects.toMatchObject({exit: 'REFUSED'})
  })
})

describe('what the scheduled drill may do', () => {
  it('without namespace restores: its record and the recoverability reads in its namespace, nothing cluster-wide but listing namespaces', async () => {
    const built = await buildDrillSchedule(options({filters: {datastores: ['orders-db']}}), IMAGE)
    const role = find(built.objects, 'Role')
    expect(role.rules).toEqual([
      {apiGroups: [''], resources: ['configmaps'], verbs: ['create']},
      {apiGroups: ['apps'], resources: ['deployments'], verbs: ['list']},
      {apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['get']},
    ])
    // The configuration has a kubernetes datastore: the look for earlier drills' namespaces lists them.
    expect(find(built.objects, 'ClusterRole').rules).toEqual([
      {apiGroups: [''], resources: ['namespaces'], verbs: ['list']},
    ])
    expect(find(built.objects, 'ValidatingAdmissionPolicy')).toBeUndefined()
  })

  it('with a namespace restore: snapshot reads in the source, namespaces and one bindable restore role, confined by an admission policy', async () => {
    const built = await buildDrillSchedule(
      options({filters: {datastores: ['shop-config']}, recoverability: false}),
      IMAGE,
    )
    const names = drillScheduleNames('shop', 'shop-config')
    const role = find(built.objects, 'Role', names.role)
    expect(role.rules[0]).toEqual({apiGroups: [''], resources: ['configmaps'], verbs: ['create']})
    expect(role.rules.slice(1).every((r: any) => r.verbs.join() === 'list')).toBe(true)
    expect(find(built.objects, 'ClusterRole', names.clusterRole).rules).toEqual([
      {apiGroups: [''], resources: ['namespaces'], verbs: ['create', 'get', 'list', 'delete']},
      {apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create']},
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        verbs: ['bind'],
        resourceNames: ['retailops-dr-restore-shop-shop-config'],
      },
    ])
    // The restore role is bound by nobody here: the drill binds it inside the namespace it creates.
    expect((built.objects as any[]).filter((o) => o.roleRef?.name === names.restoreRole)).toEqual([])
    const restore = find(built.objects, 'ClusterRole', names.restoreRole)
    expect(restore.rules.flatMap((r: any) => r.verbs)).not.toContain('delete')
    const policy = find(built.objects, 'ValidatingAdmissionPolicy')
    expect(policy.spec.matchConditions).toEqual([
      {
        name: 'drill-runner',
        expression: "request.userInfo.username == 'system:serviceaccount:shop:retailops-dr-drill'",
      },
    ])
    expect(find(built.objects, 'ValidatingAdmissionPolicyBinding').spec).toEqual({
      policyName: names.policy,
      validationActions: ['Deny'],
    })
  })

  it('a kubernetes datastore in another namespace gets a Role there, reads only', async () => {
    const text = CONFIG.replace('kubernetes: {namespace: shop}', 'kubernetes: {namespace: shop-config}')
    const built = await buildDrillSchedule(
      options({project: project(text), filters: {datastores: ['shop-config']}, recoverability: false}),
      IMAGE,
    )
    const roles = (built.objects as any[]).filter((o) => o.kind === 'Role')
    expect(roles.map((r: any) => r.metadata.namespace).sort()).toEqual(['shop', 'shop-config'])
    expect(
      roles.find((r: any) => r.metadata.namespace === 'shop-config').rules.every((r: any) => r.verbs.join() === 'list'),
    ).toBe(true)
    expect(find(built.objects, 'CronJob').metadata.annotations['retailops.dev/drill-source-namespaces']).toBe(
      'shop-config',
    )
  })
})

describe('names, variables and bounds', () => {
  it("a schedule's name comes from the selection", () => {
    expect(scheduleNameFor({})).toBe('all')
    expect(scheduleNameFor({tiers: ['revenue-critical'], datastores: ['orders-db']})).toBe('revenue-critical-orders-db')
    expect(scheduleNameFor({services: ['a-very-long-service-name', 'another-long-service-name']})).toMatch(
      /^a-very-long-service-nam-[0-9a-f]{6}$/,
    )
    expect(scheduleNameFor({}, 'nightly')).toBe('nightly')
  })

  it("variables: the datastores' URLs and registry credentials as secrets; temporary AWS credentials are not passed on", () => {
    const v = neededVariables(project(), ['orders-db', 'catalog-db', 'payments-rds'], true, {
      ...ENV,
      AWS_REGION: 'eu-west-1',
      AWS_SESSION_TOKEN: 'tmp',
    })
    expect(v.secret).toEqual(['DATABASE_URL', 'ORDERS_URL', 'REGISTRY_PASSWORD', 'REGISTRY_USERNAME'])
    expect(v.plain).toEqual(['AWS_REGION'])
    expect(v.warnings.join(' ')).toContain('AWS_SESSION_TOKEN')
  })

  it("variables: a kubernetes datastore restored from an s3:// backup location gets the object store's", () => {
    const withBackup = project(
      `${CONFIG}\n  - {name: shop-backups, service: cart, provider: kubernetes, kubernetes: {backup: {location: "s3://b/velero"}}}\n`,
    )
    const env = {AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'key', RETAILOPS_S3_ENDPOINT: 'http://127.0.0.1:9000'}
    const v = neededVariables(withBackup, ['shop-backups'], false, env)
    expect(v.secret).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
    expect(v.plain).toEqual(['RETAILOPS_S3_ENDPOINT'])
    expect(neededVariables(project(), ['shop-config'], false, env)).toEqual({secret: [], plain: [], warnings: []})
  })

  it('timeouts and starting deadlines', () => {
    expect(defaultTimeoutMs(project(), ['orders-db'])).toBe(3_600_000)
    expect(defaultTimeoutMs(project(), ['shop-config'])).toBe(3_600_000)
    const at = (s: string) => new Date(s)
    expect(startingDeadlineSeconds([at('2026-01-01T00:00:00Z'), at('2026-01-01T00:15:00Z')])).toBe(450)
    expect(startingDeadlineSeconds([at('2026-01-01T00:00:00Z'), at('2026-01-02T00:00:00Z')])).toBe(3600)
    expect(startingDeadlineSeconds([at('2026-01-01T00:00:00Z'), at('2026-01-01T00:01:00Z')])).toBe(60)
  })
})
