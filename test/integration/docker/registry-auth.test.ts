import {existsSync} from 'node:fs'
import {readFile, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ARTIFACTS_LOCK, readArtifactsLock} from '../../../src/docker/artifacts.js'
import {buildImages} from '../../../src/docker/build.js'
import {pushImages} from '../../../src/docker/push.js'
import {signImages, verifyImages} from '../../../src/signing/images.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {type AuthRegistry, startAuthRegistry} from '../helpers/auth-registry.js'
import {BASE_IMAGE, testProject, type TestProject} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'

/**
 * A second, real distribution registry (the sandbox's binary) with htpasswd authentication on a
 * free loopback port: the registry refuses anonymous and wrong credentials with 401, and the
 * Docker config under DOCKER_CONFIG supplies the right ones.
 */
describe('a registry that requires credentials', () => {
  let work: string
  let registry: string
  let p: TestProject
  const oldDockerConfig = process.env.DOCKER_CONFIG

  let auth: AuthRegistry
  const useCredentials = async (user: string, password: string) => {
    await writeFile(
      path.join(work, 'docker', 'config.json'),
      JSON.stringify({auths: {[registry]: {auth: Buffer.from(`${user}:${password}`).toString('base64')}}}),
    )
  }

  beforeAll(async () => {
    auth = await startAuthRegistry('ci', 'right-password')
    work = auth.work
    registry = auth.registry
    process.env.DOCKER_CONFIG = path.join(work, 'docker')
    process.env.RETAILOPS_AUTH_FILE = path.join(work, 'retailops', 'auth.json')
    p = await testProject(
      {solo: {context: 'solo', dockerfile: 'Dockerfile'}},
      {'solo/Dockerfile': 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY id.txt /id.txt\n', 'solo/id.txt': 'solo\n'},
      registry,
    )
    await buildImages({project: await p.project(), baseImage: BASE_IMAGE}, testContext())
  })

  afterAll(async () => {
    if (oldDockerConfig === undefined) delete process.env.DOCKER_CONFIG
    else process.env.DOCKER_CONFIG = oldDockerConfig
    delete process.env.RETAILOPS_AUTH_FILE
    await p?.cleanup()
    await auth?.stop()
  })

  it('without credentials: PERMISSION before anything is pushed, and no lock entry', async () => {
    await writeFile(path.join(work, 'docker', 'config.json'), '{}')
    await expect(pushImages({project: await p.project()}, testContext())).rejects.toMatchObject({
      exit: 'PERMISSION',
      message: expect.stringContaining(`The registry ${registry} refused GET /v2/ (HTTP 401`),
      nextSteps: [expect.stringContaining(`docker login ${registry}`)],
    })
    await expect(readFile(path.join(p.dir, ARTIFACTS_LOCK), 'utf8')).rejects.toMatchObject({code: 'ENOENT'})
  })

  it('with a wrong password: PERMISSION', async () => {
    await useCredentials('ci', 'wrong-password')
    await expect(pushImages({project: await p.project()}, testContext())).rejects.toMatchObject({exit: 'PERMISSION'})
  })

  it('with the credentials from the Docker config: pushes through the engine, reads the digest back, signs and verifies with Basic auth', async () => {
    await useCredentials('ci', 'right-password')
    const project = await p.project()
    const pushed = await pushImages({project}, testContext())
    expect(pushed.failed).toEqual([])
    const lock = await readArtifactsLock(p.dir)
    expect(lock.artifacts.solo.image).toMatch(
      new RegExp(`^${registry.replace(/\./g, '\\.')}/${p.name}/solo@sha256:[0-9a-f]{64}$`),
    )
    await writeKeyPair({
      keyPath: path.join(p.dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(p.dir, '.retailops/cosign.pub'),
      passphrase: 'pw',
    })
    process.env.RO_AUTH_TEST_PW = 'pw'
    await signImages({project, targets: ['solo'], passphrase: {env: 'RO_AUTH_TEST_PW'}}, testContext())
    delete process.env.RO_AUTH_TEST_PW
    const verified = await verifyImages({project, targets: ['solo']}, testContext())
    expect(verified.images[0].digest).toBe(lock.artifacts.solo.digest)
  })

  /** The CLI as a CI job runs it: no Docker config entry for the registry, only what env gives. */
  const cli = (args: string[], env: Record<string, string | undefined> = {}, input?: string) =>
    runCli([...args, '--config', path.join(p.dir, 'retailops.yaml')], {
      input,
      cleanEnv: true,
      env: {
        HOME: work,
        DOCKER_HOST: process.env.DOCKER_HOST,
        DOCKER_CONFIG: path.join(work, 'docker'),
        RETAILOPS_AUTH_FILE: path.join(work, 'retailops', 'auth.json'),
        NO_COLOR: '1',
        ...env,
      },
    })
  const registryHead = async (repository: string, reference: string) =>
    fetch(`http://${registry}/v2/${repository}/manifests/${reference}`, {
      method: 'HEAD',
      headers: {
        authorization: `Basic ${Buffer.from('ci:right-password').toString('base64')}`,
        accept:
          'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    })

  it('REGISTRY_USERNAME and REGISTRY_PASSWORD alone push; a wrong password is 6, one variable alone is 2, and the lock is untouched', async () => {
    await writeFile(path.join(work, 'docker', 'config.json'), '{}')
    await rm(path.join(p.dir, ARTIFACTS_LOCK), {force: true})
    const half = await cli(['push', '--json'], {REGISTRY_USERNAME: 'ci'})
    expect(half.exitCode, half.stdout).toBe(2)
    expect(JSON.parse(half.stdout).error.message).toContain('REGISTRY_PASSWORD is not')
    const wrong = await cli(['push', '--json'], {REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'wrong-password'})
    expect(wrong.exitCode, wrong.stdout).toBe(6)
    expect(wrong.stdout).not.toContain('wrong-password')
    expect(existsSync(path.join(p.dir, ARTIFACTS_LOCK))).toBe(false)
    const ok = await cli(['push', '--json'], {REGISTRY_USERNAME: 'ci', REGISTRY_PASSWORD: 'right-password'})
    expect(ok.exitCode, ok.stderr).toBe(0)
    const lock = await readArtifactsLock(p.dir)
    const head = await registryHead(`${p.name}/solo`, lock.artifacts.solo.digest)
    expect(head.status).toBe(200)
    expect(head.headers.get('docker-content-digest')).toBe(lock.artifacts.solo.digest)
  })

  it('registry login checks before it stores (refused: 6, no file); stored in a 0600 file that push, sign and verify use; logout forgets it', async () => {
    const authFile = path.join(work, 'retailops', 'auth.json')
    await writeFile(path.join(work, 'docker', 'config.json'), '{}')
    await rm(path.join(work, 'retailops'), {recursive: true, force: true})
    const refused = await cli(
      ['registry', 'login', '--username', 'ci', '--password-stdin', '--json'],
      {},
      'wrong-password\n',
    )
    expect(refused.exitCode, refused.stdout).toBe(6)
    expect(existsSync(authFile)).toBe(false)
    const missing = await cli(['registry', 'login', '--json'])
    expect(missing.exitCode).toBe(2)
    expect(JSON.parse(missing.stdout).error.details.missingFlags).toEqual(['username', 'password-stdin'])

    const login = await cli(
      ['registry', 'login', '--username', 'ci', '--password-stdin', '--json'],
      {},
      'right-password\n',
    )
    expect(login.exitCode, login.stdout).toBe(0)
    expect(JSON.parse(login.stdout).result).toMatchObject({registry, username: 'ci', verified: true, file: authFile})
    expect((await stat(authFile)).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(authFile, 'utf8')).auths[registry].auth).toBe(
      Buffer.from('ci:right-password').toString('base64'),
    )
    expect(await readFile(path.join(work, 'docker', 'config.json'), 'utf8')).toBe('{}')

    await rm(path.join(p.dir, ARTIFACTS_LOCK), {force: true})
    const push = await cli(['push', '--json'])
    expect(push.exitCode, push.stdout).toBe(0)
    const lock = await readArtifactsLock(p.dir)

    // The signing key only ever lives in a variable, as a CI secret does.
    const keyFile = path.join(work, 'ci.key')
    const pubFile = path.join(work, 'ci.pub')
    await writeKeyPair({keyPath: keyFile, publicKeyPath: pubFile, passphrase: 'ci-pass-1'})
    const COSIGN_PRIVATE_KEY = await readFile(keyFile, 'utf8')
    await rm(keyFile)
    const noKey = await cli(['sign', '--key', 'env://COSIGN_PRIVATE_KEY', '--json'], {COSIGN_PASSWORD: 'ci-pass-1'})
    expect(noKey.exitCode).toBe(2)
    expect(JSON.parse(noKey.stdout).error.message).toContain('COSIGN_PRIVATE_KEY is not set')
    const badPass = await cli(['sign', '--key', 'env://COSIGN_PRIVATE_KEY', '--json'], {
      COSIGN_PRIVATE_KEY,
      COSIGN_PASSWORD: 'nope',
    })
    expect(badPass.exitCode).toBe(6)
    // retailops signs as cosign v3 does: a bundle referrer listed in the index at the tag sha256-<hex>
    // (Debian's registry has no referrers API). An earlier test may have signed this digest with
    // another key: the index changes only when this key's signature is added to it.
    const sigTag = lock.artifacts.solo.digest.replace(':', '-')
    const sigBefore = (await registryHead(`${p.name}/solo`, sigTag)).headers.get('docker-content-digest')
    const signed = await cli(['sign', '--key', 'env://COSIGN_PRIVATE_KEY', '--json'], {
      COSIGN_PRIVATE_KEY,
      COSIGN_PASSWORD: 'ci-pass-1',
    })
    expect(signed.exitCode, signed.stdout).toBe(0)
    expect(signed.stdout + signed.stderr).not.toContain('ci-pass-1')
    expect(JSON.parse(signed.stdout).result.images[0]).toMatchObject({added: true, digest: lock.artifacts.solo.digest})
    const sigAfter = await registryHead(`${p.name}/solo`, sigTag)
    expect(sigAfter.status).toBe(200)
    expect(sigAfter.headers.get('docker-content-digest')).not.toBe(sigBefore)
    const verified = await cli(['verify', '--key', 'env://COSIGN_PUBLIC_KEY', '--json'], {
      COSIGN_PUBLIC_KEY: await readFile(pubFile, 'utf8'),
    })
    expect(verified.exitCode, verified.stdout).toBe(0)
    expect(JSON.parse(verified.stdout).result.images[0].digest).toBe(lock.artifacts.solo.digest)

    const logout = await cli(['registry', 'logout', '--json'])
    expect(JSON.parse(logout.stdout).result).toMatchObject({registry, removed: true})
    expect(JSON.parse(await readFile(authFile, 'utf8')).auths).toEqual({})
    expect((await cli(['push', '--json'])).exitCode).toBe(6)
  })
})
