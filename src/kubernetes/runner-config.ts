import {isMap, isScalar, parseDocument} from 'yaml'

import {formatKeyPath, splitCredentials} from '../config/credentials.js'
import {envReferenceName} from '../config/secret-ref.js'
import {type EnvVar, RUNNER_PUBLIC_KEY_FILE} from './runner-job.js'

/**
 * retailops.yaml as a job in the cluster reads it (runner-job.ts has the job's pod, CronJob and
 * bindings): its own module because it edits YAML, and the commands that only read a job's state
 * (`rollout status`) should not load the yaml library for it.
 */

export interface RunnerConfigOptions {
  namespace: string
  labels: Record<string, string>
  configMap: string
  credentialsSecret: string
  /** retailops.yaml as written. */
  configText: string
  /** Further Secret keys (e.g. the variables a job needs), referenced by the pod with secretKeyRef. */
  secretData?: Record<string, string>
  /** The public key a job verifies signatures with: stored next to retailops.yaml, which then names it in signing.publicKey. */
  publicKey?: string
}

/**
 * The copy a job reads: clusters.*.kubeconfig name files (or variables) of the workstation, and a
 * job talks to its own cluster with its ServiceAccount, so they go; a public key given is named
 * where the pod has it.
 */
function forTheJob(stripped: string, publicKey: string | undefined): string {
  const doc = parseDocument(stripped)
  const clusters = doc.get('clusters')
  if (isMap(clusters))
    for (const pair of clusters.items)
      doc.deleteIn(['clusters', isScalar(pair.key) ? pair.key.value : pair.key, 'kubeconfig'])
  if (publicKey !== undefined) doc.setIn(['signing', 'publicKey'], RUNNER_PUBLIC_KEY_FILE)
  return doc.toString()
}

/**
 * retailops.yaml for a job: the ConfigMap holds the file with its inline credentials replaced by
 * placeholders, the Secret holds the credentials (credentials.json, put back when the job loads
 * the file) and any further secret values. Answers the credentials' key paths, never their values.
 */
export function runnerConfigObjects(o: RunnerConfigOptions): {
  objects: [ReturnType<typeof secretObject>, ReturnType<typeof configMapObject>]
  credentials: string[]
  /** The pod's variables from the Secret (notification destinations' URLs and secrets): spread into the pod's env. */
  env: EnvVar[]
} {
  const {stripped, credentials} = splitCredentials(o.configText)
  const notify = notificationVariables(o.configText).filter((v) => process.env[v]?.trim())
  return {
    objects: [
      secretObject(o, {
        'credentials.json': JSON.stringify(credentials),
        ...Object.fromEntries(notify.map((v) => [`env.${v}`, process.env[v]!])),
        ...o.secretData,
      }),
      configMapObject(o, forTheJob(stripped, o.publicKey)),
    ],
    credentials: credentials.map((c) => formatKeyPath(c.path)),
    env: notify.map((v) => ({name: v, valueFrom: {secretKeyRef: {name: o.credentialsSecret, key: `env.${v}`}}})),
  }
}

/**
 * The variables retailops.yaml's notification destinations read (`env://NAME` in url and secret):
 * a job that raises release events (a detached rollout, a scheduled pre-warm or drill) notifies
 * too, so their values go into the job's Secret, copied from this CLI's environment, and reach the
 * pod as secretKeyRef, never as values in the pod spec.
 */
export function notificationVariables(configText: string): string[] {
  const destinations = parseDocument(configText).toJS() as {
    notifications?: {destinations?: Record<string, {url?: unknown; secret?: unknown} | null>}
  } | null
  const names = new Set<string>()
  for (const d of Object.values(destinations?.notifications?.destinations ?? {}))
    for (const ref of [d?.url, d?.secret]) {
      const name = typeof ref === 'string' ? envReferenceName(ref) : undefined
      if (name) names.add(name)
    }
  return [...names].sort()
}

function secretObject(o: RunnerConfigOptions, stringData: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {name: o.credentialsSecret, namespace: o.namespace, labels: o.labels},
    type: 'Opaque',
    stringData,
  }
}

function configMapObject(o: RunnerConfigOptions, stripped: string) {
  const data: Record<string, string> = {
    'retailops.yaml': stripped,
    ...(o.publicKey !== undefined ? {[RUNNER_PUBLIC_KEY_FILE]: o.publicKey} : {}),
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {name: o.configMap, namespace: o.namespace, labels: o.labels},
    data,
  }
}
