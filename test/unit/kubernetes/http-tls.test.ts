// KubeHttp over https (src/kubernetes/http.ts): the first connection is opened before node:tls is
// loaded and wrapped in TLS when the agent asks for it (connectEarly, takeEarly). What must hold
// whatever the order: the server's identity is checked, the client certificate is presented, a
// refused or silent server fails the request as before, and the pool stays one pool. A receiver on
// 127.0.0.1 with throwaway certificates (openssl) answers which connection and which client asked.
import {execFile, execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type {TLSSocket} from 'node:tls'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {KubeHttp} from '../../../src/kubernetes/http.js'
import type {KubeCredentials} from '../../../src/kubernetes/kubeconfig.js'
import {ROOT} from '../../support/paths.js'

let dir: string
let server: https.Server
let port: number
const connections = new Set<unknown>()

function openssl(...args: string[]) {
  execFileSync('openssl', args, {cwd: dir, stdio: 'ignore'})
}

/** A CA, a certificate for 127.0.0.1 only (no DNS name) signed by it, and a client certificate. */
function certificates(prefix: string) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl(
    'req',
    '-x509',
    ...ec,
    '-days',
    '1',
    '-subj',
    `/CN=${prefix}-ca`,
    '-keyout',
    `${prefix}-ca.key`,
    '-out',
    `${prefix}-ca.crt`,
  )
  for (const [name, subject, ext] of [
    ['server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
    ['client', '/CN=retailops-test-client', 'extendedKeyUsage=clientAuth'],
  ]) {
    writeFileSync(path.join(dir, `${prefix}-${name}.ext`), `${ext}\n`)
    openssl('req', ...ec, '-subj', subject, '-keyout', `${prefix}-${name}.key`, '-out', `${prefix}-${name}.csr`)
    openssl(
      'x509',
      '-req',
      '-in',
      `${prefix}-${name}.csr`,
      '-CA',
      `${prefix}-ca.crt`,
      '-CAkey',
      `${prefix}-ca.key`,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${prefix}-${name}.ext`,
      '-out',
      `${prefix}-${name}.crt`,
    )
  }
}

const file = (name: string) => readFileSync(path.join(dir, name))

function client(server: string, ca = 'a-ca.crt', maxSockets = 4): KubeHttp {
  const credentials: KubeCredentials = {
    getCurrentCluster: () => ({server}),
    getCurrentContext: () => 'test',
    applyToHTTPSOptions: (opts) => {
      opts.ca = file(ca)
      opts.cert = file('a-client.crt')
      opts.key = file('a-client.key')
      return Promise.resolve()
    },
  }
  return new KubeHttp(credentials, maxSockets)
}

interface Echo {
  url: string
  client: string
  connection: number
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ro-http-tls-'))
  certificates('a')
  certificates('b')
  const ids = new Map<unknown, number>()
  server = https.createServer(
    {key: file('a-server.key'), cert: file('a-server.crt'), ca: file('a-ca.crt'), requestCert: true},
    (req, res) => {
      connections.add(req.socket)
      if (!ids.has(req.socket)) ids.set(req.socket, ids.size + 1)
      const peer = (req.socket as TLSSocket).getPeerCertificate()
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({url: req.url, client: peer.subject?.CN ?? '', connection: ids.get(req.socket)}))
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as net.AddressInfo).port
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  rmSync(dir, {recursive: true, force: true})
})

describe('KubeHttp over https', () => {
  it('presents the client certificate and keeps sequential requests on its first connection', async () => {
    const kube = client(`https://127.0.0.1:${port}`)
    try {
      const answers: Echo[] = []
      for (const name of ['a', 'b', 'c'])
        answers.push(await kube.request<Echo>('GET', `/api/v1/namespaces/${name}/configmaps`))
      expect(answers.map((a) => a.url)).toEqual([
        '/api/v1/namespaces/a/configmaps',
        '/api/v1/namespaces/b/configmaps',
        '/api/v1/namespaces/c/configmaps',
      ])
      expect(answers.map((a) => a.client)).toEqual(Array(3).fill('retailops-test-client'))
      expect(new Set(answers.map((a) => a.connection)).size).toBe(1)
    } finally {
      kube.close()
    }
  })

  it('answers concurrent first requests on at most maxSockets connections', async () => {
    connections.clear()
    const kube = client(`https://127.0.0.1:${port}`, 'a-ca.crt', 3)
    try {
      const answers = await Promise.all(
        Array.from({length: 20}, (_, i) => kube.request<Echo>('GET', `/api/v1/namespaces/n${i}`)),
      )
      expect(answers.map((a) => a.url)).toEqual(Array.from({length: 20}, (_, i) => `/api/v1/namespaces/n${i}`))
      expect(connections.size).toBeGreaterThan(0)
      expect(connections.size).toBeLessThanOrEqual(3)
    } finally {
      kube.close()
    }
  })

  it("checks the server's identity on the first connection: its CA and its name", async () => {
    const otherCa = client(`https://127.0.0.1:${port}`, 'b-ca.crt')
    await expect(otherCa.request('GET', '/api')).rejects.toMatchObject({code: 'SELF_SIGNED_CERT_IN_CHAIN'})
    otherCa.close()
    // The certificate names 127.0.0.1 only.
    const otherName = client(`https://localhost:${port}`)
    await expect(otherName.request('GET', '/api')).rejects.toMatchObject({code: 'ERR_TLS_CERT_ALTNAME_INVALID'})
    otherName.close()
  })

  it('fails a request to a port nobody listens on with ECONNREFUSED, and the next one too', async () => {
    const free = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const {port: p} = probe.address() as net.AddressInfo
        probe.close(() => resolve(p))
      })
    })
    const kube = client(`https://127.0.0.1:${free}`)
    await expect(kube.request('GET', '/api')).rejects.toMatchObject({code: 'ECONNREFUSED'})
    await expect(kube.request('GET', '/api')).rejects.toMatchObject({code: 'ECONNREFUSED'})
    kube.close()
  })

  it("applies the request's timeout to the first connection (a server that never answers the handshake)", async () => {
    const silent = net.createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const kube = client(`https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`)
    try {
      const started = Date.now()
      await expect(kube.request('GET', '/api', {timeoutMs: 300})).rejects.toMatchObject({code: 'ETIMEDOUT'})
      expect(Date.now() - started).toBeLessThan(5000)
    } finally {
      kube.close()
      silent.close()
    }
  })

  it('opens its first connection before Node loads TLS (in a fresh process)', async () => {
    // Node's module list at the moment the process opens its first connection (the network wait
    // starts there): loading TLS and making the secure context come after it.
    const script = `
      import diagnostics from 'node:diagnostics_channel'
      import {readFileSync} from 'node:fs'
      import {KubeHttp} from ${JSON.stringify(path.join(ROOT, 'src/kubernetes/http.ts'))}
      let tlsAtConnect
      diagnostics.subscribe('net.client.socket', () => {
        tlsAtConnect ??= process.moduleLoadList.includes('NativeModule tls')
      })
      const read = (name) => readFileSync(${JSON.stringify(dir)} + '/' + name)
      const kube = new KubeHttp({
        getCurrentCluster: () => ({server: 'https://127.0.0.1:${port}'}),
        getCurrentContext: () => 'test',
        applyToHTTPSOptions: async (o) => Object.assign(o, {ca: read('a-ca.crt'), cert: read('a-client.crt'), key: read('a-client.key')}),
      })
      const tlsBefore = process.moduleLoadList.includes('NativeModule tls')
      const answer = await kube.request('GET', '/api/v1/namespaces/early')
      kube.close()
      console.log(JSON.stringify({tlsBefore, tlsAtConnect, answer}))
    `
    const file = path.join(dir, 'early.mts')
    writeFileSync(file, script)
    const {stdout} = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {cwd: ROOT})
    expect(JSON.parse(stdout)).toEqual({
      tlsBefore: false,
      tlsAtConnect: false,
      answer: {url: '/api/v1/namespaces/early', client: 'retailops-test-client', connection: expect.any(Number)},
    })
  })
})
