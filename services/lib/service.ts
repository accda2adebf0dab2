// The HTTP service every retail service is built on: routing by template, JSON in and out,
// probes, metrics, structured access logs, fault injection, idempotency keys and graceful
// shutdown. A service is its routes; everything else is here, once.

import {randomUUID} from 'node:crypto'
import {createServer} from 'node:http'
import type {IncomingHttpHeaders, IncomingMessage, Server, ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import type {BaseConfig} from './config.ts'
import {HttpError, badRequest, notFound} from './errors.ts'
import {createFaultInjector} from './fault.ts'
import type {FaultInjector} from './fault.ts'
import {IDEMPOTENCY_HEADER, IdempotencyStore, MAX_KEY_LENGTH, REPLAYED_HEADER, fingerprint} from './idempotency.ts'
import type {StoredReply} from './idempotency.ts'
import {createLogger} from './log.ts'
import type {Logger} from './log.ts'
import {createMetrics} from './metrics.ts'
import type {Metrics} from './metrics.ts'
import {Router} from './router.ts'

export interface RequestContext {
  method: string
  path: string
  /** The matched route template, e.g. /products/:id. */
  route: string
  params: Record<string, string>
  query: URLSearchParams
  headers: IncomingHttpHeaders
  /** Parsed JSON body, or undefined when the request had none. */
  body: unknown
  requestId: string
  /** The request's Idempotency-Key, on idempotent routes. */
  idempotencyKey: string | undefined
  /**
   * The request is synthetic (X-Synthetic, e.g. a warm-up): it runs the whole code path and its
   * checks, but changes no business state (no stock reserved, no payment, no order), is counted in
   * the http_* metrics with synthetic="true" and in no business counter, and is passed on as
   * synthetic to every dependency.
   */
  synthetic: boolean
  /** The X-Synthetic value to pass on to dependencies (undefined for real requests). */
  syntheticSource: string | undefined
  log: Logger
}

export type Reply = StoredReply

export type Handler = (ctx: RequestContext) => Reply | Promise<Reply>

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  path: string
  handler: Handler
  /** Requires an Idempotency-Key header and answers retries from the idempotency store. */
  idempotent?: boolean
}

export interface ServiceDeps {
  log?: Logger
  metrics?: Metrics
  idempotency?: IdempotencyStore
  /** Keys of synthetic requests: a store of their own, so a warm-up never pushes real customers' keys out. */
  syntheticIdempotency?: IdempotencyStore
  /** Randomness for fault injection (tests make it deterministic). */
  random?: () => number
}

export interface ShutdownResult {
  /** True when every in-flight request finished before the deadline. */
  drained: boolean
  /** Requests still running when the deadline cut them. */
  abandoned: number
}

export interface Service {
  readonly name: string
  readonly config: BaseConfig
  readonly log: Logger
  readonly metrics: Metrics
  readonly server: Server
  readonly fault: FaultInjector
  /** Listens, waits out STARTUP_DELAY_MS, then turns ready. Resolves to the bound address. */
  start(): Promise<{host: string; port: number; url: string}>
  /** Readiness false, wait SHUTDOWN_DELAY_MS, stop accepting, drain in-flight requests up to SHUTDOWN_TIMEOUT_MS. */
  stop(reason?: string): Promise<ShutdownResult>
  isReady(): boolean
  url(): string
}

/** Routes that are neither faulted nor metered: probes and scrapes are not business traffic. */
const SYSTEM_ROUTES = new Set(['/healthz', '/readyz', '/metrics'])
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH'])
const REQUEST_ID = /^[\w.:-]{1,128}$/
export const SYNTHETIC_HEADER = 'x-synthetic'
const SYNTHETIC_VALUE = /^[\w.:-]{1,64}$/

/**
 * The X-Synthetic value when the request is synthetic: any short token (it names the source,
 * e.g. retailops-prewarm) except false, 0 and no. An unreadable value counts as synthetic: when in
 * doubt, a request must not reserve, charge or order.
 */
