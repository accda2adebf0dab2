import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {
  headroomPool,
  nodePoolsOf,
  onlySpot,
  placementPodSpec,
  resolvePlacement,
  workloadPlacement,
} from '../../../src/config/placement.js'
import type {RetailOpsConfig} from '../../../src/config/schema.js'
import {ConfigError, ExitCode} from '../../../src/errors/index.js'

const HEAD = 'project: shop\nregistry: {url: 127.0.0.1:5000, insecure: true}\n'
/** The sandbox's pools (scripts/sandbox/nodes.sh), as a project describes them. */
const POOLS = `nodePools:
  pools:
    general: {}
    memory-optimised: {}
    spot:
      spot: true
      taints: [{key: retailops.dev/spot, value: "true", effect: NoSchedule}]
`

function config(services: string, extra = ''): RetailOpsConfig {
  return parseConfig(`${HEAD}${POOLS}${extra}services:\n${services}`, 'retailops.yaml')
}

function refused(text: string): ConfigError {
  try {
    parseConfig(`${HEAD}${text}`, 'retailops.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected the configuration to be refused')
}

const SELECTOR = {'app.kubernetes.io/name': 'svc'}
const spec = (c: RetailOpsConfig, name: string) => workloadPlacement(c, c.services[name], `services.${name}`, SELECTOR)
const SPOT_TOLERATION = {key: 'retailops.dev/spot', operator: 'Equal', value: 'true', effect: 'NoSchedule'}

describe('resolvePlacement', () => {
  it('takes the service, then the tier, then the built-in default, key by key', () => {
    const c = config(
      '  search: {tier: tolerant, placement: {spot: preferred}}\n  feed: {tier: tolerant}\n',
      'tiers:\n  revenue-critical: {rto: 15m, rpo: 5m, minReplicas: 2}\n  operational: {rto: 1h, rpo: 15m, minReplicas: 2}\n  tolerant: {rto: 4h, rpo: 24h, minReplicas: 1, placement: {pools: [general, spot], zoneSpread: {maxSkew: 2}}}\n',
    )
    expect(resolvePlacement(c, c.services.search, 'services.search')).toEqual({
      key: 'services.search',
      tier: 'tolerant',
      pools: ['general', 'spot'],
      poolsSource: 'tier',
      spot: 'preferred',
      spotSource: 'workload',
      zoneSpread: {maxSkew: 2, whenUnsatisfiable: 'ScheduleAnyway'},
    })
    expect(resolvePlacement(c, c.services.feed, 'services.feed')).toMatchObject({
      spot: 'allowed',
      spotSource: 'default',
    })
  })

  it('gives revenue-critical services spot never and a DoNotSchedule zone spread by default', () => {
    const c = config('  checkout: {tier: revenue-critical}\n')
    expect(resolvePlacement(c, c.services.checkout, 'services.checkout')).toMatchObject({
      spot: 'never',
      pools: undefined,
      zoneSpread: {maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule'},
    })
  })

  it('never inherits a spot policy for a revenue-critical service, only takes its own', () => {
    const c = config('  checkout: {tier: revenue-critical, placement: {spot: allowed}}\n')
    expect(resolvePlacement(c, c.services.checkout, 'services.checkout')).toMatchObject({
      spot: 'allowed',
      spotSource: 'workload',
    })
  })
})

describe('placementPodSpec', () => {
  it('spot never: a required NotIn term on the spot label, no spot toleration', () => {
    const c = config('  checkout: {tier: revenue-critical}\n')
    expect(spec(c, 'checkout')).toEqual({
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'NotIn', values: ['spot']}]},
            ],
          },
        },
      },
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: {matchLabels: SELECTOR},
        },
      ],
    })
  })

  it('spot required: the spot label required and the spot pools tolerated', () => {
    const c = config('  indexer: {tier: tolerant, placement: {spot: required}}\n')
    const s = spec(c, 'indexer')
    expect(s.affinity?.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      {matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'In', values: ['spot']}]},
    ])
    expect(s.tolerations).toEqual([SPOT_TOLERATION])
  })

  it('spot preferred: a weight-100 preference, the pool list required, taints of the listed pools only', () => {
    const c = config('  search: {tier: tolerant, placement: {spot: preferred, pools: [general, spot]}}\n')
    const s = spec(c, 'search')
    expect(s.affinity?.nodeAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {matchExpressions: [{key: 'retailops.dev/pool', operator: 'In', values: ['general', 'spot']}]},
        ],
      },
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          preference: {matchExpressions: [{key: 'retailops.dev/capacity-type', operator: 'In', values: ['spot']}]},
        },
      ],
    })
    expect(s.tolerations).toEqual([SPOT_TOLERATION])
  })

  it('spot allowed without pools tolerates the spot pools and requires nothing', () => {
    const c = config('  feed: {tier: tolerant}\n')
    const s = spec(c, 'feed')
    expect(s.affinity).toBeUndefined()
    expect(s.tolerations).toEqual([SPOT_TOLERATION])
  })

  it('tolerates a tainted on-demand pool only for workloads that list it', () => {
    const c = parseConfig(
      `${HEAD}nodePools:
  poolLabel: karpenter.sh/nodepool
  spotLabel: {key: karpenter.sh/capacity-type, value: spot}
  pools:
    general: {}
    analytics: {taints: [{key: dedicated, effect: NoSchedule}]}
    gke: {labels: {cloud.google.com/gke-nodepool: batch}}
services:
  report: {tier: operational, placement: {pools: [analytics, gke]}}
  cart: {tier: operational}
`,
    )
    const report = spec(c, 'report')
    expect(report.tolerations).toEqual([{key: 'dedicated', operator: 'Exists', effect: 'NoSchedule'}])
    const notSpot = {key: 'karpenter.sh/capacity-type', operator: 'NotIn', values: ['spot']}
    expect(report.affinity?.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      {matchExpressions: [{key: 'karpenter.sh/nodepool', operator: 'In', values: ['analytics']}, notSpot]},
      {matchExpressions: [{key: 'cloud.google.com/gke-nodepool', operator: 'In', values: ['batch']}, notSpot]},
    ])
    expect(spec(c, 'cart').tolerations).toBeUndefined()
  })

  it('renders any pod template: the zone spread selects the labels it is given', () => {
    const c = config(
      '  feed: {tier: tolerant, placement: {zoneSpread: {maxSkew: 3, whenUnsatisfiable: DoNotSchedule}}}\n',
    )
    const p = resolvePlacement(c, {tier: 'tolerant', placement: c.services.feed.placement}, 'jobs.sync')
    expect(placementPodSpec(p, nodePoolsOf(c), {job: 'sync'}).topologySpreadConstraints).toEqual([
      {
        maxSkew: 3,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'DoNotSchedule',
        labelSelector: {matchLabels: {job: 'sync'}},
      },
    ])
  })
})

