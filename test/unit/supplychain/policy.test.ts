import {describe, expect, it} from 'vitest'

import {parseConfig} from '../../../src/config/parse.js'
import {ConfigError} from '../../../src/errors/index.js'
import {atOrAbove} from '../../../src/supplychain/severity.js'
import {admit, decide, expiredWaivers, type AdmissionImage, type Evidence} from '../../../src/supplychain/policy.js'
import {isExpired, parseWaivers} from '../../../src/supplychain/waivers.js'

const SERVICES = ['checkout', 'catalog']
const FILE = '/repo/.retailops/waivers.yaml'

const policy = {
  requireSignature: true,
  requireSbom: true,
  requireProvenance: true,
  failOn: 'high' as const,
  waivers: '.retailops/waivers.yaml',
}
const image: AdmissionImage = {
  image: '127.0.0.1:5000/shop/checkout@sha256:' + 'a'.repeat(64),
  services: ['checkout'],
  objects: ['Deployment shop/checkout'],
}
const verified = {status: 'verified' as const}
const clean: Evidence = {signature: verified, sbom: verified, provenance: verified, vulnerabilities: []}
const vuln = {
  id: 'GHSA-aaaa-bbbb-cccc',
  aliases: ['CVE-2026-1234'],
  package: 'express',
  version: '4.21.2',
  severity: 'high' as const,
  fixed: ['4.22.0'],
}
const now = new Date('2026-12-06T12:00:00Z')
const options = (waivers = [] as ReturnType<typeof parseWaivers>) => ({
  policy,
  waivers,
  now,
  publicKeyFile: '.retailops/cosign.pub',
  waiversFile: '.retailops/waivers.yaml',
})

