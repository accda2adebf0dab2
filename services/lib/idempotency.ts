// Idempotency keys for unsafe requests (POST), after the IETF Idempotency-Key draft:
// - the first request with a key runs and its final answer (any status below 500) is kept;
// - a retry with the same key and the same payload gets the kept answer, and nothing runs twice;
// - a retry that arrives while the first is still running waits for it and shares its answer;
// - the same key with a different payload is refused with 422;
// - a 5xx answer or a thrown error is not kept, so the client may retry with the same key.
// Entries expire after a TTL, and the store is bounded (oldest first out).

import {createHash} from 'node:crypto'
import {HttpError} from './errors.ts'

export interface StoredReply {
  status: number
  body?: unknown
  headers?: Record<string, string>
}

interface Entry {
  fingerprint: string
  expiresAt: number
  pending: Promise<StoredReply> | undefined
  reply: StoredReply | undefined
}

export interface IdempotencyOptions {
  ttlMs?: number
  maxEntries?: number
  now?: () => number
}

export const IDEMPOTENCY_HEADER = 'idempotency-key'
export const REPLAYED_HEADER = 'idempotent-replayed'
export const MAX_KEY_LENGTH = 255

/** A stable digest of a request payload: object keys are sorted, so key order doesn't matter. */
export function fingerprint(...parts: unknown[]): string {
  return createHash('sha256').update(stableStringify(parts)).digest('hex')
}

export function stableStringify(value: unknown): string {
  if (value === undefined) return 'null'
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort()
  return `{${keys.map((key) => `${JSON.stringify(key)}:${stableStringify(record[key])}`).join(',')}}`
}

export class IdempotencyStore {
  #entries = new Map<string, Entry>()
  #ttlMs: number
  #maxEntries: number
  #now: () => number

  constructor(options: IdempotencyOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 24 * 60 * 60 * 1000
    this.#maxEntries = options.maxEntries ?? 100_000
    this.#now = options.now ?? Date.now
  }

  get size(): number {
    return this.#entries.size
  }

  /**
   * Runs `run` once per key. `replayed` is true when the answer comes from an earlier
   * (or concurrent) request with the same key.
   */
  async execute(
    key: string,
    requestFingerprint: string,
    run: () => Promise<StoredReply>,
  ): Promise<{reply: StoredReply; replayed: boolean}> {
    const now = this.#now()
    let entry = this.#entries.get(key)
    if (entry && entry.pending === undefined && entry.expiresAt <= now) {
      this.#entries.delete(key)
      entry = undefined
    }
    if (entry) {
      if (entry.fingerprint !== requestFingerprint) {
        throw new HttpError(
          422,
          'idempotency_key_reused',
          'this Idempotency-Key was already used with a different request payload',
        )
      }
      const reply = entry.reply ?? (await entry.pending!)
      return {reply, replayed: true}
    }

    const fresh: Entry = {fingerprint: requestFingerprint, expiresAt: Infinity, pending: undefined, reply: undefined}
    fresh.pending = (async () => {
      try {
        const reply = await run()
        if (reply.status >= 500) {
          this.#entries.delete(key)
        } else {
          fresh.reply = reply
          fresh.expiresAt = this.#now() + this.#ttlMs
        }
        return reply
      } catch (error) {
        this.#entries.delete(key)
        throw error
      } finally {
        fresh.pending = undefined
      }
    })()
    this.#entries.set(key, fresh)
    this.#evict()
    return {reply: await fresh.pending, replayed: false}
  }

  #evict(): void {
    if (this.#entries.size <= this.#maxEntries) return
    const now = this.#now()
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries) break
      // Never drop a request that is still running: its retries must find it.
      if (entry.pending === undefined || entry.expiresAt <= now) this.#entries.delete(key)
    }
  }
}
