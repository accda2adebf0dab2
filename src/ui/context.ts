import type {Output} from './output.js'

/** What every engine function gets besides its typed options: where to report, and when to stop. */
export interface RunContext {
  out: Output
  /** Aborted on Ctrl-C or SIGTERM; engines stop starting work and run their cleanup. */
  signal?: AbortSignal
}

/** An ABORT_ERR, as Node's own abortable APIs raise it: toRetailOpsError turns it into INTERRUPTED. */
export function interrupted(): NodeJS.ErrnoException {
  return Object.assign(new Error('Interrupted'), {code: 'ABORT_ERR'})
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw interrupted()
}
