import {describe, expect, it} from 'vitest'

import {hostOf, isLoopbackHost} from '../../../src/config/loopback.js'
import {isLoopbackRegistry} from '../../../src/docker/registry.js'

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.0.0.1:5000', true],
    ['127.5.6.7:443', true],
    ['127.255.255.255', true],
    ['localhost', true],
    ['localhost:5000', true],
    ['LOCALHOST:5000', true],
    ['localhost.', true],
    ['[::1]:5000', true],
    ['[::1]', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['[::ffff:127.0.0.1]:5000', true],
    ['http://127.0.0.1:9090', true],
    ['http://user@localhost:5000/v2/', true],
    // Names and addresses that only look local.
    ['127.example.com', false],
    ['127.0.0.1.nip.io', false],
    ['127.0.0.1.example.com:5000', false],
    ['localhost.example.com', false],
    ['mylocalhost', false],
    ['128.0.0.1', false],
    ['126.255.255.255', false],
    ['10.0.0.1:5000', false],
    ['0.0.0.0', false],
    ['127.1', false],
    ['127.0.0.256', false],
    ['[::2]:5000', false],
    ['[::ffff:10.0.0.1]', false],
    ['registry.example.com', false],
    ['registry.example.com/127.0.0.1', false],
    ['http://127.0.0.1@evil.example.com/', false],
    ['', false],
  ])('%j → %s', (address, expected) => {
    expect(isLoopbackHost(address)).toBe(expected)
    expect(isLoopbackRegistry(address)).toBe(expected)
  })

  it('takes the host out of host:port, [v6]:port and URLs', () => {
    expect(hostOf('Registry.Example.com:5000')).toBe('registry.example.com')
    expect(hostOf('[::1]:5000')).toBe('::1')
    expect(hostOf('https://u:p@h.example:8443/path?q')).toBe('h.example')
  })
})
