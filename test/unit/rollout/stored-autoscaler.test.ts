import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import type {HorizontalPodAutoscaler, ScaledObject} from '../../../src/kubernetes/kinds.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {storedAutoscalers} from '../../../src/rollout/detach.js'
import {renderedAutoscaler} from '../../../src/rollout/release.js'
import {chooseAutoscaler} from '../../../src/rollout/traffic.js'
import type {RolloutState} from '../../../src/rollout/types.js'

const target = {apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart'}
const hpa = (name: string) =>
  ({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {name, namespace: 'shop'},
    spec: {scaleTargetRef: target, minReplicas: 2, maxReplicas: 8},
  }) as HorizontalPodAutoscaler
const scaledObject = (name: string) =>
  ({
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: {name, namespace: 'shop'},
    spec: {scaleTargetRef: target, minReplicaCount: 2, maxReplicaCount: 8},
  }) as ScaledObject
const state = (autoscaler?: RolloutState['spec']['autoscaler']) =>
  ({
    service: 'cart',
    namespace: 'shop',
    spec: {strategy: 'canary', router: 'replicas', ...(autoscaler === undefined ? {} : {autoscaler})},
  }) as unknown as RolloutState

describe('the autoscaler a rollout stored when its release began', () => {
  it('is the one acted on, even where the cluster would now decide otherwise (a ScaledObject targets the Deployment too)', () => {
    const live = {hpas: [hpa('cart')], scaledObjects: [scaledObject('cart-team')]}
    // Stored: the HPA deploy rendered (--scaling-provider hpa).
    const stored = state({kind: 'HorizontalPodAutoscaler', name: 'cart', decidedBy: 'flag'})
    expect(chooseAutoscaler(stored, live.hpas, live.scaledObjects)).toEqual({
      kind: 'HorizontalPodAutoscaler',
      object: live.hpas[0],
    })
    // Without a stored one (a state written before), the live choice: the ScaledObject wins.
    expect(chooseAutoscaler(state(), live.hpas, live.scaledObjects)?.kind).toBe('ScaledObject')
    // Stored none: none, whatever is live.
    expect(chooseAutoscaler(state(null), live.hpas, live.scaledObjects)).toBeUndefined()
    // Stored and gone: none (never another one in its place).
    expect(
      chooseAutoscaler(
        state({kind: 'ScaledObject', name: 'cart', decidedBy: 'cluster'}),
        live.hpas,
        live.scaledObjects,
      ),
    ).toBeUndefined()
  })

  it("gives the detached Job's Role exactly the stored autoscalers", () => {
    expect(
      storedAutoscalers([
        state({kind: 'HorizontalPodAutoscaler', name: 'cart', decidedBy: 'flag'}),
        {...state({kind: 'ScaledObject', name: 'search', decidedBy: 'cluster'}), service: 'search'},
        {...state(null), service: 'orders'},
      ]),
    ).toEqual({hpas: ['cart'], scaledObjects: ['search']})
    // A state without one: the Job's Role is derived from the live objects, as before.
    expect(storedAutoscalers([state(), state(null)])).toBeUndefined()
  })

  it('is what the render made, with what decided its kind', () => {
    const config = parseConfig(`
project: shop
registry: {url: 127.0.0.1:5000}
clusters: {main: {}}
environments: {production: {cluster: main, namespace: shop, prometheus: http://127.0.0.1:9090}}
services:
  cart:
    tier: operational
    scaling: {minReplicas: 2, maxReplicas: 8, metrics: [{name: carts, query: 'sum(rate(carts_total[1m]))', target: 5}]}
  orders: {tier: operational, scaling: {minReplicas: 2, maxReplicas: 8}}
  fixed: {tier: operational}
`)
    const objects = [scaledObject('cart'), hpa('other')] as unknown as KubeObject[]
    expect(renderedAutoscaler(objects, 'cart', config.services.cart, {})).toEqual({
      kind: 'ScaledObject',
      name: 'cart',
      decidedBy: 'cluster',
    })
    expect(
      renderedAutoscaler([hpa('cart')] as unknown as KubeObject[], 'cart', config.services.cart, {
        scalingProvider: 'hpa',
      }),
    ).toEqual({kind: 'HorizontalPodAutoscaler', name: 'cart', decidedBy: 'flag'})
    expect(
      renderedAutoscaler(
        [{...hpa('orders'), spec: {scaleTargetRef: {...target, name: 'orders'}}}] as unknown as KubeObject[],
        'orders',
        config.services.orders,
        {},
      ),
    ).toEqual({kind: 'HorizontalPodAutoscaler', name: 'orders', decidedBy: 'config'})
    expect(renderedAutoscaler([], 'fixed', config.services.fixed, {})).toBeNull()
  })
})
