// An error a handler throws to answer with a given status: the body is {error, message, ...details}.

export class HttpError extends Error {
  override name = 'HttpError'
  readonly status: number
  readonly code: string
  readonly details: Record<string, unknown> | undefined
  readonly headers: Record<string, string> | undefined

  constructor(
    status: number,
    code: string,
    message: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
    this.headers = headers
  }

  get body(): Record<string, unknown> {
    return {error: this.code, message: this.message, ...this.details}
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>): HttpError =>
  new HttpError(400, 'invalid_request', message, details)

export const notFound = (what: string, id: string): HttpError =>
  new HttpError(404, 'not_found', `${what} ${JSON.stringify(id)} not found`, {id})
