import {chmod, mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {engineAuthConfig, registryCredentials} from '../../../src/docker/credentials.js'
import {formatReference, parseReference} from '../../../src/docker/reference.js'
import {isLoopbackRegistry, parseChallenge} from '../../../src/docker/registry.js'
import {redact} from '../../../src/ui/output.js'

const D = `sha256:${'0123456789abcdef'.repeat(4)}`

describe('image references', () => {
  it('parses registry, repository, tag and digest like Docker', () => {
    expect(parseReference(`127.0.0.1:5000/shop/catalog@${D}`)).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'shop/catalog',
      tag: undefined,
      digest: D,
    })
    expect(parseReference('127.0.0.1:5000/shop/catalog:1-abc')).toMatchObject({
      registry: '127.0.0.1:5000',
      tag: '1-abc',
    })
    expect(parseReference('localhost/x')).toMatchObject({registry: 'localhost', repository: 'x'})
    expect(parseReference('node:24')).toMatchObject({registry: 'docker.io', repository: 'library/node', tag: '24'})
    expect(formatReference(parseReference(`reg.example.com/a/b:t@${D}`))).toBe(`reg.example.com/a/b:t@${D}`)
  })

  it('rejects a bad digest or uppercase repository', () => {
    expect(() => parseReference('127.0.0.1:5000/x@sha256:123')).toThrow(/digest/)
    expect(() => parseReference('127.0.0.1:5000/Shop/x')).toThrow(/lowercase/)
  })

  it('knows loopback registries', () => {
    expect(isLoopbackRegistry('127.0.0.1:5000')).toBe(true)
    expect(isLoopbackRegistry('localhost:5000')).toBe(true)
    expect(isLoopbackRegistry('registry.example.com')).toBe(false)
  })
})

describe('WWW-Authenticate challenges', () => {
  it('parses Bearer and Basic', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/node:pull',
      },
    })
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({scheme: 'basic', params: {realm: 'Registry Realm'}})
  })
})

describe('Docker credentials', () => {
  let dir: string
  const oldPath = process.env.PATH
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ro-creds-'))
    await mkdir(path.join(dir, 'bin'))
    // A credential helper is a program on PATH; this one answers for one server and says "not found" otherwise.
    const helper = path.join(dir, 'bin', 'docker-credential-rotest')
    await writeFile(
      helper,
      '#!/bin/sh\nread server\nif [ "$server" = "helped.example.com" ]; then echo \'{"ServerURL":"helped.example.com","Username":"ci","Secret":"helper-secret-1"}\'; elif [ "$server" = "token.example.com" ]; then echo \'{"Username":"<token>","Secret":"refresh-tok-9"}\'; else echo "credentials not found in native keychain"; exit 1; fi\n',
    )
    await chmod(helper, 0o755)
    process.env.PATH = `${path.join(dir, 'bin')}:${oldPath}`
    await writeFile(
      path.join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://plain.example.com/v1/': {auth: Buffer.from('alice:s3cret-pw').toString('base64')},
          'idt.example.com': {identitytoken: 'idtoken-xyz'},
        },
        credHelpers: {'helped.example.com': 'rotest', 'token.example.com': 'rotest', 'missing.example.com': 'rotest'},
      }),
    )
  })
  afterAll(async () => {
    process.env.PATH = oldPath
    await rm(dir, {recursive: true, force: true})
  })

  it('reads auths (base64 user:password, matched without scheme and path) and masks the password', async () => {
    const creds = await registryCredentials('plain.example.com', {configDir: dir})
    expect(creds).toEqual({username: 'alice', password: 's3cret-pw', serveraddress: 'plain.example.com'})
    expect(redact('password s3cret-pw')).toBe('password ***')
    expect(engineAuthConfig(creds, 'plain.example.com')).toEqual({
      username: 'alice',
      password: 's3cret-pw',
      serveraddress: 'plain.example.com',
    })
  })

  it('reads identity tokens', async () => {
    expect(await registryCredentials('idt.example.com', {configDir: dir})).toEqual({
      identitytoken: 'idtoken-xyz',
      serveraddress: 'idt.example.com',
    })
  })

  it('runs credHelpers with `get`, including "<token>" answers; none found is anonymous', async () => {
    expect(await registryCredentials('helped.example.com', {configDir: dir})).toEqual({
      username: 'ci',
      password: 'helper-secret-1',
      serveraddress: 'helped.example.com',
    })
    expect(await registryCredentials('token.example.com', {configDir: dir})).toEqual({
      identitytoken: 'refresh-tok-9',
      serveraddress: 'token.example.com',
    })
    expect(await registryCredentials('missing.example.com', {configDir: dir})).toBeUndefined()
    expect(await registryCredentials('other.example.com', {configDir: dir})).toBeUndefined()
    expect(engineAuthConfig(undefined, 'other.example.com')).toEqual({serveraddress: 'other.example.com'})
  })

  it('a helper that is not installed is a PERMISSION error naming it', async () => {
    const d2 = await mkdtemp(path.join(os.tmpdir(), 'ro-creds2-'))
    await writeFile(path.join(d2, 'config.json'), JSON.stringify({credsStore: 'does-not-exist'}))
    await expect(registryCredentials('x.example.com', {configDir: d2})).rejects.toMatchObject({
      exit: 'PERMISSION',
      message: expect.stringContaining('docker-credential-does-not-exist'),
    })
    await rm(d2, {recursive: true, force: true})
  })
})
