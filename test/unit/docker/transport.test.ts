// Where credentials may travel: plain HTTP only to the loopback registry the configuration names,
// and a tcp:// Docker Engine reached with the TLS settings of DOCKER_TLS_VERIFY/DOCKER_CERT_PATH.
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {normalizeHostPort} from '../../../src/config/hosts.js'
import {isLoopbackHost} from '../../../src/config/loopback.js'
import {parseConfig} from '../../../src/config/parse.js'
import {engineEndpoint} from '../../../src/docker/engine.js'
import {RegistryClient, usesPlainHttp} from '../../../src/docker/registry.js'
import {ConfigError, RefusedError} from '../../../src/errors/index.js'

describe('loopback hosts', () => {
  it('parses hosts instead of matching prefixes', () => {
    for (const h of [
      '127.0.0.1',
      '127.0.0.1:5000',
      '127.1.2.3:80',
      'localhost',
      'LOCALHOST:5000',
      '[::1]:5000',
      '::1',
      '[0:0:0:0:0:0:0:1]:443',
    ])
      expect(isLoopbackHost(h), h).toBe(true)
    for (const h of [
      '127.example.com',
      '127.example.com:5000',
      'localhost.example.com',
      '10.0.0.1:5000',
      'registry.example.com',
      '[::2]:5000',
      '1270.0.0.1',
      'ghcr.io',
    ])
      expect(isLoopbackHost(h), h).toBe(false)
  })

  it('normalises host:port for comparison', () => {
    expect(normalizeHostPort('LocalHost:5000')).toBe('localhost:5000')
    expect(normalizeHostPort('[::1]:5000')).toBe('[::1]:5000')
    expect(normalizeHostPort('127.0.0.1')).toBe('127.0.0.1')
  })
})