export function syntheticSource(headers: IncomingHttpHeaders): string | undefined {
  const raw = headers[SYNTHETIC_HEADER]
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim()
  if (value === undefined || value === '' || /^(false|0|no)$/i.test(value)) return undefined
  return SYNTHETIC_VALUE.test(value) ? value : 'true'
}

type Phase = 'created' | 'starting' | 'ready' | 'stopping' | 'stopped'

export function createService(name: string, config: BaseConfig, routes: Route[], deps: ServiceDeps = {}): Service {
  const log = deps.log ?? createLogger({level: config.logLevel, fields: {service: name, version: config.version}})
  const metrics = deps.metrics ?? createMetrics({service: name, version: config.version})
  const idempotency = deps.idempotency ?? new IdempotencyStore()
  const syntheticIdempotency =
    deps.syntheticIdempotency ?? new IdempotencyStore({ttlMs: 60 * 60 * 1000, maxEntries: 10_000})
  const fault = createFaultInjector(config.fault, deps.random)
  const router = new Router<Route>()
  for (const route of routes) {
    if (SYSTEM_ROUTES.has(route.path)) throw new Error(`${route.path} is a built-in route`)
    router.add(route.method, route.path, route)
  }

  let phase: Phase = 'created'
  let inFlight = 0
  let drained: (() => void) | undefined
  let stopping: Promise<ShutdownResult> | undefined

  const server = createServer({requestTimeout: 30_000, headersTimeout: 20_000, keepAliveTimeout: 5_000})
  server.on('request', (req, res) => {
    void handle(req, res)
  })
  server.on('clientError', (error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    log.debug('client error', {err: error})
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint()
    const method = (req.method ?? 'GET').toUpperCase()
    const rawUrl = req.url ?? '/'
    const queryAt = rawUrl.indexOf('?')
    const path = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt)
    const query = new URLSearchParams(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1))
    const incomingId = req.headers['x-request-id']
    const requestId = typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID()
    res.setHeader('x-request-id', requestId)
    const source = syntheticSource(req.headers)
    const synthetic = source !== undefined
    // Said back, so a client can tell its synthetic request was recognised as one.
    if (synthetic) res.setHeader(SYNTHETIC_HEADER, 'true')
    // While draining, every answer closes its connection so keep-alive clients move on.
    if (phase === 'stopping') res.setHeader('connection', 'close')

    if (method === 'GET' && SYSTEM_ROUTES.has(path)) {
      await system(path, res)
      return
    }

    inFlight++
    metrics.inFlight.inc()
    let route = 'unmatched'
    let finished = false
    const finish = (): void => {
      if (finished) return
      finished = true
      // 499: the client went away before the answer was written (nginx's convention).
      const code = res.writableFinished ? res.statusCode : 499
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      metrics.observeRequest({method, route, code, synthetic}, seconds)
      metrics.inFlight.dec()
      const fields = {
        requestId,
        method,
        route,
        path,
        status: code,
        durationMs: Math.round(seconds * 1e4) / 10,
        ...(synthetic ? {synthetic: true} : {}),
      }
      if (code >= 500) log.warn('request', fields)
      else log.info('request', fields)
      inFlight--
      if (inFlight === 0 && drained) drained()
    }
    res.once('finish', finish)
    res.once('close', finish)

    const requestLog = log.child(synthetic ? {requestId, synthetic: true} : {requestId})
    try {
      const found = router.match(method, path)
      if (found.kind === 'not_found') throw new HttpError(404, 'not_found', `no route for ${method} ${path}`)
      if (found.kind === 'method_not_allowed') {
        route = found.template
        throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${found.template}`, undefined, {
          allow: found.allow.join(', '),
        })
      }
      route = found.match.template
      const definition = found.match.value

      const injected = await fault.apply()
      if (injected.fail) throw new HttpError(500, 'injected_fault', 'fault injected by FAULT_ERROR_RATE')

      const body = BODY_METHODS.has(method) ? await readJson(req, config.maxBodyBytes) : undefined
      const ctx: RequestContext = {
        method,
        path,
        route,
        params: found.match.params,
        query,
        headers: req.headers,
        body,
        requestId,
        idempotencyKey: undefined,
        synthetic,
        syntheticSource: source,
        log: requestLog,
      }
      const run = async (): Promise<Reply> => {
        try {
          return await definition.handler(ctx)
        } catch (error) {
          if (error instanceof HttpError) return errorReply(error)
          throw error
        }
      }

      let reply: Reply
      if (definition.idempotent) {
        const key = idempotencyKeyOf(req.headers)
        ctx.idempotencyKey = key
        const store = synthetic ? syntheticIdempotency : idempotency
        const outcome = await store.execute(`${method} ${route} ${key}`, fingerprint(ctx.params, body), run)
        reply = outcome.reply
        if (outcome.replayed) res.setHeader(REPLAYED_HEADER, 'true')
      } else {
        reply = await run()
      }
      send(res, reply)
    } catch (error) {
      if (error instanceof HttpError) {
        send(res, errorReply(error))
      } else {
        requestLog.error('unhandled error', {err: error, method, route})
        send(res, {status: 500, body: {error: 'internal_error', message: 'internal error'}})
      }
    }
  }

  async function system(path: string, res: ServerResponse): Promise<void> {
    if (path === '/healthz') {
      send(res, {status: 200, body: {status: 'ok'}})
    } else if (path === '/readyz') {
      if (phase === 'ready') send(res, {status: 200, body: {status: 'ready'}})
      else
        send(res, {status: 503, body: {status: phase === 'stopping' || phase === 'stopped' ? 'stopping' : 'starting'}})
    } else {
      try {
        const {contentType, body} = await metrics.render()
        res.writeHead(200, {'content-type': contentType, 'cache-control': 'no-store'})
        res.end(body)
      } catch (error) {
        log.error('metrics render failed', {err: error})
        send(res, {status: 500, body: {error: 'internal_error', message: 'metrics unavailable'}})
      }
    }
  }

  function url(): string {
    const address = server.address() as AddressInfo | null
    if (!address) throw new Error(`${name} is not listening`)
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${address.port}`
  }

  async function start(): Promise<{host: string; port: number; url: string}> {
    if (phase !== 'created') throw new Error(`${name} was already started`)
    phase = 'starting'
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.port, config.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address() as AddressInfo
    log.info('listening', {host: address.address, port: address.port, fault: fault.active ? config.fault : undefined})
    if (config.startupDelayMs > 0) await sleep(config.startupDelayMs)
    if (phase === 'starting') {
      phase = 'ready'
      log.info('ready')
    }
    return {host: address.address, port: address.port, url: url()}
  }

  function stop(reason = 'stop'): Promise<ShutdownResult> {
    stopping ??= shutdown(reason)
    return stopping
  }

  async function shutdown(reason: string): Promise<ShutdownResult> {
    const wasListening = server.listening
    phase = 'stopping'
    log.info('shutting down', {reason, inFlight, delayMs: config.shutdownDelayMs, timeoutMs: config.shutdownTimeoutMs})
    if (!wasListening) {
      phase = 'stopped'
      return {drained: true, abandoned: 0}
    }
    // Keep serving, unready, while load balancers take this instance out of rotation.
    if (config.shutdownDelayMs > 0) await sleep(config.shutdownDelayMs)

    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    const idle = new Promise<void>((resolve) => {
      if (inFlight === 0) resolve()
      else drained = resolve
    })
    const deadline = sleep(config.shutdownTimeoutMs, 'deadline' as const, {ref: false})
    const outcome = await Promise.race([idle.then(() => 'drained' as const), deadline])
    const abandoned = inFlight
    if (outcome === 'deadline') {
      log.warn('shutdown deadline reached, closing connections', {abandoned})
      server.closeAllConnections()
    } else {
      // Answers sent while draining carried Connection: close; anything left is idle once
      // the last response's bookkeeping has run.
      await new Promise((resolve) => setImmediate(resolve))
      server.closeIdleConnections()
    }
    await Promise.race([closed, sleep(1_000, undefined, {ref: false})])
    server.closeAllConnections()
    phase = 'stopped'
    log.info('stopped', {drained: outcome === 'drained', abandoned: outcome === 'drained' ? 0 : abandoned})
    return {drained: outcome === 'drained', abandoned: outcome === 'drained' ? 0 : abandoned}
  }

  return {
    name,
    config,
    log,
    metrics,
    server,
    fault,
    start,
    stop,
    isReady: () => phase === 'ready',
    url,
  }
}

function idempotencyKeyOf(headers: IncomingHttpHeaders): string {
  const value = headers[IDEMPOTENCY_HEADER]
  const key = Array.isArray(value) ? value[0] : value
  if (key === undefined || key.trim() === '') {
    throw new HttpError(400, 'idempotency_key_required', 'this route needs an Idempotency-Key header')
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new HttpError(400, 'invalid_idempotency_key', `Idempotency-Key is longer than ${MAX_KEY_LENGTH} characters`)
  }
  return key.trim()
}

function errorReply(error: HttpError): Reply {
  return {status: error.status, body: error.body, headers: error.headers}
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return
  const headers: Record<string, string> = {...reply.headers, 'cache-control': 'no-store'}
  if (reply.body === undefined || reply.status === 204) {
    res.writeHead(reply.status, headers)
    res.end()
    return
  }
  const payload = JSON.stringify(reply.body)
  headers['content-type'] = 'application/json; charset=utf-8'
  headers['content-length'] = String(Buffer.byteLength(payload))
  res.writeHead(reply.status, headers)
  res.end(payload)
}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = (): HttpError =>
    new HttpError(413, 'payload_too_large', `request body is larger than ${limit} bytes`, undefined, {
      connection: 'close',
    })
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) {
    req.resume()
    return Promise.reject(tooLarge())
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size <= limit) {
        chunks.push(chunk)
        return
      }
      // Stop buffering, discard the rest, and answer now; the connection closes after it.
      req.off('data', onData).off('end', onEnd).off('error', onError)
      req.resume()
      reject(tooLarge())
    }
    const onEnd = (): void => {
      req.off('error', onError)
      if (size === 0) return resolve(undefined)
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch {
        reject(new HttpError(400, 'invalid_json', 'request body is not valid JSON'))
      }
    }
    const onError = (error: Error): void => reject(error)
    req.on('data', onData).on('end', onEnd).on('error', onError)
  })
}

