import {describe, expect, it} from 'vitest'

import {previewInfo} from '../../../src/env/manage.js'
import {parseTtl, PREVIEW, previewNamespace, previewOwner} from '../../../src/env/names.js'

describe('preview names', () => {
  it('one namespace per preview, <project>-preview-<name>, DNS-1123 and at most 63 characters', () => {
    expect(previewNamespace('shop', 'pr-142')).toBe('shop-preview-pr-142')
    for (const bad of ['PR-1', 'pr_1', '-pr', 'pr-', '', 'a'.repeat(51)])
      expect(() => previewNamespace('shop', bad), bad).toThrow('Preview name')
    expect(previewNamespace('shop', 'a'.repeat(50))).toHaveLength(63)
  })

  it('--ttl is a duration between a minute and 30 days', () => {
    expect(parseTtl('8h')).toBe(8 * 3_600_000)
    expect(parseTtl('1m')).toBe(60_000)
    expect(() => parseTtl('8 hours')).toThrow('expected a duration')
    expect(() => parseTtl('30s')).toThrow('between 1m and 30d')
    expect(() => parseTtl('31d')).toThrow('between 1m and 30d')
  })

  it('the owner is the CI identity, else the git user, else $USER', async () => {
    expect(await previewOwner('/', {GITLAB_USER_LOGIN: 'ada', USER: 'x'})).toBe('gitlab:ada')
    expect(await previewOwner('/', {GITHUB_ACTOR: 'bob'})).toBe('github:bob')
    expect(await previewOwner('/', {RETAILOPS_OWNER: 'ci-bot', GITHUB_ACTOR: 'bob'})).toBe('ci-bot')
  })

  it('age, TTL left and expiry come from the namespace; an unreadable expiry is never "expired"', () => {
    const now = new Date('2026-12-06T12:00:00Z')
    const ns = (expires: string) => ({
      metadata: {
        name: 'shop-preview-a',
        labels: {[PREVIEW.name]: 'a'},
        annotations: {[PREVIEW.created]: '2026-12-06T10:00:00Z', [PREVIEW.expires]: expires, [PREVIEW.owner]: 'ada'},
      },
    })
    expect(previewInfo(ns('2026-12-06T13:00:00Z'), now)).toMatchObject({
      name: 'a',
      owner: 'ada',
      ageMs: 2 * 3_600_000,
      ttlLeftMs: 3_600_000,
      expired: false,
    })
    expect(previewInfo(ns('2026-12-06T11:59:59Z'), now).expired).toBe(true)
    expect(previewInfo(ns('soon'), now)).toMatchObject({expired: false, ttlLeftMs: undefined})
  })
})
