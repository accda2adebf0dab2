import {describe, expect, it} from 'vitest'

import {applySetMembers, preserveReplicas, pruneCandidates} from '../../../src/deploy/engine.js'
import {conflictCauses, conflictManagers, isRetryable, waves} from '../../../src/kubernetes/apply.js'
import {KubeHttpError} from '../../../src/kubernetes/http.js'
import {objectDiff} from '../../../src/kubernetes/diff.js'
import {collectionPath, objectKey, objectPath, type KubeObject} from '../../../src/kubernetes/resources.js'
import {mergePatch} from '../../../src/deploy/overlays.js'

const obj = (
  kind: string,
  name: string,
  namespace?: string,
  labels: Record<string, string> = {},
  spec: unknown = {},
): KubeObject => ({apiVersion: 'v1', kind, metadata: {name, namespace, labels}, spec})

describe('apply ordering and retries', () => {
  it('applies namespaces, then quotas, then accounts and policies, then workloads, then autoscalers', () => {
    const order = waves([
      obj('HorizontalPodAutoscaler', 'a', 'n'),
      obj('Deployment', 'a', 'n'),
      obj('ServiceAccount', 'a', 'n'),
      obj('ResourceQuota', 'q', 'n'),
      obj('Namespace', 'n'),
      obj('NetworkPolicy', 'a', 'n'),
    ])
    expect(order.map((w) => w.map((o) => o.kind))).toEqual([
      ['Namespace'],
      ['ResourceQuota'],
      ['ServiceAccount', 'NetworkPolicy'],
      ['Deployment'],
      ['HorizontalPodAutoscaler'],
    ])
  })

  it('retries conflicts, throttling, server errors and dropped connections only', () => {
    const e = (code: number) => new KubeHttpError(code, {}, 'PATCH', '/x')
    expect([409, 429, 500, 503].map((c) => isRetryable(e(c)))).toEqual([true, true, true, true])
    expect([400, 403, 404, 422].map((c) => isRetryable(e(c)))).toEqual([false, false, false, false])
    expect(isRetryable(Object.assign(new Error('x'), {code: 'ECONNRESET'}))).toBe(true)
  })

  it('reads the conflicting managers from a 409', () => {
    const e = new KubeHttpError(
      409,
      {details: {causes: [{field: '.spec.replicas', message: 'conflict with "kubectl-edit" using apps/v1'}]}},
      'PATCH',
      '/x',
    )
    expect(conflictCauses(e)).toEqual(['.spec.replicas conflict with "kubectl-edit" using apps/v1'])
    expect(conflictManagers(e)).toEqual(['kubectl-edit'])
  })

  it('builds API paths', () => {
    expect(objectPath({kind: 'Deployment', metadata: {name: 'a', namespace: 'n'}})).toBe(
      '/apis/apps/v1/namespaces/n/deployments/a',
    )
    expect(objectPath({kind: 'Namespace', metadata: {name: 'n'}})).toBe('/api/v1/namespaces/n')
    expect(collectionPath('HorizontalPodAutoscaler')).toBe('/apis/autoscaling/v2/horizontalpodautoscalers')
  })
})

