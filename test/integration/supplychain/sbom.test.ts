import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {readArtifactsLock} from '../../../src/docker/artifacts.js'
import {dockerClient} from '../../../src/docker/engine.js'
import {registryClient} from '../../../src/docker/registry.js'
import {sbomPath, type SbomDocument} from '../../../src/supplychain/sbom.js'
import {runCliJson} from '../../support/cli.js'
import {ROOT} from '../../support/paths.js'
import {BASE_IMAGE, REGISTRY, testProject, type TestProject} from '../docker/helpers.js'

const LOCK = JSON.parse(await readFile(path.join(ROOT, 'services/package-lock.json'), 'utf8')) as {
  packages: Record<string, {version?: string; dev?: boolean}>
}
const INSTALLED = Object.entries(LOCK.packages).filter(([k, p]) => k.startsWith('node_modules/') && !p.dev)

/**
 * Issue 16 item 2: `retailops build` writes each image's CycloneDX SBOM from its build context's
 * package-lock.json and the base image it resolved; after `retailops push`, `retailops sbom` binds
 * it to the pushed digest; an SBOM of another build than the pushed one is refused.
 */
describe('SBOM per image: build writes it, push binds it to the digest (sandbox Docker Engine and registry)', () => {
  let p: TestProject
  const read = async () => JSON.parse(await readFile(sbomPath(p.dir, 'shop'), 'utf8')) as SbomDocument

  beforeAll(async () => {
    p = await testProject(
      {shop: {context: 'svc', dockerfile: 'shop/Dockerfile'}},
      {
        'svc/shop/Dockerfile':
          'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /app\nCOPY shop/ ./shop/\nCMD ["node", "shop/main.js"]\n',
        'svc/shop/main.js': 'console.log("shop")\n',
        'svc/package-lock.json': await readFile(path.join(ROOT, 'services/package-lock.json'), 'utf8'),
      },
    )
  })
  afterAll(async () => {
    await p?.cleanup()
  })

  it('build writes the SBOM: the locked packages, the base image by ID, the built image by its image ID', async () => {
    const build = await runCliJson(['build', 'shop', '--base-image', BASE_IMAGE], {cwd: p.dir})
    expect(build.exitCode, build.stderr).toBe(0)
    expect(build.doc.result.sboms).toEqual([
      {service: 'shop', file: '.retailops/sbom/shop.cdx.json', components: INSTALLED.length + 1, written: true},
    ])
    const sbom = await read()
    const docker = await dockerClient()
    const built = await docker.getImage(build.doc.result.services[0].image).inspect()
    const base = await docker.getImage(BASE_IMAGE).inspect()
    expect(sbom.metadata.component).toMatchObject({
      type: 'container',
      name: `${REGISTRY}/${p.name}/shop`,
      version: built.Id,
    })
    expect(sbom.components!.find((c) => c.type === 'container')).toMatchObject({version: base.Id})
    const npm = sbom.components!.filter((c) => c.purl?.startsWith('pkg:npm/'))
    expect(npm.map((c) => c.purl).sort()).toEqual(
      INSTALLED.map(([k, v]) => `pkg:npm/${k.slice('node_modules/'.length).replace('@', '%40')}@${v.version}`).sort(),
    )
  })

  it('after push, `retailops sbom` binds it to the pushed digest (pkg:oci purl) and stores it so', async () => {
    const push = await runCliJson(['push', 'shop'], {cwd: p.dir})
    expect(push.exitCode, push.stderr).toBe(0)
    const lock = await readArtifactsLock(p.dir)
    const digest = lock.artifacts.shop.digest
    // the digest is really the registry's
    const client = await registryClient(REGISTRY, {insecure: true})
    expect((await client.headManifest(`${p.name}/shop`, digest))?.digest).toBe(digest)

    const shown = await runCliJson(['sbom', 'shop'], {cwd: p.dir})
    expect(shown.exitCode, shown.stderr).toBe(0)
    expect(shown.doc.result.sboms[0]).toMatchObject({
      service: 'shop',
      digest,
      image: `${REGISTRY}/${p.name}/shop@${digest}`,
      packages: INSTALLED.length,
    })
    const sbom = await read()
    expect(sbom.metadata.component?.version).toBe(digest)
    expect(sbom.metadata.component?.purl).toMatch(new RegExp(`^pkg:oci/shop@${digest}\\?repository_url=`))
  })

  it('refuses the SBOM of a newer build than the pushed image (NOT_FOUND, exit 4), naming both', async () => {
    await p.write({'svc/shop/main.js': 'console.log("shop v2")\n'})
    const build = await runCliJson(['build', 'shop', '--base-image', BASE_IMAGE], {cwd: p.dir})
    expect(build.exitCode, build.stderr).toBe(0)
    const shown = await runCliJson(['sbom', 'shop'], {cwd: p.dir})
    expect(shown.exitCode).toBe(4)
    expect(shown.doc.error.message).toMatch(/describes sha256:[0-9a-f]{64}, not the pushed image/)
    // push makes it the pushed image's again
    expect((await runCliJson(['push', 'shop'], {cwd: p.dir})).exitCode).toBe(0)
    const again = await runCliJson(['sbom', 'shop'], {cwd: p.dir})
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.doc.result.sboms[0].digest).toBe((await readArtifactsLock(p.dir)).artifacts.shop.digest)
  })
})
