// `retailops … | head`: the reader closes the pipe after the first lines; retailops ends quietly with 0, as Unix tools do.
import {describe, expect, it} from 'vitest'

import {startCli} from '../../support/cli.js'

describe('a reader that closes the pipe early', () => {
  it.each([[['promote', '--help']], [['config', 'schema']]])(
    'retailops %j | head -1 exits 0 with nothing on stderr',
    async (args) => {
      const run = startCli(args, {built: true})
      await new Promise<void>((resolve) => run.stdout.once('data', () => resolve()))
      run.stdout.destroy()
      const r = await run
      expect(r.stderr).toBe('')
      expect(r.exitCode).toBe(0)
    },
  )
})
