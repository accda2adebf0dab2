import {readFileSync} from 'node:fs'
import path from 'node:path'

import {Spec, Validation} from '@cyclonedx/cyclonedx-library'
import {describe, expect, it} from 'vitest'

import {generateSbom, installedPackages, npmPurl, ociPurl} from '../../../src/supplychain/sbom.js'
import {ROOT} from '../../support/paths.js'

const LOCKFILE = path.join(ROOT, 'services/package-lock.json')
const lock = JSON.parse(readFileSync(LOCKFILE, 'utf8')) as {
  packages: Record<string, {version?: string; dev?: boolean; integrity?: string}>
}
const DIGEST = `sha256:${'a'.repeat(64)}`
const BASE_DIGEST = `sha256:${'c'.repeat(64)}`

async function checkoutSbom() {
  return generateSbom({
    service: 'checkout',
    repository: '127.0.0.1:5000/shop/checkout',
    tag: '1-abc1234',
    digest: DIGEST,
    imageId: `sha256:${'b'.repeat(64)}`,
    bases: [{ref: '127.0.0.1:5000/retailops/node-base:24', digest: BASE_DIGEST, source: 'registry'}],
    lockfile: LOCKFILE,
    projectDir: ROOT,
  })
}

describe('SBOM of a bundled service (CycloneDX 1.6, from services/package-lock.json)', () => {
  it('lists exactly the packages `npm ci --omit=dev` installs, each with its purl and the lock integrity as a hash', async () => {
    const sbom = await checkoutSbom()
    const installed = Object.entries(lock.packages).filter(([k, p]) => k.startsWith('node_modules/') && !p.dev)
    expect(installed.length).toBeGreaterThan(0)
    const npm = (sbom.components ?? []).filter((c) => c.purl?.startsWith('pkg:npm/'))
    expect(npm).toHaveLength(installed.length)
    // one base image + the npm packages, nothing else
    expect(sbom.components).toHaveLength(installed.length + 1)

    const prom = lock.packages['node_modules/prom-client']
    const component = npm.find((c) => c.name === 'prom-client')!
    expect(component.version).toBe(prom.version)
    expect(component.purl).toBe(`pkg:npm/prom-client@${prom.version}`)
    const sha512 = Buffer.from(prom.integrity!.replace(/^sha512-/, ''), 'base64').toString('hex')
    expect(component.hashes).toEqual([{alg: 'SHA-512', content: sha512}])
    // scoped packages: group + name, and the purl's namespace percent-encoded as purl-spec says
    const scoped = npm.find((c) => c.group !== undefined)
    if (scoped)
      expect(scoped.purl).toBe(`pkg:npm/${encodeURIComponent(scoped.group!)}/${scoped.name}@${scoped.version}`)
  })

  it('names the image (repository + digest) as metadata.component and the base image with its digest', async () => {
    const sbom = await checkoutSbom()
    expect(sbom.bomFormat).toBe('CycloneDX')
    expect(sbom.specVersion).toBe('1.6')
    expect(sbom.metadata.component).toMatchObject({
      type: 'container',
      name: '127.0.0.1:5000/shop/checkout',
      version: DIGEST,
      purl: ociPurl('127.0.0.1:5000/shop/checkout', DIGEST, '1-abc1234'),
    })
    expect(sbom.metadata.component?.purl).toMatch(/^pkg:oci\/checkout@sha256%3A|^pkg:oci\/checkout@sha256:/)
    const base = sbom.components!.find((c) => c.type === 'container')!
    expect(base).toMatchObject({name: '127.0.0.1:5000/retailops/node-base', version: BASE_DIGEST})
    expect(base.purl).toContain('repository_url=127.0.0.1%3A5000%2Fretailops%2Fnode-base')
    // the image depends on its base and on the root's dependencies
    const root = sbom.dependencies!.find((d) => d.ref === sbom.metadata.component!['bom-ref'])!
    expect(root.dependsOn).toContain(base['bom-ref'])
    expect(root.dependsOn).toContain('npm:node_modules/prom-client')
  })

  it('is valid against the CycloneDX 1.6 JSON schema (the library’s strict validator)', async () => {
    const sbom = await checkoutSbom()
    const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6)
    expect(await validator.validate(JSON.stringify(sbom))).toBeNull()
  })

  it('is the same document for the same image and lockfile (serial number included), another for another digest', async () => {
    const a = await checkoutSbom()
    const b = await checkoutSbom()
    expect(b.serialNumber).toBe(a.serialNumber)
    expect(b.components).toEqual(a.components)
    const other = await generateSbom({
      service: 'checkout',
      repository: '127.0.0.1:5000/shop/checkout',
      digest: `sha256:${'d'.repeat(64)}`,
      bases: [],
      lockfile: LOCKFILE,
    })
    expect(other.serialNumber).not.toBe(a.serialNumber)
  })

  it('leaves dev dependencies and links out; refuses a lockfile v1', () => {
    const pkgs = installedPackages({
      lockfileVersion: 3,
      packages: {
        '': {name: 'x', version: '1.0.0', dependencies: {a: '^1'}},
        'node_modules/a': {version: '1.0.0', dependencies: {b: '^2'}},
        'node_modules/a/node_modules/b': {version: '2.0.0'},
        'node_modules/b': {version: '1.0.0'},
        'node_modules/vitest': {version: '3.0.0', dev: true},
        'node_modules/local': {link: true},
      },
    })
    expect(pkgs.map((p) => `${p.name}@${p.version}`)).toEqual(['a@1.0.0', 'b@2.0.0', 'b@1.0.0'])
    expect(() => installedPackages({lockfileVersion: 1})).toThrow(/lockfile version 2 or 3/)
    expect(npmPurl('@scope/pkg', '1.2.3')).toBe('pkg:npm/%40scope/pkg@1.2.3')
  })
})
