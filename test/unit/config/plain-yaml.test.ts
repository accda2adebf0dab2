// The quick YAML reader (js-yaml) against the yaml library the full path uses: wherever the quick
// one answers, the data must be the same, key order included; where they could differ it must not
// answer.
import {readdirSync, readFileSync} from 'node:fs'
import {isDeepStrictEqual} from 'node:util'
import path from 'node:path'

import {describe, expect, it} from 'vitest'
import {parseDocument} from 'yaml'

import {readPlainYaml} from '../../../src/config/plain-yaml.js'

const ROOT = new URL('../../../', import.meta.url).pathname

function yamlLibrary(text: string): unknown {
  const doc = parseDocument(text, {uniqueKeys: false})
  return doc.errors.length > 0 ? Symbol.for('error') : doc.toJS()
}

/** Same data and, for every mapping, the same key order. */
function same(a: unknown, b: unknown): boolean {
  if (!isDeepStrictEqual(a, b)) return false
  if (typeof a !== 'object' || a === null) return true
  const ka = Object.keys(a)
  return (
    ka.join('\0') === Object.keys(b as object).join('\0') &&
    ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  )
}

const SCALARS = [
  '1',
  '-1',
  '+3',
  '007',
  '0o17',
  '0O17',
  '0x1F',
  '0X1F',
  '0b11',
  '1_000',
  '1.5',
  '1.50',
  '-.5',
  '.5',
  '5.',
  '1e3',
  '1E-3',
  '-1.5e+2',
  '.inf',
  '-.Inf',
  '.NaN',
  '.nan',
  'true',
  'True',
  'TRUE',
  'tRUE',
  'yes',
  'no',
  'on',
  'off',
  'y',
  '2026-11-27',
  '2026-11-27T00:00:00Z',
  '12:30',
  '"1"',
  "'true'",
  '"a\\tb\\u00e9"',
  "'it''s'",
  'a: b',
  '"a: b"',
  '250m',
  '512Mi',
  '0 3 * * *',
  '"*/5 * * * *"',
  'http://127.0.0.1:9090',
  'env://TOKEN',
  '-',
  '--',
  '=',
  'x # comment',
  '"#not a comment"',
  '|\n    block\n    text\n',
  '>\n    folded\n    text\n\n    para\n',
  '|-\n    keep\n',
  '>+\n    keep\n\n',
  'plain\n    continued',
]

const KEYS = ['1', '0x10', '1.50', 'true', '1e3', '.inf', '-0', '"q"', '"1"', 'a b', '"__proto__"', '__proto__']

function corpus(): {label: string; text: string}[] {
  const out: {label: string; text: string}[] = []
  for (const s of SCALARS) {
    out.push({label: `value ${s}`, text: `a: ${s}\n`})
    out.push({label: `list item ${s}`, text: `a:\n  - ${s}\n`})
    if (!s.includes('\n')) out.push({label: `flow ${s}`, text: `a: [${s}, x]\nb: {k: ${s}}\n`})
  }
  for (const k of KEYS) out.push({label: `key ${k}`, text: `m:\n  ${k}: v\n  other: w\n`})
  const docs = [
    ...readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    'README.md',
  ]
  for (const file of docs)
    for (const [i, m] of [
      ...readFileSync(path.join(ROOT, file), 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g),
    ].entries())
      out.push({label: `${file} snippet ${i + 1}`, text: m[1]})
  out.push({
    label: 'the project template',
    text: readFileSync(path.join(ROOT, 'templates/project/retailops.yaml.tmpl'), 'utf8'),
  })
  return out
}

describe('the quick YAML reader', () => {
  it('reads what it answers exactly as the yaml library does', () => {
    let answered = 0
    for (const {label, text} of corpus()) {
      const quick = readPlainYaml(text)
      if (quick === undefined) continue
      answered++
      expect(same(quick, yamlLibrary(text)), `${label}: ${JSON.stringify(quick)}`).toBe(true)
    }
    expect(answered).toBeGreaterThan(150)
  })

  it('answers for strings that only look like YAML syntax (a cron schedule, an ampersand)', () => {
    expect(readPlainYaml('schedule: "*/30 * * * *"\nnote: R&D & ops *important*\n')).toEqual({
      schedule: '*/30 * * * *',
      note: 'R&D & ops *important*',
    })
  })

  it.each([
    ['an anchor and an alias', 'a: &x {b: 1}\nc: *x\n'],
    ['an anchor on a nested scalar', 'a:\n  b: &y 1\nc: 2\n'],
    ['an anchor in a flow sequence', 'm: [1, &z 2]\n'],
    ['an anchor on a key', '&k key: v\n'],
    ['an alias without its anchor', 'a: *nowhere\n'],
    ['a tag', 'a: !!str 1\n'],
    ['a custom tag', 'a: !env X\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['two documents', 'a: 1\n---\nb: 2\n'],
    ['a %YAML 1.1 directive', '%YAML 1.1\n---\na: yes\n'],
    ['a complex key', '? [a, b]\n: c\n'],
    ['a null', 'a: ~\n'],
    ['an empty value', 'a:\nb: 1\n'],
    ['a null key', 'm:\n  ~: v\n'],
    ['an empty key', 'm:\n  : v\n'],
    ['a null in a flow mapping', 'm: {a: null, b: 1}\n'],
    ['a list at the top', '- a\n'],
    ['a scalar at the top', 'retailops\n'],
    ['nothing', ''],
    ['a syntax error', 'a: [1, 2\n'],
    ['a tab indentation', 'a:\n\tb: 1\n'],
    ['nesting deeper than the stack', `a: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`],
  ])('gives up on %s', (_label, text) => {
    expect(readPlainYaml(text)).toBeUndefined()
  })
})
