import {describe, expect, it} from 'vitest'
import {ConfigError, envUrl, loadBaseConfig} from '../../../services/lib/config.ts'
import {createLogger} from '../../../services/lib/log.ts'
import {Router} from '../../../services/lib/router.ts'
import {createService} from '../../../services/lib/service.ts'
import type {Route} from '../../../services/lib/service.ts'
import {createApp as createCatalog} from '../../../services/catalog/src/app.ts'
import {json, launch} from './helpers.ts'

describe('router', () => {
  const router = new Router<string>()
    .add('GET', '/products', 'list')
    .add('GET', '/products/:id', 'one')
    .add('POST', '/carts/:id/items', 'add')

  it('matches templates and decodes parameters', () => {
    expect(router.match('GET', '/products/SKU%201')).toEqual({
      kind: 'found',
      match: {value: 'one', template: '/products/:id', params: {id: 'SKU 1'}},
    })
    expect(router.match('GET', '/products/')).toMatchObject({kind: 'found', match: {value: 'list'}})
    expect(router.match('post', '/carts/c1/items')).toMatchObject({kind: 'found', match: {params: {id: 'c1'}}})
  })

  it('tells 405 from 404', () => {
    expect(router.match('DELETE', '/products/1')).toEqual({
      kind: 'method_not_allowed',
      template: '/products/:id',
      allow: ['GET'],
    })
    expect(router.match('GET', '/products/1/extra')).toEqual({kind: 'not_found'})
    expect(router.match('GET', '/products/%E0%A4%A')).toEqual({kind: 'not_found'})
  })

  it('refuses a route defined twice', () => {
    expect(() => new Router().add('GET', '/a', 1).add('GET', '/a', 2)).toThrow(/twice/)
  })
})

describe('configuration', () => {
  it('has container defaults', () => {
    expect(loadBaseConfig('catalog', {})).toMatchObject({
      service: 'catalog',
      version: 'dev',
      host: '0.0.0.0',
      port: 8080,
      fault: {errorRate: 0, latencyMs: 0, latencyJitterMs: 0},
      shutdownDelayMs: 0,
      shutdownTimeoutMs: 10_000,
    })
  })

  it('waits for endpoints to drop the pod when running in Kubernetes', () => {
    expect(loadBaseConfig('catalog', {KUBERNETES_SERVICE_HOST: '10.96.0.1'}).shutdownDelayMs).toBe(5_000)
    expect(
      loadBaseConfig('catalog', {KUBERNETES_SERVICE_HOST: '10.96.0.1', SHUTDOWN_DELAY_MS: '0'}).shutdownDelayMs,
    ).toBe(0)
  })

  it('names the variable and what is expected when a value is wrong', () => {
    expect(() => loadBaseConfig('x', {FAULT_ERROR_RATE: '1.5'})).toThrow(ConfigError)
    expect(() => loadBaseConfig('x', {FAULT_ERROR_RATE: '1.5'})).toThrow(
      /FAULT_ERROR_RATE="1.5" is invalid: expected a number >= 0 and <= 1/,
    )
    expect(() => loadBaseConfig('x', {PORT: 'http'})).toThrow(/PORT/)
    expect(() => loadBaseConfig('x', {FAULT_LATENCY_MS: '-5'})).toThrow(/FAULT_LATENCY_MS/)
    expect(() => loadBaseConfig('x', {LOG_LEVEL: 'loud'})).toThrow(/LOG_LEVEL/)
    expect(() => envUrl({PAYMENTS_URL: 'payments:8080'}, 'PAYMENTS_URL', '')).toThrow(/PAYMENTS_URL/)
    expect(envUrl({}, 'PAYMENTS_URL', 'http://payments:8080/')).toBe('http://payments:8080')
  })
})

