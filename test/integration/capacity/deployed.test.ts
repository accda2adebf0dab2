// prewarm on the objects `retailops deploy` renders and server-side applies (src/deploy and
// src/kubernetes/apply.ts): it finds their Deployments and HPAs, raises the floors over the
// deploy's HPA behaviour, and restores exactly what the deploy applied.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {renderManifests} from '../../../src/deploy/render.js'
import {applyObjects} from '../../../src/kubernetes/apply.js'
import {kubeClients} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {cli, CONTEXT, hours, randomName} from './helpers.js'
import {tempProject, type TempProject} from '../../support/project.js'

const NS = randomName('t-capacity')

const CONFIG = `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
clusters: {main: {context: ${CONTEXT}}}
environments:
  test: {cluster: main, namespace: ${NS}, production: false}
services:
  catalog:
    tier: operational
    resources: {requests: {cpu: 50m, memory: 64Mi}}
    scaling: {rpsPerPod: 20, targetUtilization: 0.5, minReplicas: 2, maxReplicas: 10}
  checkout:
    tier: revenue-critical
    resources: {requests: {cpu: 50m, memory: 64Mi}}
    scaling: {rpsPerPod: 10, targetUtilization: 0.5, minReplicas: 2, maxReplicas: 12}
campaigns:
  - name: launch
    start: "${hours(3)}"
    end: "${hours(10)}"
    buffer: 0.2
    nodeHeadroom: false
    peak: {catalog: {rps: 40}, checkout: {rps: 10}}
`

describe('prewarm on what retailops deploy applied', () => {
  const k = () => kubeClients({context: CONTEXT})
  let project: TempProject
  let http: KubeHttp
  let rendered: Awaited<ReturnType<typeof renderManifests>>['targets'][number]['objects']
  const before = new Map<string, unknown>()
  const hpaSpec = async (name: string) =>
    (
      await http.request<{spec: Record<string, unknown>}>(
        'GET',
        `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers/${name}`,
      )
    ).spec

  beforeAll(async () => {
    project = await tempProject(CONFIG, {}, 't-capacity')
    http = new KubeHttp(k().kc)
    const plan = renderManifests({
      project: await project.load(),
      images: {
        catalog: {service: 'catalog', ref: '127.0.0.1:5000/shop/catalog:it', source: 'flag'},
        checkout: {service: 'checkout', ref: '127.0.0.1:5000/shop/checkout:it', source: 'flag'},
      },
    })
    rendered = plan.targets[0].objects
    const report = await applyObjects(http, rendered, {fieldManager: 'retailops'})
    expect(report.failed).toEqual([])
    for (const name of ['catalog', 'checkout']) before.set(name, await hpaSpec(name))
  })

  afterAll(async () => {
    await k()
      .core.deleteNamespace({name: NS})
      .catch(() => {})
    http?.close()
  })

  it("raises the deployed HPAs' floors over their behaviour, reaches Ready, and restores them exactly", async () => {
    expect((before.get('catalog') as {behavior?: unknown}).behavior).toBeDefined()
    const r = await cli(['prewarm', '--campaign', 'launch', '--no-warm', '--timeout', '2m'], project.dir)
    expect(r.exitCode, r.stderr).toBe(0)
    const ready = Object.fromEntries(r.doc!.result.apply.ready.map((x: {service: string}) => [x.service, x]))
    expect(ready.catalog).toMatchObject({deployment: 'catalog', desired: 5, ready: 5})
    expect(ready.checkout).toMatchObject({deployment: 'checkout', desired: 4, ready: 4})
    const raised = (await hpaSpec('catalog')) as {
      minReplicas: number
      behavior: {scaleDown: {selectPolicy: string; stabilizationWindowSeconds: number}; scaleUp: unknown}
    }
    expect(raised.minReplicas).toBe(5)
    expect(raised.behavior.scaleDown.selectPolicy).toBe('Disabled')
    // The deploy's own scale-down settings and scale-up are kept while scale-down is held.
    expect(raised.behavior.scaleDown.stabilizationWindowSeconds).toBe(300)
    expect(raised.behavior.scaleUp).toEqual((before.get('catalog') as {behavior: {scaleUp: unknown}}).behavior.scaleUp)

    // A deploy during the campaign does not silently drop the floor: its apply conflicts, naming the pre-warm.
    const during = await applyObjects(
      http,
      rendered.filter((o) => o.kind === 'HorizontalPodAutoscaler'),
      {fieldManager: 'retailops', retries: 1},
    )
    expect(during.failed.map((f) => f.statusCode)).toEqual([409, 409])
    expect(during.failed[0].conflicts?.join(' ')).toContain('retailops-prewarm')

    const restored = await cli(['prewarm', 'restore', '--campaign', 'launch'], project.dir)
    expect(restored.exitCode, restored.stderr).toBe(0)
    for (const name of ['catalog', 'checkout']) expect(await hpaSpec(name)).toEqual(before.get(name))
    // After the restore the values agree again, and the deploy's HPAs apply cleanly.
    const after = await applyObjects(
      http,
      rendered.filter((o) => o.kind === 'HorizontalPodAutoscaler'),
      {fieldManager: 'retailops'},
    )
    expect(after.failed).toEqual([])
  })
})
