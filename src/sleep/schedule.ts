import {readFile} from 'node:fs/promises'

import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {UsageError} from '../errors/index.js'
import {kubeHttp} from '../kubernetes/client.js'
import {checkTimeZone, nextRuns, parseCron} from '../kubernetes/cron.js'
import {FIELD_MANAGER_SLEEP, LABEL, MANAGED_BY} from '../kubernetes/labels.js'
import {
  applyScheduleObjects,
  bindingObject,
  deleteJobObjects,
  IN_CLUSTER_CONTEXT,
  type KubeRef,
  runnerCronJob,
  runnerPodSpec,
  serviceAccountObject,
} from '../kubernetes/runner-job.js'
import {runnerConfigObjects} from '../kubernetes/runner-config.js'
import {verifiedRunnerImage} from '../runner/resolve.js'
import type {RunContext} from '../ui/context.js'
import {environmentNamespaces, refuseProduction} from './sleep.js'
import {SLEEP_STATE} from './state.js'

/**
 * `sleep --at "Mon-Fri 20:00-07:00" --timezone Europe/Berlin`: two CronJobs in the environment's
 * namespace, one running `retailops sleep` at the first time and one running `retailops wake` at
 * the second, on the days named (the days the environment is used: on Mon-Fri it sleeps every
 * weeknight and from Friday evening to Monday morning), in the time zone given (spec.timeZone).
 * Both run the runner image by digest, verified before anything is created, Pod Security
 * `restricted`, as a ServiceAccount that may only read and scale the project's Deployments and
 * HPAs and write the sleep state ConfigMap, in the environment's namespaces.
 */

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']
const EXAMPLES = '"Mon-Fri 20:00-07:00", "daily 22:00-06:00", "Mon,Wed,Fri 19:30-08:00", "Sat-Sun 00:00-23:59"'

export interface SleepWindow {
  /** The cron day-of-week field: "1-5", "*", "1,3,5". */
  days: string
  sleep: {hour: number; minute: number}
  wake: {hour: number; minute: number}
  sleepCron: string
  wakeCron: string
}

function badAt(at: string, why: string): UsageError {
  return new UsageError(`--at "${at}": ${why}.`, {
    nextSteps: [
      `Give DAYS SLEEP-WAKE with 24-hour times, e.g. ${EXAMPLES}; days are Mon…Sun, ranges and lists, or daily.`,
    ],
  })
}

function day(at: string, name: string): number {
  const i = DAYS.indexOf(name.toLowerCase().slice(0, 3))
  if (i < 0 || !'sunday monday tuesday wednesday thursday friday saturday'.split(' ')[i].startsWith(name.toLowerCase()))
    throw badAt(at, `"${name}" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`)
  return i
}

function time(at: string, text: string): {hour: number; minute: number} {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text)
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) throw badAt(at, `"${text}" is not a time HH:MM (00:00 to 23:59)`)
  return {hour: Number(m[1]), minute: Number(m[2])}
}

/** Parses --at; throws a usage error naming what is wrong. Pure. */
export function parseSleepWindow(at: string): SleepWindow {
  const parts = at.trim().split(/\s+/)
  if (parts.length === 0 || parts.length > 2 || parts[0] === '') throw badAt(at, 'expected DAYS SLEEP-WAKE')
  const [daysText, range] = parts.length === 2 ? parts : ['daily', parts[0]]
  let days: string
  if (/^(daily|every-?day|\*)$/i.test(daysText)) days = '*'
  else {
    const items = daysText.split(',').map((item) => {
      const [from, to, extra] = item.split('-')
      if (extra !== undefined || from === '') throw badAt(at, `"${item}" is not a day or a range of days`)
      if (to === undefined) return String(day(at, from))
      const a = day(at, from)
      const b = day(at, to)
      // A range over the week's end (Sat-Sun, Fri-Mon) wraps around.
      return b < a ? `${a}-6,0-${b}` : `${a}-${b}`
    })
    days = items.join(',')
  }
  const times = range.split('-')
  if (times.length !== 2) throw badAt(at, `"${range}" is not SLEEP-WAKE, e.g. 20:00-07:00`)
  const sleep = time(at, times[0])
  const wake = time(at, times[1])
  if (sleep.hour === wake.hour && sleep.minute === wake.minute)
    throw badAt(at, 'it sleeps and wakes at the same minute')
  const sleepCron = `${sleep.minute} ${sleep.hour} * * ${days}`
  const wakeCron = `${wake.minute} ${wake.hour} * * ${days}`
  parseCron(sleepCron)
  parseCron(wakeCron)
  return {days, sleep, wake, sleepCron, wakeCron}
}

export function sleepScheduleNames(environment: string) {
  const cut = (s: string, n: number) => s.slice(0, n).replace(/-+$/, '')
  const env = environment.toLowerCase().replace(/[^a-z0-9-]+/g, '-')
  return {
    sleep: cut(`retailops-sleep-${env}`, 52),
    wake: cut(`retailops-wake-${env}`, 52),
    serviceAccount: 'retailops-sleep',
    role: cut(`retailops-sleep-${env}`, 253),
    configMap: cut(`retailops-sleep-${env}-config`, 253),
    credentials: cut(`retailops-sleep-${env}-credentials`, 253),
  }
}

const COMPONENT = 'sleep-schedule'

