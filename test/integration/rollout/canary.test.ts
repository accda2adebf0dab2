// `deploy --canary` end to end against the sandbox: the real CLI, kube-apiserver, kwok pods and
// Gateway API HTTPRoutes (no gateway controller runs, so weights are read back from the route).
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {PATHS} from '../../../src/rollout/kube.js'
import {eventually} from '../../support/sandbox.js'
import {RolloutProject, routeWeights, type ReadBack} from './helpers.js'

const service = (extra: Record<string, unknown> = {}) => ({
  tier: 'operational',
  scaling: {minReplicas: 2, maxReplicas: 2},
  // Generous: the sandbox is shared, and scheduling can take a while under other suites' load.
  rollout: {progressDeadline: '90s', ...extra},
})

describe('deploy --canary (gateway router)', () => {
  // broken: its releases crash-loop (overlay), so it has a short progress deadline. Three tests
  // wait it out; the sandbox's crash-loop stage reports CrashLoopBackOff as soon as a pod starts.
  const p = new RolloutProject({catalog: service(), cart: service(), broken: service({progressDeadline: '20s'})})
  const crashloop = [
    {kind: 'Deployment', patch: {spec: {template: {metadata: {labels: {'retailops.dev/simulate': 'crashloop'}}}}}},
  ]

  beforeAll(async () => {
    const first = await p.deploy(['catalog', 'cart', 'broken'], 'v1')
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
    for (const s of ['catalog', 'cart', 'broken']) await p.gatewayRoute(s)
  })
  afterAll(() => p.cleanup())

  it('pauses at a weight whose canary pods are Ready, then is promoted and leaves the route as it was', async () => {
    const before = await p.route('catalog')
    const paused = await p.deploy(['catalog'], 'v2', ['--canary', '--steps', '50,pause,100'])
    expect(paused.exitCode).toBe(21)
    expect(paused.json.result.release.rollouts[0]).toMatchObject({
      service: 'catalog',
      phase: 'Paused',
      stable: 'v1',
      canary: 'v2',
      weight: 50,
    })

    // The route sends 50 % to the canary Service, whose pods are Ready; stable is pinned by pod-template-hash.
    expect(routeWeights(await p.route('catalog'))).toEqual({'catalog-stable': 50, 'catalog-canary': 50})
    const canary = await p.deployment('catalog-canary')
    expect(canary?.status?.readyReplicas).toBeGreaterThanOrEqual(1)
    expect((await p.service('catalog-stable'))?.spec.selector['pod-template-hash']).toBe(
      (await p.state('catalog'))!.stable.podTemplateHash,
    )
    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v1@')

    const status = await p.cli(['rollout', 'status', 'catalog'])
    expect(status.exitCode).toBe(21)
    expect(status.json.result.rollouts[0]).toMatchObject({phase: 'Paused', weight: 50, actualWeight: 50})

    const tree = await p.cli(['rollout', 'get', 'catalog'])
    expect(tree.exitCode).toBe(21)
    const kinds = JSON.stringify(tree.json.result.root)
    expect(kinds).toContain('catalog-canary-')
    expect(tree.json.result.root.children.map((c: {name: string}) => c.name)).toEqual(['canary v2', 'stable v1'])

    const promoted = await p.cli(['rollout', 'promote', 'catalog'])
    expect(promoted.exitCode, promoted.stderr).toBe(0)
    expect(promoted.json.result.rollouts[0].phase).toBe('Healthy')

    expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    expect(await p.service('catalog-stable')).toBeUndefined()
    expect((await p.route('catalog'))?.spec.rules).toEqual(before?.spec.rules)
    const history = await p.cli(['rollout', 'history', 'catalog'])
    expect(history.json.result.entries.at(-1)).toMatchObject({
      strategy: 'canary',
      phase: 'Healthy',
      stable: {version: 'v1'},
      canary: {version: 'v2'},
    })
  })

  it("aborts a release whose pods never become Ready, with the pods' reason, traffic back on stable", async () => {
    p.overlay('broken', crashloop)
    const before = await p.route('broken')
    try {
      const r = await p.deploy(['broken'], 'v3', ['--canary', '--steps', '50,100'])
      const state = (await p.state('broken'))!
      expect(r.exitCode, state.reason).toBe(20)
      expect(state.phase).toBe('Aborted')
      expect(state.reason).toMatch(
        /not Ready within progressDeadline 20s: 0\/1 ready; 1 pod \([^)]+\): container "[^"]+" is in CrashLoopBackOff: restarted \d+ times?, last exit code 1/,
      )
      expect(await p.deployment('broken-canary')).toBeUndefined()
      expect((await p.route('broken'))?.spec.rules).toEqual(before?.spec.rules)
      expect((await p.deployment('broken'))?.spec.template.spec.containers[0].image).toContain(':v1@')
      // The events say what happened, in order: traffic first, then the canary.
      const messages = state.events.map((e) => e.message)
      const back = messages.findIndex((m) => m.startsWith('all traffic is back on stable'))
      expect(back).toBeGreaterThan(messages.findIndex((m) => m.startsWith('aborting:')))
      expect((await p.cli(['rollout', 'status', 'broken'])).exitCode).toBe(20)
    } finally {
      p.overlay('broken', undefined)
    }
  })

  it('releases services together: when one cannot become Ready, both are aborted', async () => {
    p.overlay('broken', crashloop)
    try {
      const r = await p.deploy(['catalog', 'broken'], 'v4', ['--canary', '--steps', '50,pause:5s,100'])
      const [catalog, broken] = [await p.state('catalog'), await p.state('broken')]
      expect(r.exitCode, `${r.json.error?.message ?? ''} ${catalog?.reason} / ${broken?.reason}`).toBe(20)
      expect(broken?.phase).toBe('Aborted')
      expect(catalog?.phase).toBe('Aborted')
      expect(catalog?.reason).toContain('aborted together with broken')
      expect(catalog?.releaseId).toBe(broken?.releaseId)
      expect((await p.deployment('catalog'))?.spec.template.spec.containers[0].image).toContain(':v2@')
      expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
    } finally {
      p.overlay('broken', undefined)
    }
  })

  it('aborts a canary whose pods stop being Ready while it takes traffic', async () => {
    const child = p.spawnCli([
      'deploy',
      'broken',
      '--image',
      p.image('broken', 'v9'),
      '--skip-verify',
      '--canary',
      '--steps',
      '50,pause:5m,100',
    ])
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    await eventually(
      'the canary to take 50 %',
      async () =>
        (await p.state('broken'))?.canary.version === 'v9' && (await p.state('broken'))?.phase === 'Paused'
          ? true
          : undefined,
      60_000,
      200,
    )
    // The canary's pod turns NotReady (as a failing readiness probe would make it).
    const pods = await p.kube.list<ReadBack>(
      PATHS.pods(p.ns),
      'retailops.dev/track=canary,app.kubernetes.io/name=broken',
    )
    for (const pod of pods) {
      await p.kube.http.request('PATCH', `${PATHS.pods(p.ns)}/${pod.metadata.name}/status`, {
        body: {
          status: {
            conditions: [
              {type: 'Ready', status: 'False', reason: 'ReadinessProbeFailed'},
              {type: 'ContainersReady', status: 'False'},
            ],
          },
        },
        contentType: 'application/strategic-merge-patch+json',
      })
    }
    expect(await exited).toBe(20)
    const state = (await p.state('broken'))!
    expect(state.reason).toMatch(
      /canary pods stopped being Ready while taking 50 % of traffic: 0\/1 ready for over 20s/,
    )
    expect(routeWeights(await p.route('broken'))).toEqual({broken: 1})
    expect(await p.deployment('broken-canary')).toBeUndefined()
  })

  it('promotes a release of two services together with promote --full', async () => {
    const r = await p.deploy(['catalog', 'cart'], 'v5', ['--canary', '--steps', '25,pause,50,pause,100'])
    expect(r.exitCode, JSON.stringify(r.json.result?.release)).toBe(21)
    const full = await p.cli(['rollout', 'promote', 'catalog', '--full'])
    expect(full.exitCode, full.stderr).toBe(0)
    expect(full.json.result.rollouts.map((x: {phase: string}) => x.phase)).toEqual(['Healthy', 'Healthy'])
    for (const s of ['catalog', 'cart'])
      expect((await p.deployment(s))?.spec.template.spec.containers[0].image).toContain(':v5@')
  })

  it('refuses a second rollout while one is in progress, and aborts by hand', async () => {
    expect((await p.deploy(['catalog'], 'v6', ['--canary', '--steps', '50,pause,100'])).exitCode).toBe(21)
    const again = await p.deploy(['catalog'], 'v7', ['--canary'])
    expect(again.exitCode).toBe(12)
    expect(again.json.error.message).toContain('in progress')
    const abort = await p.cli(['rollout', 'abort', 'catalog', '--reason', 'wrong build'])
    expect(abort.exitCode, abort.stderr).toBe(0)
    expect(abort.json.result.rollouts[0]).toMatchObject({
      phase: 'Aborted',
      reason: expect.stringContaining('wrong build'),
    })
    expect(await p.deployment('catalog-canary')).toBeUndefined()
    // Nobody has to babysit a stuck rollout: past --timeout it times out, traffic back on stable.
    const timedOut = await p.deploy(['catalog'], 'v8', ['--canary', '--steps', '50,pause:5m,100', '--timeout', '8s'])
    expect(timedOut.exitCode).toBe(23)
    const t = (await p.state('catalog'))!
    expect(t).toMatchObject({phase: 'TimedOut', weight: 0})
    expect(t.reason).toContain('did not finish within 8s')
    expect(routeWeights(await p.route('catalog'))).toEqual({catalog: 1})
    expect(await p.deployment('catalog-canary')).toBeUndefined()

    const undo = await p.cli(['rollout', 'undo', 'catalog'])
    expect(undo.exitCode).toBe(0)
    expect(undo.json.result).toMatchObject({kind: 'rollback', to: 'v2', from: 'v5'})
  })
})

