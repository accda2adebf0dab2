// The operations around a release, against the sandbox's real kube-apiserver, asserting the
// cluster afterwards: undo and promotion keep every field retailops owns (labels, strategy,
// replicas); a tampered rollout state is refused before anything is applied; an abort that
// cannot return traffic (real RBAC refusals) keeps the canary and exits 24.
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {stateName} from '../../../src/rollout/store.js'
import type {RolloutState} from '../../../src/rollout/types.js'
import {eventually} from '../../support/sandbox.js'
import {SERVICE_ACCOUNT_CONTEXT, serviceAccountClient} from '../helpers/service-account.js'
import {RolloutProject, routeWeights, type CliResult} from './helpers.js'
import {runCli} from '../../support/cli.js'

const OWNED_LABELS = [
  'retailops.dev/applyset',
  'app.kubernetes.io/managed-by',
  'retailops.dev/tier',
  'app.kubernetes.io/part-of',
  'retailops.dev/service',
]

const service = (tier: string, replicas: number, extra: Record<string, unknown> = {}) => ({
  tier,
  scaling: {minReplicas: replicas, maxReplicas: replicas},
  rollout: {progressDeadline: '90s', ...extra},
})

function pick(labels: Record<string, string> | undefined, keys: string[]): Record<string, string | undefined> {
  return Object.fromEntries(keys.map((k) => [k, labels?.[k]]))
}

