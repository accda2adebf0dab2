/**
 * One message to one destination, within bounds: a release never waits on a chat service. Each
 * attempt has its own timeout, retries back off exponentially, and all attempts of a message share
 * one deadline; what was not delivered by then is reported (a warning), never thrown.
 */

export interface DeliveryPolicy {
  attempts: number
  /** Time one attempt may take. */
  timeoutMs: number
  /** Wait before the first retry; doubled before each next one. */
  backoffMs: number
  /** Time all attempts together may take. */
  deadlineMs: number
}

export interface DeliveryOutcome {
  delivered: boolean
  attempts: number
  /** HTTP status of the last answer, when there was one. */
  status?: number
  /** Why the last attempt failed. */
  error?: string
  durationMs: number
}

/** Answers worth another try: the receiver was busy or broken for a moment. Any other 4xx will not change. */
function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500
}

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export async function deliver(
  url: string,
  request: {headers: Record<string, string>; body: string},
  policy: DeliveryPolicy,
): Promise<DeliveryOutcome> {
  const started = Date.now()
  const deadline = started + policy.deadlineMs
  let attempts = 0
  let status: number | undefined
  let error: string | undefined
  for (;;) {
    const left = deadline - Date.now()
    if (left <= 0) break
    attempts += 1
    const timeoutMs = Math.min(policy.timeoutMs, left)
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {'user-agent': 'retailops', ...request.headers},
        body: request.body,
        // A redirect would carry a signed body (and a secret URL's answer) somewhere else.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      })
      status = response.status
      // Read the answer out so the connection is free again (and bounded by the same timeout).
      const text = await response.text().catch(() => '')
      if (status >= 200 && status < 300) return {delivered: true, attempts, status, durationMs: Date.now() - started}
      error = `HTTP ${status}${text.trim() ? `: ${text.trim().slice(0, 200)}` : ''}`
      if (!retryable(status)) break
    } catch (e) {
      status = undefined
      const err = e as Error & {cause?: {code?: string; message?: string}}
      error =
        err.name === 'TimeoutError' || err.name === 'AbortError'
          ? `no answer within ${timeoutMs} ms`
          : (err.cause?.code ?? err.cause?.message ?? err.message)
    }
    if (attempts >= policy.attempts) break
    const backoff = policy.backoffMs * 2 ** (attempts - 1)
    if (Date.now() + backoff >= deadline) break
    await wait(backoff)
  }
  return {
    delivered: false,
    attempts,
    status,
    error: error ?? 'deadline passed before the first attempt',
    durationMs: Date.now() - started,
  }
}
