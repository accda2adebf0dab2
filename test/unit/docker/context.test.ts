import {chmod, mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import tar from 'tar-stream'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {contextNames, contextTar, ignoreMatcher, parseDockerignore, scanContext} from '../../../src/docker/context.js'

let dir: string

async function files(tree: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(tree)) {
    await mkdir(path.dirname(path.join(dir, name)), {recursive: true})
    await writeFile(path.join(dir, name), content)
  }
}

async function untar(
  stream: NodeJS.ReadableStream,
): Promise<Map<string, {type: string; mode?: number; mtime?: Date; uid?: number; content: string}>> {
  const extract = tar.extract()
  const out = new Map<string, {type: string; mode?: number; mtime?: Date; uid?: number; content: string}>()
  extract.on('entry', (header, body, next) => {
    const chunks: Buffer[] = []
    body.on('data', (c: unknown) => {
      chunks.push(c as Buffer)
    })
    body.on('end', () => {
      out.set(header.name, {
        type: header.type ?? 'file',
        mode: header.mode,
        mtime: header.mtime,
        uid: header.uid,
        content: Buffer.concat(chunks).toString(),
      })
      next()
    })
    body.resume()
  })
  const done = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => resolve())
    extract.on('error', (error: Error) => reject(error))
  })
  stream.pipe(extract)
  await done
  return out
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ro-ctx-'))
})
afterEach(async () => {
  await rm(dir, {recursive: true, force: true})
})

describe('.dockerignore matching (Docker semantics, paths relative to the context)', () => {
  it('parses comments, blank lines and whitespace like moby', () => {
    expect(parseDockerignore('# comment\n\n  node_modules  \r\n!keep\n')).toEqual(['node_modules', '!keep'])
  })

  it('matches nested paths only where the pattern says, not anywhere (unlike .gitignore)', () => {
    const m = ignoreMatcher(['secret.txt', 'src/private.txt'])
    expect(m.ignores('secret.txt')).toBe(true)
    expect(m.ignores('sub/secret.txt')).toBe(false)
    expect(m.ignores('src/private.txt')).toBe(true)
    expect(m.ignores('other/src/private.txt')).toBe(false)
  })

  it('handles ** at any depth and a folder pattern excludes its content', () => {
    const m = ignoreMatcher(['**/*.test.ts', 'coverage'])
    expect(m.ignores('a.test.ts')).toBe(true)
    expect(m.ignores('cart/src/deep/x.test.ts')).toBe(true)
    expect(m.ignores('cart/src/x.ts')).toBe(false)
    expect(m.ignores('coverage/lcov.info')).toBe(true)
  })

  it('lets a later ! exception re-include, and a later pattern win again', () => {
    const m = ignoreMatcher(['*.md', '!README.md', 'docs', '!docs/keep.md'])
    expect(m.ignores('CHANGES.md')).toBe(true)
    expect(m.ignores('README.md')).toBe(false)
    expect(m.ignores('docs/other.md')).toBe(true)
    expect(m.ignores('docs/keep.md')).toBe(false)
    expect(ignoreMatcher(['!README.md', '*.md']).ignores('README.md')).toBe(true)
  })

  it('is case-sensitive, as Docker on Linux', () => {
    expect(ignoreMatcher(['Secret.txt']).ignores('secret.txt')).toBe(false)
  })
})