describe('release safety: undo, promotion, stored state and abort', () => {
  const p = new RolloutProject({
    checkout: service('revenue-critical', 3),
    orders: service('operational', 2),
    inventory: service('operational', 2),
  })

  beforeAll(async () => {
    const first = await p.deploy(['checkout', 'orders', 'inventory'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    for (const s of ['checkout', 'orders', 'inventory']) await p.gatewayRoute(s)
  })
  afterAll(() => p.cleanup())

  it('promotion and undo change the pod template only: labels, strategy and replicas stay exactly', async () => {
    const v1 = (await p.deployment('checkout'))!
    expect(v1.spec.strategy.rollingUpdate.maxUnavailable).toBe(0)
    expect(v1.spec.replicas).toBe(3)

    const promoted = await p.deploy(['checkout'], 'v2', ['--canary', '--steps', '50,100'])
    expect(promoted.exitCode, JSON.stringify(promoted.json.result?.release ?? promoted.json.error)).toBe(0)
    const v2 = (await p.deployment('checkout'))!
    expect(v2.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(pick(v2.metadata.labels, OWNED_LABELS)).toEqual(pick(v1.metadata.labels, OWNED_LABELS))
    expect(v2.spec.strategy).toEqual(v1.spec.strategy)
    expect(v2.spec.replicas).toBe(3)

    const undo = await p.cli(['rollout', 'undo', 'checkout'])
    expect(undo.exitCode, JSON.stringify(undo.json.error)).toBe(0)
    const back = (await p.deployment('checkout'))!
    expect(back.spec.template).toEqual(v1.spec.template)
    expect(pick(back.metadata.labels, OWNED_LABELS)).toEqual(pick(v1.metadata.labels, OWNED_LABELS))
    expect(back.metadata.labels?.['app.kubernetes.io/version']).toBe('v1')
    expect(back.metadata.annotations?.['retailops.dev/image']).toContain(':v1@')
    expect(back.spec.strategy).toEqual({type: 'RollingUpdate', rollingUpdate: {maxSurge: '25%', maxUnavailable: 0}})
    expect(back.spec.replicas).toBe(3)
    expect(back.status?.availableReplicas).toBe(3)
  })

  it("a campaign's raised replica count stays through promotion and undo", async () => {
    const paused = await p.deploy(['checkout'], 'v3', ['--canary', '--steps', '50,pause,100'])
    expect(paused.exitCode, JSON.stringify(paused.json.result?.release ?? paused.json.error)).toBe(21)
    // Prewarm raises a Deployment without an autoscaler while the canary is paused (a merge patch of replicas, as src/capacity does).
    await p.kube.http.request('PATCH', `${PATHS.deployments(p.ns)}/checkout`, {
      body: {metadata: {annotations: {'retailops.io/prewarm-campaign': 'black-friday'}}, spec: {replicas: 6}},
      contentType: 'application/merge-patch+json',
      query: {fieldManager: 'retailops-prewarm'},
    })
    const raised = (await p.deployment('checkout'))!
    const r = await p.cli(['rollout', 'promote', 'checkout'])
    expect(r.exitCode, JSON.stringify(r.json.error)).toBe(0)
    const v3 = (await p.deployment('checkout'))!
    expect(v3.spec.template.spec.containers[0].image).toContain(':v3@')
    expect(v3.spec.replicas).toBe(6)
    expect(v3.spec.strategy).toEqual(raised.spec.strategy)

    const undo = await p.cli(['rollout', 'undo', 'checkout'])
    expect(undo.exitCode, JSON.stringify(undo.json.error)).toBe(0)
    const back = (await p.deployment('checkout'))!
    expect(back.spec.template.spec.containers[0].image).toContain(':v1@')
    expect(back.spec.replicas).toBe(6)
    expect(back.spec.strategy).toEqual(raised.spec.strategy)
    expect(pick(back.metadata.labels, OWNED_LABELS)).toEqual(pick(raised.metadata.labels, OWNED_LABELS))
    expect(back.metadata.annotations?.['retailops.io/prewarm-campaign']).toBe('black-friday')
  })

  /** Rewrites state.json of a service's rollout ConfigMap as someone with write access could. */
  async function tamper(serviceName: string, change: (s: RolloutState) => void): Promise<void> {
    const cm = (await p.kube.get(PATHS.configmaps(p.ns), stateName(serviceName)))!
    const state = JSON.parse(cm.data!['state.json']) as RolloutState
    change(state)
    await p.kube.mergePatch(PATHS.configmaps(p.ns), stateName(serviceName), {
      data: {'state.json': JSON.stringify(state)},
    })
  }

  it('refuses a stored state that fails policy, points the route elsewhere or names another namespace, and applies nothing', async () => {
    const original = await p.route('orders')
    const paused = await p.deploy(['orders'], 'v2', ['--canary', '--steps', '50,pause,100'])
    expect(paused.exitCode).toBe(21)
    const backup = (await p.state('orders'))!.routeBackup
    const route = await p.route('orders')
    expect(routeWeights(route)).toEqual({'orders-stable': 50, 'orders-canary': 50})
    const stable = (await p.deployment('orders'))!
    const canary = (await p.deployment('orders-canary'))!
    // Nothing applied: the route's weights and both Deployments' specs (generation) are as they were.
    const unchanged = async () => {
      expect(routeWeights(await p.route('orders'))).toEqual(routeWeights(route))
      expect((await p.deployment('orders'))!.metadata.generation).toBe(stable.metadata.generation)
      expect((await p.deployment('orders-canary'))!.metadata.generation).toBe(canary.metadata.generation)
      expect((await p.state('orders'))!.phase).toBe('Paused')
    }

    // A template that allows privilege escalation: the policy error a fresh deploy would report.
    await tamper('orders', (s) => {
      ;(s.desired as any).spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true
    })
    const escalated = await p.cli(['rollout', 'promote', 'orders', '--full'])
    expect(escalated.exitCode).toBe(25)
    expect(escalated.json.error.message).toMatch(/allows privilege escalation/)
    await unchanged()

    // A route backup that would send the traffic to a Service of another namespace on restore.
    await tamper('orders', (s) => {
      ;(s.desired as any).spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = false
      ;(s.routeBackup as any).rules[0].backendRefs = [{name: 'payments', namespace: 'elsewhere', port: 8080}]
    })
    for (const args of [
      ['rollout', 'abort', 'orders'],
      ['rollout', 'promote', 'orders'],
    ]) {
      const r = await p.cli(args)
      expect(r.exitCode, args.join(' ')).toBe(25)
      expect(r.json.error.message).toMatch(/route backup sends traffic to elsewhere\/payments/)
      await unchanged()
    }

    // A state that names another namespace: the command's namespace is used, the other one never touched.
    await tamper('orders', (s) => {
      s.routeBackup = backup
      s.namespace = 'kube-system'
    })
    const aborted = await p.cli(['rollout', 'abort', 'orders'])
    expect(aborted.exitCode, JSON.stringify(aborted.json.error)).toBe(0)
    const done = (await p.state('orders'))!
    expect(done.phase).toBe('Aborted')
    expect(done.namespace).toBe(p.ns)
    expect(await p.deployment('orders-canary')).toBeUndefined()
    expect((await p.route('orders'))?.spec.rules).toEqual(original?.spec.rules)
    expect(await p.kube.get(PATHS.configmaps('kube-system'), stateName('orders'))).toBeUndefined()
  })

  it('checks the signatures of stored images as a deploy would: refused when signing is required, unless --skip-verify', async () => {
    p.writeConfig({signing: {required: true}})
    try {
      const paused = await p.deploy(['inventory'], 'v2', ['--canary', '--steps', '50,pause,100'])
      expect(paused.exitCode).toBe(21)
      const refused = await p.cli(['rollout', 'promote', 'inventory'])
      expect(refused.exitCode).toBe(25)
      expect(refused.json.error.message).toMatch(/127\.0\.0\.1:5000\/shop\/inventory:v2@sha256:[a-f0-9]{64}/)
      expect((await p.state('inventory'))!.phase).toBe('Paused')
      expect((await p.deployment('inventory'))!.spec.template.spec.containers[0].image).toContain(':v1@')

      const forced = await p.cli(['rollout', 'promote', 'inventory', '--skip-verify'])
      expect(forced.exitCode, JSON.stringify(forced.json.error)).toBe(0)
      const d = (await p.deployment('inventory'))!
      expect(d.spec.template.spec.containers[0].image).toContain(':v2@')
      expect(d.metadata.annotations?.['retailops.dev/signature-verification']).toBe('skipped')
    } finally {
      p.writeConfig()
    }
  })
})

/** A real identity with a narrow Role in the namespace, and a kubeconfig for it. */
async function restrictedIdentity(p: RolloutProject, name: string, rules: k8s.V1PolicyRule[]): Promise<string> {
  const http = p.kube.http
  await http.request('POST', `/api/v1/namespaces/${p.ns}/serviceaccounts`, {body: {metadata: {name}}})
  await http.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${p.ns}/roles`, {
    body: {metadata: {name}, rules},
  })
  await http.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${p.ns}/rolebindings`, {
    body: {
      metadata: {name},
      roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name},
      subjects: [{kind: 'ServiceAccount', name, namespace: p.ns}],
    },
  })
  return (await serviceAccountClient(http, p.ns, name, path.join(p.dir, `${name}.kubeconfig`))).kubeconfig
}

const READ = ['get', 'list', 'watch']
const WRITE = [...READ, 'create', 'update', 'patch', 'delete']

describe('abort returns traffic first, or keeps the canary and says so (exit 24)', () => {
  const p = new RolloutProject({
    catalog: service('operational', 2),
    cart: service('operational', 2),
    // No Prometheus data for these versions: the blue-green analyses pass only because missingData says so here.
    search: service('operational', 2, {
      scaleDownDelay: '5m',
      autoPromotion: false,
      analysis: {interval: '1s', count: 1, missingData: 'pass'},
    }),
  })

  beforeAll(async () => {
    const first = await p.deploy(['catalog', 'cart', 'search'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    await p.gatewayRoute('catalog')
  })
  afterAll(() => p.cleanup())

  async function cliAs(kubeconfig: string, args: string[]): Promise<CliResult> {
    const r = await runCli([...args, '--context', SERVICE_ACCOUNT_CONTEXT, '--json'], {
      cwd: p.dir,
      timeoutMs: 240_000,
      env: {KUBECONFIG: kubeconfig},
    })
    return {exitCode: r.exitCode ?? -1, json: JSON.parse(r.stdout), stderr: r.stderr}
  }

  it('gateway: when the route cannot be set to 0 %, the canary stays, the state records it, and a later abort finishes', async () => {
    const original = await p.route('catalog')
    const paused = await p.deploy(['catalog'], 'v2', ['--canary', '--steps', '50,pause,100'])
    expect(paused.exitCode).toBe(21)
    expect(routeWeights(await p.route('catalog'))).toEqual({'catalog-stable': 50, 'catalog-canary': 50})

    // Everything an abort needs, except writing the HTTPRoute.
    const kubeconfig = await restrictedIdentity(p, 'no-route-writes', [
      {apiGroups: [''], resources: ['configmaps', 'services'], verbs: WRITE},
      {apiGroups: [''], resources: ['pods', 'events'], verbs: READ},
      {apiGroups: ['apps'], resources: ['deployments'], verbs: WRITE},
      {apiGroups: ['apps'], resources: ['replicasets'], verbs: READ},
      {apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: READ},
    ])
    const refused = await cliAs(kubeconfig, ['rollout', 'abort', 'catalog'])
    expect(refused.exitCode, JSON.stringify(refused.json.error)).toBe(24)
    expect(refused.json.error.message).toMatch(/traffic may still reach it/)

    // Nothing was taken away from under the traffic: the canary runs, the route still weights it.
    const canary = await p.deployment('catalog-canary')
    expect(canary?.status?.readyReplicas).toBeGreaterThanOrEqual(1)
    expect(routeWeights(await p.route('catalog'))).toEqual({'catalog-stable': 50, 'catalog-canary': 50})
    expect(await p.service('catalog-canary')).toBeDefined()
    const state = (await p.state('catalog'))!
    expect(state.phase).toBe('Aborting')
    expect(state.weight).toBe(50)
    expect(state.trafficNotReturned).toMatch(/forbidden|403/i)
    expect(state.lease).toBeUndefined()
    expect((await p.cli(['rollout', 'status', 'catalog'])).exitCode).toBe(24)

    // With the permission back (the admin identity), abort finishes: traffic first, then the canary.
    const aborted = await p.cli(['rollout', 'abort', 'catalog'])
    expect(aborted.exitCode, JSON.stringify(aborted.json.error)).toBe(0)
    expect((await p.route('catalog'))?.spec.rules).toEqual(original?.spec.rules)
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    const done = (await p.state('catalog'))!
    expect(done.phase).toBe('Aborted')
    expect(done.trafficNotReturned).toBeUndefined()
    expect((await p.deployment('catalog'))!.spec.template.spec.containers[0].image).toContain(':v1@')
  })

  it('replica router: when stable cannot be scaled back, the canary pods stay', async () => {
    const paused = await p.deploy(['cart'], 'v2', ['--canary', '--router', 'replicas', '--steps', '50,pause,100'])
    expect(paused.exitCode).toBe(21)
    expect((await p.deployment('cart'))!.spec.replicas).toBe(1)
    const kubeconfig = await restrictedIdentity(p, 'no-scaling', [
      {apiGroups: [''], resources: ['configmaps', 'services'], verbs: WRITE},
      {apiGroups: [''], resources: ['pods', 'events'], verbs: READ},
      {apiGroups: ['apps'], resources: ['deployments'], verbs: [...READ, 'delete']},
      {apiGroups: ['apps'], resources: ['replicasets'], verbs: READ},
    ])
    const refused = await cliAs(kubeconfig, ['rollout', 'abort', 'cart'])
    expect(refused.exitCode, JSON.stringify(refused.json.error)).toBe(24)
    expect((await p.deployment('cart-canary'))?.status?.readyReplicas).toBe(1)
    expect((await p.deployment('cart'))!.spec.replicas).toBe(1)
    expect((await p.state('cart'))!.phase).toBe('Aborting')

    const aborted = await p.cli(['rollout', 'abort', 'cart'])
    expect(aborted.exitCode, JSON.stringify(aborted.json.error)).toBe(0)
    expect((await p.deployment('cart'))!.spec.replicas).toBe(2)
    expect(await p.deployment('cart-canary')).toBeUndefined()
  })

  it('blue-green: when the active Service cannot be switched back, the new colour stays up', async () => {
    const original = (await p.service('search'))!.spec.selector
    const paused = await p.deploy(['search'], 'v2', ['--blue-green'])
    expect(paused.exitCode, JSON.stringify(paused.json.result?.release ?? paused.json.error)).toBe(21)
    // A CLI promotes (switches the active Service to the new colour), then dies during the scale-down delay.
    const child = p.spawnCli(['rollout', 'promote', 'search'])
    const switched = await eventually(
      'the active Service to switch to the new colour',
      async () => {
        const s = await p.state('search')
        return s?.activeColour === 'preview' && s.step >= 3 ? s : undefined
      },
      90_000,
      200,
    )
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    expect((await p.service('search'))!.spec.selector['pod-template-hash']).toBe(switched.canary.podTemplateHash)

    const kubeconfig = await restrictedIdentity(p, 'no-service-writes', [
      {apiGroups: [''], resources: ['configmaps'], verbs: WRITE},
      {apiGroups: [''], resources: ['services'], verbs: [...READ, 'create', 'delete']},
      {apiGroups: [''], resources: ['pods', 'events'], verbs: READ},
      {apiGroups: ['apps'], resources: ['deployments'], verbs: WRITE},
      {apiGroups: ['apps'], resources: ['replicasets'], verbs: READ},
    ])
    const refused = await cliAs(kubeconfig, ['rollout', 'abort', 'search'])
    expect(refused.exitCode, JSON.stringify(refused.json.error)).toBe(24)
    // The active Service still sends everything to the new colour, which is still up: nothing is cut off.
    expect((await p.service('search'))!.spec.selector['pod-template-hash']).toBe(switched.canary.podTemplateHash)
    expect((await p.deployment('search-preview'))?.status?.readyReplicas).toBe(2)
    expect(await p.service('search-preview')).toBeDefined()
    const state = (await p.state('search'))!
    expect(state).toMatchObject({phase: 'Aborting', activeColour: 'preview'})
    expect(state.trafficNotReturned).toMatch(/forbidden|403/i)

    const aborted = await p.cli(['rollout', 'abort', 'search'])
    expect(aborted.exitCode, JSON.stringify(aborted.json.error)).toBe(0)
    expect((await p.service('search'))!.spec.selector).toEqual(original)
    expect(await p.deployment('search-preview')).toBeUndefined()
    expect((await p.deployment('search'))!.spec.template.spec.containers[0].image).toContain(':v1@')
    expect((await p.state('search'))!.phase).toBe('Aborted')
  })
})
