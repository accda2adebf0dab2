import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {execa, type ResultPromise} from 'execa'

const REGISTRY_BIN = '/usr/bin/docker-registry'

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

/**
 * bcrypt for htpasswd (distribution accepts only bcrypt), via the system crypt(3) that Python
 * exposes, at cost 4 (rounds=16, bcrypt's minimum): the registry checks the password on every
 * request it gets (there is no session), and at the default cost 12 each check is ~0.3 s of CPU,
 * minutes over a pipeline's push and sign on 2 cores. How slow the hash is is not under test.
 */
async function bcrypt(password: string): Promise<string> {
  const r = await execa('python3', [
    '-W',
    'ignore',
    '-c',
    'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))',
    password,
  ])
  return r.stdout.trim()
}

export interface AuthRegistry {
  /** 127.0.0.1:PORT */
  registry: string
  /** A folder of the registry's own (config, htpasswd, data); free to use for the test's files. */
  work: string
  stop: () => Promise<void>
}

/**
 * A second, real distribution registry (the sandbox's binary) with htpasswd authentication on a
 * free loopback port: it refuses anonymous and wrong credentials with 401.
 */
export async function startAuthRegistry(user: string, password: string): Promise<AuthRegistry> {
  const work = await mkdtemp(path.join(os.tmpdir(), 't-auth-registry-'))
  const registry = `127.0.0.1:${await freePort()}`
  await mkdir(path.join(work, 'docker'))
  await writeFile(path.join(work, 'htpasswd'), `${user}:${await bcrypt(password)}\n`)
  await writeFile(
    path.join(work, 'config.yml'),
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${work}/data\nhttp:\n  addr: ${registry}\nauth:\n  htpasswd:\n    realm: retailops-test\n    path: ${work}/htpasswd\n`,
  )
  const server: ResultPromise = execa(REGISTRY_BIN, ['serve', path.join(work, 'config.yml')], {reject: false})
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://${registry}/v2/`).then(
      (r) => r.status === 401,
      () => false,
    )
    if (ok) break
    if (i === 49) throw new Error(`${REGISTRY_BIN} did not answer on ${registry}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    registry,
    work,
    async stop() {
      server.kill('SIGTERM')
      await server
      await rm(work, {recursive: true, force: true})
    },
  }
}