describe('plain HTTP to registries', () => {
  const configured = {url: '127.0.0.1:5000', insecure: true}

  it('only for the loopback registry the configuration names', () => {
    expect(usesPlainHttp('127.0.0.1:5000', configured)).toBe(true)
    // Another loopback port the configuration does not name, and every public registry: HTTPS.
    expect(usesPlainHttp('127.0.0.1:5001', configured)).toBe(false)
    expect(usesPlainHttp('docker.io', configured)).toBe(false)
    expect(usesPlainHttp('ghcr.io', configured)).toBe(false)
    expect(usesPlainHttp('registry.example.com:5000', {url: 'registry.example.com:5000'})).toBe(false)
    // Without any configuration, a loopback registry named on the command line.
    expect(usesPlainHttp('localhost:5000', undefined)).toBe(true)
    expect(usesPlainHttp('registry.example.com', undefined)).toBe(false)
  })

  it('a client refuses plain HTTP to a registry that is not loopback', () => {
    expect(() => new RegistryClient({registry: 'registry.example.com', insecure: true})).toThrow(RefusedError)
    expect(new RegistryClient({registry: '127.0.0.1:5000', insecure: true}).base).toBe('http://127.0.0.1:5000')
    expect(new RegistryClient({registry: 'ghcr.io'}).base).toBe('https://ghcr.io')
  })

  it('credentials go over HTTPS anywhere, over HTTP only to the plain-HTTP loopback registry itself', () => {
    const local = new RegistryClient({registry: '127.0.0.1:5000', insecure: true})
    expect(local.credentialsAllowed(new URL('http://127.0.0.1:5000/v2/'))).toBe(true)
    expect(local.credentialsAllowed(new URL('https://auth.example.com/token'))).toBe(true)
    expect(local.credentialsAllowed(new URL('http://127.0.0.1:5001/token'))).toBe(false)
    expect(local.credentialsAllowed(new URL('http://auth.example.com/token'))).toBe(false)
    const hub = new RegistryClient({registry: 'docker.io'})
    expect(hub.credentialsAllowed(new URL('https://auth.docker.io/token'))).toBe(true)
    expect(hub.credentialsAllowed(new URL('http://auth.docker.io/token'))).toBe(false)
    expect(hub.credentialsAllowed(new URL('http://docker.io/v2/'))).toBe(false)
  })

  it('registry.insecure with a registry that is not loopback is a configuration error naming the key', () => {
    const text = (url: string) =>
      `project: shop\nregistry: {url: ${url}, insecure: true}\nservices:\n  checkout: {tier: operational}\n`
    let error: unknown
    try {
      parseConfig(text('registry.example.com:5000'), 'retailops.yaml')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    const issue = (error as ConfigError).issues.find((i) => i.path === 'registry.insecure')
    expect(issue?.message).toMatch(/only allowed for a loopback registry.*registry\.example\.com:5000/)
    expect(() => parseConfig(text('127.example.com:5000'), 'retailops.yaml')).toThrow(ConfigError)
    expect(parseConfig(text('127.0.0.1:5000'), 'retailops.yaml').registry.insecure).toBe(true)
    expect(parseConfig(text('localhost:5000'), 'retailops.yaml').registry.insecure).toBe(true)
  })
})

describe('DOCKER_HOST', () => {
  let certs: string
  beforeAll(async () => {
    certs = await mkdtemp(path.join(os.tmpdir(), 't-docker-tls-'))
    await writeFile(path.join(certs, 'ca.pem'), 'CA')
    await writeFile(path.join(certs, 'cert.pem'), 'CERT')
    await writeFile(path.join(certs, 'key.pem'), 'KEY')
  })
  afterAll(() => rm(certs, {recursive: true, force: true}))

  it('a unix socket, or the default one', () => {
    expect(engineEndpoint({})).toMatchObject({options: {socketPath: '/var/run/docker.sock'}, cleartextRemote: false})
    expect(engineEndpoint({DOCKER_HOST: 'unix:///run/x.sock'}).options).toEqual({socketPath: '/run/x.sock'})
  })

  it('tcp:// with DOCKER_TLS_VERIFY: https with the CA, certificate and key from DOCKER_CERT_PATH', () => {
    const e = engineEndpoint({
      DOCKER_HOST: 'tcp://docker.example.com:2376',
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
    })
    expect(e.options).toMatchObject({host: 'docker.example.com', port: 2376, protocol: 'https'})
    expect(String(e.options.ca)).toBe('CA')
    expect(String(e.options.cert)).toBe('CERT')
    expect(String(e.options.key)).toBe('KEY')
    expect(e.cleartextRemote).toBe(false)
    // The TLS port is the default when none is given; the certificates default to ~/.docker.
    expect(
      engineEndpoint({DOCKER_HOST: 'tcp://docker.example.com', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs}).options
        .port,
    ).toBe(2376)
    expect(() =>
      engineEndpoint({DOCKER_HOST: 'tcp://docker.example.com', DOCKER_TLS_VERIFY: '1', HOME: certs}),
    ).toThrow(/DOCKER_TLS_VERIFY is set, but .*\.docker\/ca\.pem cannot be read/)
  })

  it('a missing certificate is a clear error naming the file', () => {
    expect(() =>
      engineEndpoint({
        DOCKER_HOST: 'tcp://docker.example.com:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: path.join(certs, 'nope'),
      }),
    ).toThrow(/nope\/ca\.pem cannot be read/)
  })

  it('tcp:// without TLS is plain http, flagged as cleartext unless the engine is on loopback', () => {
    expect(engineEndpoint({DOCKER_HOST: 'tcp://docker.example.com:2375'})).toMatchObject({
      options: {host: 'docker.example.com', port: 2375, protocol: 'http'},
      cleartextRemote: true,
    })
    expect(engineEndpoint({DOCKER_HOST: 'tcp://127.0.0.1:2375'}).cleartextRemote).toBe(false)
    expect(() => engineEndpoint({DOCKER_HOST: 'ssh://me@host'})).toThrow(/not supported/)
  })
})
