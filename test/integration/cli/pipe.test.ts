// `retailops … | head`: the reader closes the pipe after the first lines; retailops ends quietly with 0, as Unix tools do.
import {mkdtemp, readFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {describe, expect, it} from 'vitest'

import {runCli, startCli} from '../../support/cli.js'
import {ROOT} from '../../support/paths.js'

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

describe('a command started with piped standard input', () => {
  it('never reads its arguments from it: the next reader still finds every line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-stdin-'))
    const init = await runCli(['init', '--directory', dir, '--project', 'shop', '--ci', 'none', '--yes'], {built: true})
    expect(init.exitCode, init.stderr).toBe(0)
    const alone = await runCli(['render', '--json'], {cwd: dir, built: true})
    expect(alone.exitCode, alone.stderr).toBe(0)
    // As in `while read env; do retailops render; done < list`: the loop's next read must still find its line.
    const bin = JSON.stringify(path.join(ROOT, 'bin/run.js'))
    const r = await execa('sh', ['-c', `node ${bin} render --json > render.json; echo "exit $?"; cat`], {
      cwd: dir,
      input: 'payments\nnext line\n',
      env: {CI: 'true'},
      reject: false,
    })
    expect(r.stdout).toBe('exit 0\npayments\nnext line')
    // And the command did what it does without the input: every service rendered.
    expect(await readFile(path.join(dir, 'render.json'), 'utf8')).toBe(
      alone.stdout.endsWith('\n') ? alone.stdout : `${alone.stdout}\n`,
    )
  })
})
