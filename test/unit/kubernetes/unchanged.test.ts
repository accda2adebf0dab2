import {describe, expect, it} from 'vitest'

import {
  APPLIED_HASH,
  contains,
  intentHash,
  stable,
  stableJson,
  unchangedSince,
  withIntentHash,
} from '../../../src/kubernetes/unchanged.js'
import {renderManifests} from '../../../src/deploy/render.js'
import {digestImages, project} from './fixtures.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {mergePatch} from '../../../src/deploy/overlays.js'

const intent: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: {name: 'a', namespace: 'n', labels: {x: '1'}},
  spec: {ports: [{name: 'http', port: 8080}], selector: {app: 'a'}},
}

describe('skipping unchanged objects', () => {
  const hashed = withIntentHash(intent)
  // What the server returns: our fields, plus defaults and server metadata.
  const live = mergePatch<KubeObject>(hashed, {
    metadata: {resourceVersion: '7', uid: 'u', managedFields: [{}]},
    spec: {
      clusterIP: '10.0.0.1',
      ports: [{name: 'http', port: 8080, protocol: 'TCP', targetPort: 8080}],
      type: 'ClusterIP',
    },
  })

  it('skips when the intent hash matches and every intended value is live', () => {
    expect(unchangedSince(live, hashed)).toBe(true)
  })

  it('applies when the intent changed, including a field it stopped setting', () => {
    const {x: _x, ...fewer} = intent.metadata.labels!
    expect(unchangedSince(live, withIntentHash({...intent, metadata: {...intent.metadata, labels: fewer}}))).toBe(false)
    expect(intentHash(intent)).not.toBe(intentHash({...intent, metadata: {...intent.metadata, labels: fewer}}))
  })

  it('applies when someone changed a value the intent sets (drift)', () => {
    expect(unchangedSince(mergePatch(live, {spec: {selector: {app: 'b'}}}), hashed)).toBe(false)
    expect(unchangedSince(mergePatch(live, {metadata: {labels: {x: null}}}), hashed)).toBe(false)
  })

  it('applies objects that do not exist or were never hashed', () => {
    expect(unchangedSince(undefined, hashed)).toBe(false)
    expect(unchangedSince(mergePatch(live, {metadata: {annotations: {[APPLIED_HASH]: null}}}), hashed)).toBe(false)
  })

  it('the hash ignores its own annotation and key order', () => {
    expect(intentHash(hashed)).toBe(intentHash(intent))
    expect(intentHash({kind: 'Service', apiVersion: 'v1', spec: intent.spec, metadata: intent.metadata})).toBe(
      intentHash(intent),
    )
  })

  it('compares lists item by item', () => {
    expect(contains({a: [1, 2]}, {a: [1, 2]})).toBe(true)
    expect(contains({a: [1, 2, 3]}, {a: [1, 2]})).toBe(false)
    expect(contains({a: 0}, {a: 0})).toBe(true)
    expect(contains({}, {a: 0})).toBe(false)
  })
})

describe('stableJson', () => {
  it('writes exactly what JSON.stringify of the sorted copy wrote, so applied hashes stay the same', () => {
    const p = project()
    const objects = renderManifests({project: p, images: digestImages(p)}).targets.flatMap((t) => t.objects)
    for (const o of objects) expect(stableJson(o)).toBe(JSON.stringify(stable(o)))
    const edge = {
      b: [1, undefined, () => 1, null, Number.NaN, {z: undefined, y: 'x'}],
      a: {'10': 1, '9': 2, '01': 3, x: 4, '4294967295': 5, '4294967294': 6},
      c: undefined,
      d: new Date(0),
      e: 'quote " and \u2028',
      f: -0,
      g: [[], {}],
    }
    expect(stableJson(edge)).toBe(JSON.stringify(stable(edge)))
    for (const v of [1, 'x', null, true, undefined, [undefined]]) expect(stableJson(v)).toBe(JSON.stringify(stable(v)))
  })
})
