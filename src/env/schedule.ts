import {readFile} from 'node:fs/promises'

import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {kubeHttp} from '../kubernetes/client.js'
import {checkTimeZone, nextRuns, parseCron} from '../kubernetes/cron.js'
import {FIELD_MANAGER_ENV, LABEL, MANAGED_BY} from '../kubernetes/labels.js'
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
import {PREVIEW} from './names.js'

/**
 * `env sweep --schedule CRON`: a CronJob in the environment's namespace that runs `retailops env
 * sweep` with the runner image by digest (verified before anything is created), Pod Security
 * `restricted`. The sweep lists namespaces and deletes expired previews: RBAC cannot limit a
 * delete to namespaces by label, so its ClusterRole may list, get and delete namespaces and a
 * ValidatingAdmissionPolicy (matched on the sweep's ServiceAccount only) refuses every namespace
 * delete but one of this project's previews.
 */

const COMPONENT = 'preview-sweep'

export function sweepNames(project: string, namespace: string) {
  const cut = (s: string) => s.slice(0, 253).replace(/-+$/, '')
  return {
    cronJob: `retailops-env-sweep-${project}`.slice(0, 52).replace(/-+$/, ''),
    serviceAccount: 'retailops-env-sweep',
    clusterRole: cut(`retailops-env-sweep-${namespace}-${project}`),
    policy: cut(`retailops-env-sweep-${namespace}-${project}`),
    configMap: cut(`retailops-env-sweep-${project}-config`),
    credentials: cut(`retailops-env-sweep-${project}-credentials`),
  }
}

export function sweepRbac(project: string, namespace: string): KubeRef[] {
  const n = sweepNames(project, namespace)
  const labels = {[LABEL.managedBy]: MANAGED_BY, [LABEL.component]: COMPONENT, [PREVIEW.of]: project}
  const serviceAccount = {name: n.serviceAccount, namespace}
  const label = PREVIEW.of
  return [
    serviceAccountObject(n.serviceAccount, namespace, {[LABEL.managedBy]: MANAGED_BY, [LABEL.component]: COMPONENT}),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {name: n.clusterRole, labels},
      rules: [{apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'delete']}],
    } as KubeRef,
    bindingObject({name: n.clusterRole, labels, roleKind: 'ClusterRole', role: n.clusterRole, serviceAccount}),
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: {name: n.policy, labels},
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{apiGroups: [''], apiVersions: ['v1'], operations: ['DELETE'], resources: ['namespaces']}],
        },
        matchConditions: [
          {
            name: 'preview-sweep',
            expression: `request.userInfo.username == 'system:serviceaccount:${namespace}:${n.serviceAccount}'`,
          },
        ],
        validations: [
          {
            expression: `has(oldObject.metadata.labels) && '${label}' in oldObject.metadata.labels && oldObject.metadata.labels['${label}'] == '${project}'`,
            messageExpression: `'the preview sweep of ${project} may only delete its previews\\' namespaces, not ' + request.name`,
            reason: 'Forbidden',
          },
        ],
      },
    } as KubeRef,
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: {name: n.policy, labels},
      spec: {policyName: n.policy, validationActions: ['Deny']},
    } as KubeRef,
  ]
}

export interface SweepScheduleResult {
  namespace: string
  cronJob: string
  schedule: string
  timeZone: string
  nextRuns: string[]
  command: string[]
  serviceAccount: string
  runnerImage: string
  objects: string[]
}

export async function scheduleSweep(
  options: {
    project: LoadedConfig
    env: ResolvedEnvironment
    cron: string
    timeZone?: string
    runnerImage?: string
    now?: Date
  },
  ctx: RunContext,
): Promise<SweepScheduleResult> {
  const {project, env} = options
  const schedule = parseCron(options.cron)
  const timeZone = checkTimeZone(options.timeZone ?? 'Etc/UTC')
  const runner = await verifiedRunnerImage(project, options.runnerImage, ctx)
  const p = project.config.project
  const home = env.namespace
  const n = sweepNames(p, home)
  const labels = {[LABEL.managedBy]: MANAGED_BY, [LABEL.component]: COMPONENT, [PREVIEW.of]: p}
  const args = [
    'env',
    'sweep',
    '--environment',
    env.name,
    '--namespace',
    home,
    '--context',
    IN_CLUSTER_CONTEXT,
    '--yes',
  ]
  const config = runnerConfigObjects({
    namespace: home,
    labels,
    configMap: n.configMap,
    credentialsSecret: n.credentials,
    configText: await readFile(project.file, 'utf8'),
  })
  const runs = nextRuns(schedule, timeZone, options.now ?? new Date(), 3)
  const objects = [
    ...sweepRbac(p, home),
    ...config.objects,
    runnerCronJob({
      name: n.cronJob,
      namespace: home,
      labels,
      schedule: schedule.expression,
      timeZone,
      startingDeadlineSeconds: 3600,
      activeDeadlineSeconds: 1800,
      pod: runnerPodSpec({
        serviceAccount: n.serviceAccount,
        image: runner.image,
        args,
        configMap: n.configMap,
        credentialsSecret: n.credentials,
      }),
    }),
  ]
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  const task = ctx.out.task(`Scheduling the preview sweep (${schedule.expression}, ${timeZone}) in ${home}`)
  const applied = await applyScheduleObjects(http, objects, FIELD_MANAGER_ENV, task)
  task.succeed(`Scheduled CronJob ${n.cronJob} in ${home}`)
  return {
    namespace: home,
    cronJob: n.cronJob,
    schedule: schedule.expression,
    timeZone,
    nextRuns: runs.map((d) => d.toISOString()),
    command: ['retailops', ...args],
    serviceAccount: n.serviceAccount,
    runnerImage: runner.image,
    objects: applied,
  }
}

export async function unscheduleSweep(project: LoadedConfig, env: ResolvedEnvironment): Promise<string[]> {
  const n = sweepNames(project.config.project, env.namespace)
  const home = env.namespace
  const http = kubeHttp({context: env.context, kubeconfig: env.kubeconfig})
  try {
    return await deleteJobObjects(http, [
      {apiVersion: 'batch/v1', kind: 'CronJob', metadata: {name: n.cronJob, namespace: home}},
      {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: n.configMap, namespace: home}},
      {apiVersion: 'v1', kind: 'Secret', metadata: {name: n.credentials, namespace: home}},
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: {name: n.policy},
      },
      {apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', metadata: {name: n.policy}},
      {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: {name: n.clusterRole}},
      {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: {name: n.clusterRole}},
      {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: n.serviceAccount, namespace: home}},
    ])
  } finally {
    http.close()
  }
}
