// staleBuild decides whether integration tests run the built CLI (bin/run.js) or the sources:
// a wrong "current" would test old code.
import {mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {staleBuild} from '../../support/build.js'

describe('staleBuild', () => {
  const roots: string[] = []
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, {recursive: true, force: true})
  })

  /** A checkout: src/ and commands/ sources, and a build (dist/commands, the manifest) at `builtAt`. */
  function checkout(sourcesAt: number, builtAt: number | undefined): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 't-stale-'))
    roots.push(root)
    const files = ['src/a.ts', 'src/deep/b.ts', 'commands/c.ts']
    for (const f of files) {
      mkdirSync(path.dirname(path.join(root, f)), {recursive: true})
      writeFileSync(path.join(root, f), '')
      utimesSync(path.join(root, f), sourcesAt, sourcesAt)
    }
    if (builtAt !== undefined) {
      mkdirSync(path.join(root, 'dist', 'commands'), {recursive: true})
      writeFileSync(path.join(root, 'oclif.manifest.json'), '{}')
      utimesSync(path.join(root, 'oclif.manifest.json'), builtAt, builtAt)
    }
    return root
  }

  it('is current when the manifest is newer than every source', () => {
    expect(staleBuild(checkout(1000, 2000))).toBeUndefined()
  })

  it('names the source that is newer than the build, and the fix', () => {
    const root = checkout(1000, 2000)
    utimesSync(path.join(root, 'src/deep/b.ts'), 3000, 3000)
    expect(staleBuild(root)).toBe('dist/ is older than src/deep/b.ts: run `npm run build` first.')
  })

  it('looks at commands/ too, and only at .ts files', () => {
    const root = checkout(1000, 2000)
    writeFileSync(path.join(root, 'src/notes.md'), '')
    expect(staleBuild(root)).toBeUndefined()
    utimesSync(path.join(root, 'commands/c.ts'), 3000, 3000)
    expect(staleBuild(root)).toContain('older than commands/c.ts')
  })

  it('says there is no build when dist/ or the manifest is missing', () => {
    const root = checkout(1000, undefined)
    expect(staleBuild(root)).toBe(`${root} has no build (dist/, oclif.manifest.json): run \`npm run build\` first.`)
  })
})
