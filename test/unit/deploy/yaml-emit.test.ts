import {describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {renderManifests} from '../../../src/deploy/render.js'
import {toYaml} from '../../../src/deploy/yaml-emit.js'
import {digestImages, project} from '../kubernetes/fixtures.js'

const reference = (v: unknown) => stringify(v, {lineWidth: 0})

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

function generate(rnd: () => number, depth: number): unknown {
  const r = rnd()
  if (depth > 4 || r < 0.45) {
    const s = rnd()
    if (s < 0.55) return STRINGS[Math.floor(rnd() * STRINGS.length)]
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

describe('toYaml', () => {
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

  it('leaves an object met twice in a document to the package, which writes an anchor and an alias', () => {
    const labels = {app: 'catalog'}
    const value = {metadata: {labels}, spec: {selector: {matchLabels: labels}}}
    expect(reference(value)).toContain('*a1')
    expect(toYaml(value)).toBe(reference(value))
    // Equal but distinct objects are written twice, as the package writes them.
    const twice = {a: {x: 1}, b: {x: 1}}
    expect(toYaml(twice)).toBe(reference(twice))
  })

  it('leaves multi-line strings, class instances and top-level scalars to the package', () => {
    for (const value of [{script: 'line 1\nline 2\n'}, {when: new Date(0)}, 'top', 42, [undefined, 1], {}, []])
      expect(toYaml(value)).toBe(reference(value))
  })
})
