import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {checkDefinition, checkDefinitions, podReferences} from '../../../src/dr/recoverability.js'
import {project} from './fixtures.js'

describe('podReferences', () => {
  it('finds images, Secrets and ConfigMaps wherever a pod spec names them', () => {
    const refs = podReferences({
      containers: [
        {
          name: 'app',
          image: 'r/app@sha256:1',
          env: [
            {valueFrom: {secretKeyRef: {name: 'db'}}},
            {valueFrom: {configMapKeyRef: {name: 'flags', optional: true}}},
          ],
          envFrom: [{configMapRef: {name: 'app-config'}}],
        },
      ],
      initContainers: [{name: 'migrate', image: 'r/migrate:1'}],
      volumes: [
        {secret: {secretName: 'tls'}},
        {projected: {sources: [{configMap: {name: 'ca'}}, {secret: {name: 'token', optional: true}}]}},
      ],
      imagePullSecrets: [{name: 'pull'}],
    })
    expect(refs.images).toEqual(['r/app@sha256:1', 'r/migrate:1'])
    expect(Object.fromEntries(refs.secrets)).toEqual({db: false, tls: false, token: true, pull: false})
    expect(Object.fromEntries(refs.configMaps)).toEqual({flags: true, 'app-config': false, ca: false})
  })
})

describe('topic and search-index definitions', () => {
  it('accept a topic with partitions and an index with mappings or settings', () => {
    expect(
      checkDefinition('topic', 'order-events', {name: 'order-events', partitions: 6, replicationFactor: 3}),
    ).toEqual({ok: true, detail: '6 partitions, replication 3'})
    expect(checkDefinition('topic', 't', {partitions: 0}).ok).toBe(false)
    expect(checkDefinition('topic', 't', {name: 'other', partitions: 1}).detail).toBe('defines "other", not "t"')
    expect(checkDefinition('searchIndex', 'orders', {mappings: {properties: {id: {}, total: {}}}})).toEqual({
      ok: true,
      detail: '2 mapped fields',
    })
    expect(checkDefinition('searchIndex', 'orders', {settings: {shards: 1}}).ok).toBe(true)
    expect(checkDefinition('searchIndex', 'orders', []).ok).toBe(false)
  })
  it('are read from definitions/ beside retailops.yaml', async () => {
    const p = project()
    mkdirSync(path.join(p.dir, 'definitions/topics'), {recursive: true})
    writeFileSync(path.join(p.dir, 'definitions/topics/order-events.yaml'), 'partitions: 3\n')
    writeFileSync(path.join(p.dir, 'definitions/topics/broken.json'), '{')
    const checks = await checkDefinitions(p, 'orders', 'topic', ['order-events', 'missing', 'broken'])
    expect(checks.map((c) => [c.subject, c.status])).toEqual([
      ['order-events', 'pass'],
      ['missing', 'fail'],
      ['broken', 'fail'],
    ])
    expect(checks[1].detail).toMatch(/no definition at definitions\/topics\/missing.\{yaml,yml,json\}/)
  })
})
