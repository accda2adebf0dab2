import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {describe, expect, it} from 'vitest'

import {ExitCode, type ExitCodeName} from '../../../src/errors/exit-codes.js'

// Every command lists the exit codes it can end with (static exitCodes; --help shows them under
// EXIT CODES, the README beside each command). The list is checked against the code both ways:
// what the command file itself ends with must be listed, and every listed code must be one that
// the command's code (the command file and everything it imports from src/) can produce.

const NAMES = Object.keys(ExitCode) as ExitCodeName[]
const byCode = (a: ExitCodeName, b: ExitCodeName) => ExitCode[a] - ExitCode[b]
/** Any command can end so: success, oclif's parse errors, Ctrl-C (see base-command.ts). */
const ALWAYS_POSSIBLE: ExitCodeName[] = ['OK', 'USAGE', 'INTERRUPTED']

const errorsIndex = readFileSync(path.resolve('src/errors/index.ts'), 'utf8')
/** UsageError → USAGE, …: the error classes with a fixed code, as src/errors/index.ts defines them. */
const ERROR_CLASSES = new Map(
  [...errorsIndex.matchAll(/class (\w+) extends RetailOpsError \{[\s\S]*?super\('([A-Z_]+)'/g)].map((m) => [
    m[1],
    m[2] as ExitCodeName,
  ]),
)

function commandFiles(dir = path.resolve('commands')): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const full = path.join(dir, entry)
      if (statSync(full).isDirectory()) return entry.startsWith('_') ? [] : commandFiles(full)
      return entry.endsWith('.ts') ? [full] : []
    })
}

/**
 * The exit names a source text produces: quoted names (RetailOpsError('X'), setOutcome('X'),
 * exit: 'X'), not comparisons (error.exit === 'X' catches one), and error classes.
 */
function producedBy(text: string): Set<ExitCodeName> {
  const found = new Set<ExitCodeName>()
  for (const m of text.matchAll(/(?<![!=]==\s*)'([A-Z_]+)'/g))
    if ((NAMES as string[]).includes(m[1])) found.add(m[1] as ExitCodeName)
  for (const [cls, name] of ERROR_CLASSES) if (new RegExp(`new ${cls}\\(`).test(text)) found.add(name)
  return found
}

/** The command file and every file it imports from the repository, static or dynamic, except src/errors (which names every code). */
function moduleClosure(file: string): string[] {
  const seen = new Set([file])
  const queue = [file]
  while (queue.length > 0) {
    const current = queue.pop()!
    for (const m of readFileSync(current, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      const target = path.resolve(path.dirname(current), m[1]).replace(/\.js$/, '.ts')
      if (!existsSync(target) || seen.has(target) || target.includes(`${path.sep}src${path.sep}errors${path.sep}`))
        continue
      seen.add(target)
      queue.push(target)
    }
  }
  return [...seen]
}

const files = commandFiles()

describe("exit codes in every command's help", () => {
  it('finds every command', () => {
    expect(files.length).toBeGreaterThanOrEqual(28)
  })

  for (const file of files) {
    const id = path.relative('commands', file).replace(/\.ts$/, '').split(path.sep).join(' ')
    it(`${id} lists its exit codes`, async () => {
      const command = (await import(pathToFileURL(file).href)).default as {exitCodes?: readonly ExitCodeName[]}
      expect(Object.hasOwn(command, 'exitCodes'), `${id}: declare static override exitCodes = [...] as const`).toBe(
        true,
      )
      const declared = [...command.exitCodes!]
      expect(declared, `${id}: every command can end with OK and USAGE (flag parsing)`).toEqual(
        expect.arrayContaining(['OK', 'USAGE']),
      )
      expect(declared, `${id}: sorted by code, each once`).toEqual([...new Set(declared)].sort(byCode))

      const source = readFileSync(file, 'utf8').replace(/static override exitCodes = \[[^\]]*\]/, '')
      const own = producedBy(source)
      if (/this\.loadProject\(\)/.test(source)) own.add('CONFIG')
      expect(declared, `${id}: ends with these itself`).toEqual(expect.arrayContaining([...own]))

      const possible = new Set<ExitCodeName>(ALWAYS_POSSIBLE)
      for (const f of moduleClosure(file))
        for (const name of producedBy(f === file ? source : readFileSync(f, 'utf8'))) possible.add(name)
      expect(
        declared.filter((name) => !possible.has(name)),
        `${id}: listed, but nothing it runs produces them`,
      ).toEqual([])
    })
  }
})
