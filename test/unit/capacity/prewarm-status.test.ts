import {describe, expect, it} from 'vitest'

import {campaignWindow} from '../../../src/capacity/status.js'

describe('campaign window', () => {
  const campaign = {start: '2026-11-27T00:00:00Z', end: '2026-11-28T00:00:00Z'}
  it('is upcoming before the start, active until the end inclusive, then ended', () => {
    expect(campaignWindow(campaign, new Date('2026-11-26T23:59:59Z'))).toBe('upcoming')
    expect(campaignWindow(campaign, new Date('2026-11-27T00:00:00Z'))).toBe('active')
    expect(campaignWindow(campaign, new Date('2026-11-28T00:00:00Z'))).toBe('active')
    expect(campaignWindow(campaign, new Date('2026-11-28T00:00:01Z'))).toBe('ended')
  })
})
