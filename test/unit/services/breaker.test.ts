import {describe, expect, it} from 'vitest'
import {CircuitBreaker, CircuitOpenError} from '../../../services/lib/breaker.ts'
import type {BreakerOptions, BreakerState} from '../../../services/lib/breaker.ts'

function setup(options: Partial<BreakerOptions> = {}) {
  let now = 1_000_000
  const transitions: string[] = []
  const breaker = new CircuitBreaker({
    name: 'payments',
    consecutiveFailures: 3,
    openMs: 1_000,
    now: () => now,
    onStateChange: (from: BreakerState, to: BreakerState) => transitions.push(`${from}->${to}`),
    ...options,
  })
  const ok = () => breaker.execute(async () => 'ok')
  const fail = () => breaker.execute(async () => Promise.reject(new Error('boom'))).catch((error: unknown) => error)
  return {breaker, transitions, ok, fail, advance: (ms: number) => (now += ms)}
}

describe('circuit breaker', () => {
  it('opens after N consecutive failures and then fails fast without calling', async () => {
    const {breaker, transitions, fail} = setup()
    await fail()
    await fail()
    expect(breaker.state).toBe('closed')
    await fail()
    expect(breaker.state).toBe('open')
    expect(transitions).toEqual(['closed->open'])

    let called = false
    const error = await breaker
      .execute(async () => {
        called = true
      })
      .catch((e: unknown) => e)
    expect(called).toBe(false)
    expect(error).toBeInstanceOf(CircuitOpenError)
    expect((error as CircuitOpenError).retryAfterMs).toBe(1_000)
  })

  it('a success resets the consecutive count', async () => {
    const {breaker, fail, ok} = setup({failureRatio: 1, minimumCalls: 20})
    for (let i = 0; i < 5; i++) {
      await fail()
      await fail()
      await ok()
    }
    expect(breaker.state).toBe('closed')
  })

  it('opens on the failure ratio over the window once it holds the minimum number of calls', async () => {
    const {breaker, fail, ok} = setup({consecutiveFailures: 100, failureRatio: 0.5, minimumCalls: 6, windowSize: 10})
    // Alternating: never two failures in a row, but half of all calls fail.
    await fail()
    await ok()
    await fail()
    await ok()
    await fail()
    expect(breaker.state).toBe('closed') // 5 calls < minimum 6
    await ok()
    expect(breaker.state).toBe('open') // 3 of 6 = 0.5
  })

  it('the window forgets old outcomes', async () => {
    const {breaker, fail, ok} = setup({consecutiveFailures: 100, failureRatio: 0.5, minimumCalls: 4, windowSize: 4})
    await fail()
    for (let i = 0; i < 10; i++) await ok()
    await fail()
    expect(breaker.snapshot()).toMatchObject({state: 'closed', windowCalls: 4, windowFailures: 1})
  })

  it('goes half-open after the cool-down; a successful trial closes it', async () => {
    const {breaker, transitions, fail, ok, advance} = setup()
    for (let i = 0; i < 3; i++) await fail()
    advance(999)
    expect(breaker.state).toBe('open')
    advance(1)
    expect(breaker.state).toBe('half_open')
    await expect(ok()).resolves.toBe('ok')
    expect(breaker.state).toBe('closed')
    expect(transitions).toEqual(['closed->open', 'open->half_open', 'half_open->closed'])
  })

  it('a failed trial opens it again for a full cool-down', async () => {
    const {breaker, fail, advance} = setup()
    for (let i = 0; i < 3; i++) await fail()
    advance(1_000)
    await fail()
    expect(breaker.state).toBe('open')
    advance(500)
    expect(breaker.state).toBe('open')
    advance(500)
    expect(breaker.state).toBe('half_open')
  })

  it('lets only the configured number of trial calls through while half-open', async () => {
    const {breaker, fail, advance} = setup({halfOpenCalls: 1})
    for (let i = 0; i < 3; i++) await fail()
    advance(1_000)
    let release!: () => void
    const trial = breaker.execute(() => new Promise<string>((resolve) => (release = () => resolve('trial'))))
    await expect(breaker.execute(async () => 'second')).rejects.toBeInstanceOf(CircuitOpenError)
    release()
    await expect(trial).resolves.toBe('trial')
    expect(breaker.state).toBe('closed')
  })

  it('ignores outcomes of calls that started before the state changed', async () => {
    const {breaker, fail} = setup()
    let finishSlow!: () => void
    const slow = breaker.execute(() => new Promise<void>((resolve) => (finishSlow = resolve)))
    for (let i = 0; i < 3; i++) await fail()
    expect(breaker.state).toBe('open')
    finishSlow()
    await slow
    // The late success must not close a circuit that opened after the call began.
    expect(breaker.state).toBe('open')
  })

  it('errors that are not failures of the dependency do not count', async () => {
    const {breaker} = setup({isFailure: (error) => !(error instanceof TypeError)})
    for (let i = 0; i < 5; i++) {
      await breaker.execute(async () => Promise.reject(new TypeError('caller bug'))).catch(() => {})
    }
    expect(breaker.state).toBe('closed')
  })

  it('rejects nonsense options', () => {
    expect(() => new CircuitBreaker({name: 'x', consecutiveFailures: 0})).toThrow(RangeError)
    expect(() => new CircuitBreaker({name: 'x', failureRatio: 1.5})).toThrow(RangeError)
    expect(() => new CircuitBreaker({name: 'x', windowSize: 2.5})).toThrow(RangeError)
  })
})

describe('circuit breaker retry hint', () => {
  it('says how long until the next trial while open, and 0 otherwise', async () => {
    let now = 0
    const breaker = new CircuitBreaker({name: 'x', consecutiveFailures: 1, openMs: 1_000, now: () => now})
    expect(breaker.retryAfterMs()).toBe(0)
    await breaker.execute(async () => Promise.reject(new Error('x'))).catch(() => {})
    now = 400
    expect(breaker.retryAfterMs()).toBe(600)
    now = 1_000
    expect(breaker.retryAfterMs()).toBe(0)
    expect(breaker.state).toBe('half_open')
  })
})
