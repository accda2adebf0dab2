import {describe, expect, it} from 'vitest'

import {placementPolicy} from '../../../src/config/placement.js'
import {applyOverlays} from '../../../src/deploy/overlays.js'
import {renderManifests} from '../../../src/deploy/render.js'
import {LABEL} from '../../../src/kubernetes/labels.js'
import {checkPolicy} from '../../../src/kubernetes/policy.js'
import {isSpotNode, nodePool} from '../../../src/kubernetes/nodes.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {digestImages, project} from './fixtures.js'

const config = (services: string) => `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
environments:
  production: {cluster: default, namespace: shop, router: replicas}
nodePools:
  pools:
    general: {}
    spot: {spot: true, taints: [{key: retailops.dev/spot, value: "true", effect: NoSchedule}]}
services:
${services}`

function render(services: string) {
  const p = project(config(services))
  const objects = renderManifests({project: p, images: digestImages(p)}).targets.flatMap((t) => t.objects)
  const policy = (objs: KubeObject[] = objects) =>
    checkPolicy(objs, {signingRequired: false, tierLabel: LABEL.tier, placement: placementPolicy(p.config)})
  return {p, objects, policy}
}

const podSpec = (objects: KubeObject[], name: string) =>
  (objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name) as KubeObject & {spec: any}).spec.template
    .spec

describe('rendered placement', () => {
  it('puts the placement on the Deployment pod template beside the rest of the pod spec', () => {
    const {objects} = render(
      '  checkout: {tier: revenue-critical}\n  indexer: {tier: tolerant, placement: {spot: required, pools: [spot]}}\n',
    )
    const checkout = podSpec(objects, 'checkout')
    expect(checkout.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      {matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'NotIn', values: ['spot']}]},
    ])
    expect(checkout.tolerations).toBeUndefined()
    expect(checkout.topologySpreadConstraints[0]).toMatchObject({
      whenUnsatisfiable: 'DoNotSchedule',
      labelSelector: {matchLabels: {'app.kubernetes.io/name': 'checkout', 'app.kubernetes.io/instance': 'checkout'}},
    })
    const indexer = podSpec(objects, 'indexer')
    expect(indexer.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      {
        matchExpressions: [
          {key: 'retailops.dev/pool', operator: 'In', values: ['spot']},
          {key: 'retailops.dev/capacity-type', operator: 'In', values: ['spot']},
        ],
      },
    ])
    expect(indexer.tolerations).toEqual([
      {key: 'retailops.dev/spot', operator: 'Equal', value: 'true', effect: 'NoSchedule'},
    ])
    expect(indexer.topologySpreadConstraints[0].whenUnsatisfiable).toBe('ScheduleAnyway')
  })
})

describe('policy: revenue-critical on spot only (exit 10 in deploy)', () => {
  it('refuses spot: required on a revenue-critical service, naming the service, the key and the fix', () => {
    const {policy} = render('  checkout: {tier: revenue-critical, placement: {spot: required}}\n')
    const report = policy()
    expect(report.ok).toBe(false)
    const finding = report.findings.find((f) => f.rule === 'spot-placement')!
    expect(finding).toMatchObject({severity: 'error', object: 'Deployment shop/checkout'})
    expect(finding.message).toContain('services.checkout.placement.spot is required')
    expect(finding.message).toContain('take checkout down whole')
    expect(finding.fix).toContain('Set services.checkout.placement.spot to preferred or allowed')
  })

  it('refuses a revenue-critical service whose own pools are all spot pools', () => {
    const {policy} = render('  checkout: {tier: revenue-critical, placement: {spot: allowed, pools: [spot]}}\n')
    const finding = policy().findings.find((f) => f.rule === 'spot-placement')!
    expect(finding.message).toContain('services.checkout.placement.pools lists only spot pools (spot)')
  })

  it('lets a revenue-critical service use spot beside on-demand when it says so itself', () => {
    for (const placement of ['{spot: preferred}', '{spot: allowed, pools: [general, spot]}']) {
      const {policy} = render(`  checkout: {tier: revenue-critical, placement: ${placement}}\n`)
      expect(policy().findings.filter((f) => f.rule === 'spot-placement')).toEqual([])
    }
  })

  it('lets a tolerant service require spot', () => {
    const {policy} = render('  indexer: {tier: tolerant, placement: {spot: required}}\n')
    expect(policy().findings.filter((f) => f.rule === 'spot-placement')).toEqual([])
  })

  it('catches an overlay that pins a revenue-critical Deployment to spot nodes', () => {
    const {objects, policy} = render('  checkout: {tier: revenue-critical}\n')
    const {objects: patched} = applyOverlays(
      objects,
      [
        {
          kind: 'Deployment',
          name: 'checkout',
          patch: {spec: {template: {spec: {nodeSelector: {'retailops.dev/capacity-type': 'spot'}}}}},
        },
      ],
      'overlays/checkout.yaml',
    )
    const finding = policy(patched).findings.find((f) => f.rule === 'spot-placement')!
    expect(finding.message).toContain('its nodeSelector requires retailops.dev/capacity-type=spot')
  })
})

describe('nodes read by nodePools (cost and capacity)', () => {
  const nodePools = project(
    config('  cart: {tier: operational}\n').replace(
      'nodePools:\n  pools:\n',
      'nodePools:\n  poolLabel: team.example/pool\n  spotLabel: {key: cloud.google.com/gke-spot, value: "true"}\n  pools:\n    batch: {spot: true, labels: {cloud.google.com/gke-nodepool: batch-pool}}\n',
    ),
  ).config.nodePools

  it("names the pool by a declared pool's labels, then the configured pool label, then the well-known ones", () => {
    expect(nodePool({'cloud.google.com/gke-nodepool': 'batch-pool'}, 'default', nodePools)).toBe('batch')
    expect(nodePool({'team.example/pool': 'general', 'retailops.dev/pool': 'x'}, 'default', nodePools)).toBe('general')
    expect(nodePool({'retailops.dev/pool': 'x'}, 'default', nodePools)).toBe('x')
  })

  it('marks spot by the configured spot label, a declared spot pool, or the well-known labels', () => {
    expect(isSpotNode({'cloud.google.com/gke-spot': 'true'}, nodePools)).toBe(true)
    expect(isSpotNode({'cloud.google.com/gke-nodepool': 'batch-pool'}, nodePools)).toBe(true)
    expect(isSpotNode({'karpenter.sh/capacity-type': 'spot'}, nodePools)).toBe(true)
    expect(isSpotNode({'team.example/pool': 'general'}, nodePools)).toBe(false)
  })
})