/** GET <path with :id> answered from a store: the record, or 404 naming what was missing. */
export function lookupRoute<T>(path: string, what: string, find: (id: string) => T | undefined): Route {
  if (!path.includes(':id')) throw new Error(`lookup route needs an :id parameter: ${path}`)
  return {
    method: 'GET',
    path,
    handler: ({params}) => {
      const found = find(params.id)
      if (found === undefined) throw notFound(what, params.id)
      return {status: 200, body: found}
    },
  }
}

/**
 * GET <path>: the newest records of a store, `limit` (1..100, default 20) of them, with the total,
 * so what a store holds can be read back (tests, a warm-up's before and after).
 */
export function listRoute<T>(
  path: string,
  store: ReadonlyMap<string, T>,
  view: (key: string, value: T) => unknown = (_, v) => v,
): Route {
  return {
    method: 'GET',
    path,
    handler: ({query}) => {
      const limit = query.has('limit') ? Number(query.get('limit')) : 20
      if (!Number.isInteger(limit) || limit < 1 || limit > 100)
        throw badRequest('limit: expected an integer from 1 to 100')
      // offset pages back from the newest: a reader (the reconcile job) walks the whole store 100 at a time.
      const offset = query.has('offset') ? Number(query.get('offset')) : 0
      if (!Number.isInteger(offset) || offset < 0) throw badRequest('offset: expected an integer of 0 or more')
      const all = [...store]
      const end = Math.max(0, all.length - offset)
      const items = all
        .slice(Math.max(0, end - limit), end)
        .reverse()
        .map(([key, value]) => view(key, value))
      return {status: 200, body: {total: store.size, items, limit, offset}}
    },
  }
}
