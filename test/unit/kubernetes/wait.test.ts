import {getEventListeners} from 'node:events'

import {afterEach, describe, expect, it} from 'vitest'

import {sleep, waitFor} from '../../../src/kubernetes/wait.js'

describe('the one abortable wait (sleep, waitFor)', () => {
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  afterEach(() => {
    process.off('warning', onWarning)
    warnings.length = 0
  })

  it('leaves no abort listener behind per poll (a long wait polled 200 times)', async () => {
    process.on('warning', onWarning)
    const controller = new AbortController()
    let polls = 0
    const result = await waitFor(async () => ({done: ++polls >= 200, value: polls}), {
      timeoutMs: 60_000,
      pollMs: 1,
      signal: controller.signal,
    })
    expect(result).toEqual({done: true, value: 200})
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    await new Promise((r) => setImmediate(r))
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([])
  })

  it('still ends a poll at once when the signal aborts', async () => {
    const controller = new AbortController()
    const started = Date.now()
    const waiting = waitFor(async () => ({done: false, value: 0}), {
      timeoutMs: 60_000,
      pollMs: 30_000,
      signal: controller.signal,
    })
    setTimeout(() => controller.abort(), 50)
    await expect(waiting).rejects.toMatchObject({code: 'ABORT_ERR'})
    expect(Date.now() - started).toBeLessThan(5000)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })

  it('sleep rejects with ABORT_ERR at once on an aborted signal, and as soon as it aborts', async () => {
    const controller = new AbortController()
    controller.abort()
    const started = Date.now()
    await expect(sleep(10_000, controller.signal)).rejects.toMatchObject({code: 'ABORT_ERR', message: 'Interrupted'})
    const later = new AbortController()
    const waiting = sleep(10_000, later.signal)
    setTimeout(() => later.abort(), 20)
    await expect(waiting).rejects.toMatchObject({code: 'ABORT_ERR'})
    expect(Date.now() - started).toBeLessThan(1000)
    expect(getEventListeners(later.signal, 'abort')).toHaveLength(0)
  })

  it('sleep waits the time without a signal and leaves no listener when it ends', async () => {
    const controller = new AbortController()
    const started = Date.now()
    await sleep(30, controller.signal)
    expect(Date.now() - started).toBeGreaterThanOrEqual(25)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })
})
