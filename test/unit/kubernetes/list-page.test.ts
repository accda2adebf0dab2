import {describe, expect, it} from 'vitest'

import {forEachListItem} from '../../../src/kubernetes/list-page.js'

const read = (text: string) => {
  const items: unknown[] = []
  const meta = forEachListItem(Buffer.from(text, 'utf8'), (item) => items.push(item))
  return {items, meta}
}

describe('forEachListItem', () => {
  it('hands over each item of a list page, parsed, and answers the metadata with the continue token', () => {
    const page = {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: {resourceVersion: '42', continue: 'eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ', remainingItemCount: 3},
      items: [
        {metadata: {name: 'a', labels: {x: '}]{["'}}, spec: {containers: [{name: 'app', args: ['a\\"b', 'c]']}]}},
        {metadata: {name: 'b'}, status: {phase: 'Running', n: -1.5e3, ok: true, none: null}},
      ],
    }
    const {items, meta} = read(JSON.stringify(page))
    expect(items).toEqual(page.items)
    expect(meta).toEqual({kind: 'PodList', apiVersion: 'v1', metadata: page.metadata, items: null})
  })

  it('reads pretty-printed pages, items before metadata, and an empty or null list', () => {
    const page = {items: [{a: [1, {b: 'x'}]}, 2, 'three', [4]], metadata: {continue: ''}, kind: 'List'}
    const {items, meta} = read(JSON.stringify(page, null, 2))
    expect(items).toEqual(page.items)
    expect(meta.metadata).toEqual({continue: ''})
    expect(read('{"items":[],"metadata":{}}').items).toEqual([])
    expect(read('{"items":null,"metadata":{"continue":"t"}}')).toEqual({
      items: [],
      meta: {items: null, metadata: {continue: 't'}},
    })
  })

  it('keeps multi-byte characters and escapes inside strings intact', () => {
    const page = {items: [{name: 'café ✓ 🚀', note: 'quote " backslash \\ brace } bracket ]', esc: '\u0001\n\t'}]}
    expect(read(JSON.stringify(page)).items).toEqual(page.items)
  })

  it('gives the same items as JSON.parse for generated pages', () => {
    for (let n = 0; n < 50; n++) {
      const items = Array.from({length: n}, (_, i) => ({
        metadata: {name: `pod-${i}`, namespace: `ns-${i % 3}`, labels: {[`k${i}`]: `v{${i}]`}},
        spec: {
          nodeName: i % 2 ? `node-${i}` : undefined,
          containers: [{name: 'c', resources: {requests: {cpu: `${i}m`}}}],
        },
        list: [[], {}, [[i]], 'x,y', i / 7],
      }))
      const text = JSON.stringify({kind: 'PodList', metadata: {continue: n % 2 ? `t${n}` : undefined}, items})
      const got = read(text)
      expect(got.items).toEqual(JSON.parse(text).items)
      expect(got.meta.metadata?.continue).toBe(n % 2 ? `t${n}` : undefined)
    }
  })

  it('fails on a truncated page rather than answering part of it', () => {
    const text = JSON.stringify({metadata: {continue: 'x'}, items: [{a: 1}, {b: 2}]})
    expect(() => read(text.slice(0, -5))).toThrow(SyntaxError)
    expect(() => read('{"items":[{"a":"unterminated}]}')).toThrow(SyntaxError)
  })
})
