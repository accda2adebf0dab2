import {describe, expect, it} from 'vitest'

import {renderManifests} from '../../../src/deploy/render.js'
import {mergePatch} from '../../../src/deploy/overlays.js'
import {checkPolicy, selectorMatches} from '../../../src/kubernetes/policy.js'
import {containerImages} from '../../../src/kubernetes/pods.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {DIGEST, digestImages, project} from './fixtures.js'

const p = project()
const base = () => renderManifests({project: p, images: digestImages(p), tenant: 'initech'}).targets[0].objects
const patch = (objects: KubeObject[], kind: string, name: string, change: unknown) =>
  objects.map((o) => (o.kind === kind && o.metadata.name === name ? mergePatch(o, change) : o))
const container = (c: Record<string, unknown>) => ({spec: {template: {spec: {containers: [c]}}}})
const rules = (objects: KubeObject[], options = {}) =>
  checkPolicy(objects, options).findings.map((f) => `${f.severity} ${f.rule} ${f.object}`)

describe('checkPolicy', () => {
  it('passes the rendered defaults', () => {
    expect(checkPolicy(base())).toMatchObject({ok: true, errors: 0, warnings: 0})
  })

  it('refuses privileged, root and escalating containers, naming the object and the fix', () => {
    const d = (base().find((o) => o.kind === 'Deployment' && o.metadata.name === 'payments') as any).spec.template.spec
      .containers[0]
    const objects = patch(
      base(),
      'Deployment',
      'payments',
      container({
        ...d,
        securityContext: {privileged: true, runAsUser: 0, runAsNonRoot: false, capabilities: {add: ['SYS_ADMIN']}},
      }),
    )
    const report = checkPolicy(objects)
    expect(report.ok).toBe(false)
    expect(rules(objects)).toEqual(
      expect.arrayContaining([
        'error privileged Deployment shop-initech/payments',
        'error run-as-root Deployment shop-initech/payments',
        'error privilege-escalation Deployment shop-initech/payments',
        'error capabilities Deployment shop-initech/payments',
        'warning read-only-root Deployment shop-initech/payments',
      ]),
    )
    expect(report.findings.find((f) => f.rule === 'privileged')!.fix).toMatch(/privileged/)
  })

  it('refuses missing limits, requests and probes', () => {
    const d = (base().find((o) => o.kind === 'Deployment' && o.metadata.name === 'catalog') as any).spec.template.spec
      .containers[0]
    const {readinessProbe: _r, livenessProbe: _l, ...rest} = d
    const objects = patch(base(), 'Deployment', 'catalog', container({...rest, resources: {requests: {cpu: '100m'}}}))
    expect(rules(objects)).toEqual(
      expect.arrayContaining([
        'error limits Deployment shop-initech/catalog',
        'error requests Deployment shop-initech/catalog',
        'error probes Deployment shop-initech/catalog',
      ]),
    )
    expect(
      checkPolicy(objects)
        .findings.filter((f) => f.rule === 'probes')
        .map((f) => f.message),
    ).toEqual(['container "catalog" has no readiness probe', 'container "catalog" has no liveness probe'])
  })

  it('refuses a tag instead of a digest', () => {
    const d = (base().find((o) => o.kind === 'Deployment' && o.metadata.name === 'catalog') as any).spec.template.spec
      .containers[0]
    const objects = patch(
      base(),
      'Deployment',
      'catalog',
      container({...d, image: '127.0.0.1:5000/shop/catalog:latest'}),
    )
    const f = checkPolicy(objects).findings.find((x) => x.rule === 'image-digest')!
    expect(f).toMatchObject({severity: 'error', object: 'Deployment shop-initech/catalog'})
    expect(f.fix).toMatch(/retailops push/)
  })

  const allVerified = (objects: KubeObject[]) =>
    Object.fromEntries(containerImages(objects).map((c) => [c.image, {image: c.image, status: 'verified' as const}]))

  it('refuses unsigned images when signing is required, warns when skipped', () => {
    const image = `127.0.0.1:5000/shop/catalog@${DIGEST}`
    const with_ = (status: 'unsigned' | 'skipped') => ({...allVerified(base()), [image]: {image, status}})
    const unsigned = checkPolicy(base(), {signatures: with_('unsigned'), signingRequired: true})
    expect(unsigned.findings.filter((f) => f.rule === 'signature')).toEqual([
      expect.objectContaining({severity: 'error', object: 'Deployment shop-initech/catalog'}),
    ])
    const optional = checkPolicy(base(), {signatures: with_('unsigned'), signingRequired: false})
    expect(optional.findings.find((f) => f.rule === 'signature')?.severity).toBe('warning')
    const skipped = checkPolicy(base(), {signatures: with_('skipped'), signingRequired: true})
    expect(skipped.ok).toBe(true)
    expect(skipped.findings.find((f) => f.rule === 'signature')?.message).toMatch(/SKIPPED/)
    expect(checkPolicy(base(), {signatures: allVerified(base()), signingRequired: true}).ok).toBe(true)
  })

  it('warns when a verified signature names no repository (cosign v3 bundles), and passes', () => {
    const image = `127.0.0.1:5000/shop/catalog@${DIGEST}`
    const report = checkPolicy(base(), {
      signatures: {...allVerified(base()), [image]: {image, status: 'verified', repositoryBound: false}},
      signingRequired: true,
    })
    expect(report.ok).toBe(true)
    expect(report.findings.filter((f) => f.rule === 'signature').map((f) => [f.severity, f.object])).toEqual([
      ['warning', 'Deployment shop-initech/catalog'],
    ])
    expect(report.findings.find((f) => f.rule === 'signature')!.message).toMatch(/names no repository/)
  })

  it('refuses a digest it has no verification result for, once verification ran', () => {
    const image = `127.0.0.1:5000/shop/catalog@${DIGEST}`
    const {[image]: _left, ...others} = allVerified(base())
    const report = checkPolicy(base(), {signatures: others, signingRequired: true})
    expect(report.ok).toBe(false)
    expect(report.findings.filter((f) => f.rule === 'signature').map((f) => [f.severity, f.object, f.message])).toEqual(
      [
        [
          'error',
          'Deployment shop-initech/catalog',
          `container "catalog": image ${image} has no signature verification result (it was never verified)`,
        ],
      ],
    )
    // render and diff do not verify (no `signatures`): no signature finding at all.
    expect(checkPolicy(base()).findings.filter((f) => f.rule === 'signature')).toEqual([])
  })

  it('checks the images of init containers, sidecars and ephemeral containers, and of Jobs and CronJobs', () => {
    const sidecar = `127.0.0.1:5000/shop/sidecar@sha256:${'b'.repeat(64)}`
    const init = `127.0.0.1:5000/shop/migrate@sha256:${'c'.repeat(64)}`
    const d = (base().find((o) => o.kind === 'Deployment' && o.metadata.name === 'catalog') as any).spec.template.spec
    const objects = patch(base(), 'Deployment', 'catalog', {
      spec: {
        template: {
          spec: {
            initContainers: [{...d.containers[0], name: 'migrate', image: init}],
            containers: [d.containers[0], {...d.containers[0], name: 'proxy', image: sidecar}],
            ephemeralContainers: [{name: 'debug', image: 'busybox:latest'}],
          },
        },
      },
    })
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {name: 'seed', namespace: 'shop-initech'},
      spec: {template: {spec: {containers: [{name: 'seed', image: 'seed:1'}]}}},
    }
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: {name: 'nightly', namespace: 'shop-initech'},
      spec: {
        schedule: '@daily',
        jobTemplate: {
          spec: {
            template: {
              spec: {initContainers: [{name: 'fetch', image: init}], containers: [{name: 'run', image: sidecar}]},
            },
          },
        },
      },
    }
    const all = [...objects, job, cron] as KubeObject[]
    expect(
      containerImages(all)
        .filter((c) => c.object.kind !== 'Deployment' || c.object.metadata.name === 'catalog')
        .map((c) => `${c.object.kind}/${c.object.metadata.name} ${c.field} ${c.container}`),
    ).toEqual([
      'Deployment/catalog containers catalog',
      'Deployment/catalog containers proxy',
      'Deployment/catalog initContainers migrate',
      'Deployment/catalog ephemeralContainers debug',
      'Job/seed containers seed',
      'CronJob/nightly containers run',
      'CronJob/nightly initContainers fetch',
    ])
    const signatures = {...allVerified(base()), [sidecar]: {image: sidecar, status: 'unsigned' as const}}
    const report = checkPolicy(all, {signatures, signingRequired: true})
    const lines = report.findings
      .filter((f) => f.rule === 'signature' || f.rule === 'image-digest')
      .map((f) => `${f.severity} ${f.rule} ${f.objects.join(',')}: ${f.message.split(':')[0]}`)
    expect(lines).toEqual([
      'error signature Deployment shop-initech/catalog: container "proxy"',
      'error signature Deployment shop-initech/catalog: init container "migrate"',
      'error image-digest Deployment shop-initech/catalog: ephemeral container "debug" uses image "busybox',
      'error image-digest Job shop-initech/seed: container "seed" uses image "seed',
      'error signature CronJob shop-initech/nightly: container "run"',
      'error signature CronJob shop-initech/nightly: init container "fetch"',
    ])
    expect(report.findings.find((f) => f.message.startsWith('init container "migrate"'))!.message).toMatch(
      /no signature verification result/,
    )
    expect(report.findings.find((f) => f.rule === 'image-digest')!.message).toMatch(
      /a tag cannot be verified, and signing is required/,
    )
  })

  it('requires two replicas and a disruption budget for revenue-critical services', () => {
    const objects = base()
      .filter((o) => !(o.kind === 'PodDisruptionBudget' && o.metadata.name === 'payments'))
      .map((o) =>
        o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === 'payments'
          ? mergePatch(o, {spec: {minReplicas: 1}})
          : o,
      )
    expect(rules(objects)).toEqual([
      'error replicas Deployment shop-initech/payments',
      'error disruption-budget Deployment shop-initech/payments',
    ])
    // an operational service only gets a warning
    expect(rules(base().filter((o) => !(o.kind === 'PodDisruptionBudget' && o.metadata.name === 'catalog')))).toEqual([
      'warning disruption-budget Deployment shop-initech/catalog',
    ])
  })

  it('refuses host networking and hostPath, and pods no NetworkPolicy selects', () => {
    const objects = patch(base(), 'Deployment', 'catalog', {
      spec: {template: {spec: {hostNetwork: true, volumes: [{name: 'h', hostPath: {path: '/'}}]}}},
    }).filter((o) => o.kind !== 'NetworkPolicy')
    expect(rules(objects)).toEqual([
      'error host-network Deployment shop-initech/catalog',
      'error host-path Deployment shop-initech/catalog',
      'error network-policy Deployment shop-initech/catalog',
    ])
    expect(checkPolicy(objects).findings.find((f) => f.rule === 'network-policy')!.objects).toEqual([
      'Deployment shop-initech/catalog',
      'Deployment shop-initech/payments',
      'Deployment shop-initech/checkout',
    ])
  })

  it('refuses secrets in plain-text env', () => {
    const d = (base().find((o) => o.kind === 'Deployment' && o.metadata.name === 'catalog') as any).spec.template.spec
      .containers[0]
    const objects = patch(
      base(),
      'Deployment',
      'catalog',
      container({
        ...d,
        env: [
          {name: 'DB_PASSWORD', value: 'hunter2'},
          {name: 'DATABASE_URL', value: 'postgres://app:hunter2@db/x'},
          {name: 'DB_HOST', value: 'db'},
        ],
      }),
    )
    expect(
      checkPolicy(objects)
        .findings.filter((f) => f.rule === 'plain-text-secret')
        .map((f) => f.message),
    ).toEqual([
      'container "catalog" env DB_PASSWORD looks like a secret in plain text',
      'container "catalog" env DATABASE_URL holds a URL with a password in plain text',
    ])
  })

  it('merges the same finding across tenant namespaces into one, listing every object', () => {
    const all = renderManifests({project: p, images: digestImages(p)}).targets.flatMap((t) => t.objects)
    const image = `127.0.0.1:5000/shop/catalog@${DIGEST}`
    const f = checkPolicy(all, {
      signatures: {...allVerified(all), [image]: {image, status: 'unsigned'}},
    }).findings.filter((x) => x.rule === 'signature')
    expect(f).toHaveLength(1)
    expect(f[0].objects).toEqual([
      'Deployment shop/catalog',
      'Deployment shop-initech/catalog',
      'Deployment umbrella/catalog',
    ])
  })

  it('matches label selectors like the API server', () => {
    expect(selectorMatches({}, {a: 'b'})).toBe(true)
    expect(selectorMatches({matchLabels: {a: 'b'}}, {a: 'c'})).toBe(false)
    expect(selectorMatches({matchExpressions: [{key: 'a', operator: 'In', values: ['b', 'c']}]}, {a: 'c'})).toBe(true)
    expect(selectorMatches({matchExpressions: [{key: 'a', operator: 'DoesNotExist'}]}, {a: 'c'})).toBe(false)
  })
})