/** Per namespace of the environment: read and scale the project's Deployments, read and restore HPA bounds and ScaledObject pauses, write only the sleep state. */
export function sleepRbac(environment: string, home: string, namespaces: string[]): KubeRef[] {
  const n = sleepScheduleNames(environment)
  const labels = {
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.component]: COMPONENT,
    'retailops.dev/sleep-environment': environment,
  }
  const serviceAccount = {name: n.serviceAccount, namespace: home}
  const objects: KubeRef[] = [
    serviceAccountObject(n.serviceAccount, home, {[LABEL.managedBy]: MANAGED_BY, [LABEL.component]: COMPONENT}),
  ]
  for (const ns of namespaces) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: {name: n.role, namespace: ns, labels},
        rules: [
          {apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch']},
          {apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'list', 'patch']},
          // KEDA's ScaledObjects are paused while asleep (no KEDA in the cluster: the rule grants nothing).
          {apiGroups: ['keda.sh'], resources: ['scaledobjects'], verbs: ['get', 'list', 'patch']},
          // The state's create cannot be limited by name; every other write to ConfigMaps is.
          {apiGroups: [''], resources: ['configmaps'], verbs: ['create']},
          {apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'patch', 'delete'], resourceNames: [SLEEP_STATE]},
        ],
      } as KubeRef,
      bindingObject({name: n.role, namespace: ns, labels, roleKind: 'Role', role: n.role, serviceAccount}),
    )
  }
  return objects
}

export interface SleepScheduleOptions {
  project: LoadedConfig
  env: ResolvedEnvironment
  at: string
  timeZone?: string
  runnerImage?: string
  now?: Date
}

export interface ScheduledSleepJob {
  name: string
  schedule: string
  timeZone: string
  nextRuns: string[]
  command: string[]
}

export interface SleepScheduleResult {
  environment: string
  namespace: string
  sleep: ScheduledSleepJob
  wake: ScheduledSleepJob
  serviceAccount: string
  runnerImage: string
  objects: string[]
}

/** Everything checked before anything is written: production, --at, the time zone, then the runner image (verified). */
export async function scheduleSleep(options: SleepScheduleOptions, ctx: RunContext): Promise<SleepScheduleResult> {
  const {project, env} = options
  refuseProduction(env, 'sleep --at')
  const window = parseSleepWindow(options.at)
  const timeZone = checkTimeZone(options.timeZone ?? 'Etc/UTC')
  const runner = await verifiedRunnerImage(project, options.runnerImage, ctx)
  const namespaces = environmentNamespaces(project, env)
  const home = env.namespace
  const n = sleepScheduleNames(env.name)
  const labels = {
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.component]: COMPONENT,
    'retailops.dev/sleep-environment': env.name,
  }
  const common = ['--environment', env.name, '--namespace', env.namespace, '--context', IN_CLUSTER_CONTEXT, '--yes']
  const config = runnerConfigObjects({
    namespace: home,
    labels,
    configMap: n.configMap,
    credentialsSecret: n.credentials,
    configText: await readFile(project.file, 'utf8'),
  })
  const now = options.now ?? new Date()
  const cron = (name: string, schedule: string, args: string[]) =>
    runnerCronJob({
      name,
      namespace: home,
      labels,
      schedule,
      timeZone,
      // A sleep or wake missed by more than an hour waits for the next one.
      startingDeadlineSeconds: 3600,
      activeDeadlineSeconds: 1800,
      backoffLimit: 2,
      pod: runnerPodSpec({
        serviceAccount: n.serviceAccount,
        image: runner.image,
        args,
        configMap: n.configMap,
        credentialsSecret: n.credentials,
      }),
    })
  const sleepArgs = ['sleep', ...common]
  const wakeArgs = ['wake', ...common]
  const objects = [
    ...sleepRbac(env.name, home, namespaces),
    ...config.objects,
    cron(n.sleep, window.sleepCron, sleepArgs),
    cron(n.wake, window.wakeCron, wakeArgs),
  ]
  const task = ctx.out.task(`Scheduling sleep (${window.sleepCron}) and wake (${window.wakeCron}) in ${timeZone}`)
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  const applied = await applyScheduleObjects(http, objects, FIELD_MANAGER_SLEEP, task)
  task.succeed(`Scheduled CronJobs ${n.sleep} and ${n.wake} in ${home}`)
  const job = (name: string, schedule: string, args: string[]): ScheduledSleepJob => ({
    name,
    schedule,
    timeZone,
    nextRuns: nextRuns(parseCron(schedule), timeZone, now, 3).map((d) => d.toISOString()),
    command: ['retailops', ...args],
  })
  return {
    environment: env.name,
    namespace: home,
    sleep: job(n.sleep, window.sleepCron, sleepArgs),
    wake: job(n.wake, window.wakeCron, wakeArgs),
    serviceAccount: n.serviceAccount,
    runnerImage: runner.image,
    objects: applied,
  }
}

/** Deletes the schedule's CronJobs, config, credentials and permissions (not the saved state: an asleep environment stays wakeable). */
export async function unscheduleSleep(project: LoadedConfig, env: ResolvedEnvironment): Promise<string[]> {
  const n = sleepScheduleNames(env.name)
  const home = env.namespace
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  try {
    return await deleteJobObjects(http, [
      {apiVersion: 'batch/v1', kind: 'CronJob', metadata: {name: n.sleep, namespace: home}},
      {apiVersion: 'batch/v1', kind: 'CronJob', metadata: {name: n.wake, namespace: home}},
      {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: n.configMap, namespace: home}},
      {apiVersion: 'v1', kind: 'Secret', metadata: {name: n.credentials, namespace: home}},
      ...environmentNamespaces(project, env).flatMap((ns) => [
        {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: n.role, namespace: ns}},
        {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: n.role, namespace: ns}},
      ]),
      {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: n.serviceAccount, namespace: home}},
    ])
  } finally {
    http.close()
  }
}
