import type http from 'node:http'
import type https from 'node:https'
import type net from 'node:net'

import type {KubeCredentials} from './kubeconfig.js'

/**
 * node:http and node:https as CommonJS modules, fetched on the first request. An ES import of
 * node:http builds a facade of every export it has, and reading them all loads Node's bundled
 * undici (the fetch and WebSocket getters): about 30 ms of CPU on every start of a command that
 * imports this module, even one that never sends a request (`dr plan`, `slo rules`). Measured with
 * Node 24: import() of both 43 to 52 ms of CPU, process.getBuiltinModule 14 to 18 ms.
 */
const transports = () => ({http: process.getBuiltinModule('node:http'), https: process.getBuiltinModule('node:https')})

/**
 * Raw JSON requests to the API server over one pool of keep-alive connections.
 *
 * Why not the generated clients for applying: @kubernetes/client-node 1.x builds a new
 * https.Agent for every request (KubeConfig.applySecurityAuthentication), so each call pays a
 * fresh TLS handshake, and its KubernetesObjectApi serialises bodies through the typed models,
 * which drops fields the models do not know (an overlay's newer field would vanish silently).
 * Authentication still comes from the KubeConfig (certificates, tokens, exec plugins).
 */
export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: unknown,
    readonly method: string,
    readonly path: string,
    readonly headers: http.IncomingHttpHeaders = {},
  ) {
    super(
      `${method} ${path}: HTTP ${statusCode}: ${(body as {message?: string})?.message ?? String(body).slice(0, 300)}`,
    )
    this.name = 'KubeHttpError'
  }

  /** The client's statusCode() helper reads `code`. */
  get code(): number {
    return this.statusCode
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  contentType?: string
  /** The Accept header (default application/json), e.g. metadata only: PARTIAL_METADATA. */
  accept?: string
  signal?: AbortSignal
  timeoutMs?: number
  /** A 2xx body goes to this callback chunk by chunk instead of being buffered and parsed (large lists); the request then resolves undefined. */
  onData?: (chunk: Buffer) => void
}

/**
 * An agent of one KubeHttp: one server, one set of credentials. Node names a pool of sockets by every
 * TLS option of a request, and for certificates and keys held as bytes that name is their base64
 * text, made three times per request (queueing, freeing, removing a socket): a tenth of a cold
 * 18,250-object deploy's client CPU. Every request of this agent shares one pool, so it has one name.
 */
function singlePoolAgent<A extends http.Agent>(agent: A): A {
  const name = 'retailops-kube'
  ;(agent as unknown as {getName: () => string}).getName = () => name
  return agent
}

/**
 * A path the URL parser would keep as it is (what objectPath and collectionPath build: absolute, no
 * character it escapes, no dot segment it resolves, no percent sign, no query): used without parsing it.
 */
const PLAIN_PATH = /^(?:\/[\w\-~!$&'()*+,;=:@]+(?:\.[\w\-~!$&'()*+,;=:@]*)*)+\/?$/

export class KubeHttp {
  private agent?: http.Agent
  /** The https agent's first connection, opened before TLS was loaded, until the agent takes it (takeEarly). */
  private early?: {socket: net.Socket; ignore: () => void}
  /** Requests sent and not yet answered (or failed): close() leaves their sockets alone. */
  private inFlight = 0
  private closeWhenIdle = false
  private headers?: {value: Record<string, string>; at: number}
  private readonly base: URL
  private readonly hostname: string

  constructor(
    private readonly kc: KubeCredentials,
    private readonly maxSockets = 64,
  ) {
    this.base = new URL(kc.getCurrentCluster()!.server)
    // An IPv6 literal's URL hostname is bracketed; request options want it bare.
    this.hostname = this.base.hostname.replace(/^\[(.*)\]$/, '$1')
  }

