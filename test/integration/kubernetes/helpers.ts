import {readFileSync} from 'node:fs'
import path from 'node:path'

import {stringify, parse} from 'yaml'

import {kubeHttp} from '../../../src/kubernetes/client.js'
import {listManaged} from '../../../src/kubernetes/apply.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {randomSuffix as randomId} from '../../support/names.js'
import {TempProject} from '../../support/project.js'
import {sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
export const CONTEXT = sandbox.context

export {randomId}

export function digest(seed: string): string {
  return `sha256:${seed.repeat(64).slice(0, 64)}`
}

/**
 * A project of the kubernetes suite (test/support/project.ts): named t-kubernetes-<id>, which is
 * also its namespace; cleanup() deletes every namespace its deploys created.
 */
export type KubeProject = TempProject<Record<string, unknown>>

export function kubeProject(config: Record<string, unknown> = {}): KubeProject {
  const t = new TempProject(config, {prefix: 't-kubernetes'})
  t.onCleanup(async () => {
    const http = kubeHttp({context: CONTEXT})
    const list = await http.request<{items: KubeObject[]}>('GET', '/api/v1/namespaces', {
      query: {labelSelector: `app.kubernetes.io/part-of=${t.name}`},
    })
    await Promise.all(
      list.items.map((n) => http.request('DELETE', `/api/v1/namespaces/${n.metadata.name}`).catch(() => undefined)),
    )
  })
  return t
}

/** The project's namespace, or `<project>-<suffix>`. */
export function projectNs(t: KubeProject, suffix = ''): string {
  return suffix ? `${t.name}-${suffix}` : t.name
}

/** --image values for these services, all at one digest. */
export function projectImages(t: KubeProject, services: string[], seed = 'a'): string[] {
  return services.map((s) => `${s}=127.0.0.1:5000/${t.name}/${s}@${digest(seed)}`)
}

/** A kubeconfig (in the project folder) with a second context onto the same sandbox cluster: a "dedicated cluster" for tests. */
export function secondContext(t: KubeProject, name: string): string {
  const file = sandbox.kubeconfig.split(path.delimiter)[0]
  const kc = parse(readFileSync(file, 'utf8')) as {
    contexts: {name: string; context: Record<string, unknown>}[]
    'current-context'?: string
  }
  const base = kc.contexts.find((c) => c.name === CONTEXT)!
  kc.contexts.push({name, context: {...base.context}})
  t.writeFiles({'tenant-kubeconfig.yaml': stringify(kc)})
  return path.join(t.dir, 'tenant-kubeconfig.yaml')
}

/** resourceVersion and generation of everything carrying the applyset label. */
export async function snapshot(
  applySet: string,
  context = CONTEXT,
  kubeconfig?: string,
): Promise<Map<string, {rv?: string; gen?: number}>> {
  const live = await listManaged(kubeHttp({context, kubeconfig}), `retailops.dev/applyset=${applySet}`)
  return new Map([...live].map(([k, o]) => [k, {rv: o.metadata.resourceVersion, gen: o.metadata.generation}]))
}

/** A service expected to roll out: a generous deadline, since the sandbox is shared and kwok can lag under load. */
export const SECURE_SERVICE = {
  tier: 'operational',
  scaling: {minReplicas: 2, maxReplicas: 3},
  rollout: {progressDeadline: '2m'},
}

/** A service a test expects to fail: a short progress deadline so the failure comes quickly. */
export const FAILING_SERVICE = {...SECURE_SERVICE, rollout: {progressDeadline: '12s'}}

/** retailops.yaml of a test project: one environment in the sandbox cluster, namespace t-kubernetes-<id>. */
export function baseConfig(
  t: KubeProject,
  services: Record<string, unknown>,
  tenants: unknown[] = [],
): Record<string, unknown> {
  return {
    project: t.name,
    registry: {url: sandbox.registry, insecure: true},
    clusters: {main: {context: CONTEXT}},
    environments: {production: {cluster: 'main', namespace: projectNs(t)}},
    services,
    tenants,
  }
}
