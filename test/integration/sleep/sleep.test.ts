// retailops sleep / wake against the sandbox's real kube-apiserver and kube-controller-manager:
// a non-production environment's Deployments go to 0 and come back exactly (replicas, HPA bounds
// and behavior), also after the CLI was SIGKILLed between saving and scaling, and after sleeping
// twice; the HPA controller really leaves a target at 0 alone (ScalingDisabled); production is
// refused and bad --at input is refused before anything is written; KEDA ScaledObjects are paused at
// 0 while asleep and their pause put back exactly (KEDA's CRDs are in the sandbox, not its operator).
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {kubeHttp} from '../../../src/kubernetes/client.js'
import {runCli, runCliJson, startCli} from '../../support/cli.js'
import {randomName} from '../../support/names.js'
import {tempProject, type TempProject} from '../../support/project.js'
import {eventually, sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
const PROJECT = randomName('t-sleep')
const STAGING = `${PROJECT}-staging`
const PROD = `${PROJECT}-prod`
const OTHER = `${PROJECT}-other`
const STATE = 'retailops-sleep-state'

const yaml = `
project: ${PROJECT}
registry: {url: "${sandbox.registry}", insecure: true}
clusters: {main: {context: ${sandbox.context}}}
environments:
  staging: {cluster: main, namespace: ${STAGING}, production: false}
  production: {cluster: main, namespace: ${PROD}}
defaultEnvironment: staging
services:
  catalog: {tier: operational}
`

type Obj = {
  metadata: {name: string; labels?: Record<string, string>; resourceVersion?: string; generation?: number}
  spec?: Record<string, unknown>
  status?: {conditions?: {type: string; status: string; reason?: string}[]; observedGeneration?: number}
  data?: Record<string, string>
}

/** Deployments: name → replicas; a few of them under an HPA with bounds and a behavior. */
const DEPLOYMENTS: Record<string, number> = {
  catalog: 3,
  cart: 1,
  checkout: 4,
  search: 0,
  ...Object.fromEntries(Array.from({length: 10}, (_, i) => [`worker-${i}`, (i % 3) + 1])),
}
const HPAS: Record<string, {minReplicas?: number; maxReplicas: number; behavior?: unknown}> = {
  catalog: {minReplicas: 2, maxReplicas: 6, behavior: {scaleDown: {stabilizationWindowSeconds: 120}}},
  checkout: {maxReplicas: 8},
}

describe('sleep and wake', () => {
  const http = kubeHttp({context: sandbox.context})
  let project: TempProject
  const cli = (args: string[]) => runCliJson(args, {cwd: project.dir})

  const list = async (ns: string, kind: 'deployments' | 'horizontalpodautoscalers') =>
    (
      await http.request<{items: Obj[]}>(
        'GET',
        `/apis/${kind === 'deployments' ? 'apps/v1' : 'autoscaling/v2'}/namespaces/${ns}/${kind}`,
      )
    ).items
  /** What sleep and wake must restore exactly: each Deployment's replicas, each HPA's bounds and behavior. */
  const workload = async (ns: string) => {
    const out: Record<string, unknown> = {}
    for (const d of await list(ns, 'deployments')) out[`Deployment/${d.metadata.name}`] = d.spec?.replicas
    for (const h of await list(ns, 'horizontalpodautoscalers'))
      out[`HPA/${h.metadata.name}`] = {
        min: h.spec?.minReplicas,
        max: h.spec?.maxReplicas,
        behavior: h.spec?.behavior,
      }
    return out
  }
  /** Every Deployment and HPA of the namespace as JSON, minus what controllers change on their own (status, and the resourceVersion a status update bumps). */
  const objects = async (ns: string) =>
    JSON.stringify(
      [...(await list(ns, 'deployments')), ...(await list(ns, 'horizontalpodautoscalers'))].map((o) => {
        const {resourceVersion: _rv, managedFields: _mf, ...metadata} = o.metadata as Record<string, unknown>
        return {metadata, spec: o.spec}
      }),
    )
  const state = () =>
    http.request<Obj>('GET', `/api/v1/namespaces/${STAGING}/configmaps/${STATE}`).then(
      (cm) => cm,
      () => undefined,
    )

  const seed = async (ns: string) => {
    await http.request('POST', '/api/v1/namespaces', {
      body: {metadata: {name: ns, labels: {'retailops.dev/test': 'sleep'}}},
    })
    for (const [name, replicas] of Object.entries(DEPLOYMENTS)) {
      const labels = {'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': PROJECT}
      await http.request('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
        body: {
          metadata: {name, labels},
          spec: {
            replicas,
            selector: {matchLabels: {'app.kubernetes.io/name': name}},
            template: {
              metadata: {labels},
              spec: {
                containers: [
                  {
                    name,
                    image: `${sandbox.registry}/${PROJECT}/${name}@sha256:${'a'.repeat(64)}`,
                    resources: {requests: {cpu: '10m', memory: '16Mi'}},
                  },
                ],
              },
            },
          },
        },
      })
    }
    for (const [name, h] of Object.entries(HPAS)) {
      await http.request('POST', `/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers`, {
        body: {
          metadata: {name, labels: {'app.kubernetes.io/part-of': PROJECT}},
          spec: {
            scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name},
            ...h,
            metrics: [
              {type: 'Resource', resource: {name: 'cpu', target: {type: 'Utilization', averageUtilization: 70}}},
            ],
          },
        },
      })
    }
  }

  let before: Record<string, unknown>
  let prodBefore: string

  beforeAll(async () => {
    project = await tempProject(yaml, {}, 't-sleep')
    await seed(STAGING)
    await seed(PROD)
    // A Deployment of another project in the staging namespace: never touched.
    await http.request('POST', `/apis/apps/v1/namespaces/${STAGING}/deployments`, {
      body: {
        metadata: {name: 'foreign', labels: {'app.kubernetes.io/name': 'foreign'}},
        spec: {
          replicas: 2,
          selector: {matchLabels: {'app.kubernetes.io/name': 'foreign'}},
          template: {
            metadata: {labels: {'app.kubernetes.io/name': 'foreign'}},
            spec: {containers: [{name: 'foreign', image: `${sandbox.registry}/foreign@sha256:${'b'.repeat(64)}`}]},
          },
        },
      },
    })
    await http.request('POST', '/api/v1/namespaces', {body: {metadata: {name: OTHER}}}).catch(() => undefined)
    // The controllers' own first writes (revision annotations) land before anything is compared.
    for (const ns of [STAGING, PROD])
      await eventually(`the Deployments of ${ns} to be observed`, async () => {
        const all = await list(ns, 'deployments')
        const settled = all.every(
          (d) =>
            (d.metadata as {annotations?: Record<string, string>}).annotations?.['deployment.kubernetes.io/revision'] &&
            d.status?.observedGeneration === d.metadata.generation,
        )
        return settled ? true : undefined
      })
    before = await workload(STAGING)
    prodBefore = await objects(PROD)
  })

  afterAll(async () => {
    for (const ns of [STAGING, PROD, OTHER])
      await http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
    http.close()
    await project?.remove()
  })

  it('refuses production (exit 33) and bad --at or --timezone (exit 2) before anything is written', async () => {
    const refused = await cli(['sleep', '--environment', 'production'])
    expect(refused.exitCode).toBe(33)
    expect(refused.doc.error.code).toBe('PRODUCTION_REFUSED')
    const wake = await cli(['wake', '--environment', 'production'])
    expect(wake.exitCode).toBe(33)
    const scheduled = await cli(['sleep', '--environment', 'production', '--at', 'Mon-Fri 20:00-07:00'])
    expect(scheduled.exitCode).toBe(33)
    for (const [at, fragment] of [
      ['Mon-Fry 20:00-07:00', '"Fry" is not a day'],
      ['Mon-Fri 25:00-07:00', '"25:00" is not a time'],
      ['Mon-Fri 20:00-20:00', 'same minute'],
      ['Mon-Fri 20:00', 'SLEEP-WAKE'],
    ]) {
      const bad = await cli(['sleep', '--at', at])
      expect(bad.exitCode, at).toBe(2)
      expect(bad.doc.error.message).toContain(fragment)
    }
    const zone = await cli(['sleep', '--at', 'Mon-Fri 20:00-07:00', '--timezone', 'Europe/Berlinn'])
    expect(zone.exitCode).toBe(2)
    // Nothing anywhere: production as it was, no state, no CronJob, no ServiceAccount.
    expect(await objects(PROD)).toBe(prodBefore)
    expect(await workload(STAGING)).toEqual(before)
    expect(await state()).toBeUndefined()
    const cronJobs = await http.request<{items: unknown[]}>('GET', `/apis/batch/v1/namespaces/${STAGING}/cronjobs`)
    expect(cronJobs.items).toHaveLength(0)
    const accounts = await http.request<{items: Obj[]}>('GET', `/api/v1/namespaces/${STAGING}/serviceaccounts`)
    expect(accounts.items.map((a) => a.metadata.name)).not.toContain('retailops-sleep')
  })

  it('sleeps: saves first, scales every Deployment of the project to 0, leaves HPAs, other projects and production alone', async () => {
    const r = await cli(['sleep', '--environment', 'staging'])
    expect(r.exitCode, r.stderr).toBe(0)
    const now = await workload(STAGING)
    for (const name of Object.keys(DEPLOYMENTS)) expect(now[`Deployment/${name}`]).toBe(0)
    // HPAs untouched; the foreign Deployment untouched; production untouched.
    for (const name of Object.keys(HPAS)) expect(now[`HPA/${name}`]).toEqual(before[`HPA/${name}`])
    expect(now['Deployment/foreign']).toBe(2)
    expect(await objects(PROD)).toBe(prodBefore)
    const saved = JSON.parse((await state())!.data!['state.json']) as {targets: Record<string, Record<string, unknown>>}
    expect(saved.targets['Deployment/catalog'].replicas).toEqual({present: true, value: 3})
    expect(saved.targets['Deployment/search'].replicas).toEqual({present: true, value: 0})
    expect(saved.targets['HorizontalPodAutoscaler/catalog']).toMatchObject({
      minReplicas: {present: true, value: 2},
      maxReplicas: {present: true, value: 6},
    })
    // The API server defaults minReplicas to 1: that is what is saved.
    expect(saved.targets['HorizontalPodAutoscaler/checkout'].minReplicas).toEqual({present: true, value: 1})
    expect(Object.keys(saved.targets)).not.toContain('Deployment/foreign')
  })

  it('the HPA controller leaves a target at 0 replicas alone (ScalingDisabled), so the HPA needs no change', async () => {
    const condition = await eventually(
      'the HPA controller to see catalog at 0 replicas',
      async () => {
        const hpa = await http.request<Obj>(
          'GET',
          `/apis/autoscaling/v2/namespaces/${STAGING}/horizontalpodautoscalers/catalog`,
        )
        return hpa.status?.conditions?.find((c) => c.type === 'ScalingActive' && c.reason === 'ScalingDisabled')
      },
      90_000,
      1000,
    )
    expect(condition.status).toBe('False')
    const d = await http.request<Obj>('GET', `/apis/apps/v1/namespaces/${STAGING}/deployments/catalog`)
    expect(d.spec?.replicas).toBe(0)
  })

  it('sleeping again keeps the saved values (never the zeros), and wake restores exactly', async () => {
    const saved = (await state())!.data!['state.json']
    const again = await cli(['sleep', '--environment', 'staging'])
    expect(again.exitCode).toBe(0)
    expect(again.doc.result.targets.filter((t: {outcome: string}) => t.outcome === 'slept')).toHaveLength(0)
    expect((await state())!.data!['state.json']).toBe(saved)
    // Changed while asleep: wake puts the saved bounds back too.
    await http.request('PATCH', `/apis/autoscaling/v2/namespaces/${STAGING}/horizontalpodautoscalers/catalog`, {
      body: {spec: {minReplicas: 1, maxReplicas: 9}},
      contentType: 'application/merge-patch+json',
    })
    const woke = await cli(['wake', '--environment', 'staging'])
    expect(woke.exitCode, woke.stderr).toBe(0)
    expect(await workload(STAGING)).toEqual(before)
    expect(await state()).toBeUndefined()
    const noop = await cli(['wake', '--environment', 'staging'])
    expect(noop.exitCode).toBe(0)
    expect(noop.doc.result.changed).toBe(false)
    expect(await workload(STAGING)).toEqual(before)
  })

  it('SIGKILLed between saving and scaling: wake restores every replica count and HPA bound exactly', async () => {
    // The built CLI, killed as soon as the saved state exists (before, during or after the scaling).
    const child = startCli(['sleep', '--environment', 'staging'], {cwd: project.dir, built: true})
    await eventually('the sleep state to be saved', state, 60_000, 5)
    child.kill('SIGKILL')
    const ended = await child
    expect(ended.signal).toBe('SIGKILL')
    const mid = await workload(STAGING)
    const zeros = Object.keys(DEPLOYMENTS).filter((n) => mid[`Deployment/${n}`] === 0).length
    // Some may still be up (killed before it scaled them); the saved state has all of them.
    const saved = JSON.parse((await state())!.data!['state.json']) as {targets: Record<string, unknown>}
    expect(Object.keys(saved.targets)).toHaveLength(Object.keys(DEPLOYMENTS).length + Object.keys(HPAS).length)
    expect(zeros).toBeGreaterThanOrEqual(1) // search was already 0
    const woke = await runCli(['wake', '--environment', 'staging'], {cwd: project.dir, built: true, json: true})
    expect(woke.exitCode, woke.stderr).toBe(0)
    expect(await workload(STAGING)).toEqual(before)
    expect(await state()).toBeUndefined()
  })

  it('SIGKILLed, then slept again to the end: the first saved values are what wake restores', async () => {
    const child = startCli(['sleep', '--environment', 'staging'], {cwd: project.dir, built: true})
    await eventually('the sleep state to be saved', state, 60_000, 5)
    child.kill('SIGKILL')
    await child
    const finished = await runCli(['sleep', '--environment', 'staging'], {cwd: project.dir, built: true, json: true})
    expect(finished.exitCode, finished.stderr).toBe(0)
    for (const name of Object.keys(DEPLOYMENTS)) expect((await workload(STAGING))[`Deployment/${name}`]).toBe(0)
    const woke = await cli(['wake', '--environment', 'staging'])
    expect(woke.exitCode).toBe(0)
    expect(await workload(STAGING)).toEqual(before)
  })

  it("KEDA: ScaledObjects are paused at 0 while asleep (KEDA would scale a Deployment at 0 back up) and wake puts each pause back as it was; KEDA's own HPA is not saved", async () => {
    const PAUSE = 'autoscaling.keda.sh/paused-replicas'
    const soPath = `/apis/keda.sh/v1alpha1/namespaces/${STAGING}/scaledobjects`
    const scaledObject = (name: string, labels: Record<string, string>, annotations?: Record<string, string>) => ({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: {name, labels, ...(annotations && {annotations})},
      spec: {
        scaleTargetRef: {name},
        minReplicaCount: 1,
        maxReplicaCount: 4,
        triggers: [{type: 'cpu', metricType: 'Utilization', metadata: {value: '70'}}],
      },
    })
    const ours = {'app.kubernetes.io/part-of': PROJECT}
    const cart = await http.request<Obj & {metadata: {uid: string}}>('POST', soPath, {
      body: scaledObject('cart', ours),
    })
    // A pause the team set themselves (KEDA holds search at 2): wake must give back exactly that.
    await http.request('POST', soPath, {body: scaledObject('search', ours, {[PAUSE]: '2'})})
    await http.request('POST', soPath, {body: scaledObject('foreign', {})})
    // The HPA KEDA makes for a ScaledObject (owned by it): KEDA's to set, never saved or patched.
    await http.request('POST', `/apis/autoscaling/v2/namespaces/${STAGING}/horizontalpodautoscalers`, {
      body: {
        metadata: {
          name: 'keda-hpa-cart',
          labels: ours,
          ownerReferences: [
            {
              apiVersion: 'keda.sh/v1alpha1',
              kind: 'ScaledObject',
              name: 'cart',
              uid: cart.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: {
          scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'},
          minReplicas: 1,
          maxReplicas: 4,
        },
      },
    })
    const pauses = async () =>
      Object.fromEntries(
        (await http.request<{items: Obj[]}>('GET', soPath)).items.map((o) => [
          o.metadata.name,
          (o.metadata as {annotations?: Record<string, string>}).annotations?.[PAUSE] ?? '(none)',
        ]),
      )
    const kedaHpa = async () =>
      (
        await http.request<Obj>(
          'GET',
          `/apis/autoscaling/v2/namespaces/${STAGING}/horizontalpodautoscalers/keda-hpa-cart`,
        )
      ).spec
    const kedaHpaBefore = await kedaHpa()
    expect(await pauses()).toEqual({cart: '(none)', search: '2', foreign: '(none)'})

    const slept = await cli(['sleep', '--environment', 'staging'])
    expect(slept.exitCode, slept.stderr).toBe(0)
    expect(await pauses()).toEqual({cart: '0', search: '0', foreign: '(none)'})
    for (const name of Object.keys(DEPLOYMENTS)) expect((await workload(STAGING))[`Deployment/${name}`]).toBe(0)
    const saved = JSON.parse((await state())!.data!['state.json']) as {targets: Record<string, unknown>}
    expect(saved.targets['ScaledObject/cart']).toEqual({
      kind: 'ScaledObject',
      name: 'cart',
      pausedReplicas: {present: false},
    })
    expect(saved.targets['ScaledObject/search']).toEqual({
      kind: 'ScaledObject',
      name: 'search',
      pausedReplicas: {present: true, value: '2'},
    })
    expect(Object.keys(saved.targets)).not.toContain('ScaledObject/foreign')
    expect(Object.keys(saved.targets)).not.toContain('HorizontalPodAutoscaler/keda-hpa-cart')
    expect(slept.doc.result.message).toContain('2 KEDA ScaledObject(s) paused at 0 replicas')

    const woke = await cli(['wake', '--environment', 'staging'])
    expect(woke.exitCode, woke.stderr).toBe(0)
    expect(await pauses()).toEqual({cart: '(none)', search: '2', foreign: '(none)'})
    const after = await workload(STAGING)
    for (const name of Object.keys(DEPLOYMENTS)) expect(after[`Deployment/${name}`]).toBe(before[`Deployment/${name}`])
    expect(await kedaHpa()).toEqual(kedaHpaBefore)
    expect(await state()).toBeUndefined()
  })
})
