import {describe, expect, it} from 'vitest'

import {newPromotionId} from '../../../src/promote/records.js'

const newestFirst = (ids: string[]) => [...ids].sort((a, b) => b.localeCompare(a))

describe('newPromotionId', () => {
  it('sorts two promotions of the same second in the order they happened', () => {
    // A refused promote and its retry 400 ms later: history shows the retry first, whatever the random suffix.
    for (let i = 0; i < 200; i++) {
      const first = newPromotionId(new Date('2026-12-07T09:12:47.600Z'))
      const retry = newPromotionId(new Date('2026-12-07T09:12:48.000Z'))
      const same = newPromotionId(new Date('2026-12-07T09:12:47.999Z'))
      expect(newestFirst([first, same, retry])).toEqual([retry, same, first])
    }
  })

  it('is a valid ConfigMap name and label value, and an older id sorts before its second', () => {
    const id = newPromotionId(new Date('2026-12-07T09:12:47.005Z'))
    expect(id).toMatch(/^20261207-091247005-[0-9a-f]{6}$/)
    expect(id.length).toBeLessThanOrEqual(63)
    expect(newestFirst(['20261207-091247-ffffff', id, '20261207-091246-000000'])).toEqual([
      id,
      '20261207-091247-ffffff',
      '20261207-091246-000000',
    ])
  })
})
