import {describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {renderManifests} from '../../../src/deploy/render.js'
import {generateRules} from '../../../src/slo/rules.js'
import {emitYaml, yamlText} from '../../../src/report/yaml.js'
import {digestImages, project} from '../kubernetes/fixtures.js'
import {sloProject} from '../slo/fixtures.js'

const reference = (v: unknown) => stringify(v, {lineWidth: 0})
const literal = (v: unknown) => stringify(v, {lineWidth: 0, blockQuote: 'literal'})
/** What render writes: emitYaml, or the package for what emitYaml leaves to it. */
const toYaml = (v: unknown) => emitYaml(v) ?? reference(v)

/** A small deterministic generator (mulberry32), so a failure names a seed that reproduces it. */
function random(seed: number) {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const STRINGS = [
  '',
  ' ',
  'plain',
  'with space',
  'trailing ',
  ' leading',
  'a: b',
  'a:b',
  'ends:',
  'x #y',
  'x#y',
  '#comment',
  '- dash',
  '-',
  '-Xmx512m',
  '?',
  '? q',
  ':colon',
  '127.0.0.1:5000/shop/catalog@sha256:' + 'e'.repeat(64),
  '100m',
  '128Mi',
  '0',
  '007',
  '0o17',
  '0x1F',
  '1e3',
  '.5',
  '+1',
  '-1.5',
  '.inf',
  '-.inf',
  '.nan',
  '~',
  'null',
  'Null',
  'NULL',
  'true',
  'True',
  'FALSE',
  'yes',
  'no',
  'on',
  'off',
  '---',
  '--- x',
  '...',
  'a\nb',
  'a\n',
  'tab\there',
  'quote"inside',
  "it's",
  `both'"`,
  '*alias',
  '&anchor',
  '!tag',
  '%directive',
  '@at',
  '`tick',
  '|pipe',
  '>gt',
  '{brace',
  '[bracket',
  'comma,here',
  'unicode é ✓',
  'emoji 🚀',
  'back\\slash',
  'control\u0007',
  'app.kubernetes.io/name',
  'retailops.dev/applied-hash',
  'k:{"name":"app"}',
  'http://user:pw@host/x',
  '=equals',
]

/** Multi-line strings: PromQL as slo rules writes it, and every chomping and indentation case. */
const MULTI_LINE = [
  'a\nb',
  'a\nb\n',
  'a\nb\n\n',
  'a\n\nb',
  '\na',
  '\n\na\n',
  ' indented\nnext',
  '  two\n  lines\n',
  'a \nb',
  'a\nb \n',
  'a\n ',
  'a\n\t',
  '\n',
  'x: y\n# not a comment\n- not an item',
  '---\nmarker',
  "quote\"s\nand 'single'",
  'sum(rate(x{a="b"}[5m]))\n/\nsum(rate(y[5m]))',
  'tab\there\nnext',
  'é\nunicode',
]

function generate(rnd: () => number, depth: number): unknown {
  const r = rnd()
  if (depth > 4 || r < 0.45) {
    const s = rnd()
    if (s < 0.5) return STRINGS[Math.floor(rnd() * STRINGS.length)]
    if (s < 0.55) return MULTI_LINE[Math.floor(rnd() * MULTI_LINE.length)]
    if (s < 0.7) return Math.floor(rnd() * 2000) - 1000
    if (s < 0.75) return [0.5, -0, 1e21, 1.5e-7, Number.NaN, Infinity, -Infinity, 3.14159][Math.floor(rnd() * 8)]
    if (s < 0.85) return rnd() < 0.5
    return null
  }
  if (r < 0.7) return Array.from({length: Math.floor(rnd() * 4)}, () => generate(rnd, depth + 1))
  const obj: Record<string, unknown> = {}
  for (let i = Math.floor(rnd() * 5); i > 0; i--) {
    const k = rnd() < 0.7 ? `k${Math.floor(rnd() * 10)}` : STRINGS[Math.floor(rnd() * STRINGS.length)]
    obj[k] = rnd() < 0.05 ? undefined : generate(rnd, depth + 1)
  }
  return obj
}

describe('emitYaml', () => {
  it('writes what the yaml package writes, for every rendered object of the fixture project', () => {
    const p = project()
    const objects = renderManifests({project: p, images: digestImages(p)}).targets.flatMap((t) => t.objects)
    expect(objects.length).toBeGreaterThan(20)
    for (const o of objects) expect(toYaml(o), `${o.kind} ${o.metadata.name}`).toBe(reference(o))
  })

  it('writes what the yaml package writes for 3,000 generated documents (tricky strings, nesting, empties)', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const value = generate(random(seed), 0)
      expect(toYaml(value), `seed ${seed}: ${JSON.stringify(value)}`).toBe(reference(value))
    }
  })

  it('writes nested sequences and maps in sequences as the package indents them', () => {
    const value = {a: [[1, [2, {b: [3]}]], {c: {}, d: []}, []], e: {f: {g: 'h'}}}
    expect(toYaml(value)).toBe(reference(value))
    expect(toYaml(value)).toBe(
      'a:\n  - - 1\n    - - 2\n      - b:\n          - 3\n  - c: {}\n    d: []\n  - []\ne:\n  f:\n    g: h\n',
    )
  })

  it('writes a collection met twice as the package does: an anchor where it is first written, aliases after', () => {
    const labels = {app: 'catalog'}
    const list = [1, 2]
    const empty = {}
    const outer = {k: labels}
    for (const value of [
      {metadata: {labels}, spec: {selector: {matchLabels: labels}}},
      {x: labels, y: [labels, list, {z: labels}], w: list, q: labels},
      [labels, labels, list, list],
      {a: empty, b: empty, c: [empty]},
      {p: outer, r: outer, t: labels},
    ]) {
      const text = emitYaml(value)
      expect(text, JSON.stringify(value)).toBe(reference(value))
      expect(parse(text!)).toEqual(value)
    }
    expect(emitYaml({metadata: {labels}, spec: {selector: {matchLabels: labels}}})).toContain('*a1')
    // Equal but distinct objects are written twice, as the package writes them.
    const twice = {a: {x: 1}, b: {x: 1}}
    expect(emitYaml(twice)).toBe(reference(twice))
    // A collection inside itself is left to the package.
    const cycle: Record<string, unknown> = {a: 1}
    cycle.self = cycle
    expect(emitYaml(cycle)).toBeUndefined()
  })

  it('leaves multi-line strings (without blockQuote), class instances and top-level scalars to the package', () => {
    for (const value of [{script: 'line 1\nline 2\n'}, {when: new Date(0)}, 'top', 42, [undefined, 1]])
      expect(emitYaml(value)).toBeUndefined()
    for (const value of [{}, []]) expect(emitYaml(value)).toBe(reference(value))
  })

  it('writes every string of printable ASCII itself, plain or quoted exactly as the package, as a value and as a key', () => {
    const ascii = STRINGS.filter((s) => /^[\x20-\x7e]*$/.test(s) && !/^(%|---|\.\.\.)/m.test(s))
    expect(ascii.length).toBeGreaterThan(60)
    for (const s of ascii) {
      for (const value of [{v: s}, [s], {[s]: 1}]) {
        const text = emitYaml(value)
        expect(text, JSON.stringify(value)).toBe(reference(value))
        expect(parse(text!), JSON.stringify(value)).toEqual(value)
      }
    }
    // Printable ASCII generated at random: quotes, indicators, digits and spaces in every place.
    const rnd = random(7)
    const alphabet = ' -:#\'"0123456789.eE+xo~ab?,[]{}&*!|>%@`\\/'
    for (let i = 0; i < 20_000; i++) {
      const s = Array.from(
        {length: 1 + Math.floor(rnd() * 6)},
        () => alphabet[Math.floor(rnd() * alphabet.length)],
      ).join('')
      const value = {[s]: s}
      if (/^(%|---|\.\.\.)/m.test(s)) continue
      expect(emitYaml(value), JSON.stringify(s)).toBe(reference(value))
    }
  })

  it("writes multi-line values as the package's literal blocks with blockQuote: 'literal', and leaves it what it would quote or keep", () => {
    const handled: string[] = []
    for (const s of MULTI_LINE) {
      for (const value of [{expr: s}, {a: {b: [s]}}, [{record: 'x', expr: s}]]) {
        const text = emitYaml(value, {blockQuote: 'literal'})
        if (text === undefined) continue
        handled.push(s)
        expect(text, JSON.stringify(value)).toBe(literal(value))
        expect(parse(text), JSON.stringify(value)).toEqual(value)
      }
    }
    // The strip (|-), clip (|) and indentation-indicator (|2) cases are written here; keep (|+),
    // trailing whitespace lines, document markers and non-ASCII go to the package.
    for (const s of [
      'a\nb',
      'a\nb\n',
      ' indented\nnext',
      '\na',
      'a \nb',
      'sum(rate(x{a="b"}[5m]))\n/\nsum(rate(y[5m]))',
    ])
      expect(handled, JSON.stringify(s)).toContain(s)
    for (const s of ['a\nb\n\n', 'a\n ', '---\nmarker', 'é\nunicode', '\n']) expect(handled).not.toContain(s)
  })

  it('writes the rule files slo rules generates (availability, latency and ratio SLIs) as the package does', async () => {
    const config = sloProject()
    const result = generateRules({config, version: '0.1.0'})
    for (const doc of [{groups: result.groups}, {spec: {groups: result.groups}}]) {
      const text = emitYaml(doc, {blockQuote: 'literal'})
      expect(text).toBeDefined()
      expect(text).toBe(literal(doc))
      expect(await yamlText(doc, {blockQuote: 'literal'})).toBe(text)
    }
  })

  it('writes what the package writes with literal blocks for 3,000 generated documents', () => {
    let fast = 0
    for (let seed = 1; seed <= 3000; seed++) {
      const value = generate(random(seed), 0)
      const text = emitYaml(value, {blockQuote: 'literal'})
      if (text === undefined) continue
      fast++
      expect(text, `seed ${seed}: ${JSON.stringify(value)}`).toBe(literal(value))
    }
    expect(fast).toBeGreaterThan(1000)
  })
})
