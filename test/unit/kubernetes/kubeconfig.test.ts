import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import type https from 'node:https'
import os from 'node:os'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {afterAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {readPlainKubeconfig} from '../../../src/kubernetes/kubeconfig.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-kubeconfig-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
writeFileSync(path.join(dir, 'ca.crt'), 'CA FILE')
writeFileSync(path.join(dir, 'admin.crt'), 'CERT FILE')
writeFileSync(path.join(dir, 'admin.key'), 'KEY FILE')
writeFileSync(path.join(dir, 'token'), 'token-from-file')
const b64 = (s: string) => Buffer.from(s).toString('base64')

let n = 0
function kubeconfigFile(cluster: Record<string, unknown>, user: Record<string, unknown>, extra = {}): string {
  const file = path.join(dir, `config-${++n}`)
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{name: 'c', cluster: {server: 'https://127.0.0.1:6443', ...cluster}}],
      users: [{name: 'u', user}],
      contexts: [
        {name: 'main', context: {cluster: 'c', user: 'u'}},
        {name: 'other', context: {cluster: 'c', user: 'u', namespace: 'x'}},
      ],
      'current-context': 'main',
      ...extra,
    }),
  )
  return file
}

/** What KubeHttp reads from the options (it builds its own keep-alive agent). */
function used(opts: https.RequestOptions | undefined) {
  if (!opts) return undefined
  const headers = Object.keys(opts.headers ?? {}).length ? opts.headers : undefined
  return {
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    rejectUnauthorized: opts.rejectUnauthorized,
    servername: opts.servername,
    headers,
  }
}

async function clientNodeOptions(file: string, context?: string): Promise<https.RequestOptions> {
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(file)
  if (context) kc.setCurrentContext(context)
  const opts: https.RequestOptions = {}
  await kc.applyToHTTPSOptions(opts)
  return opts
}

async function plainOptions(file: string, context?: string): Promise<https.RequestOptions | undefined> {
  const credentials = readPlainKubeconfig(file, context)
  if (!credentials) return undefined
  const opts: https.RequestOptions = {}
  await credentials.applyToHTTPSOptions(opts)
  expect(credentials.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443')
  return opts
}

describe('plain kubeconfig reader (no @kubernetes/client-node)', () => {
  const plainCases: [string, Record<string, unknown>, Record<string, unknown>][] = [
    [
      'certificate files, relative to the kubeconfig',
      {'certificate-authority': 'ca.crt'},
      {'client-certificate': path.join(dir, 'admin.crt'), 'client-key': 'admin.key'},
    ],
    [
      'inline data',
      {'certificate-authority-data': b64('CA DATA')},
      {'client-certificate-data': b64('CERT DATA'), 'client-key-data': b64('KEY DATA')},
    ],
    ['a token', {'certificate-authority-data': b64('CA DATA')}, {token: 'secret-token'}],
    [
      'a token file',
      {'insecure-skip-tls-verify': true, 'tls-server-name': 'api.internal'},
      {'token-file': path.join(dir, 'token')},
    ],
  ]
  for (const [what, cluster, user] of plainCases) {
    it(`applies what client-node applies: ${what}`, async () => {
      const file = kubeconfigFile(cluster, user)
      const plain = await plainOptions(file)
      expect(plain).toBeDefined()
      const expected = await clientNodeOptions(file)
      expect(used(plain)).toEqual(used(expected))
    })
  }

  it('follows the context asked for', async () => {
    const file = kubeconfigFile({'certificate-authority': 'ca.crt'}, {token: 't'})
    expect(used(await plainOptions(file, 'other'))).toEqual(used(await clientNodeOptions(file, 'other')))
  })

  it('leaves to client-node what only it supports or reports', () => {
    const exec = {exec: {apiVersion: 'client.authentication.k8s.io/v1', command: 'aws', args: ['eks', 'get-token']}}
    expect(readPlainKubeconfig(kubeconfigFile({}, exec), undefined)).toBeUndefined()
    expect(readPlainKubeconfig(kubeconfigFile({}, {'auth-provider': {name: 'oidc'}}), undefined)).toBeUndefined()
    expect(readPlainKubeconfig(kubeconfigFile({}, {as: 'someone', token: 't'}), undefined)).toBeUndefined()
    expect(
      readPlainKubeconfig(kubeconfigFile({'proxy-url': 'http://127.0.0.1:3128'}, {token: 't'}), undefined),
    ).toBeUndefined()
    expect(readPlainKubeconfig(kubeconfigFile({server: 'http://127.0.0.1:8080'}, {}), undefined)).toBeUndefined()
    expect(readPlainKubeconfig(kubeconfigFile({}, {token: 't'}), 'missing')).toBeUndefined()
    expect(readPlainKubeconfig(kubeconfigFile({}, {'token-file': 'no-such-file'}), undefined)).toBeUndefined()
    expect(readPlainKubeconfig(kubeconfigFile({'certificate-authority': 'nope.crt'}, {}), undefined)).toBeUndefined()
    expect(readPlainKubeconfig(path.join(dir, 'absent'), undefined)).toBeUndefined()
    expect(
      readPlainKubeconfig(`${kubeconfigFile({}, {})}${path.delimiter}${kubeconfigFile({}, {})}`, undefined),
    ).toBeUndefined()
    expect(readPlainKubeconfig('env://KUBECONFIG_CONTENT', undefined)).toBeUndefined()
    const garbage = path.join(dir, 'garbage')
    writeFileSync(garbage, 'clusters: [unclosed')
    expect(readPlainKubeconfig(garbage, undefined)).toBeUndefined()
  })
})
