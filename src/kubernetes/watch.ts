/**
 * A collection of objects kept current by one list and one watch, the way client-go's informers
 * keep theirs: many readers in one process share what a single stream brings, instead of each of
 * them polling the API server. A watch that ends is opened again from the last resourceVersion
 * seen; one the server answers with 410 Gone (the resourceVersion was compacted away) is replaced
 * by a fresh list; a watch that cannot be opened at all (forbidden, not supported by a proxy, or
 * failing again and again) leaves the collection polling with a list instead.
 */
import {StringDecoder} from 'node:string_decoder'

import {KubeHttp, KubeHttpError} from './http.js'
import type {Obj} from './objects.js'
import {sleep} from './wait.js'

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'

export interface WatchEvent<T> {
  type: WatchEventType
  object: T
}

/** The watch's resourceVersion is too old (HTTP 410 Gone, or an ERROR event with code 410): list again. */
export class WatchExpired extends Error {}

/** Where a WatchedCollection's objects come from: the API server (apiListWatch), or a test's own source. */
export interface ListWatchSource<T extends Obj> {
  list(signal?: AbortSignal): Promise<{items: T[]; resourceVersion: string}>
  /**
   * Streams the changes after resourceVersion to onEvent until the server ends the watch
   * (resolves), it fails (rejects; WatchExpired for 410) or signal aborts.
   */
  watch(resourceVersion: string, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void>
}

export interface ApiListWatchOptions {
  labelSelector?: string
  /** How long the server keeps one watch open before it ends it (and it is opened again). */
  timeoutSeconds?: number
}

/** List and watch of one collection path over the shared keep-alive pool (KubeHttp). */
export function apiListWatch<T extends Obj>(
  http: KubeHttp,
  path: string,
  options: ApiListWatchOptions = {},
): ListWatchSource<T> {
  const timeoutSeconds = options.timeoutSeconds ?? 60
  return {
    async list(signal) {
      const items: T[] = []
      let token: string | undefined
      let resourceVersion = ''
      do {
        const page = await http.request<{items?: T[]; metadata?: {continue?: string; resourceVersion?: string}}>(
          'GET',
          path,
          {query: {labelSelector: options.labelSelector, limit: 500, continue: token}, signal},
        )
        items.push(...(page.items ?? []))
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion
        token = page.metadata?.continue || undefined
      } while (token)
      return {items, resourceVersion}
    },

    async watch(resourceVersion, onEvent, signal) {
      // A failure found inside the stream (an ERROR event) ends the request from here.
      const stop = new AbortController()
      let failure: Error | undefined
      const decoder = new StringDecoder('utf8')
      let pending = ''
      const fail = (error: Error) => {
        failure ??= error
        stop.abort()
      }
      const onLine = (line: string) => {
        if (!line.trim() || failure) return
        let event: WatchEvent<T>
        try {
          event = JSON.parse(line) as WatchEvent<T>
        } catch {
          return fail(new Error(`${path}: the watch sent a line that is not JSON: ${line.slice(0, 200)}`))
        }
        if (event.type === 'ERROR') {
          const status = event.object as unknown as {code?: number; message?: string}
          return fail(
            status.code === 410
              ? new WatchExpired(`${path}: ${status.message ?? 'resourceVersion too old'} (410 Gone)`)
              : new Error(`${path}: the watch ended with an error: ${status.message ?? JSON.stringify(status)}`),
          )
        }
        try {
          onEvent(event)
        } catch (error) {
          fail(error as Error)
        }
      }
      try {
        await http.request('GET', path, {
          query: {
            watch: 1,
            resourceVersion,
            allowWatchBookmarks: true,
            labelSelector: options.labelSelector,
            timeoutSeconds,
          },
          signal: AbortSignal.any([signal, stop.signal]),
          // The socket may stay quiet until the server ends the watch (bookmarks come about once a minute).
          timeoutMs: (timeoutSeconds + 30) * 1000,
          onData: (chunk) => {
            const lines = (pending + decoder.write(chunk)).split('\n')
            pending = lines.pop() ?? ''
            for (const line of lines) onLine(line)
          },
        })
        onLine(pending + decoder.end())
      } catch (error) {
        if (failure) throw failure
        if (error instanceof KubeHttpError && error.statusCode === 410)
          throw new WatchExpired(`${path}: resourceVersion ${resourceVersion} too old (410 Gone)`)
        throw error
      }
      if (failure) throw failure
    },
  }
}

/** A change of one object: its state now (undefined once deleted) and the state before (undefined when new). */
export type CollectionListener<T> = (name: string, current: T | undefined, previous: T | undefined) => void

export interface WatchedCollectionOptions {
  /** Between two lists once the collection polls (the watch could not be opened). */
  pollMs: number
  /** The first wait before a failed watch is opened again (doubling, at most 5 s). */
  retryMs?: number
  /** Failed watches in a row after which the collection polls instead. */
  maxWatchFailures?: number
  /** Said once when the collection starts polling, with why. */
  onPolling?: (reason: string) => void
}

/** HTTP answers that say a watch will never open here: forbidden (no `watch` verb), not allowed or not implemented. */
function watchRefused(error: unknown): boolean {
  return error instanceof KubeHttpError && [400, 403, 405, 406, 501].includes(error.statusCode)
}

export class WatchedCollection<T extends Obj> {
  private readonly objects = new Map<string, T>()
  private readonly listeners = new Set<CollectionListener<T>>()
  private readonly stopping = new AbortController()
  private resourceVersion?: string
  private loop?: Promise<void>
  /** The last list failed: reads answer this error until a list succeeds again (a read that fails, as a GET would). */
  private failure?: Error
  mode: 'watch' | 'poll' = 'watch'
  /** What the collection has done so far (lists, watches opened, events, relists after 410): for tests and benchmarks. */
  readonly counts = {lists: 0, watches: 0, events: 0, expired: 0}