describe('waivers file', () => {
  it('parses entries and keeps expires as the date written', () => {
    const w = parseWaivers(
      'waivers:\n  - id: CVE-2026-1234\n    service: checkout\n    reason: not reachable\n    expires: 2026-12-31\n',
      FILE,
      SERVICES,
    )
    expect(w).toEqual([{id: 'CVE-2026-1234', service: 'checkout', reason: 'not reachable', expires: '2026-12-31'}])
  })

  it('refuses bad entries with exit CONFIG, naming the file, the line and the entry', () => {
    const text = [
      'waivers:',
      '  - id: GHSA-1',
      '    service: checkout',
      '    reason: ok',
      '    expires: 2026-12-31',
      '  - id: GHSA-2',
      '    service: checkout',
      '    expires: 31/12/2026',
    ].join('\n')
    let error: unknown
    try {
      parseWaivers(text, FILE, SERVICES)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    const e = error as ConfigError
    expect(e.exit).toBe('CONFIG')
    expect(e.message).toContain(FILE)
    expect(e.issues.map((i) => i.path).sort()).toEqual(['waivers[1].expires', 'waivers[1].reason'])
    expect(e.issues.find((i) => i.path === 'waivers[1].expires')?.line).toBe(8)
    expect(e.message).toMatch(/YYYY-MM-DD/)
  })

  it('refuses an impossible date, an unknown service, an unknown key and a duplicate', () => {
    const bad = (text: string) => {
      try {
        parseWaivers(text, FILE, SERVICES)
      } catch (e) {
        return (e as ConfigError).message
      }
      throw new Error('accepted')
    }
    expect(bad('waivers:\n  - {id: X, service: checkout, reason: r, expires: 2026-02-30}')).toMatch(
      /waivers\[0\]\.expires/,
    )
    expect(bad('waivers:\n  - {id: X, service: payments, reason: r, expires: 2026-12-01}')).toMatch(
      /waivers\[0\]\.service: "payments" is not a service of this project/,
    )
    expect(bad('waivers:\n  - {id: X, service: checkout, reason: r, expires: 2026-12-01, owner: me}')).toMatch(
      /unknown key "owner"/,
    )
    expect(
      bad(
        'waivers:\n  - {id: X, service: checkout, reason: r, expires: 2026-12-01}\n  - {id: x, service: checkout, reason: s, expires: 2027-01-01}',
      ),
    ).toMatch(/waivers\[1\]: waives x for checkout again \(waivers\[0\] already does\)/)
  })

  it('a waiver applies through the end of its expiry day (UTC)', () => {
    expect(isExpired({expires: '2026-12-06'}, new Date('2026-12-06T23:59:59Z'))).toBe(false)
    expect(isExpired({expires: '2026-12-06'}, new Date('2026-12-07T00:00:00Z'))).toBe(true)
  })
})

describe('configuration', () => {
  const base =
    'project: shop\nregistry: {url: 127.0.0.1:5000}\nservices:\n  checkout: {port: 8080, tier: revenue-critical}\n'
  it('accepts supplyChain.policy with defaults', () => {
    const c = parseConfig(`${base}supplyChain:\n  vulnerabilityDatabase: osv\n  policy: {failOn: critical}\n`)
    expect(c.supplyChain?.policy).toEqual({
      requireSignature: true,
      requireSbom: true,
      requireProvenance: true,
      failOn: 'critical',
      waivers: '.retailops/waivers.yaml',
    })
  })
  it('failOn without a vulnerability database is a configuration error', () => {
    expect(() => parseConfig(`${base}supplyChain:\n  policy: {failOn: high}\n`)).toThrow(/supplyChain\.policy\.failOn/)
    expect(() => parseConfig(`${base}supplyChain:\n  policy: {failOn: severe}\n`)).toThrow(/expected one of "low"/)
  })
})

describe('admission decisions', () => {
  it('admits a signed image with both attestations and no vulnerability at or above the threshold', () => {
    const d = decide(image, {...clean, vulnerabilities: [{...vuln, severity: 'medium'}]}, options())
    expect(d.admitted).toBe(true)
    expect(d.vulnerabilities).toHaveLength(1)
    expect(d.vulnerabilities[0].refused).toBe(false)
  })

  it('names the image, the rule and the fix for each missing piece', () => {
    const d = decide(
      image,
      {
        signature: {status: 'missing'},
        sbom: {status: 'missing'},
        provenance: {status: 'invalid', message: 'signed with another key'},
      },
      options(),
    )
    expect(d.admitted).toBe(false)
    expect(d.refusals.map((r) => r.rule)).toEqual(['signature', 'sbom', 'provenance', 'vulnerability'])
    for (const r of d.refusals) {
      expect(r.message).toContain(image.image)
      expect(r.fix.length).toBeGreaterThan(10)
    }
    expect(d.refusals[0].fix).toContain('retailops sign checkout')
    expect(d.refusals[2].message).toContain('signed with another key')
  })

  it('rules switched off are not checked', () => {
    const d = decide(
      image,
      {signature: verified, sbom: {status: 'missing'}, provenance: {status: 'missing'}},
      {...options(), policy: {...policy, requireSbom: false, requireProvenance: false, failOn: undefined}},
    )
    expect(d.admitted).toBe(true)
  })

  it('refuses a vulnerability at or above the threshold, naming the package and the fixed version', () => {
    const d = decide(image, {...clean, vulnerabilities: [vuln]}, options())
    expect(d.admitted).toBe(false)
    expect(d.refusals).toHaveLength(1)
    expect(d.refusals[0].message).toContain('express@4.21.2 has GHSA-aaaa-bbbb-cccc / CVE-2026-1234, severity high')
    expect(d.refusals[0].fix).toContain('Upgrade express to 4.22.0')
    expect(d.refusals[0].fix).toContain('.retailops/waivers.yaml')
  })

  it('a current waiver (by alias) lets it through for its service only; an expired one does not', () => {
    const waiver = {id: 'CVE-2026-1234', service: 'checkout', reason: 'not reachable', expires: '2026-12-31'}
    const passed = decide(image, {...clean, vulnerabilities: [vuln]}, options([waiver]))
    expect(passed.admitted).toBe(true)
    expect(passed.vulnerabilities[0].waiver).toMatchObject({id: 'CVE-2026-1234', expired: false})

    const other = decide(image, {...clean, vulnerabilities: [vuln]}, options([{...waiver, service: 'catalog'}]))
    expect(other.admitted).toBe(false)

    const expired = decide(image, {...clean, vulnerabilities: [vuln]}, options([{...waiver, expires: '2026-12-01'}]))
    expect(expired.admitted).toBe(false)
    expect(expired.refusals[0].message).toContain('its waiver expired on 2026-12-01')
    expect(expiredWaivers([{...waiver, expires: '2026-12-01'}, waiver], ['checkout'], now)).toHaveLength(1)
  })

  it('an image run by two services needs a waiver for each', () => {
    const shared = {...image, services: ['checkout', 'catalog']}
    const waiver = {id: vuln.id, service: 'checkout', reason: 'r', expires: '2027-01-01'}
    const d = decide(shared, {...clean, vulnerabilities: [vuln]}, options([waiver]))
    expect(d.refusals.map((r) => r.message)).toEqual([expect.stringContaining('(catalog)')])
  })

  it("unknown severities count as critical (scan --fail-on's default)", () => {
    expect(atOrAbove('unknown', 'critical')).toBe(true)
    expect(atOrAbove('medium', 'high')).toBe(false)
    expect(atOrAbove('critical', 'high')).toBe(true)
  })

  it('admit asks for the evidence of every image and keeps their order', async () => {
    const asked: string[] = []
    const second = {...image, image: image.image.replace('checkout', 'catalog'), services: ['catalog']}
    const decisions = await admit([image, second], policy, {
      ...options(),
      evidence: async (i) => {
        asked.push(i.image)
        return i === second ? {...clean, signature: {status: 'missing'}} : clean
      },
    })
    expect(asked.sort()).toEqual([image.image, second.image].sort())
    expect(decisions.map((d) => d.admitted)).toEqual([true, false])
  })
})

describe('the images deploy admits', () => {
  it('lists every container, init container and ephemeral container image, with its services and objects', async () => {
    const {admissionImages, signatureEvidence} = await import('../../../src/deploy/admission.js')
    const digestRef = (n: string) => `127.0.0.1:5000/shop/${n}@sha256:${n[0].repeat(64)}`
    const deployment = (name: string, service: string, spec: Record<string, unknown>) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {name, namespace: 'shop', labels: {'retailops.dev/service': service}},
      spec: {template: {spec}},
    })
    const images = admissionImages([
      deployment('checkout', 'checkout', {
        containers: [
          {name: 'checkout', image: digestRef('checkout')},
          {name: 'proxy', image: digestRef('proxy')},
        ],
        initContainers: [{name: 'migrate', image: digestRef('migrate')}],
      }),
      deployment('catalog', 'catalog', {
        containers: [
          {name: 'catalog', image: digestRef('catalog')},
          {name: 'proxy', image: digestRef('proxy')},
        ],
      }),
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: {name: 'report', namespace: 'shop'},
        spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: 'r', image: 'busybox:1'}]}}}}},
      },
    ])
    expect(
      images.map((i) => [i.image.replace('127.0.0.1:5000/shop/', '').split('@')[0], i.services, i.objects.length]),
    ).toEqual([
      ['checkout', ['checkout'], 1],
      ['proxy', ['checkout', 'catalog'], 2],
      ['migrate', ['checkout'], 1],
      ['catalog', ['catalog'], 1],
      ['busybox:1', [], 1],
    ])
    expect(images[2].objects).toEqual(['Deployment shop/checkout (initContainers: migrate)'])
    expect(signatureEvidence(undefined, 'busybox:1')).toMatchObject({
      status: 'missing',
      message: expect.stringContaining('tag'),
    })
    expect(signatureEvidence({image: digestRef('a'), status: 'unsigned'}, digestRef('a')).status).toBe('missing')
    expect(signatureEvidence({image: digestRef('a'), status: 'invalid'}, digestRef('a')).status).toBe('invalid')
    expect(signatureEvidence(undefined, digestRef('a')).status).toBe('missing')
  })
})
