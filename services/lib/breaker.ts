// A circuit breaker per downstream dependency.
//
//   closed ──(N consecutive failures, or failure ratio ≥ R over the last W calls)──▶ open
//   open ──(cool-down elapsed)──▶ half_open
//   half_open ──(trial call succeeds)──▶ closed      half_open ──(trial call fails)──▶ open
//
// While open, calls fail at once with CircuitOpenError, so callers answer 503 quickly instead
// of queueing behind a dependency that is down. In half-open only a few trial calls go
// through; the rest are refused as if open. Outcomes of calls that started under an earlier
// state (for instance a slow call that finishes after the breaker opened) are ignored.

export type BreakerState = 'closed' | 'open' | 'half_open'

export interface BreakerOptions {
  name: string
  /** Consecutive failures that open the circuit. Default 5. */
  consecutiveFailures?: number
  /** Failure ratio over the window that opens the circuit, 0..1. Default 0.5. */
  failureRatio?: number
  /** Calls the window must hold before the ratio counts. Default 10. */
  minimumCalls?: number
  /** How many recent calls the ratio is taken over. Default 20. */
  windowSize?: number
  /** How long the circuit stays open before a trial, in ms. Default 5000. */
  openMs?: number
  /** Trial calls let through at once while half-open. Default 1. */
  halfOpenCalls?: number
  /** Which errors count as failures of the dependency. Default: every error. */
  isFailure?: (error: unknown) => boolean
  onStateChange?: (from: BreakerState, to: BreakerState) => void
  now?: () => number
}

export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError'
  readonly breaker: string
  /** How long until a trial call will be let through. */
  readonly retryAfterMs: number

  constructor(breaker: string, retryAfterMs: number) {
    super(`circuit ${breaker} is open`)
    this.breaker = breaker
    this.retryAfterMs = retryAfterMs
  }
}

export interface BreakerSnapshot {
  state: BreakerState
  consecutiveFailures: number
  windowCalls: number
  windowFailures: number
}

export class CircuitBreaker {
  readonly name: string
  #consecutiveLimit: number
  #ratio: number
  #minimumCalls: number
  #windowSize: number
  #openMs: number
  #halfOpenCalls: number
  #isFailure: (error: unknown) => boolean
  #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined
  #now: () => number

  #state: BreakerState = 'closed'
  /** Bumped on every transition, so late outcomes from an earlier state are ignored. */
  #generation = 0
  #openedAt = 0
  #consecutive = 0
  #window: boolean[] = []
  #trials = 0

  constructor(options: BreakerOptions) {
    this.name = options.name
    this.#consecutiveLimit = positive(options.consecutiveFailures ?? 5, 'consecutiveFailures')
    this.#ratio = options.failureRatio ?? 0.5
    if (!(this.#ratio > 0 && this.#ratio <= 1)) throw new RangeError('failureRatio must be in (0, 1]')
    this.#windowSize = positive(options.windowSize ?? 20, 'windowSize')
    this.#minimumCalls = Math.min(positive(options.minimumCalls ?? 10, 'minimumCalls'), this.#windowSize)
    this.#openMs = options.openMs ?? 5_000
    if (!(this.#openMs >= 0)) throw new RangeError('openMs must be >= 0')
    this.#halfOpenCalls = positive(options.halfOpenCalls ?? 1, 'halfOpenCalls')
    this.#isFailure = options.isFailure ?? (() => true)
    this.#onStateChange = options.onStateChange
    this.#now = options.now ?? Date.now
  }

  /** The state now; an open circuit whose cool-down has passed reads as half-open. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#openMs) this.#transition('half_open')
    return this.#state
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.state,
      consecutiveFailures: this.#consecutive,
      windowCalls: this.#window.length,
      windowFailures: this.#window.filter((ok) => !ok).length,
    }
  }

  /** Milliseconds until an open circuit lets a trial call through (0 unless open). */
  retryAfterMs(): number {
    return this.state === 'open' ? Math.max(0, this.#openedAt + this.#openMs - this.#now()) : 0
  }

  async execute<T>(call: () => Promise<T>): Promise<T> {
    const state = this.state
    if (state === 'open' || (state === 'half_open' && this.#trials >= this.#halfOpenCalls)) {
      throw new CircuitOpenError(this.name, state === 'open' ? this.retryAfterMs() : 0)
    }
    const generation = this.#generation
    const trial = state === 'half_open'
    if (trial) this.#trials++
    try {
      const result = await call()
      this.#record(generation, true)
      return result
    } catch (error) {
      this.#record(generation, !this.#isFailure(error))
      throw error
    } finally {
      if (trial && generation === this.#generation) this.#trials--
    }
  }

  #record(generation: number, ok: boolean): void {
    if (generation !== this.#generation) return
    if (this.#state === 'half_open') {
      this.#transition(ok ? 'closed' : 'open')
      return
    }
    if (this.#state !== 'closed') return
    this.#consecutive = ok ? 0 : this.#consecutive + 1
    this.#window.push(ok)
    if (this.#window.length > this.#windowSize) this.#window.shift()
    const failures = this.#window.filter((entry) => !entry).length
    const ratioTripped = this.#window.length >= this.#minimumCalls && failures / this.#window.length >= this.#ratio
    if (this.#consecutive >= this.#consecutiveLimit || ratioTripped) this.#transition('open')
  }

  #transition(to: BreakerState): void {
    const from = this.#state
    if (from === to) return
    this.#state = to
    this.#generation++
    this.#trials = 0
    if (to === 'open') this.#openedAt = this.#now()
    if (to === 'closed' || to === 'open') {
      this.#consecutive = 0
      this.#window = []
    }
    this.#onStateChange?.(from, to)
  }
}

function positive(value: number, name: string): number {
  if (!(Number.isInteger(value) && value >= 1)) throw new RangeError(`${name} must be an integer >= 1`)
  return value
}
