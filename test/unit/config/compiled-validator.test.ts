// The validator compiled from the schema (scripts/gen-config-validator.ts) against zod itself: on
// every configuration below, valid or not, it must either return exactly what zod's parse returns
// (defaults, transforms, key order) or nothing, and it must return nothing whenever zod refuses.
// The configurations are the scaffolded project, each documented snippet merged into it, and
// thousands of mutations of those (keys removed, values of the wrong type or out of range, unknown
// keys), so every construct of the schema is met both ways.
import {readdirSync, readFileSync} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {configSchema} from '../../../src/config/schema.js'
import {validateConfig} from '../../../src/config/validate-config.generated.js'
import {initProject} from '../../../src/scaffold/init.js'
import {testContext} from '../../support/context.js'

type Data = Record<string, unknown>

const ROOT = new URL('../../../', import.meta.url).pathname

function zodParse(data: unknown): {ok: true; json: string} | {ok: false} {
  const result = configSchema.safeParse(structuredClone(data), {jitless: true})
  return result.success ? {ok: true, json: JSON.stringify(result.data)} : {ok: false}
}

/** The compiled validator agrees with zod on data; returns whether it accepted. */
function agrees(data: unknown, label: string): boolean {
  const expected = zodParse(data)
  const compiled = validateConfig(structuredClone(data))
  if (compiled === undefined) return false
  expect(expected.ok, `${label}: the compiled validator accepted what zod refuses`).toBe(true)
  expect(JSON.stringify(compiled), `${label}: the compiled validator's output differs from zod's`).toBe(
    (expected as {json: string}).json,
  )
  return true
}

function deepMerge(base: unknown, patch: unknown): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return patch
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch
  const out: Data = {...(base as Data)}
  for (const [k, v] of Object.entries(patch as Data)) out[k] = deepMerge(out[k], v)
  return out
}

/** Every path to a value in data (objects by key, arrays by index). */
function paths(data: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof data !== 'object' || data === null) return [prefix]
  const entries: [string | number, unknown][] = Array.isArray(data)
    ? data.map((v, i) => [i, v])
    : Object.entries(data as Data)
  return [prefix, ...entries.flatMap(([k, v]) => paths(v, [...prefix, k]))]
}

function at(data: unknown, p: (string | number)[]): unknown {
  return p.reduce<unknown>((d, k) => (d as Data)[k as string], data)
}

function withValue(data: unknown, p: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(data)
  const parent = at(copy, p.slice(0, -1)) as Data
  if (value === REMOVE) {
    if (Array.isArray(parent)) parent.splice(p.at(-1) as number, 1)
    else delete parent[p.at(-1) as string]
  } else parent[p.at(-1) as string] = value
  return copy
}

const REMOVE = Symbol('remove')

/** Values of other types and at the edges, for a value found in a valid configuration. */
function replacements(value: unknown): unknown[] {
  const common: unknown[] = [REMOVE, null, true, 'x', '', -1, 0, 1.5, [], {}]
  if (typeof value === 'number') return [...common, value + 1, value - 1, -value, 1e9, String(value), 0.5]
  if (typeof value === 'string')
    return [...common, `${value}x`, value.toUpperCase(), ` ${value}`, `${value}\n`, '0', '30s', 'http://127.0.0.1:1']
  if (Array.isArray(value)) return [...common, [...value, ...value], value.slice(1), [value[0]]]
  if (typeof value === 'object' && value !== null) return [...common, {...value, unknownKey: 1}]
  return common
}

let scaffolded: Data

beforeAll(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-compiled-validator-'))
  await initProject(
    {
      project: 'shop',
      registry: '127.0.0.1:5000',
      context: 'kwok-retailops',
      now: new Date('2026-11-25T08:00:00Z'),
      directory: dir,
    },
    testContext(),
  )
  scaffolded = parse(readFileSync(path.join(dir, 'retailops.yaml'), 'utf8')) as Data
})

/** Each YAML snippet of the documentation that is a mapping, merged into the scaffolded project. */
function documented(): {label: string; data: unknown}[] {
  const files = [
    ...readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    'README.md',
  ]
  const out: {label: string; data: unknown}[] = []
  for (const file of files) {
    const text = readFileSync(path.join(ROOT, file), 'utf8')
    let n = 0
    for (const match of text.matchAll(/```ya?ml\n([\s\S]*?)```/g)) {
      n++
      let snippet: unknown
      try {
        snippet = parse(match[1])
      } catch {
        continue
      }
      if (typeof snippet !== 'object' || snippet === null || Array.isArray(snippet)) continue
      out.push({label: `${file} snippet ${n}`, data: deepMerge(scaffolded, snippet)})
    }
  }
  return out
}

describe('the compiled configuration validator', () => {
  it('accepts the scaffolded project with exactly what zod returns', () => {
    expect(agrees(scaffolded, 'scaffolded')).toBe(true)
  })

  it('agrees with zod on the documented snippets, and accepts most of them', () => {
    const snippets = documented()
    expect(snippets.length).toBeGreaterThan(10)
    const accepted = snippets.filter((s) => agrees(s.data, s.label))
    // Snippets that zod accepts must be accepted here too: that is the fast path's whole point.
    const zodAccepted = snippets.filter((s) => zodParse(s.data).ok)
    expect(accepted.map((s) => s.label)).toEqual(zodAccepted.map((s) => s.label))
    expect(accepted.length).toBeGreaterThan(5)
  })

  it('agrees with zod on thousands of mutations of valid configurations', () => {
    const seeds = [{label: 'scaffolded', data: scaffolded as unknown}, ...documented()].filter(
      (s) => zodParse(s.data).ok,
    )
    const scaffoldedPaths = new Set(paths(scaffolded).map((p) => JSON.stringify(p)))
    let cases = 0
    let acceptedByBoth = 0
    let refusedByZod = 0
    for (const [n, seed] of seeds.entries()) {
      // The scaffolded project's keys are mutated once, in its own seed; a snippet's seed mutates what it adds.
      const mutated = paths(seed.data).filter(
        (p) => p.length > 0 && (n === 0 || !scaffoldedPaths.has(JSON.stringify(p))),
      )
      for (const [i, p] of mutated.entries()) {
        const values = replacements(at(seed.data, p))
        // Five of the replacements per key, a different five from key to key: every kind is met many times.
        for (let j = 0; j < 5; j++) {
          const value = values[(i * 5 + j) % values.length]
          const mutant = withValue(seed.data, p, value)
          const label = `${seed.label} with ${p.join('.')} = ${value === REMOVE ? '(removed)' : JSON.stringify(value)}`
          cases++
          const zodOk = zodParse(mutant).ok
          if (!zodOk) refusedByZod++
          const accepted = agrees(mutant, label)
          // What zod accepts, the compiled validator accepts (it is exact, not merely safe).
          expect(accepted, `${label}: zod accepts it, the compiled validator does not`).toBe(zodOk)
          if (accepted) acceptedByBoth++
        }
      }
    }
    expect(cases).toBeGreaterThan(2000)
    // Both ways are exercised in numbers.
    expect(acceptedByBoth).toBeGreaterThan(500)
    expect(refusedByZod).toBeGreaterThan(500)
  }, 120_000)

  it('refuses what is not a mapping and never throws', () => {
    for (const value of [undefined, null, 0, 'retailops', [], [scaffolded]])
      expect(validateConfig(value)).toBeUndefined()
  })
})