describe('prune scope', () => {
  const live = new Map<string, KubeObject>()
  for (const o of [
    obj('Namespace', 't1'),
    obj('Namespace', 'gone'),
    obj('Deployment', 'a', 't1', {'retailops.dev/service': 'a'}),
    obj('Deployment', 'old', 't1', {'retailops.dev/service': 'old'}),
    obj('Service', 'a', 'gone', {'retailops.dev/service': 'a'}),
  ])
    live.set(objectKey(o), o)
  const rendered = new Set([objectKey(obj('Namespace', 't1')), objectKey(obj('Deployment', 'a', 't1'))])

  it('a full deploy prunes what it no longer renders in its namespaces; a namespace it no longer renders is reported, never reached', () => {
    const r = pruneCandidates(live, rendered, {namespaces: new Set(['t1']), full: true})
    expect(r.prune.map(objectKey).sort()).toEqual(['Deployment/t1/old'])
    expect(r.orphanedNamespaces).toEqual(['gone'])
  })

  it('the applyset is the objects of this target in the namespaces it renders, old label value included', () => {
    const label = (v: string) => ({'retailops.dev/applyset': v})
    const found = new Map<string, KubeObject>()
    for (const o of [
      obj('Namespace', 'shop', undefined, label('p.prod.main')),
      obj('Namespace', 'shop-staging', undefined, label('p.prod.shop-staging.main')),
      obj('Namespace', 'removed-tenant', undefined, label('p.prod.shop-staging.main')),
      obj('Deployment', 'a', 'shop', label('p.prod.main')),
      obj('Deployment', 'a', 'shop-staging', label('p.prod.main')),
      obj('Deployment', 'b', 'shop-staging', label('p.prod.shop-staging.main')),
    ])
      found.set(objectKey(o), o)
    const members = applySetMembers(found, {
      applySet: 'p.prod.shop-staging.main',
      targets: [{namespace: 'shop-staging'}] as never,
    })
    expect([...members.keys()].sort()).toEqual([
      'Deployment/shop-staging/a',
      'Deployment/shop-staging/b',
      'Namespace//removed-tenant',
      'Namespace//shop-staging',
    ])
  })

  it('a partial deploy prunes only inside its namespaces and services', () => {
    expect(pruneCandidates(live, rendered, {namespaces: new Set(['t1']), full: false}).prune.map(objectKey)).toEqual([
      'Deployment/t1/old',
    ])
    expect(pruneCandidates(live, rendered, {namespaces: new Set(['t1']), full: false, services: ['a']}).prune).toEqual(
      [],
    )
  })
})

describe('replicas under an autoscaler', () => {
  const d = obj('Deployment', 'a', 'n', {}, {replicas: 2})
  const hpa = obj(
    'HorizontalPodAutoscaler',
    'a',
    'n',
    {},
    {scaleTargetRef: {name: 'a'}, minReplicas: 2, maxReplicas: 6},
  )
  it('keeps the live count within the new bounds, starts new Deployments at min', () => {
    const live = (n: number) => new Map([[objectKey(d), obj('Deployment', 'a', 'n', {}, {replicas: n})]])
    expect((preserveReplicas([d, hpa], new Map())[0].spec as any).replicas).toBe(2)
    expect((preserveReplicas([d, hpa], live(5))[0].spec as any).replicas).toBe(5)
    expect((preserveReplicas([d, hpa], live(9))[0].spec as any).replicas).toBe(6)
    expect((preserveReplicas([d], live(5))[0].spec as any).replicas).toBe(2)
  })
})

describe('diff and merge patch', () => {
  it('ignores server-managed fields', () => {
    const a = {...obj('ConfigMap', 'c', 'n'), data: {x: '1'}}
    const live = mergePatch(a, {
      metadata: {resourceVersion: '5', uid: 'u', managedFields: [{}], creationTimestamp: 'now'},
      status: {},
    })
    expect(objectDiff(live, a)).toBe('')
    const changed = objectDiff(live, {...a, data: {x: '2'}})
    expect(changed).toContain('-  x: "1"')
    expect(changed).toContain('+  x: "2"')
    expect(objectDiff(undefined, a)).toContain('--- /dev/null')
  })

  it('follows RFC 7386', () => {
    expect(mergePatch({a: 'b', c: {d: 'e', f: 'g'}}, {a: 'z', c: {f: null}})).toEqual({a: 'z', c: {d: 'e'}})
    expect(mergePatch({a: [1, 2]}, {a: [3]})).toEqual({a: [3]})
    expect(mergePatch({a: 'b'}, {b: {c: null}})).toEqual({a: 'b', b: {}})
  })
})
