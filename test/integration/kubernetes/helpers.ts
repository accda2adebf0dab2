import {mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {stringify, parse} from 'yaml'

import {loadConfig, type LoadedConfig} from '../../../src/config/load.js'
import {kubeHttp} from '../../../src/kubernetes/client.js'
import {listManaged} from '../../../src/kubernetes/apply.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {randomSuffix as randomId} from '../../support/names.js'
import {sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
export const CONTEXT = sandbox.context

export {randomId}

export function digest(seed: string): string {
  return `sha256:${seed.repeat(64).slice(0, 64)}`
}

/** A throwaway retailops project in a temp folder; `write` rewrites retailops.yaml (and overlays). */
export class TestProject {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'retailops-kube-'))
  readonly id = randomId()
  readonly project = `t-kubernetes-${this.id}`

  constructor(public config: Record<string, unknown>) {
    this.write()
  }

  ns(suffix = ''): string {
    return suffix ? `${this.project}-${suffix}` : this.project
  }

  write(): void {
    writeFileSync(path.join(this.dir, 'retailops.yaml'), stringify(this.config))
  }

  overlay(service: string, entries: unknown[] | undefined): void {
    mkdirSync(path.join(this.dir, 'overlays'), {recursive: true})
    const file = path.join(this.dir, 'overlays', `${service}.yaml`)
    if (entries) writeFileSync(file, stringify(entries))
    else rmSync(file, {force: true})
  }

  /** A kubeconfig with a second context onto the same sandbox cluster: a "dedicated cluster" for tests. */
  secondContext(name: string): string {
    const file = sandbox.kubeconfig.split(path.delimiter)[0]
    const kc = parse(readFileSync(file, 'utf8')) as {
      contexts: {name: string; context: Record<string, unknown>}[]
      'current-context'?: string
    }
    const base = kc.contexts.find((c) => c.name === CONTEXT)!
    kc.contexts.push({name, context: {...base.context}})
    const out = path.join(this.dir, 'tenant-kubeconfig.yaml')
    writeFileSync(out, stringify(kc))
    return out
  }

  async load(): Promise<LoadedConfig> {
    return loadConfig(path.join(this.dir, 'retailops.yaml'))
  }

  images(services: string[], seed = 'a'): string[] {
    return services.map((s) => `${s}=127.0.0.1:5000/${this.project}/${s}@${digest(seed)}`)
  }

  /** Deletes every namespace this project's deploys created (and the temp folder). */
  async cleanup(): Promise<void> {
    const http = kubeHttp({context: CONTEXT})
    const list = await http.request<{items: KubeObject[]}>('GET', '/api/v1/namespaces', {
      query: {labelSelector: `app.kubernetes.io/part-of=${this.project}`},
    })
    await Promise.all(
      list.items.map((n) => http.request('DELETE', `/api/v1/namespaces/${n.metadata.name}`).catch(() => undefined)),
    )
    rmSync(this.dir, {recursive: true, force: true})
  }
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
  t: TestProject,
  services: Record<string, unknown>,
  tenants: unknown[] = [],
): Record<string, unknown> {
  return {
    project: t.project,
    registry: {url: sandbox.registry, insecure: true},
    clusters: {main: {context: CONTEXT}},
    environments: {production: {cluster: 'main', namespace: t.ns()}},
    services,
    tenants,
  }
}
