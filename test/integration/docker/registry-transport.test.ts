// Credentials never travel over plain HTTP except to the loopback registry retailops.yaml names.
// A second, real distribution registry (the sandbox's binary) uses token authentication whose
// realm is a plain-HTTP receiver this test starts on 127.0.0.1: the receiver only records what it
// was sent (it is not a registry). Before the fix, retailops sent the Docker config's Basic
// credentials to that realm.
import {execFileSync} from 'node:child_process'
import {generateKeyPairSync} from 'node:crypto'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa, type ResultPromise} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadConfig} from '../../../src/config/load.js'
import {defaultImageVerifier} from '../../../src/deploy/signature.js'
import {registryClient, usesPlainHttp} from '../../../src/docker/registry.js'
import {BASE_IMAGE_REMOTE, REGISTRY} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'

const REGISTRY_BIN = '/usr/bin/docker-registry'
const DIGEST = `sha256:${'ab'.repeat(32)}`

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

interface Received {
  path: string
  authorization?: string
}

describe('registries: credentials never travel over plain HTTP', () => {
  let work: string
  let registry: string
  let server: ResultPromise | undefined
  let receiver: http.Server
  let realm: string
  const received: Received[] = []
  let publicKey: string
  const oldDockerConfig = process.env.DOCKER_CONFIG

  const useCredentials = (auths: Record<string, unknown>) =>
    writeFile(path.join(work, 'docker', 'config.json'), JSON.stringify({auths}))
  const project = async (registryUrl: string) => {
    await writeFile(
      path.join(work, 'retailops.yaml'),
      `project: shop\nregistry: {url: "${registryUrl}", insecure: true}\nservices:\n  catalog: {tier: tolerant}\n`,
    )
    return loadConfig(path.join(work, 'retailops.yaml'))
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 't-registry-transport-'))
    await mkdir(path.join(work, 'docker'))
    publicKey = path.join(work, 'cosign.pub')
    await writeFile(
      publicKey,
      generateKeyPairSync('ec', {namedCurve: 'P-256'}).publicKey.export({type: 'spki', format: 'pem'}),
    )
    receiver = http.createServer((req, res) => {
      received.push({path: req.url ?? '', authorization: req.headers.authorization})
      res.writeHead(200, {'content-type': 'application/json'})
      // An anonymous token the registry will not accept (it is signed by nobody it trusts).
      res.end(JSON.stringify({token: 'anonymous-token-from-receiver'}))
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    realm = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}/token`
    // The registry validates tokens against a certificate bundle: one throwaway self-signed certificate.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=retailops-test',
        '-keyout',
        path.join(work, 'token.key'),
        '-out',
        path.join(work, 'token.crt'),
      ],
      {stdio: 'ignore'},
    )
    registry = `127.0.0.1:${await freePort()}`
    await writeFile(
      path.join(work, 'config.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${work}/data\nhttp:\n  addr: ${registry}\nauth:\n  token:\n    realm: ${realm}\n    service: retailops-test\n    issuer: retailops-test\n    rootcertbundle: ${work}/token.crt\n`,
    )
    server = execa(REGISTRY_BIN, ['serve', path.join(work, 'config.yml')], {reject: false})
    let challenge = ''
    for (let i = 0; i < 100 && !challenge; i++) {
      challenge = await fetch(`http://${registry}/v2/`).then(
        (r) => r.headers.get('www-authenticate') ?? '',
        () => '',
      )
      if (!challenge) await new Promise((r) => setTimeout(r, 100))
    }
    expect(challenge).toContain(`realm="${realm}"`)
    process.env.DOCKER_CONFIG = path.join(work, 'docker')
  })

  afterAll(async () => {
    if (oldDockerConfig === undefined) delete process.env.DOCKER_CONFIG
    else process.env.DOCKER_CONFIG = oldDockerConfig
    server?.kill('SIGTERM')
    await server
    await new Promise((resolve) => receiver?.close(resolve))
    await rm(work, {recursive: true, force: true})
  })

  it("refuses to send the Docker config's credentials to a plain-HTTP bearer realm: the realm receives nothing", async () => {
    received.length = 0
    await useCredentials({[registry]: {auth: Buffer.from('ci:secret-password').toString('base64')}})
    const config = await project(registry)
    const client = await registryClient(registry, {insecure: usesPlainHttp(registry, config.config.registry)})
    await expect(client.headManifest('shop/catalog', DIGEST)).rejects.toMatchObject({
      exit: 'REFUSED',
      message: expect.stringMatching(
        new RegExp(
          `Refusing to send Basic credentials for ${registry.replace(/\./g, '\\.')} to http://127\\.0\\.0\\.1:\\d+: it is plain HTTP`,
        ),
      ),
    })
    expect(received).toEqual([])
  })

  it('the CLI refuses with exit code 12 and the realm still receives nothing', async () => {
    received.length = 0
    await useCredentials({[registry]: {auth: Buffer.from('ci:secret-password').toString('base64')}})
    await project(registry)
    const r = await runCli(['verify', `${registry}/shop/catalog@${DIGEST}`, '--key', publicKey, '--json'], {
      cwd: work,
      env: {DOCKER_CONFIG: path.join(work, 'docker')},
    })
    const doc = JSON.parse(r.stdout) as {error?: {message: string}}
    expect(r.exitCode, r.stdout).toBe(12)
    expect(doc.error?.message).toContain('plain HTTP')
    expect(doc.error?.message).not.toContain('secret-password')
    expect(received).toEqual([])
  })

  it('without credentials the token request is anonymous: the realm is asked, with no Authorization header', async () => {
    received.length = 0
    await useCredentials({})
    const config = await project(registry)
    const client = await registryClient(registry, {insecure: usesPlainHttp(registry, config.config.registry)})
    // The registry does not accept the receiver's token: a refusal, after an anonymous request.
    await expect(client.headManifest('shop/catalog', DIGEST)).rejects.toMatchObject({exit: 'PERMISSION'})
    expect(received.length).toBeGreaterThan(0)
    expect(received.every((r) => r.authorization === undefined)).toBe(true)
    expect(received[0].path).toContain('scope=repository%3Ashop%2Fcatalog%3Apull')
  })

  it('the deploy-time verifier uses plain HTTP only for the configured registry, never for every registry an image names', async () => {
    // The configuration names the token registry; an image in the sandbox registry (another loopback
    // port, plain HTTP) is then spoken to over HTTPS, which that HTTP registry cannot answer.
    await useCredentials({[REGISTRY]: {auth: Buffer.from('ci:secret-password').toString('base64')}})
    const config = await project(registry)
    const image = `${REGISTRY}/shop/catalog@${DIGEST}`
    const results = await defaultImageVerifier({
      ...config,
      config: {...config.config, signing: {...config.config.signing, publicKey}},
    })([image], testContext())
    // Before the fix registry.insecure applied here too: plain HTTP, and a 404 ("invalid").
    expect(results[image]).toMatchObject({
      status: 'unavailable',
      message: expect.stringContaining(`https://${REGISTRY}`),
    })
    const client = await registryClient(REGISTRY, {insecure: usesPlainHttp(REGISTRY, config.config.registry)})
    expect(client.base).toBe(`https://${REGISTRY}`)
    await expect(client.ping()).rejects.toMatchObject({
      exit: 'UNAVAILABLE',
      message: expect.stringContaining(`https://${REGISTRY}`),
    })
  })

  it('the real sandbox registry, named by the configuration, still works over plain HTTP', async () => {
    await useCredentials({})
    const config = await project(REGISTRY)
    const client = await registryClient(REGISTRY, {insecure: usesPlainHttp(REGISTRY, config.config.registry)})
    expect(client.base).toBe(`http://${REGISTRY}`)
    await client.ping()
    const base = BASE_IMAGE_REMOTE
    const ref = base.slice(REGISTRY.length + 1)
    const [repository, tag] = ref.split(':')
    const head = await client.headManifest(repository, tag)
    expect(head?.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
  })
})
