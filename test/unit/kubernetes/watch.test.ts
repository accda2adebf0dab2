import {afterEach, describe, expect, it} from 'vitest'

import {KubeHttpError} from '../../../src/kubernetes/http.js'
import type {Obj} from '../../../src/kubernetes/objects.js'
import {WatchExpired, WatchedCollection, type ListWatchSource, type WatchEvent} from '../../../src/kubernetes/watch.js'

const obj = (name: string, resourceVersion: string, replicas = 1): Obj<{replicas: number}> => ({
  metadata: {name, resourceVersion},
  spec: {replicas},
})

type O = Obj<{replicas: number}>

/**
 * A scripted source: what each list answers, and each watch as the test drives it (events pushed
 * in, ended or failed on demand). The collection under test is the real one.
 */
class ScriptedSource implements ListWatchSource<O> {
  lists: {items: O[]; resourceVersion: string}[] = []
  listCalls = 0
  listError?: Error
  watchCalls: string[] = []
  /** What the next watches do when opened: 'open' stays open for the test to drive; an Error rejects at once. */
  nextWatches: ('open' | Error)[] = []
  private current?: {emit: (e: WatchEvent<O>) => void; end: () => void; fail: (e: Error) => void}
  private opened: (() => void)[] = []

  async list(): Promise<{items: O[]; resourceVersion: string}> {
    this.listCalls += 1
    if (this.listError) throw this.listError
    return this.lists.length > 1 ? this.lists.shift()! : this.lists[0]
  }

  watch(resourceVersion: string, onEvent: (e: WatchEvent<O>) => void, signal: AbortSignal): Promise<void> {
    this.watchCalls.push(resourceVersion)
    const next = this.nextWatches.shift() ?? 'open'
    if (next instanceof Error) return Promise.reject(next)
    return new Promise<void>((resolve, reject) => {
      this.current = {emit: onEvent, end: resolve, fail: reject}
      signal.addEventListener('abort', () => reject(new Error('aborted')), {once: true})
      for (const f of this.opened.splice(0)) f()
    })
  }

  /** Resolves once a watch is open (now or when the next one opens). */
  async open(): Promise<void> {
    if (this.current) return
    await new Promise<void>((resolve) => this.opened.push(resolve))
  }

  async emit(e: WatchEvent<O>): Promise<void> {
    await this.open()
    this.current!.emit(e)
  }

  /** The server ends the watch (its timeoutSeconds). */
  async end(): Promise<void> {
    await this.open()
    const c = this.current!
    this.current = undefined
    c.end()
  }

  async fail(error: Error): Promise<void> {
    await this.open()
    const c = this.current!
    this.current = undefined
    c.fail(error)
  }
}

const until = async (check: () => boolean, ms = 2000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 5))
  }
}

let collections: WatchedCollection<O>[] = []
afterEach(async () => {
  await Promise.all(collections.map((c) => c.close()))
  collections = []
})

function collection(source: ScriptedSource, options: Partial<ConstructorParameters<typeof WatchedCollection>[1]> = {}) {
  const c = new WatchedCollection<O>(source, {pollMs: 20, retryMs: 5, ...options})
  collections.push(c)
  return c
}