describe('onlySpot and headroomPool', () => {
  const c = config(
    [
      '  a: {tier: tolerant, placement: {spot: required}}',
      '  b: {tier: tolerant, placement: {pools: [spot]}}',
      '  c: {tier: tolerant, placement: {pools: [general, spot], spot: preferred}}',
      '  d: {tier: operational, placement: {pools: [memory-optimised, general]}}',
      '  e: {tier: operational}',
      '',
    ].join('\n'),
  )
  const r = (s: string) => resolvePlacement(c, c.services[s], `services.${s}`)
  it('only spot: required, or every pool a spot pool', () => {
    expect(['a', 'b', 'c', 'd', 'e'].map((s) => onlySpot(r(s), nodePoolsOf(c)))).toEqual([
      true,
      true,
      false,
      false,
      false,
    ])
  })
  it('headroom goes to the spot pool for spot work, the first on-demand pool otherwise, undefined when unsaid', () => {
    expect(['a', 'b', 'c', 'd', 'e'].map((s) => headroomPool(r(s), nodePoolsOf(c)))).toEqual([
      'spot',
      'spot',
      'spot',
      'memory-optimised',
      undefined,
    ])
  })
})

describe('placement validation (exit 3)', () => {
  it('refuses an unknown pool naming the key, the known pools and the fix', () => {
    const e = refused(`${POOLS}services:\n  cart: {tier: operational, placement: {pools: [general, gpu]}}\n`)
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    expect(e.issues.map((i) => i.path)).toEqual(['services.cart.placement.pools[1]'])
    expect(e.issues[0].message).toContain(
      '"gpu" is not a pool of nodePools.pools (known: general, memory-optimised, spot)',
    )
  })

  it('refuses pools when nodePools declares none', () => {
    const e = refused(`services:\n  cart: {tier: operational, placement: {pools: [general]}}\n`)
    expect(e.issues[0].message).toContain('none declared')
  })

  it('refuses an unknown pool in a tier default', () => {
    const e = refused(
      `${POOLS}tiers:\n  revenue-critical: {rto: 15m, rpo: 5m, minReplicas: 2}\n  operational: {rto: 1h, rpo: 15m, minReplicas: 2}\n  tolerant: {rto: 4h, rpo: 24h, minReplicas: 1, placement: {pools: [batch]}}\nservices:\n  feed: {tier: tolerant}\n`,
    )
    expect(e.issues.map((i) => i.path)).toEqual(['tiers.tolerant.placement.pools[0]'])
  })

  it('refuses spot: required with no spot pool in the list', () => {
    const e = refused(`${POOLS}services:\n  idx: {tier: tolerant, placement: {spot: required, pools: [general]}}\n`)
    expect(e.issues.map((i) => i.path)).toEqual(['services.idx.placement.spot'])
    expect(e.issues[0].message).toContain('none of its pools (general, services.idx.placement.pools) is a spot pool')
  })

  it('refuses spot: preferred when no spot pool is declared at all', () => {
    const e = refused(`services:\n  idx: {tier: tolerant, placement: {spot: preferred}}\n`)
    expect(e.issues[0].message).toContain('nodePools.pools declares no spot pool')
  })

  it('refuses spot: never with only spot pools, and with a spot pool among others', () => {
    const only = refused(`${POOLS}services:\n  cart: {tier: operational, placement: {pools: [spot]}}\n`)
    expect(only.issues.map((i) => i.path)).toEqual(['services.cart.placement.pools'])
    expect(only.issues[0].message).toContain('could run nowhere')
    const some = refused(
      `${POOLS}services:\n  cart: {tier: operational, placement: {spot: never, pools: [general, spot]}}\n`,
    )
    expect(some.issues[0].message).toContain('lists spot pool spot')
  })

  it('refuses spot on the revenue-critical tier: it must be said on each service', () => {
    const e = refused(
      `${POOLS}tiers:\n  revenue-critical: {rto: 15m, rpo: 5m, minReplicas: 2, placement: {spot: allowed}}\n  operational: {rto: 1h, rpo: 15m, minReplicas: 2}\n  tolerant: {rto: 4h, rpo: 24h, minReplicas: 1}\nservices:\n  checkout: {tier: revenue-critical}\n`,
    )
    expect(e.issues.map((i) => i.path)).toEqual(['tiers.revenue-critical.placement.spot'])
    expect(e.issues[0].message).toContain('set services.<name>.placement.spot on each service')
  })

  it.each([
    ['0', 'maxSkew must be a whole number of pods, 1 or more'],
    ['1.5', 'maxSkew must be a whole number of pods, 1 or more'],
  ])('refuses maxSkew %s', (skew, words) => {
    const e = refused(`services:\n  cart: {tier: operational, placement: {zoneSpread: {maxSkew: ${skew}}}}\n`)
    expect(e.issues.map((i) => i.path)).toEqual(['services.cart.placement.zoneSpread.maxSkew'])
    expect(e.issues[0].message).toContain(words)
  })

  it('refuses an unknown spot policy and a bad whenUnsatisfiable', () => {
    const e = refused(
      `services:\n  cart: {tier: operational, placement: {spot: sometimes, zoneSpread: {whenUnsatisfiable: Maybe}}}\n`,
    )
    expect(e.issues.map((i) => i.path).sort()).toEqual([
      'services.cart.placement.spot',
      'services.cart.placement.zoneSpread.whenUnsatisfiable',
    ])
  })

  it('accepts a revenue-critical service asking for spot itself (policy judges it, not validation)', () => {
    expect(
      config('  checkout: {tier: revenue-critical, placement: {spot: required}}\n').services.checkout.placement,
    ).toEqual({
      spot: 'required',
    })
  })
})