  private async prepare(): Promise<{agent: http.Agent; headers: Record<string, string>}> {
    const now = Date.now()
    if (!this.agent || !this.headers || now - this.headers.at > 60_000) {
      const opts: https.RequestOptions = {}
      await this.kc.applyToHTTPSOptions(opts)
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v)
      if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`
      this.headers = {value: headers, at: now}
      if (!this.agent && this.base.protocol === 'http:') {
        this.agent = singlePoolAgent(new (transports().http.Agent)({keepAlive: true, maxSockets: this.maxSockets}))
      } else if (!this.agent) {
        this.connectEarly()
        const agent = new (transports().https.Agent)({
          keepAlive: true,
          maxSockets: this.maxSockets,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          pfx: opts.pfx,
          passphrase: opts.passphrase,
          servername: opts.servername,
          rejectUnauthorized: opts.rejectUnauthorized,
        })
        // The first connection wraps the early one in TLS (tls.connect({socket}): the handshake starts
        // once it is connected), with all else the agent's own (session reuse, SNI, the server's
        // identity check, the pool, the request's timeout).
        const create = agent.createConnection.bind(agent)
        agent.createConnection = (options, cb) => {
          const socket = this.takeEarly()
          return create(socket ? ({...options, socket} as http.ClientRequestArgs) : options, cb)
        }
        this.agent = singlePoolAgent(agent)
      }
    }
    return {agent: this.agent, headers: this.headers.value}
  }

  /**
   * Opens the https agent's first connection before node:https (and with it node:tls) is loaded and
   * the agent's TLS context is made: loading TLS and OpenSSL's first secure context (the CA, client
   * certificate and key) cost 15 to 20 ms of CPU, which so overlap the name lookup and the TCP
   * handshake instead of preceding them. Until the agent takes it, the socket keeps no process
   * alive (unref), and an error of it is left to the agent's own connection to report.
   */
  private connectEarly(): void {
    const socket = process
      .getBuiltinModule('node:net')
      // What the agent's own connection would set: keep-alive after its keepAliveMsecs, no delay.
      .connect({
        host: this.hostname,
        port: Number(this.base.port || 443),
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: 1000,
      })
    const ignore = () => undefined
    socket.on('error', ignore)
    socket.unref()
    this.early = {socket, ignore}
  }

  /**
   * The early connection, when the agent asks for its first one and it is still connecting or
   * connected; a socket that failed or closed before then is dropped, and the agent connects as it
   * always did, so a refused or unreachable server reports the same error.
   */
  private takeEarly(): net.Socket | undefined {
    const early = this.early
    this.early = undefined
    if (!early) return undefined
    const {socket, ignore} = early
    socket.removeListener('error', ignore)
    if (socket.destroyed || !(socket.connecting || socket.readyState === 'open')) {
      socket.destroy()
      return undefined
    }
    return socket.ref()
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    this.inFlight += 1
    try {
      return await this.send<T>(method, path, options)
    } finally {
      this.inFlight -= 1
      if (this.inFlight === 0 && this.closeWhenIdle) this.destroyAgent()
    }
  }

  private async send<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const {agent, headers} = await this.prepare()
    // The request's target as options, not a URL object per request: a path and its query string.
    // A path that is not plain is parsed as a URL would be, and keeps the query string it carries.
    const parsed = PLAIN_PATH.test(path) ? undefined : new URL(path, this.base)
    const pathname = parsed ? parsed.pathname : path
    let query = parsed?.search ?? ''
    for (const k in options.query) {
      const v = options.query[k]
      if (v !== undefined) query += `${query ? '&' : '?'}${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`
    }
    const payload =
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body)
    const {http, https} = transports()
    const transport = this.base.protocol === 'http:' ? http : https
    return new Promise<T>((resolve, reject) => {
      const req = transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.hostname,
          port: this.base.port || undefined,
          path: `${pathname}${query}`,
          method,
          agent,
          signal: options.signal,
          timeout: options.timeoutMs ?? 60_000,
          headers: {
            ...headers,
            Accept: options.accept ?? 'application/json',
            ...(payload === undefined
              ? {}
              : {
                  'Content-Type': options.contentType ?? 'application/json',
                  'Content-Length': Buffer.byteLength(payload),
                }),
          },
        },
        (res) => {
          if (options.onData && (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) {
            res.on('data', options.onData)
            res.on('error', reject)
            res.on('end', () => resolve(undefined as T))
            return
          }
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            let body: unknown = text
            try {
              body = text ? JSON.parse(text) : undefined
            } catch {
              // not JSON: keep the text
            }
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300) resolve(body as T)
            else reject(new KubeHttpError(status, body, method, pathname, res.headers))
          })
        },
      )
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error(`${method} ${pathname}: no answer`), {code: 'ETIMEDOUT'})),
      )
      req.on('error', reject)
      if (payload !== undefined) req.write(payload)
      req.end()
    })
  }

  /**
   * Closes the keep-alive sockets so the process can exit. Clients are shared per kubeconfig and
   * context (kubeHttpOf), so one caller's close() must not cut another's request (a watch, an
   * apply) in flight: the sockets close when the last request in flight ends.
   */
  close(): void {
    if (this.inFlight === 0) this.destroyAgent()
    else this.closeWhenIdle = true
  }

  private destroyAgent(): void {
    this.closeWhenIdle = false
    this.early?.socket.destroy()
    this.early = undefined
    this.agent?.destroy()
    this.agent = undefined
  }
}
