import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {KubeHttp} from '../../../src/kubernetes/http.js'
import type {KubeCredentials} from '../../../src/kubernetes/kubeconfig.js'

// A receiver on 127.0.0.1 that answers what it was asked (request line, headers) and on which socket:
// what goes on the wire is the client's own business, whatever server answers it.
let server: http.Server
let base: string
const sockets = new Set<unknown>()

beforeAll(async () => {
  server = http.createServer((req, res) => {
    sockets.add(req.socket)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json')
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          contentType: req.headers['content-type'],
          accept: req.headers.accept,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

function client(server: string): KubeHttp {
  const credentials: KubeCredentials = {
    getCurrentCluster: () => ({server}),
    getCurrentContext: () => 'test',
    applyToHTTPSOptions: async () => undefined,
  }
  return new KubeHttp(credentials, 4)
}

interface Echo {
  method: string
  url: string
  contentType?: string
  accept?: string
  body: string
}

describe('KubeHttp', () => {
  it('sends the path and the query, encoded, as a URL of the server would have', async () => {
    const kube = client(base)
    try {
      const query = {labelSelector: 'retailops.dev/applyset in (a,b)', limit: 500, continue: undefined, x: 'ä&=+ ?'}
      const echo = await kube.request<Echo>('GET', '/apis/apps/v1/namespaces/shop-t001/deployments', {query})
      const received = new URL(echo.url, base)
      expect(received.pathname).toBe('/apis/apps/v1/namespaces/shop-t001/deployments')
      expect(Object.fromEntries(received.searchParams)).toEqual({
        labelSelector: 'retailops.dev/applyset in (a,b)',
        limit: '500',
        x: 'ä&=+ ?',
      })
      // A path the URL parser would change (dot segments, a space) is sent as it would have changed it.
      const odd = await kube.request<Echo>('GET', '/api/v1/../v1/namespaces/a b/./pods')
      expect(odd.url).toBe('/api/v1/namespaces/a%20b/pods')
      const plain = await kube.request<Echo>('GET', '/api/v1/namespaces/web.shop')
      expect(plain.url).toBe('/api/v1/namespaces/web.shop')
      // A query string in the path is kept, and options.query adds to it.
      const inPath = await kube.request<Echo>(
        'GET',
        '/apis/batch/v1/namespaces/shop/jobs?labelSelector=retailops.dev%2Fjob%3Dstuck',
        {
          query: {limit: 5},
        },
      )
      expect(inPath.url).toBe('/apis/batch/v1/namespaces/shop/jobs?labelSelector=retailops.dev%2Fjob%3Dstuck&limit=5')
    } finally {
      kube.close()
    }
  })

  it('sends the body as JSON with the content type and accept header asked for', async () => {
    const kube = client(base)
    try {
      const echo = await kube.request<Echo>('PATCH', '/api/v1/namespaces/a/configmaps/b', {
        query: {fieldManager: 'retailops', fieldValidation: 'Ignore'},
        contentType: 'application/apply-patch+yaml',
        accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json',
        body: {kind: 'ConfigMap', data: {k: 'v'}},
      })
      expect(echo).toMatchObject({
        method: 'PATCH',
        url: '/api/v1/namespaces/a/configmaps/b?fieldManager=retailops&fieldValidation=Ignore',
        contentType: 'application/apply-patch+yaml',
        accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json',
      })
      expect(JSON.parse(echo.body)).toEqual({kind: 'ConfigMap', data: {k: 'v'}})
    } finally {
      kube.close()
    }
  })

  it('keeps its requests on one pool of at most maxSockets keep-alive connections', async () => {
    sockets.clear()
    const kube = client(base)
    try {
      for (let round = 0; round < 3; round++)
        await Promise.all(
          Array.from({length: 40}, (_, i) =>
            kube.request('GET', `/api/v1/namespaces/n${i}/pods`, {
              query: {limit: i},
              accept: i % 2 ? 'a/b' : undefined,
            }),
          ),
        )
      expect(sockets.size).toBeGreaterThan(0)
      expect(sockets.size).toBeLessThanOrEqual(4)
    } finally {
      kube.close()
    }
  })
})
