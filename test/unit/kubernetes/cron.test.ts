// CronJob schedules are checked before anything is written, and their next runs computed as the
// CronJob controller will fire them (in the schedule's time zone).
import {describe, expect, it} from 'vitest'

import {checkTimeZone, nextRuns, parseCron} from '../../../src/kubernetes/cron.js'

const next = (expr: string, tz: string, from: string, n = 1) =>
  nextRuns(parseCron(expr), tz, new Date(from), n).map((d) => d.toISOString())

describe('parseCron', () => {
  it('accepts the standard five fields, names, lists, ranges, steps and the macros', () => {
    for (const ok of [
      '0 3 * * *',
      '*/15 * * * *',
      '30 2 * * 1-5',
      '0 4 1 * *',
      '0 0 * JAN,JUL SUN',
      '5-55/10 8-18 * * MON-FRI',
      '0 0 29 2 *',
      '0 12 * * 7',
      '@daily',
      '@weekly',
      '@HOURLY',
      '@yearly',
      ' 0 3 * * * ',
    ]) {
      expect(() => parseCron(ok), ok).not.toThrow()
    }
  })

  it('refuses bad input with a usage error that says what is wrong and shows examples', () => {
    const cases: [string, RegExp][] = [
      ['0 3 * *', /has 4 fields, not 5/],
      ['0 0 3 * * *', /6 fields.*seconds are not supported/],
      ['60 * * * *', /minute 60 is out of range 0-59/],
      ['0 24 * * *', /hour 24 is out of range 0-23/],
      ['0 0 0 * *', /day of month 0 is out of range 1-31/],
      ['0 0 * 13 *', /month 13 is out of range 1-12/],
      ['0 0 * * 8', /day of week 8 is out of range 0-7/],
      ['0 0 * * FUN', /"FUN" is not a day of week/],
      ['*/0 * * * *', /step "\/0"/],
      ['0 5-1 * * *', /runs backwards/],
      ['0 0 30 2 *', /would never run/],
      ['@fortnightly', /not one of @yearly/],
      ['CRON_TZ=Europe/Berlin 0 3 * * *', /time zone does not go in the schedule/],
      ['1,,2 * * * *', /empty list item/],
      ['', /it is empty/],
    ]
    for (const [expr, message] of cases) {
      let error: unknown
      try {
        parseCron(expr)
      } catch (e) {
        error = e
      }
      expect(error, expr).toMatchObject({exit: 'USAGE', message: expect.stringMatching(message)})
      expect((error as {nextSteps: string[]}).nextSteps.join(' ')).toMatch(/five fields|--time-zone/)
    }
  })
})

describe('checkTimeZone', () => {
  it('accepts IANA names and refuses others, and names that differ only in case', () => {
    expect(checkTimeZone('Europe/Berlin')).toBe('Europe/Berlin')
    expect(checkTimeZone('Etc/UTC')).toBe('Etc/UTC')
    expect(() => checkTimeZone('Mars/Olympus')).toThrow(/not a time zone name/)
    expect(() => checkTimeZone('europe/berlin')).toThrow(/case-sensitive.*|Europe\/Berlin/)
  })

  it('answers the UTC names without Intl, and still refuses their other spellings', () => {
    for (const name of ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']) {
      expect(checkTimeZone(name)).toBe(name)
      // Names Intl (and so the tz database) knows as they are written.
      expect(new Intl.DateTimeFormat('en-US', {timeZone: name}).resolvedOptions().timeZone).toBe('UTC')
    }
    expect(() => checkTimeZone('utc')).toThrow(/case-sensitive/)
  })
})

describe('nextRuns', () => {
  it('follows the time zone, daylight saving time included', () => {
    // 03:00 in Berlin is 02:00 UTC in winter (CET, +1) and 01:00 UTC in summer (CEST, +2).
    expect(next('0 3 * * *', 'Europe/Berlin', '2026-01-10T12:00:00Z')).toEqual(['2026-01-11T02:00:00.000Z'])
    expect(next('0 3 * * *', 'Europe/Berlin', '2026-07-10T12:00:00Z')).toEqual(['2026-07-11T01:00:00.000Z'])
    // 2026-03-29: Berlin skips 02:00-03:00; 02:30 does not exist that day.
    expect(next('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', 2)).toEqual([
      '2026-03-30T00:30:00.000Z',
      '2026-03-31T00:30:00.000Z',
    ])
    expect(next('0 3 * * *', 'Etc/UTC', '2026-01-10T03:00:00Z')).toEqual(['2026-01-11T03:00:00.000Z'])
  })

  it('lists, steps, weekdays, and day of month OR day of week when both are restricted', () => {
    expect(next('*/20 9 * * *', 'Etc/UTC', '2026-05-01T09:05:00Z', 3)).toEqual([
      '2026-05-01T09:20:00.000Z',
      '2026-05-01T09:40:00.000Z',
      '2026-05-02T09:00:00.000Z',
    ])
    // 2026-05-01 is a Friday: the next weekday runs are Mon 4 and Tue 5.
    expect(next('30 2 * * 1-5', 'Etc/UTC', '2026-05-01T12:00:00Z', 2)).toEqual([
      '2026-05-04T02:30:00.000Z',
      '2026-05-05T02:30:00.000Z',
    ])
    // The 15th or any Sunday (Vixie cron): Sun 3 May, Sun 10 May, Fri 15 May.
    expect(next('0 0 15 * SUN', 'Etc/UTC', '2026-05-01T12:00:00Z', 3)).toEqual([
      '2026-05-03T00:00:00.000Z',
      '2026-05-10T00:00:00.000Z',
      '2026-05-15T00:00:00.000Z',
    ])
    expect(next('@weekly', 'Etc/UTC', '2026-05-01T12:00:00Z')).toEqual(['2026-05-03T00:00:00.000Z'])
    expect(next('0 0 29 2 *', 'Etc/UTC', '2026-03-01T00:00:00Z')).toEqual(['2028-02-29T00:00:00.000Z'])
    expect(next('0 12 * * 7', 'Etc/UTC', '2026-05-01T00:00:00Z')).toEqual(['2026-05-03T12:00:00.000Z'])
  })
})
