/**
 * The one abortable wait of retailops: every poll, back-off and pause between steps waits through
 * sleep(), so Ctrl-C (the run context's signal) ends any wait at once, the same way everywhere.
 */
import {interrupted, throwIfAborted} from '../ui/context.js'

/**
 * Waits ms, or rejects with an ABORT_ERR as soon as the signal aborts. The abort listener is
 * removed when the timer fires: one listener per poll left behind would pile up on a long wait
 * (MaxListenersExceededWarning).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(interrupted())
    const onAbort = () => {
      clearTimeout(timer)
      reject(interrupted())
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

export interface WaitOptions {
  timeoutMs: number
  pollMs: number
  signal?: AbortSignal
}

/** Polls until check() says done or the deadline passes, and returns the last value; an abort rejects with ABORT_ERR. */
export async function waitFor<T>(
  check: () => Promise<{done: boolean; value: T}>,
  options: WaitOptions,
): Promise<{done: boolean; value: T}> {
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    const result = await check()
    if (result.done || Date.now() >= deadline) return result
    throwIfAborted(options.signal)
    await sleep(Math.min(options.pollMs, Math.max(0, deadline - Date.now())), options.signal)
  }
}