describe('http service', () => {
  it('answers probes and echoes a request id', async () => {
    const {url} = await launch(createCatalog)
    expect((await json(`${url}/healthz`)).body).toEqual({status: 'ok'})
    expect((await json(`${url}/readyz`)).body).toEqual({status: 'ready'})
    const answer = await json(`${url}/products/SKU-1001`, {headers: {'x-request-id': 'req-123'}})
    expect(answer.headers.get('x-request-id')).toBe('req-123')
    const generated = await json(`${url}/products/SKU-1001`, {headers: {'x-request-id': 'bad id with spaces'}})
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('serves the catalog', async () => {
    const {url} = await launch(createCatalog)
    const list = await json(`${url}/products?limit=5&offset=0`)
    expect(list.body.items).toHaveLength(5)
    expect(list.body.total).toBeGreaterThanOrEqual(12)
    expect(
      (await json(`${url}/products?category=camping`)).body.items.every(
        (p: {category: string}) => p.category === 'camping',
      ),
    ).toBe(true)
    expect((await json(`${url}/products/NOPE`)).status).toBe(404)
    const search = await json(`${url}/search?q=running%20shoes`)
    expect(search.body.items.map((p: {sku: string}) => p.sku)).toEqual(['SKU-1001'])
    expect((await json(`${url}/search`)).status).toBe(400)
    expect((await json(`${url}/products?limit=1000`)).status).toBe(400)
  })

  it('refuses bad JSON and bodies over the limit', async () => {
    const routes: Route[] = [{method: 'POST', path: '/echo', handler: ({body}) => ({status: 200, body})}]
    const config = {...loadBaseConfig('echo', {HOST: '127.0.0.1', PORT: '0', MAX_BODY_BYTES: '64'})}
    const service = createService('echo', config, routes, {log: createLogger({write: () => {}})})
    const {url} = await service.start()
    try {
      expect((await json(`${url}/echo`, {body: {a: 1}})).body).toEqual({a: 1})
      const broken = await json(`${url}/echo`, {body: '{"a":'})
      expect(broken.status).toBe(400)
      expect(broken.body.error).toBe('invalid_json')
      const big = await json(`${url}/echo`, {body: {text: 'x'.repeat(100)}})
      expect(big.status).toBe(413)
    } finally {
      await service.stop()
    }
  })

  it('turns an unexpected handler error into a 500 and logs it', async () => {
    const lines: string[] = []
    const routes: Route[] = [
      {
        method: 'GET',
        path: '/boom',
        handler: () => {
          throw new Error('kaboom')
        },
      },
    ]
    const config = loadBaseConfig('boom', {HOST: '127.0.0.1', PORT: '0'})
    const service = createService('boom', config, routes, {
      log: createLogger({write: (line) => lines.push(line), fields: {service: 'boom'}}),
    })
    const {url} = await service.start()
    try {
      const answer = await json(`${url}/boom`, {headers: {'x-request-id': 'r-1'}})
      expect(answer.status).toBe(500)
      expect(answer.body).toEqual({error: 'internal_error', message: 'internal error'})
    } finally {
      await service.stop()
    }
    const records = lines.map((line) => JSON.parse(line))
    expect(records.find((r) => r.msg === 'unhandled error')).toMatchObject({
      level: 'error',
      requestId: 'r-1',
      err: {message: 'kaboom'},
    })
    expect(records.find((r) => r.msg === 'request')).toMatchObject({
      level: 'warn',
      service: 'boom',
      requestId: 'r-1',
      route: '/boom',
      status: 500,
    })
  })
})

describe('lifecycle', () => {
  it('is not ready while starting', async () => {
    const service = createCatalog(
      {HOST: '127.0.0.1', PORT: '0', STARTUP_DELAY_MS: '200'},
      {log: createLogger({write: () => {}})},
    )
    const starting = service.start()
    await new Promise<void>((resolve) =>
      service.server.listening ? resolve() : service.server.once('listening', () => resolve()),
    )
    const url = service.url()
    const early = await json(`${url}/readyz`)
    expect(early.status).toBe(503)
    expect(early.body).toEqual({status: 'starting'})
    expect((await json(`${url}/healthz`)).status).toBe(200)
    await starting
    expect((await json(`${url}/readyz`)).status).toBe(200)
    await service.stop()
  })

  it('on stop: unready during the delay, drains in-flight requests, then refuses connections', async () => {
    const {service, url} = await launch(createCatalog, {FAULT_LATENCY_MS: '400', SHUTDOWN_DELAY_MS: '150'})
    const inFlight = json(`${url}/products`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const stopping = service.stop('test')
    const probe = await json(`${url}/readyz`)
    expect(probe.status).toBe(503)
    expect(probe.body).toEqual({status: 'stopping'})
    expect(probe.headers.get('connection')).toBe('close')
    const answer = await inFlight
    expect(answer.status).toBe(200)
    await expect(stopping).resolves.toEqual({drained: true, abandoned: 0})
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  })

  it('cuts requests still running at the drain deadline and says so', async () => {
    const {service, url} = await launch(createCatalog, {FAULT_LATENCY_MS: '5000', SHUTDOWN_TIMEOUT_MS: '100'})
    const inFlight = json(`${url}/products`).catch((error: unknown) => error)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = performance.now()
    await expect(service.stop('test')).resolves.toEqual({drained: false, abandoned: 1})
    expect(performance.now() - started).toBeLessThan(1_000)
    expect(await inFlight).toBeInstanceOf(Error)
  })
})