describe('deploy --canary with other routers and gates', () => {
  const p = new RolloutProject(
    {
      catalog: {...service(), scaling: {minReplicas: 4, maxReplicas: 4}},
      checkout: {...service(), tier: 'revenue-critical'},
      search: service(),
    },
    {
      campaigns: [
        {
          name: 'black-friday',
          start: '2020-01-02T00:00:00Z',
          end: '2099-01-01T00:00:00Z',
          peak: {checkout: {rps: 100}},
          freeze: {start: '2020-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z'},
        },
      ],
    },
  )

  beforeAll(async () => {
    // The freeze gates rolling deploys of revenue-critical services too (a first one included).
    const first = await p.deploy(['catalog', 'checkout'], 'v1', [
      '--force-release',
      '--reason',
      'first deploy of the test',
    ])
    expect(first.exitCode, JSON.stringify(first.json.error)).toBe(0)
  })
  afterAll(() => p.cleanup())

  it('rolls a service out directly when it has no running version to compare with', async () => {
    const r = await p.deploy(['search'], 'v1', ['--canary'])
    expect(r.exitCode, JSON.stringify(r.json.error)).toBe(0)
    expect(r.json.result.release).toMatchObject({initial: ['search'], rollouts: []})
    expect((await p.deployment('search'))?.status?.readyReplicas).toBe(2)
  })

  it('approximates the weight by pod count without a router', async () => {
    const r = await p.deploy(['catalog'], 'v2', ['--canary', '--router', 'replicas', '--steps', '25,pause,100'])
    expect(r.exitCode).toBe(21)
    expect((await p.deployment('catalog-canary'))?.status?.readyReplicas).toBe(1)
    expect((await p.deployment('catalog'))?.spec.replicas).toBe(3)
    const promoted = await p.cli(['rollout', 'promote', 'catalog'])
    expect(promoted.exitCode).toBe(0)
    const d = await p.deployment('catalog')
    expect(d?.spec.replicas).toBe(4)
    expect(d?.spec.template.spec.containers[0].image).toContain(':v2@')
  })

  it('writes ingress-nginx canary annotations on a canary Ingress', async () => {
    await p.nginxIngress('catalog')
    const r = await p.deploy(['catalog'], 'v3', ['--canary', '--router', 'nginx', '--steps', '30,pause,100'])
    expect(r.exitCode, (await p.state('catalog'))?.reason).toBe(21)
    const canary = await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'catalog-canary')
    expect(canary?.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/canary': 'true',
      'nginx.ingress.kubernetes.io/canary-weight': '30',
    })
    expect(canary?.spec.rules[0].http.paths[0].backend.service.name).toBe('catalog-canary')
    expect(
      (await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'catalog'))?.spec.rules[0].http.paths[0].backend.service.name,
    ).toBe('catalog-stable')
    expect((await p.cli(['rollout', 'abort', 'catalog'])).exitCode).toBe(0)
    expect(await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'catalog-canary')).toBeUndefined()
    expect(
      (await p.kube.get<ReadBack>(PATHS.ingresses(p.ns), 'catalog'))?.spec.rules[0].http.paths[0].backend.service.name,
    ).toBe('catalog')
  })

  it('refuses a canary of a revenue-critical service inside a freeze unless forced with a reason', async () => {
    await p.gatewayRoute('checkout')
    const refused = await p.deploy(['checkout'], 'v2', ['--canary', '--steps', '100'])
    expect(refused.exitCode).toBe(12)
    expect(refused.json.error.message).toContain('black-friday')
    expect(await p.state('checkout')).toBeUndefined()
    expect((await p.deployment('checkout'))?.spec.template.spec.containers[0].image).toContain(':v1@')

    const forced = await p.deploy(['checkout'], 'v2', [
      '--canary',
      '--steps',
      '100',
      '--force-release',
      '--reason',
      'payment outage hotfix',
    ])
    expect(forced.exitCode, JSON.stringify(forced.json.error)).toBe(0)
    const state = (await p.state('checkout'))!
    expect(state.forced).toMatchObject({reason: 'payment outage hotfix'})
    expect(state.forced?.overridden.join(' ')).toContain('black-friday')
    expect((await p.deployment('checkout'))?.metadata.annotations?.['retailops.dev/forced-release-reason']).toBe(
      'payment outage hotfix',
    )
  })
})