describe('WatchedCollection', () => {
  it('lists once, then watches from the list resourceVersion, and fans every event out to every listener', async () => {
    const source = new ScriptedSource()
    source.lists = [{items: [obj('cart', '10')], resourceVersion: '10'}]
    const c = collection(source)
    await c.start()
    expect(c.get('cart')?.spec?.replicas).toBe(1)
    const a: string[] = []
    const b: string[] = []
    c.subscribe((name, now, before) => a.push(`${name}:${before?.spec?.replicas ?? '-'}>${now?.spec?.replicas ?? '-'}`))
    c.subscribe((name) => b.push(name))
    await source.emit({type: 'MODIFIED', object: obj('cart', '11', 3)})
    await source.emit({type: 'ADDED', object: obj('catalog', '12', 2)})
    await source.emit({type: 'BOOKMARK', object: obj('', '13')})
    await source.emit({type: 'DELETED', object: obj('cart', '14', 3)})
    expect(a).toEqual(['cart:1>3', 'catalog:->2', 'cart:3>-'])
    expect(b).toEqual(['cart', 'catalog', 'cart'])
    expect(c.get('cart')).toBeUndefined()
    expect(c.get('catalog')?.spec?.replicas).toBe(2)
    expect(source.watchCalls).toEqual(['10'])
    expect(c.counts).toMatchObject({lists: 1, events: 3, expired: 0})
    expect(c.mode).toBe('watch')
  })

  it('opens the watch again from the last resourceVersion (a bookmark included) when the server ends it', async () => {
    const source = new ScriptedSource()
    source.lists = [{items: [], resourceVersion: '5'}]
    const c = collection(source)
    await c.start()
    await source.emit({type: 'ADDED', object: obj('cart', '6')})
    await source.emit({type: 'BOOKMARK', object: obj('', '9')})
    // The server ends the watch after its timeout: opened again from 9; a dropped connection too.
    await source.end()
    await until(() => source.watchCalls.length === 2)
    await source.fail(new Error('socket hang up'))
    await until(() => source.watchCalls.length === 3)
    expect(source.watchCalls).toEqual(['5', '9', '9'])
    expect(c.mode).toBe('watch')
    expect(source.listCalls).toBe(1)
  })

  it('lists again on 410 Gone and tells listeners what changed and what went meanwhile', async () => {
    const source = new ScriptedSource()
    source.lists = [
      {items: [obj('cart', '10'), obj('orders', '10')], resourceVersion: '10'},
      {items: [obj('cart', '20', 5), obj('search', '19')], resourceVersion: '20'},
    ]
    const c = collection(source)
    await c.start()
    const seen: string[] = []
    c.subscribe((name, now) => seen.push(`${name}=${now?.spec?.replicas ?? 'gone'}`))
    await source.fail(new WatchExpired('too old resource version: 10 (410 Gone)'))
    await until(() => source.watchCalls.length === 2)
    expect(source.listCalls).toBe(2)
    expect(c.counts.expired).toBe(1)
    expect(source.watchCalls).toEqual(['10', '20'])
    expect(seen.sort()).toEqual(['cart=5', 'orders=gone', 'search=1'])
    expect(c.get('orders')).toBeUndefined()
    expect(c.get('cart')?.spec?.replicas).toBe(5)
    expect(c.mode).toBe('watch')
  })

  it('polls with a list when the watch is refused (403: no watch verb), and keeps answering reads', async () => {
    const source = new ScriptedSource()
    source.lists = [
      {items: [obj('cart', '1')], resourceVersion: '1'},
      {items: [obj('cart', '2', 2)], resourceVersion: '2'},
    ]
    source.nextWatches = [new KubeHttpError(403, {message: 'forbidden: cannot watch'}, 'GET', '/apis/apps/v1/...')]
    const reasons: string[] = []
    const c = collection(source, {onPolling: (r) => reasons.push(r)})
    const changes: string[] = []
    await c.start()
    c.subscribe((name, now) => changes.push(`${name}=${now?.spec?.replicas}`))
    await until(() => source.listCalls >= 3)
    expect(c.mode).toBe('poll')
    expect(reasons).toHaveLength(1)
    expect(reasons[0]).toContain('HTTP 403')
    expect(source.watchCalls).toHaveLength(1)
    expect(c.get('cart')?.spec?.replicas).toBe(2)
    // A polled change is told once, not at every list.
    expect(changes).toEqual(['cart=2'])
  })

  it('polls after repeated watch failures, and a list failing while polling fails reads until a list succeeds', async () => {
    const source = new ScriptedSource()
    source.lists = [{items: [obj('cart', '1')], resourceVersion: '1'}]
    const reset = Object.assign(new Error('read ECONNRESET'), {code: 'ECONNRESET'})
    source.nextWatches = [reset, reset, reset]
    const c = collection(source, {maxWatchFailures: 3})
    await c.start()
    await until(() => c.mode === 'poll')
    expect(source.watchCalls).toHaveLength(3)
    source.listError = new Error('connect ECONNREFUSED 127.0.0.1:6443')
    await until(() => {
      try {
        c.get('cart')
        return false
      } catch {
        return true
      }
    })
    expect(() => c.get('cart')).toThrow('ECONNREFUSED')
    source.listError = undefined
    await until(() => {
      try {
        return c.get('cart') !== undefined
      } catch {
        return false
      }
    })
    expect(c.get('cart')?.metadata.resourceVersion).toBe('1')
  })

  it('a watch that ends at once without events, again and again, counts as failing (a proxy closing streams)', async () => {
    const source = new ScriptedSource()
    source.lists = [{items: [], resourceVersion: '1'}]
    const c = collection(source, {maxWatchFailures: 2})
    await c.start()
    await source.open()
    // End each watch as soon as it opens.
    await source.end()
    await until(() => source.watchCalls.length === 2)
    await source.end()
    await until(() => c.mode === 'poll')
    expect(source.watchCalls).toHaveLength(2)
  })

  it('rejects start when the first list fails, and close ends the loop', async () => {
    const source = new ScriptedSource()
    source.listError = new KubeHttpError(403, {message: 'forbidden: cannot list'}, 'GET', '/api/v1/...')
    const c = collection(source)
    await expect(c.start()).rejects.toThrow('HTTP 403')
    source.listError = undefined
    source.lists = [{items: [], resourceVersion: '1'}]
    const d = collection(source)
    await d.start()
    await source.open()
    await d.close()
    expect(source.watchCalls).toHaveLength(1)
  })
})
