import {describe, expect, it} from 'vitest'

import {prometheusApiUrl} from '../../../src/prometheus/url.js'

describe('prometheusApiUrl', () => {
  it('keeps a path prefix (Prometheus behind https://host/prometheus)', () => {
    expect(prometheusApiUrl('https://host/prometheus', '/api/v1/query').href).toBe(
      'https://host/prometheus/api/v1/query',
    )
    expect(prometheusApiUrl('https://host/prometheus/', '/api/v1/query').href).toBe(
      'https://host/prometheus/api/v1/query',
    )
    expect(prometheusApiUrl('https://host/a/b//', 'api/v1/query_range').href).toBe(
      'https://host/a/b/api/v1/query_range',
    )
  })

  it('works without a prefix and drops a query string of the base', () => {
    expect(prometheusApiUrl('http://127.0.0.1:9090', '/api/v1/query').href).toBe('http://127.0.0.1:9090/api/v1/query')
    expect(prometheusApiUrl('http://127.0.0.1:9090/?x=1#f', '/-/ready').href).toBe('http://127.0.0.1:9090/-/ready')
  })
})
