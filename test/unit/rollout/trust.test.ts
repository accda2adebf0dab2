import {describe, expect, it} from 'vitest'

import {bindToCommand, UntrustedState} from '../../../src/rollout/trust.js'
import {STAGES, type RolloutState} from '../../../src/rollout/types.js'

const state = (patch: Partial<RolloutState>): RolloutState =>
  ({service: 'checkout', namespace: 'shop', group: ['checkout'], ...patch}) as RolloutState

describe('a stored rollout state bound to the command', () => {
  it('takes every stage the driver knows, and a state from before setup (no stage)', () => {
    for (const stage of [...STAGES, undefined])
      expect(bindToCommand(state({stage}), 'other', 'checkout').namespace).toBe('other')
  })

  it('refuses a stage the driver does not know, naming it and the known ones', () => {
    const bad = state({stage: 'half-done' as RolloutState['stage']})
    expect(() => bindToCommand(bad, 'shop', 'checkout')).toThrow(UntrustedState)
    expect(() => bindToCommand(bad, 'shop', 'checkout')).toThrow(
      /stage "half-done" is none the driver knows \(setup, steps, full-weight, update-stable, repin, cleanup, abort, abort:timeout, done\)/,
    )
  })
})
