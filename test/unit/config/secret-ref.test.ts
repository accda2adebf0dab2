import {mkdtemp, readFile, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {
  envReferenceName,
  normalizeSecretText,
  readEnvReference,
  resolveFileOrEnv,
} from '../../../src/config/secret-ref.js'
import {
  environmentCredentials,
  locateRegistryCredentials,
  removeRegistryLogin,
  storeRegistryLogin,
} from '../../../src/docker/credentials.js'
import {registryHost} from '../../../src/docker/login.js'
import {inlineKubeconfig, loadKubeConfig, looksLikeKubeconfigContent} from '../../../src/kubernetes/client.js'
import {generateKeyPair, keyId, loadPrivateKey, loadPublicKey} from '../../../src/signing/keys.js'
import {redact} from '../../../src/ui/output.js'

const KUBECONFIG_YAML = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: "tok-0123456789abcdef"}
contexts:
- name: ci
  context: {cluster: c, user: u}
current-context: ci
`

const saved = {...process.env}
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
  Object.assign(process.env, saved)
})

describe('env://NAME references', () => {
  it('names the variable, keeps references unresolved and resolves paths against the project', () => {
    expect(envReferenceName('env://COSIGN_PRIVATE_KEY')).toBe('COSIGN_PRIVATE_KEY')
    expect(envReferenceName('.retailops/cosign.key')).toBeUndefined()
    expect(resolveFileOrEnv('env://K', '/p')).toBe('env://K')
    expect(resolveFileOrEnv('k/cosign.key', '/p')).toBe('/p/k/cosign.key')
  })

  it('an unset, empty or malformed reference is USAGE naming the variable', () => {
    delete process.env.RO_T_UNSET
    expect(() => readEnvReference('env://RO_T_UNSET', 'signing key')).toThrow(
      expect.objectContaining({exit: 'USAGE', message: expect.stringContaining('RO_T_UNSET is not set')}),
    )
    process.env.RO_T_EMPTY = ' '
    expect(() => readEnvReference('env://RO_T_EMPTY', 'signing key')).toThrow(
      expect.objectContaining({exit: 'USAGE', message: expect.stringContaining('RO_T_EMPTY is empty')}),
    )
    expect(() => readEnvReference('env://1-bad', 'signing key')).toThrow(expect.objectContaining({exit: 'USAGE'}))
  })

  it('recovers a PEM or YAML pasted base64-encoded or with literal \\n, and leaves other text alone', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'
    expect(normalizeSecretText(Buffer.from(pem).toString('base64'))).toBe(pem)
    expect(normalizeSecretText(pem.trim().replaceAll('\n', '\\n'))).toBe(pem)
    expect(normalizeSecretText(Buffer.from(KUBECONFIG_YAML).toString('base64'))).toBe(KUBECONFIG_YAML)
    expect(normalizeSecretText('hunter2-password')).toBe('hunter2-password')
  })
})

describe('signing keys from variables', () => {
  it('--key env://NAME decrypts the key held in the variable with COSIGN_PASSWORD; the public key likewise; the key text is redacted', async () => {
    const pair = generateKeyPair('pw-1234')
    process.env.RO_T_KEY = pair.privateKeyPem
    process.env.RO_T_PASS = 'pw-1234'
    process.env.RO_T_PUB = Buffer.from(pair.publicKeyPem).toString('base64')
    const key = await loadPrivateKey('env://RO_T_KEY', {env: 'RO_T_PASS'})
    expect(keyId(key)).toBe(keyId(await loadPublicKey('env://RO_T_PUB')))
    expect(redact(`x ${pair.privateKeyPem} y`)).toBe('x *** y')
    process.env.RO_T_PASS = 'wrong'
    await expect(loadPrivateKey('env://RO_T_KEY', {env: 'RO_T_PASS'})).rejects.toMatchObject({exit: 'PERMISSION'})
  })
})

describe('kubeconfig given as contents', () => {
  it('tells contents from a path list, and loads them in memory', () => {
    expect(looksLikeKubeconfigContent(KUBECONFIG_YAML)).toBe(true)
    expect(looksLikeKubeconfigContent(Buffer.from(KUBECONFIG_YAML).toString('base64'))).toBe(true)
    expect(looksLikeKubeconfigContent('/etc/kube/a.yaml:/etc/kube/b.yaml')).toBe(false)
    expect(looksLikeKubeconfigContent('/nonexistent/config')).toBe(false)
    process.env.KUBECONFIG = KUBECONFIG_YAML
    delete process.env.RETAILOPS_KUBE_CONTEXT
    expect(inlineKubeconfig()?.source).toMatch(/KUBECONFIG variable/)
    const kc = loadKubeConfig()
    expect(kc.getCurrentContext()).toBe('ci')
    expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443')
    expect(redact('Bearer tok-0123456789abcdef')).toBe('Bearer ***')
  })

  it('clusters.<name>.kubeconfig: env://NAME reads the named variable; an unset one is USAGE', () => {
    // The sandbox's environment (as CI loads it) names its own context; this kubeconfig has only `ci`.
    delete process.env.RETAILOPS_KUBE_CONTEXT
    process.env.RO_T_KUBE = Buffer.from(KUBECONFIG_YAML).toString('base64')
    expect(loadKubeConfig({kubeconfig: 'env://RO_T_KUBE'}).getCurrentContext()).toBe('ci')
    expect(() => loadKubeConfig({kubeconfig: 'env://RO_T_NOPE'})).toThrow(expect.objectContaining({exit: 'USAGE'}))
    process.env.RO_T_KUBE = 'apiVersion: v1\nclusters: [oops'
    expect(() => loadKubeConfig({kubeconfig: 'env://RO_T_KUBE'})).toThrow(
      expect.objectContaining({exit: 'UNAVAILABLE', message: expect.stringContaining('env://RO_T_KUBE')}),
    )
  })
})

describe('registry credentials without a Docker config', () => {
  it('REGISTRY_USERNAME and REGISTRY_PASSWORD come first; one alone is USAGE naming the other', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-cred-'))
    process.env.DOCKER_CONFIG = dir
    process.env.RETAILOPS_AUTH_FILE = path.join(dir, 'ro', 'auth.json')
    process.env.REGISTRY_USERNAME = 'ci'
    expect(() => environmentCredentials('r.example')).toThrow(
      expect.objectContaining({exit: 'USAGE', message: expect.stringContaining('REGISTRY_PASSWORD is not')}),
    )
    process.env.REGISTRY_PASSWORD = 'from-env-secret'
    await storeRegistryLogin('r.example:5000', 'stored', 'stored-secret')
    expect(await locateRegistryCredentials('r.example:5000')).toMatchObject({
      source: 'environment',
      auth: {username: 'ci', password: 'from-env-secret'},
    })
    delete process.env.REGISTRY_USERNAME
    delete process.env.REGISTRY_PASSWORD
    expect(await locateRegistryCredentials('r.example:5000')).toMatchObject({
      source: 'retailops',
      auth: {username: 'stored', password: 'stored-secret'},
    })
    expect((await stat(process.env.RETAILOPS_AUTH_FILE)).mode & 0o777).toBe(0o600)
    expect((await stat(path.dirname(process.env.RETAILOPS_AUTH_FILE))).mode & 0o777).toBe(0o700)
    expect(JSON.parse(await readFile(process.env.RETAILOPS_AUTH_FILE, 'utf8')).auths['r.example:5000'].auth).toBe(
      Buffer.from('stored:stored-secret').toString('base64'),
    )
    expect(await removeRegistryLogin('r.example:5000')).toBe(true)
    expect(await removeRegistryLogin('r.example:5000')).toBe(false)
    expect(await locateRegistryCredentials('r.example:5000')).toBeUndefined()
    await rm(dir, {recursive: true, force: true})
  })

  it('registry hosts: host[:port] only', () => {
    expect(registryHost('127.0.0.1:5000')).toBe('127.0.0.1:5000')
    expect(registryHost('index.docker.io')).toBe('docker.io')
    expect(() => registryHost('https://r.example')).toThrow(expect.objectContaining({exit: 'USAGE'}))
    expect(() => registryHost('r.example/shop')).toThrow(expect.objectContaining({exit: 'USAGE'}))
  })
})
