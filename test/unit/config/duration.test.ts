import {describe, expect, it} from 'vitest'

import {formatDuration, parseDuration, toPromDuration} from '../../../src/config/duration.js'

describe('durations', () => {
  it('parses compound and fractional durations', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('1.5s')).toBe(1500)
    expect(parseDuration('28d')).toBe(28 * 86_400_000)
  })

  it('rejects what is not a duration', () => {
    for (const bad of ['', '15', 'm', '15 m', '-1s', 'fast', '1y']) expect(parseDuration(bad)).toBeUndefined()
  })

  it('formats for people and for PromQL', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m')
    expect(formatDuration(250)).toBe('250ms')
    expect(toPromDuration(28 * 86_400_000)).toBe('28d')
    expect(toPromDuration(90_000)).toBe('90s')
    expect(toPromDuration(300_000)).toBe('5m')
  })
})
