import {describe, expect, it} from 'vitest'

import {
  ConfigError,
  ExitCode,
  EXIT_CODE_MEANINGS,
  RetailOpsError,
  toRetailOpsError,
  UsageError,
} from '../../../src/errors/index.js'

describe('exit-code policy', () => {
  it('gives every code a unique number and a meaning', () => {
    const codes = Object.values(ExitCode)
    expect(new Set(codes).size).toBe(codes.length)
    for (const name of Object.keys(ExitCode))
      expect(EXIT_CODE_MEANINGS[name as keyof typeof ExitCode].length).toBeGreaterThan(10)
  })

  it('maps typed errors to their codes and unknown errors to INTERNAL', () => {
    expect(new UsageError('x').exitCode).toBe(2)
    expect(new ConfigError([{file: 'f', path: 'p', message: 'm', line: 3}]).exitCode).toBe(3)
    const internal = toRetailOpsError(new TypeError('boom'))
    expect(internal.exit).toBe('INTERNAL')
    expect(internal.message).toContain('boom')
    const abort = Object.assign(new Error('aborted'), {code: 'ABORT_ERR'})
    expect(toRetailOpsError(abort).exitCode).toBe(130)
    const same = new RetailOpsError('SIGNATURE', 'bad')
    expect(toRetailOpsError(same)).toBe(same)
  })

  it('formats configuration problems with their location', () => {
    const e = new ConfigError([
      {file: 'retailops.yaml', line: 4, column: 3, path: 'services.a.tier', message: 'expected one of x'},
    ])
    expect(e.message).toContain('retailops.yaml:4:3 services.a.tier: expected one of x')
    expect(e.nextSteps[0]).toContain('config schema')
  })
})
