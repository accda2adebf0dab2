import {describe, expect, it} from 'vitest'

import {compileCondition, MissingValueError} from '../../../src/rollout/condition.js'

describe('analysis conditions', () => {
  it('evaluates comparisons, arithmetic and logic', () => {
    expect(compileCondition('result < 0.05').test({result: 0.01})).toBe(true)
    expect(compileCondition('result < 0.05').test({result: 0.2})).toBe(false)
    expect(compileCondition('result <= stable * 1.2 || result < 0.01').test({result: 0.005, stable: 0})).toBe(true)
    expect(compileCondition('result <= stable * 1.2 && !(result > 1)').test({result: 0.5, stable: 0.1})).toBe(false)
    expect(compileCondition('canary - stable > 0.1').test({result: 0.5, stable: 0.3})).toBe(true)
    expect(compileCondition('1 + 2 * 3 == 7').test({})).toBe(true)
    expect(compileCondition('isNaN(result)').test({result: Number.NaN})).toBe(true)
    expect(compileCondition('-result < 0').test({result: 2})).toBe(true)
  })

  it('names the variable that has no value', () => {
    expect(() => compileCondition('stable < 1').test({result: 1, stable: null})).toThrow(MissingValueError)
  })

  it('rejects unknown names and malformed input', () => {
    expect(() => compileCondition('value < 1')).toThrow(/unknown name "value"/)
    expect(() => compileCondition('result <')).toThrow(/end of condition/)
    expect(() => compileCondition('result < 1 )')).toThrow(/unexpected/)
    expect(() => compileCondition('result ; 1')).toThrow(/unexpected ";"/)
    expect(compileCondition('result < stable').variables.sort()).toEqual(['result', 'stable'])
  })
})
