import {describe, expect, it} from 'vitest'

import {checkExpectation, measureRpo, measureRto, toRecoveryPoint, valueText, worst} from '../../../src/dr/measure.js'

const targets = {rto: '15m', rpo: '5m', rtoMs: 15 * 60_000, rpoMs: 5 * 60_000}
const start = Date.parse('2026-05-09T12:00:00Z')

describe('RTO', () => {
  it('runs from the drill start to the validated copy', () => {
    const m = measureRto(targets, start, start + 14 * 60_000)
    expect(m).toMatchObject({actualMs: 14 * 60_000, status: 'pass', target: '15m'})
  })
  it('fails past the target, and counts the target itself as met', () => {
    expect(measureRto(targets, start, start + 15 * 60_000).status).toBe('pass')
    expect(measureRto(targets, start, start + 15 * 60_000 + 1).status).toBe('fail')
  })
  it('is not measured when nothing was validated', () => {
    const m = measureRto(targets, start, undefined, 'restore failed')
    expect(m).toMatchObject({status: 'not-measured', detail: 'restore failed'})
    expect(m.actualMs).toBeUndefined()
  })
})

describe('RPO', () => {
  it("runs from the restored data's newest point to the drill start", () => {
    const m = measureRpo(targets, start, new Date(start - 4 * 60_000), 'validation newest-order')
    expect(m).toMatchObject({
      actualMs: 4 * 60_000,
      status: 'pass',
      recoveryPoint: '2026-05-09T11:56:00.000Z',
      source: 'validation newest-order',
    })
  })
  it('fails when the data is older than the target allows', () => {
    expect(measureRpo(targets, start, new Date(start - 6 * 60_000), 'x').status).toBe('fail')
  })
  it('counts a recovery point after the start (clock skew) as zero, and says so', () => {
    const m = measureRpo(targets, start, new Date(start + 2000), 'x')
    expect(m.actualMs).toBe(0)
    expect(m.detail).toMatch(/clock skew/)
  })
  it('is not measured without a recovery point', () => {
    expect(measureRpo(targets, start, undefined, undefined).status).toBe('not-measured')
    expect(measureRpo(targets, start, new Date('nonsense'), 'x').status).toBe('not-measured')
  })
})

describe('worst', () => {
  it('prefers a failing measurement, then the largest actual', () => {
    const a = measureRpo(targets, start, new Date(start - 60_000), 'a')
    const b = measureRpo(targets, start, new Date(start - 120_000), 'b')
    const c = measureRpo({...targets, rpoMs: 30_000, rpo: '30s'}, start, new Date(start - 60_000), 'c')
    expect(worst([a, b], a).source).toBe('b')
    expect(worst([a, b, c], a).source).toBe('c')
  })
})

describe('query values', () => {
  it('parses timestamps, ISO strings and epoch seconds or milliseconds', () => {
    expect(toRecoveryPoint(new Date(start))?.getTime()).toBe(start)
    expect(toRecoveryPoint('2026-05-09T12:00:00Z')?.getTime()).toBe(start)
    expect(toRecoveryPoint(start / 1000)?.getTime()).toBe(start)
    expect(toRecoveryPoint(String(start))?.getTime()).toBe(start)
    expect(toRecoveryPoint(null)).toBeUndefined()
    expect(toRecoveryPoint('no')).toBeUndefined()
  })
  it('renders values as text for evidence', () => {
    expect(valueText(new Date(start))).toBe('2026-05-09T12:00:00.000Z')
    expect(valueText(42)).toBe('42')
    expect(valueText(null)).toBeNull()
    expect(valueText({a: 1})).toBe('{"a":1}')
  })
})

describe('expectations', () => {
  it('checks min, max and equals', () => {
    expect(checkExpectation('5', {min: 1, max: 10}).passed).toBe(true)
    expect(checkExpectation('0', {min: 1})).toMatchObject({passed: false, message: 'expected at least 1, got 0'})
    expect(checkExpectation('11', {max: 10}).passed).toBe(false)
    expect(checkExpectation(null, {min: 0}).passed).toBe(false)
    expect(checkExpectation('3', {equals: 3}).passed).toBe(true)
    expect(checkExpectation('abc', {equals: 'abc'}).passed).toBe(true)
    expect(checkExpectation('abd', {equals: 'abc'}).passed).toBe(false)
  })
  it("compares with the source value read in the dump's snapshot", () => {
    expect(checkExpectation('d41d8', {matchesSource: true}, 'd41d8').passed).toBe(true)
    expect(checkExpectation('d41d8', {matchesSource: true}, 'ffff').message).toMatch(/source has "ffff"/)
  })
  it('records a value without expectation as evidence', () => {
    expect(checkExpectation('7', undefined)).toEqual({
      passed: true,
      message: '7 (no expectation; recorded as evidence)',
    })
  })
})
