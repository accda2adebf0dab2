import {afterEach, describe, expect, it} from 'vitest'

import type {Deployment} from '../../../src/kubernetes/kinds.js'
import type {KubeObjects, Obj} from '../../../src/kubernetes/objects.js'
import type {ListWatchSource, WatchEvent} from '../../../src/kubernetes/watch.js'
import {observedSelectors, ReleaseObserver} from '../../../src/rollout/observer.js'
import {requestName, type StateStore} from '../../../src/rollout/store.js'

/** A source whose watch stays open and whose events the test pushes in; the observer under test is the real one. */
class PushSource<T extends Obj> implements ListWatchSource<T> {
  private emit?: (e: WatchEvent<T>) => void
  private waiting: (() => void)[] = []
  constructor(private readonly items: T[]) {}

  async list() {
    return {items: this.items, resourceVersion: '1'}
  }

  watch(_rv: string, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    this.emit = onEvent
    for (const w of this.waiting.splice(0)) w()
    return new Promise((_resolve, reject) =>
      signal.addEventListener('abort', () => reject(new Error('aborted')), {once: true}),
    )
  }

  async push(e: WatchEvent<T>): Promise<void> {
    if (!this.emit) await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.emit!(e)
  }
}

const deployment = (name: string, generation: number, ready = 0): Deployment => ({
  metadata: {name, namespace: 'shop', generation, resourceVersion: String(generation)},
  spec: {replicas: 3},
  status: {readyReplicas: ready, observedGeneration: generation},
})

const request = (service: string, resourceVersion: string, action = 'abort'): Obj => ({
  metadata: {name: requestName(service), namespace: 'shop', resourceVersion},
  data: {'request.json': JSON.stringify({action, by: 'ci', at: '2026-12-07T00:00:00Z'})},
})

const gets: string[] = []
const kube = {
  get: (collection: string, name: string) => {
    gets.push(`${collection}/${name}`)
    return Promise.resolve(deployment(name, 7))
  },
} as unknown as KubeObjects
const store = {} as StateStore

let observers: ReleaseObserver[] = []
afterEach(async () => {
  await Promise.all(observers.map((o) => o.close()))
  observers = []
  gets.length = 0
})

async function observe() {
  const deployments = new PushSource<Deployment>([deployment('cart', 1), deployment('orders', 1)])
  const requests = new PushSource<Obj>([])
  const observer = await ReleaseObserver.start(
    kube,
    store,
    [
      {namespace: 'shop', service: 'cart'},
      {namespace: 'shop', service: 'orders'},
    ],
    {sources: () => ({deployments, requests})},
  )
  observers.push(observer)
  return {observer, deployments, requests}
}

const timed = async (p: Promise<void>) => {
  const started = Date.now()
  await p
  return Date.now() - started
}

describe('the release observer', () => {
  it('selects the release services Deployments by label and rollout requests', () => {
    expect(observedSelectors(['orders', 'cart', 'orders'])).toEqual({
      deployments: 'retailops.dev/service in (cart,orders)',
      requests: 'retailops.dev/rollout-request=true',
    })
  })

  it('wakes only the driver whose Deployment changed, and answers reads from what it observed', async () => {
    const {observer, deployments} = await observe()
    const cart = timed(observer.changed('shop', 'cart', ['cart', 'cart-canary'], 2000))
    const orders = timed(observer.changed('shop', 'orders', ['orders', 'orders-canary'], 300))
    await deployments.push({type: 'ADDED', object: deployment('cart-canary', 1, 2)})
    expect(await cart).toBeLessThan(200)
    expect(await orders).toBeGreaterThanOrEqual(290)
    expect((await observer.deployment('shop', 'cart-canary'))?.status?.readyReplicas).toBe(2)
    expect((await observer.deployment('shop', 'orders'))?.metadata.generation).toBe(1)
    expect(gets).toEqual([])
    expect(observer.mode).toBe('watch')
  })

  it('reads a Deployment it does not observe (no service label, another namespace) directly', async () => {
    const {observer} = await observe()
    expect((await observer.deployment('shop', 'legacy'))?.metadata.generation).toBe(7)
    expect((await observer.deployment('other', 'cart'))?.metadata.generation).toBe(7)
    // No event will come for it: a wait on it reads again as often as direct reads do (100 ms).
    expect(await timed(observer.changed('shop', 'cart', ['legacy'], 2000))).toBeLessThan(500)
    expect(gets).toEqual([
      '/apis/apps/v1/namespaces/shop/deployments/legacy',
      '/apis/apps/v1/namespaces/other/deployments/cart',
    ])
  })

  it('wakes a driver on a request for its service, and never answers a request it acted on again', async () => {
    const {observer, requests} = await observe()
    const woken = timed(observer.changed('shop', 'cart', ['cart', 'cart-canary'], 2000))
    await requests.push({type: 'ADDED', object: request('cart', '40')})
    expect(await woken).toBeLessThan(200)
    expect(await observer.request('shop', 'cart')).toMatchObject({request: {action: 'abort'}, resourceVersion: '40'})
    expect(await observer.request('shop', 'orders')).toBeUndefined()
    // Acted on and deleted: its DELETED event has not come yet, but it is not answered again.
    observer.consumed('shop', 'cart', '40')
    expect(await observer.request('shop', 'cart')).toBeUndefined()
    // A new request (written after) is.
    await requests.push({type: 'MODIFIED', object: request('cart', '41', 'promote')})
    expect(await observer.request('shop', 'cart')).toMatchObject({request: {action: 'promote'}, resourceVersion: '41'})
    await requests.push({type: 'DELETED', object: request('cart', '41', 'promote')})
    expect(await observer.request('shop', 'cart')).toBeUndefined()
  })

  it('wakes every waiting driver when a member of the release changes (notify)', async () => {
    const {observer} = await observe()
    const a = timed(observer.changed('shop', 'cart', ['cart'], 2000))
    const b = timed(observer.changed('shop', 'orders', ['orders'], 2000))
    observer.notify()
    expect(await a).toBeLessThan(200)
    expect(await b).toBeLessThan(200)
  })

  it('an interrupt rejects a wait at once, as every abortable wait does', async () => {
    const {observer} = await observe()
    const controller = new AbortController()
    const waiting = observer.changed('shop', 'cart', ['cart'], 5000, {signal: controller.signal})
    controller.abort()
    await expect(waiting).rejects.toMatchObject({code: 'ABORT_ERR'})
  })
})
