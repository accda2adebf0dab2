/**
 * The project the deploy benchmarks deploy: N services for M tenants in dedicated namespaces
 * (bench/deploy.ts, bench/apply-floor.ts), written to a temporary folder as retailops.yaml.
 */
import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {stringify} from 'yaml'

import {kubeHttp} from '../../src/kubernetes/client.js'

const BASE_SERVICES = ['catalog', 'cart', 'inventory', 'payments', 'orders', 'checkout', 'search']
export const DIGEST = `sha256:${'e'.repeat(64)}`

export function serviceNames(count: number): string[] {
  return Array.from({length: count}, (_, i) =>
    i < BASE_SERVICES.length ? BASE_SERVICES[i] : `svc${String(i + 1).padStart(2, '0')}`,
  )
}

export interface BenchProject {
  services: string[]
  tenants: number
  context: string
}

export function projectConfig(project: string, shape: BenchProject): Record<string, unknown> {
  return {
    project,
    registry: {url: '127.0.0.1:5000', insecure: true},
    clusters: {main: {context: shape.context}},
    environments: {bench: {cluster: 'main', namespace: `${project}-shared`}},
    services: Object.fromEntries(
      shape.services.map((s) => [
        s,
        {
          tier: ['payments', 'orders', 'checkout'].includes(s) ? 'revenue-critical' : 'operational',
          scaling: {minReplicas: 2, maxReplicas: 4},
          dependsOn:
            s === 'checkout' ? ['payments', 'orders', 'inventory'].filter((d) => shape.services.includes(d)) : [],
        },
      ]),
    ),
    tenants: Array.from({length: shape.tenants}, (_, i) => ({
      name: `t${String(i + 1).padStart(3, '0')}`,
      model: 'dedicated-namespace',
    })),
  }
}

/** A folder holding the project's retailops.yaml. */
export function writeProject(project: string, shape: BenchProject): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retailops-bench-'))
  writeFileSync(path.join(dir, 'retailops.yaml'), stringify(projectConfig(project, shape)))
  return dir
}

/** --image flags pinning every service to a digest (nothing is pulled: no scheduler, or kwok nodes). */
export const imageFlags = (project: string, services: string[]): string[] =>
  services.flatMap((s) => ['--image', `${s}=127.0.0.1:5000/${project}/${s}@${DIGEST}`])

/** Deletes the project's namespaces (by its part-of label) and waits until they are gone. */
export async function deleteProject(context: string, project: string): Promise<void> {
  const http = kubeHttp({context})
  const selector = `app.kubernetes.io/part-of=${project}`
  try {
    const list = await http.request<{items: {metadata: {name: string}}[]}>('GET', '/api/v1/namespaces', {
      query: {labelSelector: selector},
    })
    await Promise.all(
      list.items.map((n) => http.request('DELETE', `/api/v1/namespaces/${n.metadata.name}`).catch(() => undefined)),
    )
    for (let i = 0; i < 900; i++) {
      const left = await http.request<{items: unknown[]}>('GET', '/api/v1/namespaces', {
        query: {labelSelector: selector},
      })
      if (left.items.length === 0) return
      await new Promise((r) => setTimeout(r, 1000))
    }
    throw new Error(`namespaces of ${project} were not deleted within 15 minutes`)
  } finally {
    http.close()
  }
}
