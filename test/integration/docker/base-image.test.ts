import {writeFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {buildImages} from '../../../src/docker/build.js'
import {dockerClient} from '../../../src/docker/engine.js'
import {followJsonStream} from '../../../src/docker/progress.js'
import {pushImages} from '../../../src/docker/push.js'
import {registryClient} from '../../../src/docker/registry.js'
import {BASE_IMAGE, fileInImage, REGISTRY, testProject, type TestProject} from './helpers.js'
import {testContext} from '../../support/context.js'

const SERVICE_DOCKERFILE = (dir: string) => `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\nCOPY ${dir}/ /app/${dir}/\n`

/**
 * A base image patched under the same tag in the sandbox registry: the next build rebuilds every
 * service FROM it (and only those), says why, and the new images are built on the new base, read
 * back from the registry.
 */
describe('base images: a patched base under the same tag is a change', () => {
  let p: TestProject
  let baseTag: string

  /** Builds the "base" service (the local sandbox base plus a marker file) and pushes it as base:1. */
  const publishBase = async (marker: string): Promise<{digest: string; imageId: string}> => {
    await p.write({'base/base/marker.txt': marker})
    const built = await buildImages({project: await p.project(), services: ['base'], builder: 'classic'}, testContext())
    expect(built.failed).toEqual([])
    const docker = await dockerClient()
    const imageId = built.services[0].imageId!
    await docker.getImage(imageId).tag({repo: `${REGISTRY}/${p.name}/base`, tag: '1'})
    await pushTag(baseTag)
    const head = await (await registryClient(REGISTRY)).headManifest(`${p.name}/base`, '1')
    return {digest: head!.digest, imageId}
  }

  const pushTag = async (ref: string) => {
    const docker = await dockerClient()
    const stream = await docker.getImage(ref).push({authconfig: {serveraddress: REGISTRY}})
    let error: string | undefined
    await followJsonStream(stream, (e) => {
      if (e.error) error = String(e.error)
    })
    if (error) throw new Error(error)
  }

  /** rootfs.diff_ids of an image's config, read from the registry. */
  const diffIds = async (repository: string, reference: string): Promise<string[]> => {
    const client = await registryClient(REGISTRY)
    const manifest = await client.getManifest(repository, reference)
    const config = JSON.parse(
      (await client.getBlob(repository, (manifest!.json.config as {digest: string}).digest)).toString('utf8'),
    )
    return config.rootfs.diff_ids
  }

  beforeAll(async () => {
    p = await testProject(
      {
        base: {context: 'base', dockerfile: 'base/Dockerfile', args: {BASE_IMAGE}},
        alpha: {context: 'a', dockerfile: 'alpha/Dockerfile', args: {BASE_IMAGE: 'PLACEHOLDER'}},
        beta: {context: 'a', dockerfile: 'beta/Dockerfile', args: {BASE_IMAGE: 'PLACEHOLDER'}},
        gamma: {context: 'a', dockerfile: 'gamma/Dockerfile', args: {BASE_IMAGE}},
      },
      {
        'base/base/Dockerfile': 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY base/marker.txt /marker.txt\n',
        'a/alpha/Dockerfile': SERVICE_DOCKERFILE('alpha'),
        'a/alpha/main.js': 'console.log("alpha")\n',
        'a/beta/Dockerfile': SERVICE_DOCKERFILE('beta'),
        'a/beta/main.js': 'console.log("beta")\n',
        'a/gamma/Dockerfile': SERVICE_DOCKERFILE('gamma'),
        'a/gamma/main.js': 'console.log("gamma")\n',
      },
    )
    baseTag = `${REGISTRY}/${p.name}/base:1`
    const yaml = path.join(p.dir, 'retailops.yaml')
    const {readFile} = await import('node:fs/promises')
    await writeFile(yaml, (await readFile(yaml, 'utf8')).replaceAll('PLACEHOLDER', baseTag))
  })

  afterAll(async () => {
    const docker = await dockerClient()
    await docker
      .getImage(baseTag)
      .remove({force: true})
      .catch(() => undefined)
    await p?.cleanup()
  })

  it('rebuilds every service FROM the patched base, says why, and builds it on the new base', async () => {
    const v1 = await publishBase('v1\n')
    const project = await p.project()
    const services = ['alpha', 'beta', 'gamma']
    const first = await buildImages({project, services, builder: 'classic'}, testContext())
    expect(first.built.sort()).toEqual(services)
    expect(first.services.find((s) => s.service === 'alpha')!.baseImages).toEqual([
      {ref: baseTag, digest: v1.digest, source: 'registry', pulled: false},
    ])
    expect((await buildImages({project, services, builder: 'classic'}, testContext())).skipped.sort()).toEqual(services)

    // The same tag, new content: only the services FROM it rebuild, and the reason says so.
    const v2 = await publishBase('v2\n')
    expect(v2.digest).not.toBe(v1.digest)
    const c = testContext()
    const next = await buildImages({project, services, builder: 'classic'}, c)
    expect(next.built.sort()).toEqual(['alpha', 'beta'])
    expect(next.skipped).toEqual(['gamma'])
    const short = (d: string) => d.replace('sha256:', '').slice(0, 12)
    for (const s of next.services.filter((x) => x.status === 'built')) {
      expect(s.reason).toBe(`rebuilt: base image changed (${baseTag} ${short(v1.digest)} → ${short(v2.digest)})`)
      expect(await fileInImage(s.imageId!, '/marker.txt')).toContain('v2')
    }
    expect(c.out.events.some((e) => e.type === 'task' && /rebuilt: base image changed/.test(JSON.stringify(e)))).toBe(
      true,
    )

    // Read back from the registry: the pushed image's layers are the new base's plus its own.
    const pushed = await pushImages({project, services: ['alpha']}, testContext())
    expect(pushed.failed).toEqual([])
    const alpha = await diffIds(`${p.name}/alpha`, next.services.find((s) => s.service === 'alpha')!.tag)
    const base2 = await diffIds(`${p.name}/base`, v2.digest)
    const base1 = await diffIds(`${p.name}/base`, v1.digest)
    expect(alpha.slice(0, base2.length)).toEqual(base2)
    expect(alpha.length).toBe(base2.length + 1)
    expect(alpha).not.toContain(base1.at(-1))
  })

  it('pulls a base the engine only has in an older version before building (the classic builder reads the local copy)', async () => {
    const project = await p.project()
    const v2 = {imageId: (await (await dockerClient()).getImage(baseTag).inspect()).Id}
    const v3 = await publishBase('v3\n')
    // Make the engine's base:1 the old one again, as on a build machine that pulled it last week.
    await (await dockerClient()).getImage(v2.imageId).tag({repo: `${REGISTRY}/${p.name}/base`, tag: '1'})
    const r = await buildImages({project, services: ['alpha'], builder: 'classic', pull: true}, testContext())
    expect(r.built).toEqual(['alpha'])
    expect(r.services[0].baseImages).toEqual([{ref: baseTag, digest: v3.digest, source: 'registry', pulled: true}])
    expect(r.services[0].reason).toMatch(/^rebuilt: base image changed/)
    expect(await fileInImage(r.services[0].imageId!, '/marker.txt')).toContain('v3')
    expect((await (await dockerClient()).getImage(baseTag).inspect()).Id).toBe(v3.imageId)
    // Nothing moved since: --pull re-resolves, finds the same digest, and rebuilds nothing.
    const again = await buildImages(
      {project, services: ['alpha', 'beta'], builder: 'classic', pull: true},
      testContext(),
    )
    expect(again.built).toEqual(['beta'])
    expect(again.skipped).toEqual(['alpha'])
  })
})
