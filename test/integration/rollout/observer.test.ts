// The release observer (src/rollout/observer.ts over src/kubernetes/watch.ts) against the sandbox's
// real API server: changes of Deployments and requests reach the waiting driver through one watch,
// a real 410 Gone is answered by a relist, and a ServiceAccount without the watch verb (or without
// list) is served by polling lists (or by direct reads), as the detached Job's role is.
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Deployment} from '../../../src/kubernetes/kinds.js'
import {KubeObjects, type Obj} from '../../../src/kubernetes/objects.js'
import {apiListWatch, WatchExpired, WatchedCollection} from '../../../src/kubernetes/watch.js'
import {PATHS} from '../../../src/rollout/kube.js'
import {observedSelectors, releaseReads, ReleaseObserver} from '../../../src/rollout/observer.js'
import {requestName, StateStore} from '../../../src/rollout/store.js'
import {SERVICE_ACCOUNT_CONTEXT, serviceAccountClient} from '../helpers/service-account.js'
import {eventually, sandboxEnv} from '../../support/sandbox.js'
import {randomName} from '../../support/names.js'

const ns = randomName('t-observer')
const kube = new KubeObjects({context: sandboxEnv().context})
const store = new StateStore(kube)
const services = [
  {namespace: ns, service: 'cart'},
  {namespace: ns, service: 'orders'},
]

function deployment(name: string, service: string, replicas: number): Deployment {
  const labels = {'app.kubernetes.io/name': name, 'retailops.dev/service': service}
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {name, namespace: ns, labels},
    spec: {
      replicas,
      selector: {matchLabels: labels},
      template: {
        metadata: {labels},
        spec: {containers: [{name: 'app', image: '127.0.0.1:5000/observer/app:v1'}]},
      },
    },
  }
}

/** Until the assertions in check hold (an eventually() that needs no value). */
const until = (what: string, check: () => Promise<void> | void) =>
  eventually(
    what,
    async () => {
      await check()
      return true
    },
    20_000,
    100,
  )

const timed = async (p: Promise<void>) => {
  const started = Date.now()
  await p
  return Date.now() - started
}

beforeAll(async () => {
  await kube.http.request('POST', '/api/v1/namespaces', {body: {metadata: {name: ns}}})
  for (const d of [
    deployment('cart', 'cart', 0),
    deployment('cart-canary', 'cart', 0),
    deployment('orders', 'orders', 0),
    deployment('unrelated', 'search', 0),
  ])
    await kube.create(PATHS.deployments(ns), d)
  // The deployment controller's first status writes are changes too: let them pass before a test waits on changes.
  await until('the Deployments to be observed by their controller', async () => {
    for (const d of await kube.list<Deployment>(PATHS.deployments(ns)))
      expect(d.status?.observedGeneration).toBe(d.metadata.generation)
  })
})

afterAll(async () => {
  await kube.http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
  kube.close()
})

