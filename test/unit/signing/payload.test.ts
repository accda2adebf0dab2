import {describe, expect, it} from 'vitest'

import {sameRepository} from '../../../src/signing/payload.js'

describe('sameRepository (a signature binds the repository it names)', () => {
  it('matches the repository, with or without a tag or digest in the reference', () => {
    expect(sameRepository('127.0.0.1:5000/shop/checkout', '127.0.0.1:5000', 'shop/checkout')).toBe(true)
    expect(sameRepository('127.0.0.1:5000/shop/checkout:1.2.0', '127.0.0.1:5000', 'shop/checkout')).toBe(true)
    expect(
      sameRepository(`127.0.0.1:5000/shop/checkout@sha256:${'a'.repeat(64)}`, '127.0.0.1:5000', 'shop/checkout'),
    ).toBe(true)
  })

  it('refuses another repository, another registry, and garbage', () => {
    expect(sameRepository('127.0.0.1:5000/shop/payments', '127.0.0.1:5000', 'shop/checkout')).toBe(false)
    expect(sameRepository('localhost:5000/shop/checkout', '127.0.0.1:5000', 'shop/checkout')).toBe(false)
    expect(sameRepository('127.0.0.1:5000/shop/checkout-evil', '127.0.0.1:5000', 'shop/checkout')).toBe(false)
    expect(sameRepository('', '127.0.0.1:5000', 'shop/checkout')).toBe(false)
    expect(sameRepository('NOT A REF', '127.0.0.1:5000', 'shop/checkout')).toBe(false)
  })

  it("treats Docker Hub's names as one registry", () => {
    expect(sameRepository('index.docker.io/library/nginx', 'docker.io', 'library/nginx')).toBe(true)
    expect(sameRepository('nginx', 'docker.io', 'library/nginx')).toBe(true)
  })
})
