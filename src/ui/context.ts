import type {Output} from './output.js'

/** What every engine function gets besides its typed options: where to report, and when to stop. */
export interface RunContext {
  out: Output
  /** Aborted on Ctrl-C or SIGTERM; engines stop starting work and run their cleanup. */
  signal?: AbortSignal
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const error = new Error('Interrupted') as NodeJS.ErrnoException
    error.code = 'ABORT_ERR'
    throw error
  }
}
