/**
 * `retailops dashboard`: a read-only web UI on 127.0.0.1, served with Hono (@hono/node-server).
 * Every request needs the access token (query once, then the session cookie) and a loopback Host;
 * pages are rendered from the providers the command injected (pages.ts); the rollouts part of a
 * page is kept live over server-sent events fed by one poller that reads the rollout states every
 * second while anyone watches. uPlot and the page's own script and stylesheet are served from the
 * installed package: the page loads nothing from anywhere else (its CSP says so too).
 */
import {readFile} from 'node:fs/promises'
import type {AddressInfo} from 'node:net'
import {createRequire} from 'node:module'

import {serve, type ServerType} from '@hono/node-server'
import {Hono, type Context} from 'hono'
import {streamSSE} from 'hono/streaming'

import {UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {DASHBOARD_CSS, DASHBOARD_JS} from './client.js'
import {
  costPage,
  drPage,
  type Loaded,
  notFoundPage,
  type PageContext,
  prewarmPage,
  rolloutDetailFragment,
  rolloutPage,
  rolloutsFragment,
  rolloutsPage,
  servicePage,
  servicesPage,
  sloPage,
} from './pages.js'
import {cookieValue, COOKIE, hostAllowed, newToken, sessionCookie, TOKEN_PARAM, tokenMatches} from './token.js'
import type {DashboardProviders, RolloutView} from './views.js'

export const HOST = '127.0.0.1'

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  // uPlot sets element styles; the pages set bar widths inline.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

export interface DashboardOptions {
  /** 0: a free port. */
  port: number
  /** Given by tests; otherwise a new random one. */
  token?: string
  /** How often the live view reads the rollout states (default 1000 ms). */
  pollMs?: number
  /** How long SLO, cost, pre-warm and drill data are reused before being read again (default 15 s). */
  cacheMs?: number
}

export interface RunningDashboard {
  url: string
  port: number
  host: string
  token: string
  close(): Promise<void>
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]
}

/** A provider's answer, reused for `ttlMs` (its failure too: an unreachable system is not asked on every click). */
export function cached<T>(read: () => Promise<T>, ttlMs: number, now = () => Date.now()): () => Promise<Loaded<T>> {
  let last: {at: number; value: Promise<Loaded<T>>} | undefined
  return () => {
    if (last && now() - last.at < ttlMs) return last.value
    const value = read().then(
      (v): Loaded<T> => ({ok: true, value: v}),
      (error: unknown): Loaded<T> => ({ok: false, error: messageOf(error)}),
    )
    last = {at: now(), value}
    return value
  }
}

type Listener = (rollouts: Loaded<RolloutView[]>) => void

/** One reader of the rollout states for every open live view: polls while anyone listens. */
export class RolloutFeed {
  private listeners = new Set<Listener>()
  private timer?: NodeJS.Timeout
  private last?: Loaded<RolloutView[]>
  private reading = false