describe('scanContext and contextTar', () => {
  it('keeps ignored files out of the tar, including below the top level, and always sends Dockerfile and .dockerignore', async () => {
    await files({
      Dockerfile: 'FROM scratch\n',
      '.dockerignore': 'Dockerfile\n.dockerignore\nsrc/secret.txt\n**/*.log\nnode_modules\n!node_modules/keep\n',
      'src/app.ts': 'app',
      'src/secret.txt': 'password',
      'src/deep/debug.log': 'log',
      'node_modules/a/index.js': 'a',
      'node_modules/keep/index.js': 'k',
    })
    const scanned = await scanContext({context: dir})
    const names = contextNames(scanned)
    expect(names).toContain('Dockerfile')
    expect(names).toContain('.dockerignore')
    expect(names).toContain('src/app.ts')
    expect(names).toContain('node_modules/keep/index.js')
    expect(names).not.toContain('src/secret.txt')
    expect(names).not.toContain('src/deep/debug.log')
    expect(names).not.toContain('node_modules/a/index.js')

    const entries = await untar(contextTar(scanned))
    expect([...entries.keys()].filter((n) => !n.endsWith('/')).sort()).toEqual(
      ['.dockerignore', 'Dockerfile', 'node_modules/keep/index.js', 'src/app.ts'].sort(),
    )
    expect(entries.get('src/app.ts')!.content).toBe('app')
    expect(entries.get('src/app.ts')!.uid).toBe(0)
    expect(entries.get('src/app.ts')!.mtime!.toISOString()).toBe('2000-01-01T00:00:00.000Z')
  })

  it('keeps the executable bit and symlinks', async () => {
    await files({Dockerfile: 'FROM scratch\n', 'run.sh': '#!/bin/sh\n'})
    await chmod(path.join(dir, 'run.sh'), 0o755)
    await symlink('run.sh', path.join(dir, 'link.sh'))
    const entries = await untar(contextTar(await scanContext({context: dir})))
    expect(entries.get('run.sh')!.mode! & 0o777).toBe(0o755)
    expect(entries.get('link.sh')!.type).toBe('symlink')
  })

  it('uses <Dockerfile>.dockerignore over the context .dockerignore', async () => {
    await files({
      'svc/Dockerfile': 'FROM scratch\n',
      'svc/Dockerfile.dockerignore': 'other\n',
      '.dockerignore': 'svc\n',
      'other/x': 'x',
      'svc/y': 'y',
    })
    const scanned = await scanContext({context: dir, dockerfile: 'svc/Dockerfile'})
    expect(scanned.ignoreFile).toBe(path.join(dir, 'svc/Dockerfile.dockerignore'))
    expect(contextNames(scanned)).toContain('svc/y')
    expect(contextNames(scanned)).not.toContain('other/x')
  })

  it('adds a Dockerfile from outside the context under a generated name', async () => {
    await files({'ctx/a.txt': 'a', 'build/Dockerfile': 'FROM scratch\n'})
    const scanned = await scanContext({context: path.join(dir, 'ctx'), dockerfile: '../build/Dockerfile'})
    expect(scanned.dockerfile).toMatch(/^\.retailops\.Dockerfile\.[0-9a-f]{12}$/)
    const entries = await untar(contextTar(scanned))
    expect(entries.get(scanned.dockerfile)!.content).toBe('FROM scratch\n')
  })

  it('hashes content: same files give the same digest, any change (or mode change) a new one, an ignored file none', async () => {
    await files({Dockerfile: 'FROM scratch\n', '.dockerignore': 'ignored.txt\n', 'a.txt': 'a', 'ignored.txt': '1'})
    const first = (await scanContext({context: dir})).digest
    expect((await scanContext({context: dir})).digest).toBe(first)
    await writeFile(path.join(dir, 'ignored.txt'), '2')
    expect((await scanContext({context: dir})).digest).toBe(first)
    await writeFile(path.join(dir, 'a.txt'), 'b')
    const second = (await scanContext({context: dir})).digest
    expect(second).not.toBe(first)
    await chmod(path.join(dir, 'a.txt'), 0o755)
    expect((await scanContext({context: dir})).digest).not.toBe(second)
  })

  it('names a missing Dockerfile (exit NOT_FOUND)', async () => {
    await files({'a.txt': 'a'})
    await expect(scanContext({context: dir, dockerfile: 'svc/Dockerfile'})).rejects.toMatchObject({
      exit: 'NOT_FOUND',
      message: expect.stringContaining('svc/Dockerfile does not exist'),
    })
  })
})
