// bin/run.js keeps V8's compiled code in the user's cache folder (issue 18: start-up); a folder it
// cannot use costs only the speed-up, never the run.
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli, type CliOptions} from '../../support/cli.js'

let scratch: string

// The test runner's own cache settings must not decide where the CLI's cache goes.
const run = (args: string[], env: CliOptions['env']) =>
  runCli(args, {built: true, env: {NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, ...env}})

/** Every file under dir (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, {recursive: true, withFileTypes: true})).filter((e) => e.isFile()).map((e) => e.name)
  } catch {
    return []
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'ro-compile-cache-'))
})

afterAll(async () => {
  await rm(scratch, {recursive: true, force: true})
})

describe('the compile cache of bin/run.js', () => {
  it('is written under $XDG_CACHE_HOME/retailops/compile and reused by the next run', async () => {
    const xdg = path.join(scratch, 'xdg')
    const first = await run(['config', 'schema'], {XDG_CACHE_HOME: xdg})
    expect(first.exitCode).toBe(0)
    const cached = await filesUnder(path.join(xdg, 'retailops', 'compile'))
    // The bundled command and its chunks (dist/direct), one cache entry each; the direct start
    // loads a few dozen files where oclif's own start loads hundreds.
    expect(cached.length).toBeGreaterThan(10)
    const second = await run(['config', 'schema'], {XDG_CACHE_HOME: xdg})
    expect(second.exitCode).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect((await filesUnder(path.join(xdg, 'retailops', 'compile'))).sort()).toEqual(cached.sort())
  })

  it('goes to ~/.cache/retailops/compile without XDG_CACHE_HOME', async () => {
    const home = path.join(scratch, 'home')
    const r = await run(['--help'], {XDG_CACHE_HOME: undefined, HOME: home})
    expect(r.exitCode).toBe(0)
    expect((await filesUnder(path.join(home, '.cache', 'retailops', 'compile'))).length).toBeGreaterThan(0)
  })

  it('leaves the choice to Node when NODE_COMPILE_CACHE is set', async () => {
    const xdg = path.join(scratch, 'xdg-unused')
    const own = path.join(scratch, 'node-own')
    const r = await run(['--version'], {XDG_CACHE_HOME: xdg, NODE_COMPILE_CACHE: own})
    expect(r.exitCode).toBe(0)
    expect((await filesUnder(own)).length).toBeGreaterThan(0)
    expect(await filesUnder(xdg)).toEqual([])
  })

  it('runs unchanged, with nothing on stderr, when the cache folder cannot be created', async () => {
    // A regular file where the folder would go: creating the folder fails as on a read-only HOME.
    const blocked = path.join(scratch, 'not-a-folder')
    await writeFile(blocked, '')
    const reference = await run(['config', 'schema'], {XDG_CACHE_HOME: path.join(scratch, 'xdg')})
    for (const env of [{XDG_CACHE_HOME: blocked}, {XDG_CACHE_HOME: undefined, HOME: blocked}]) {
      const r = await run(['config', 'schema'], env)
      expect(r.stderr).toBe('')
      expect(r.exitCode).toBe(0)
      expect(r.stdout).toBe(reference.stdout)
    }
  })

  it('is not used with NODE_DISABLE_COMPILE_CACHE=1', async () => {
    const xdg = path.join(scratch, 'xdg-disabled')
    const r = await run(['--version'], {XDG_CACHE_HOME: xdg, NODE_DISABLE_COMPILE_CACHE: '1'})
    expect(r.exitCode).toBe(0)
    expect(await filesUnder(xdg)).toEqual([])
  })
})