  constructor(
    private readonly read: () => Promise<Loaded<RolloutView[]>>,
    private readonly intervalMs: number,
  ) {}

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    if (!this.timer) this.timer = setInterval(() => void this.tick(), this.intervalMs)
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) this.stop()
    }
  }

  async current(): Promise<Loaded<RolloutView[]>> {
    return this.last ?? (this.last = await this.read())
  }

  private async tick(): Promise<void> {
    if (this.reading) return
    this.reading = true
    try {
      this.last = await this.read()
      for (const l of this.listeners) l(this.last)
    } finally {
      this.reading = false
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  get size(): number {
    return this.listeners.size
  }
}

const ASSETS: Record<string, {module?: string; text?: string; type: string}> = {
  'uPlot.iife.min.js': {module: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8'},
  'uPlot.min.css': {module: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8'},
  'dashboard.js': {text: DASHBOARD_JS, type: 'text/javascript; charset=utf-8'},
  'dashboard.css': {text: DASHBOARD_CSS, type: 'text/css; charset=utf-8'},
}

const requireFromHere = createRequire(import.meta.url)

async function assetBody(name: string): Promise<string | undefined> {
  const asset = ASSETS[name]
  if (!asset) return undefined
  return asset.text ?? readFile(requireFromHere.resolve(asset.module!), 'utf8')
}

export interface AppOptions {
  token: string
  /** The port the server listens on (the Host header must name it). */
  port: () => number
  pollMs?: number
  cacheMs?: number
  signal?: AbortSignal
}

/** The routes, without a listening socket (unit tests call `app.request`). */
export function dashboardApp(
  providers: DashboardProviders,
  options: AppOptions,
): {app: Hono; feed: RolloutFeed; close: () => void} {
  const app = new Hono()
  // Ends the open event streams at once when the server stops (their keep-alive waits hold no timer then).
  const closing = new AbortController()
  const ttl = options.cacheMs ?? 15_000
  const signal = options.signal
  const rollouts = cached(() => providers.rollouts(signal), Math.min(500, options.pollMs ?? 1000))
  const slo = cached(() => providers.slo(signal), ttl)
  const cost = cached(() => providers.cost(signal), Math.max(ttl, 60_000))
  const prewarm = cached(() => providers.prewarm(signal), ttl)
  const drills = cached(() => providers.drills(signal), ttl)
  const feed = new RolloutFeed(rollouts, options.pollMs ?? 1000)
  /** The pages' context: services with a page are those of retailops.yaml and any with a stored rollout. */
  const page = async (): Promise<PageContext> => {
    const live = await rollouts()
    return {
      project: providers.project,
      environment: providers.environment,
      namespace: providers.namespace,
      services: new Set([...providers.services, ...(live.ok ? live.value.map((r) => r.service) : [])]),
      at: new Date(),
    }
  }

  app.use('*', async (c, next) => {
    c.header('Cache-Control', 'no-store')
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('Referrer-Policy', 'no-referrer')
    c.header('X-Frame-Options', 'DENY')
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    if (!hostAllowed(c.req.header('host') ?? new URL(c.req.url).host, options.port()))
      return c.text('Refused: the dashboard answers only to 127.0.0.1 and localhost on its own port.\n', 403)
    const offered = c.req.query(TOKEN_PARAM)
    if (offered !== undefined) {
      if (!tokenMatches(options.token, offered))
        return c.text('Refused: wrong access token. Open the URL `retailops dashboard` printed.\n', 403)
      // The token leaves the address bar at once: the cookie carries it from here on.
      const url = new URL(c.req.url)
      url.searchParams.delete(TOKEN_PARAM)
      c.header('Set-Cookie', sessionCookie(options.token))
      return c.redirect(`${url.pathname}${url.search}`, 303)
    }
    if (!tokenMatches(options.token, cookieValue(c.req.header('cookie'), COOKIE))) {
      c.header('WWW-Authenticate', 'Cookie realm="retailops dashboard"')
      return c.text('Unauthorized: open the URL with the access token that `retailops dashboard` printed.\n', 401)
    }
    await next()
  })

  app.get('/assets/:name', async (c) => {
    const name = c.req.param('name')
    const body = await assetBody(name)
    if (body === undefined) return c.text('Not found\n', 404)
    return c.body(body, 200, {'Content-Type': ASSETS[name].type})
  })

  app.get('/', async (c) => c.html(rolloutsPage(await page(), await rollouts())))
  app.get('/rollouts', (c) => c.redirect('/', 302))
  app.get('/rollouts/:service', async (c) =>
    c.html(rolloutPage(await page(), await rollouts(), c.req.param('service'))),
  )
  app.get('/slo', async (c) => c.html(sloPage(await page(), await slo())))
  app.get('/cost', async (c) => c.html(costPage(await page(), await cost())))
  app.get('/prewarm', async (c) => c.html(prewarmPage(await page(), await prewarm())))
  app.get('/dr', async (c) => c.html(drPage(await page(), await drills())))
  app.get('/services', async (c) => {
    const ctx = await page()
    return c.html(servicesPage(ctx, [...ctx.services].sort()))
  })
  app.get('/services/:name', async (c) => {
    const name = c.req.param('name')
    const ctx = await page()
    if (!ctx.services.has(name))
      return c.html(notFoundPage(ctx, `No service ${name} in retailops.yaml or in this namespace's rollouts.`), 404)
    const [r, s, co, p, d] = await Promise.all([rollouts(), slo(), cost(), prewarm(), drills()])
    return c.html(servicePage(ctx, name, {rollouts: r, slo: s, cost: co, prewarm: p, drills: d}))
  })

  const api = (read: () => Promise<Loaded<unknown>>) => async (c: Context) => {
    const loaded = await read()
    return loaded.ok ? c.json(loaded.value) : c.json({error: loaded.error}, 502)
  }
  app.get('/api/rollouts', api(rollouts))
  app.get('/api/slo', api(slo))
  app.get('/api/cost', api(cost))
  app.get('/api/prewarm', api(prewarm))
  app.get('/api/dr', api(drills))

  app.get('/events/rollouts', (c) => {
    const service = c.req.query('service') || undefined
    const detail = c.req.query('detail') === '1' && service !== undefined
    const render = (data: Loaded<RolloutView[]>) =>
      detail ? rolloutDetailFragment(data, service) : rolloutsFragment(data, service)
    return streamSSE(
      c,
      async (stream) => {
        let last = ''
        let queue = Promise.resolve()
        const send = (data: Loaded<RolloutView[]>) => {
          const fragment = render(data)
          if (fragment === last) return
          last = fragment
          queue = queue.then(() => stream.writeSSE({event: 'update', data: fragment})).catch(() => undefined)
        }
        send(await feed.current())
        const unsubscribe = feed.subscribe(send)
        stream.onAbort(unsubscribe)
        while (!stream.aborted && !stream.closed && !closing.signal.aborted) {
          await pause(15_000, closing.signal)
          await queue
          if (!stream.aborted && !closing.signal.aborted) await stream.write(': keep-alive\n\n').catch(() => undefined)
        }
        unsubscribe()
      },
      async () => undefined,
    )
  })

  app.notFound(async (c) => c.html(notFoundPage(await page(), `Nothing at ${new URL(c.req.url).pathname}.`), 404))
  app.onError((error, c) => c.text(`Error: ${messageOf(error)}\n`, 500))
  return {
    app,
    feed,
    close: () => {
      feed.stop()
      closing.abort()
    },
  }
}

/** Waits `ms`, or less when the signal aborts; the timer never keeps the process alive on its own. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(resolve, ms)
    timer.unref()
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), {once: true})
  })
}

/** Listens on 127.0.0.1 only; the URL it returns carries the token. */
export async function startDashboard(
  providers: DashboardProviders,
  options: DashboardOptions,
  ctx: RunContext,
): Promise<RunningDashboard> {
  const token = options.token ?? newToken()
  let port = options.port
  const {app, close} = dashboardApp(providers, {
    token,
    port: () => port,
    pollMs: options.pollMs,
    cacheMs: options.cacheMs,
    signal: ctx.signal,
  })
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({fetch: app.fetch, port: options.port, hostname: HOST})
    s.once('listening', () => resolve(s))
    s.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new UsageError(`--port ${options.port}: 127.0.0.1:${options.port} is already in use.`, {
              nextSteps: ['Choose another port with --port, or leave it out for a free one.'],
            })
          : error,
      ),
    )
  })
  port = (server.address() as AddressInfo).port
  const url = `http://${HOST}:${port}/?${TOKEN_PARAM}=${token}`
  ctx.out.debug(`dashboard listening on ${HOST}:${port}`)
  return {
    url,
    port,
    host: HOST,
    token,
    close: async () => {
      close()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        if ('closeAllConnections' in server) server.closeAllConnections()
      })
      await providers.close?.()
    },
  }
}
