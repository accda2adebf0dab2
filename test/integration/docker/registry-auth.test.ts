import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa, type ResultPromise} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ARTIFACTS_LOCK, readArtifactsLock} from '../../../src/docker/artifacts.js'
import {buildImages} from '../../../src/docker/build.js'
import {pushImages} from '../../../src/docker/push.js'
import {signImages, verifyImages} from '../../../src/signing/images.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {BASE_IMAGE, ctx, sandboxReady, testProject, type TestProject} from './helpers.js'

const REGISTRY_BIN = '/usr/bin/docker-registry'

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

/** bcrypt for htpasswd (distribution accepts only bcrypt), via the system crypt(3) that Python exposes. */
async function bcrypt(password: string): Promise<string> {
  const r = await execa('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password])
  return r.stdout.trim()
}

/**
 * A second, real distribution registry (the sandbox's binary) with htpasswd authentication on a
 * free loopback port: the registry refuses anonymous and wrong credentials with 401, and the
 * Docker config under DOCKER_CONFIG supplies the right ones.
 */
describe.skipIf(!sandboxReady())('a registry that requires credentials', () => {
  let work: string
  let registry: string
  let server: ResultPromise | undefined
  let p: TestProject
  const oldDockerConfig = process.env.DOCKER_CONFIG

  const useCredentials = async (user: string, password: string) => {
    await writeFile(path.join(work, 'docker', 'config.json'), JSON.stringify({auths: {[registry]: {auth: Buffer.from(`${user}:${password}`).toString('base64')}}}))
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 't-docker-auth-'))
    const port = await freePort()
    registry = `127.0.0.1:${port}`
    await mkdir(path.join(work, 'docker'))
    await writeFile(path.join(work, 'htpasswd'), `ci:${await bcrypt('right-password')}\n`)
    await writeFile(
      path.join(work, 'config.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${work}/data\nhttp:\n  addr: ${registry}\nauth:\n  htpasswd:\n    realm: retailops-test\n    path: ${work}/htpasswd\n`,
    )
    server = execa(REGISTRY_BIN, ['serve', path.join(work, 'config.yml')], {reject: false})
    for (let i = 0; i < 50; i++) {
      const ok = await fetch(`http://${registry}/v2/`).then((r) => r.status === 401, () => false)
      if (ok) break
      await new Promise((r) => setTimeout(r, 100))
    }
    process.env.DOCKER_CONFIG = path.join(work, 'docker')
    p = await testProject({solo: {context: 'solo', dockerfile: 'Dockerfile'}}, {'solo/Dockerfile': 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY id.txt /id.txt\n', 'solo/id.txt': 'solo\n'}, registry)
    await buildImages({project: await p.project(), baseImage: BASE_IMAGE}, ctx())
  })

  afterAll(async () => {
    if (oldDockerConfig === undefined) delete process.env.DOCKER_CONFIG
    else process.env.DOCKER_CONFIG = oldDockerConfig
    server?.kill('SIGTERM')
    await server
    await p?.cleanup()
    await rm(work, {recursive: true, force: true})
  })

  it('without credentials: PERMISSION before anything is pushed, and no lock entry', async () => {
    await writeFile(path.join(work, 'docker', 'config.json'), '{}')
    await expect(pushImages({project: await p.project()}, ctx())).rejects.toMatchObject({
      exit: 'PERMISSION',
      message: expect.stringContaining(`The registry ${registry} refused GET /v2/ (HTTP 401`),
      nextSteps: [expect.stringContaining(`docker login ${registry}`)],
    })
    await expect(readFile(path.join(p.dir, ARTIFACTS_LOCK), 'utf8')).rejects.toMatchObject({code: 'ENOENT'})
  })

  it('with a wrong password: PERMISSION', async () => {
    await useCredentials('ci', 'wrong-password')
    await expect(pushImages({project: await p.project()}, ctx())).rejects.toMatchObject({exit: 'PERMISSION'})
  })

  it('with the credentials from the Docker config: pushes through the engine, reads the digest back, signs and verifies with Basic auth', async () => {
    await useCredentials('ci', 'right-password')
    const project = await p.project()
    const pushed = await pushImages({project}, ctx())
    expect(pushed.failed).toEqual([])
    const lock = await readArtifactsLock(p.dir)
    expect(lock.artifacts.solo.image).toMatch(new RegExp(`^${registry.replace(/\./g, '\\.')}/${p.name}/solo@sha256:[0-9a-f]{64}$`))
    await writeKeyPair({keyPath: path.join(p.dir, '.retailops/cosign.key'), publicKeyPath: path.join(p.dir, '.retailops/cosign.pub'), passphrase: 'pw'})
    process.env.RO_AUTH_TEST_PW = 'pw'
    await signImages({project, targets: ['solo'], passphrase: {env: 'RO_AUTH_TEST_PW'}}, ctx())
    delete process.env.RO_AUTH_TEST_PW
    const verified = await verifyImages({project, targets: ['solo']}, ctx())
    expect(verified.images[0].digest).toBe(lock.artifacts.solo.digest)
  })
})