  constructor(
    private readonly source: ListWatchSource<T>,
    private readonly options: WatchedCollectionOptions,
  ) {}

  /** Lists once (rejects when that fails: nothing is cached yet), then keeps the collection current in the background. */
  async start(): Promise<void> {
    await this.relist()
    this.loop = this.run()
  }

  /** The object as last seen; throws the list's error while the collection cannot be read. */
  get(name: string): T | undefined {
    if (this.failure) throw this.failure
    return this.objects.get(name)
  }

  /** Every change from now on, until the returned function is called. */
  subscribe(listener: CollectionListener<T>): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async close(): Promise<void> {
    this.stopping.abort()
    await this.loop
  }

  private get signal(): AbortSignal {
    return this.stopping.signal
  }

  private emit(name: string, current: T | undefined, previous: T | undefined): void {
    for (const listener of this.listeners) listener(name, current, previous)
  }

  /** A fresh list replaces the cache; what changed meanwhile (or went) is told to the listeners. */
  private async relist(): Promise<void> {
    try {
      const {items, resourceVersion} = await this.source.list(this.signal)
      this.counts.lists += 1
      this.failure = undefined
      const seen = new Set<string>()
      for (const item of items) {
        const name = item.metadata.name
        seen.add(name)
        const previous = this.objects.get(name)
        this.objects.set(name, item)
        if (previous?.metadata.resourceVersion !== item.metadata.resourceVersion) this.emit(name, item, previous)
      }
      for (const [name, previous] of this.objects)
        if (!seen.has(name)) {
          this.objects.delete(name)
          this.emit(name, undefined, previous)
        }
      this.resourceVersion = resourceVersion
    } catch (error) {
      if (!this.signal.aborted) this.failure = error instanceof Error ? error : new Error(String(error))
      throw error
    }
  }

  private apply(event: WatchEvent<T>): void {
    const version = event.object?.metadata?.resourceVersion
    if (event.type === 'BOOKMARK') {
      if (version) this.resourceVersion = version
      return
    }
    const name = event.object.metadata.name
    this.counts.events += 1
    const previous = this.objects.get(name)
    if (event.type === 'DELETED') this.objects.delete(name)
    else this.objects.set(name, event.object)
    if (version) this.resourceVersion = version
    this.emit(name, event.type === 'DELETED' ? undefined : event.object, previous)
  }

  private async run(): Promise<void> {
    const maxFailures = this.options.maxWatchFailures ?? 3
    let failures = 0
    while (!this.signal.aborted) {
      try {
        if (this.mode === 'poll') {
          await sleep(this.options.pollMs, this.signal)
          await this.relist().catch(() => undefined)
          continue
        }
        if (this.resourceVersion === undefined) await this.relist()
        const opened = Date.now()
        const events = this.counts.events
        this.counts.watches += 1
        await this.source.watch(this.resourceVersion!, (e) => this.apply(e), this.signal)
        // Ended by the server (its timeout): open it again from where it was. One that ends at once,
        // again and again, without a single event, is a failure (a proxy that closes streams).
        if (Date.now() - opened < 1000 && this.counts.events === events) throw new Error('the watch ended at once')
        failures = 0
      } catch (error) {
        if (this.signal.aborted) return
        if (error instanceof WatchExpired) {
          this.counts.expired += 1
          this.resourceVersion = undefined
          continue
        }
        failures += 1
        if (watchRefused(error) || failures >= maxFailures) {
          this.mode = 'poll'
          this.options.onPolling?.((error as Error).message)
          continue
        }
        await sleep(Math.min(5000, (this.options.retryMs ?? 200) * 2 ** (failures - 1)), this.signal).catch(
          () => undefined,
        )
      }
    }
  }
}