describe('the release observer against the API server', () => {
  it('one watch per namespace brings a Deployment change to the driver waiting on it, not to the others', async () => {
    const observer = await ReleaseObserver.start(kube, store, services)
    try {
      expect(observer.mode).toBe('watch')
      // Selected by the service label: the release's Deployments, not another service's.
      expect((await observer.deployment(ns, 'cart-canary'))?.metadata.name).toBe('cart-canary')
      const cart = timed(observer.changed(ns, 'cart', ['cart', 'cart-canary'], 10_000))
      const orders = timed(observer.changed(ns, 'orders', ['orders', 'orders-canary'], 1500))
      const patched = await kube.mergePatch(PATHS.deployments(ns), 'cart-canary', {spec: {replicas: 2}})
      expect(await cart).toBeLessThan(5000)
      expect(await orders).toBeGreaterThanOrEqual(1400)
      const seen = await observer.deployment(ns, 'cart-canary')
      expect(seen?.metadata.generation).toBe(patched.metadata.generation)
      expect(seen?.spec?.replicas).toBe(2)
      const counts = observer.counts(ns)
      expect(counts.deployments.lists).toBe(1)
      expect(counts.deployments.events).toBeGreaterThanOrEqual(1)
      // Another service's Deployment is not even sent to this CLI: the server selects by the service label.
      await kube.mergePatch(PATHS.deployments(ns), 'orders', {spec: {replicas: 1}})
      await until('the change of orders', async () =>
        expect((await observer.deployment(ns, 'orders'))?.spec?.replicas).toBe(1),
      )
      const selected = await apiListWatch<Deployment>(kube.http, PATHS.deployments(ns), {
        labelSelector: observedSelectors(['cart', 'orders']).deployments,
      }).list()
      expect(selected.items.map((d) => d.metadata.name).sort()).toEqual(['cart', 'cart-canary', 'orders'])
    } finally {
      await observer.close()
    }
  })

  it('a request from another CLI wakes its driver; one acted on and deleted is never answered again', async () => {
    const observer = await ReleaseObserver.start(kube, store, services)
    try {
      const woken = timed(observer.changed(ns, 'cart', ['cart', 'cart-canary'], 10_000))
      await store.request(ns, 'cart', {action: 'abort', by: 'ci', at: new Date().toISOString(), rolloutId: 'r1'})
      expect(await woken).toBeLessThan(5000)
      const pending = await observer.request(ns, 'cart')
      expect(pending?.request).toMatchObject({action: 'abort', by: 'ci', rolloutId: 'r1'})
      expect(await observer.request(ns, 'orders')).toBeUndefined()
      await store.clearRequest(ns, 'cart', pending!.resourceVersion)
      observer.consumed(ns, 'cart', pending!.resourceVersion)
      expect(await observer.request(ns, 'cart')).toBeUndefined()
      // The deletion reaches the observer too, and the ConfigMap is really gone.
      await until('the change to be observed', async () =>
        expect(observer.counts(ns).requests.events).toBeGreaterThanOrEqual(2),
      )
      expect(await kube.get(PATHS.configmaps(ns), requestName('cart'))).toBeUndefined()
      // A new request (a new resourceVersion) is answered.
      await store.request(ns, 'cart', {action: 'promote', by: 'ci', at: new Date().toISOString(), rolloutId: 'r1'})
      await until('the change to be observed', async () =>
        expect((await observer.request(ns, 'cart'))?.request.action).toBe('promote'),
      )
    } finally {
      await observer.close()
      await store.clearRequest(ns, 'cart')
    }
  })

  it('a watch from a compacted resourceVersion gets 410 Gone from the server; the collection lists again and goes on', async () => {
    const source = apiListWatch<Deployment>(kube.http, PATHS.deployments(ns), {
      labelSelector: 'retailops.dev/service in (cart)',
    })
    // The server itself says the resourceVersion is too old.
    await expect(source.watch('1', () => undefined, new AbortController().signal)).rejects.toBeInstanceOf(WatchExpired)
    let first = true
    const collection = new WatchedCollection<Deployment>(
      {
        list: (signal) => source.list(signal),
        // The first watch starts from a resourceVersion long compacted away, as after a long disconnect.
        watch: (rv, onEvent, signal) => source.watch(first ? ((first = false), '1') : rv, onEvent, signal),
      },
      {pollMs: 100},
    )
    await collection.start()
    try {
      await until('the change to be observed', async () => expect(collection.counts.expired).toBe(1))
      await until('the change to be observed', async () => expect(collection.counts.lists).toBe(2))
      await kube.mergePatch(PATHS.deployments(ns), 'cart', {spec: {replicas: 3}})
      await until('the change to be observed', async () => expect(collection.get('cart')?.spec?.replicas).toBe(3))
      expect(collection.mode).toBe('watch')
    } finally {
      await collection.close()
    }
  })

  it('as a ServiceAccount that may list but not watch, it polls with lists; without list, the drivers read directly', async () => {
    const rules = (verbs: string[]) => [
      {apiGroups: ['apps'], resources: ['deployments'], verbs},
      {apiGroups: [''], resources: ['configmaps'], verbs},
    ]
    for (const [name, verbs] of [
      ['watchless', ['get', 'list']],
      ['getonly', ['get']],
    ] as const) {
      await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: {name},
      })
      await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: {name},
        rules: rules([...verbs]),
      } as Obj)
      await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: {name},
        roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name},
        subjects: [{kind: 'ServiceAccount', name, namespace: ns}],
      } as Obj)
    }
    const dir = path.join(os.tmpdir(), `${ns}-sa`)
    const watchless = await serviceAccountClient(kube.http, ns, 'watchless', path.join(dir, 'watchless'))
    const asWatchless = new KubeObjects({kubeconfig: watchless.kubeconfig, context: SERVICE_ACCOUNT_CONTEXT})
    const polling = await eventually('the role to reach the authorizer', async () => {
      const reads = await releaseReads(asWatchless, new StateStore(asWatchless), services)
      // RBAC takes a moment to reach the authorizer's cache.
      if (reads.mode !== 'poll') {
        await reads.close()
        throw new Error(`mode ${reads.mode}`)
      }
      return reads
    })
    try {
      const woken = timed(polling.changed(ns, 'cart', ['cart'], 10_000))
      await kube.mergePatch(PATHS.deployments(ns), 'cart', {spec: {replicas: 4}})
      expect(await woken).toBeLessThan(5000)
      expect((await polling.deployment(ns, 'cart'))?.spec?.replicas).toBe(4)
    } finally {
      await polling.close()
      asWatchless.close()
    }
    const getonly = await serviceAccountClient(kube.http, ns, 'getonly', path.join(dir, 'getonly'))
    const asGetonly = new KubeObjects({kubeconfig: getonly.kubeconfig, context: SERVICE_ACCOUNT_CONTEXT})
    const direct = await releaseReads(asGetonly, new StateStore(asGetonly), services)
    try {
      expect(direct.mode).toBe('direct')
      expect((await direct.deployment(ns, 'cart'))?.spec?.replicas).toBe(4)
    } finally {
      await direct.close()
      asGetonly.close()
    }
  })
})
