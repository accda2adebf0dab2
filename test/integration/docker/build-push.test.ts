import {readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ARTIFACTS_LOCK, readArtifactsLock, resolveArtifact} from '../../../src/docker/artifacts.js'
import {BUILD_STATE, buildImages, sourceTag} from '../../../src/docker/build.js'
import {dockerClient} from '../../../src/docker/engine.js'
import {pushImages} from '../../../src/docker/push.js'
import {registryClient} from '../../../src/docker/registry.js'
import {BASE_IMAGE, BASE_IMAGE_REMOTE, fileInImage, REGISTRY, testProject, type TestProject} from './helpers.js'
import {testContext} from '../../support/context.js'

const DOCKERFILE = (dir: string) =>
  `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\nWORKDIR /app\nCOPY ${dir}/ ./${dir}/\nCMD ["node", "${dir}/main.js"]\n`

describe('build and push against the sandbox Docker Engine and registry', () => {
  let p: TestProject

  beforeAll(async () => {
    p = await testProject(
      {
        alpha: {context: 'a', dockerfile: 'alpha/Dockerfile'},
        beta: {context: 'b', dockerfile: 'beta/Dockerfile'},
        broken: {context: 'c', dockerfile: 'broken/Dockerfile'},
        nofile: {context: 'a', dockerfile: 'nofile/Dockerfile'},
      },
      {
        'a/alpha/Dockerfile': DOCKERFILE('alpha'),
        'a/alpha/main.js': 'console.log("alpha")\n',
        'a/alpha/secret.txt': 'do not ship me\n',
        'a/alpha/notes/readme.md': 'docs\n',
        'a/alpha/notes/keep.md': 'kept by an exception\n',
        'a/.dockerignore': 'alpha/secret.txt\n**/*.md\n!alpha/notes/keep.md\n',
        'b/beta/Dockerfile': DOCKERFILE('beta'),
        'b/beta/main.js': 'console.log("beta")\n',
        'c/broken/Dockerfile':
          'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY broken/ /broken/\nRUN ["node", "-e", "console.error(\'tests failed: 3 of 10\'); process.exit(3)"]\n',
        'c/broken/x.js': '1\n',
      },
    )
  })

  afterAll(async () => {
    await p?.cleanup()
  })

  it('refuses before building anything when a Dockerfile is missing (NOT_FOUND)', async () => {
    await expect(
      buildImages({project: await p.project(), services: ['alpha', 'nofile'], baseImage: BASE_IMAGE}, testContext()),
    ).rejects.toMatchObject({
      exit: 'NOT_FOUND',
      message: expect.stringContaining('nofile/Dockerfile does not exist'),
    })
    const docker = await dockerClient()
    expect(await docker.listImages({filters: JSON.stringify({reference: [`${REGISTRY}/${p.name}/*`]})})).toHaveLength(0)
  })

  it('builds in parallel with the local base image (classic builder), tags with version and commit, and keeps ignored files out', async () => {
    const c = testContext()
    const result = await buildImages(
      {project: await p.project(), services: ['alpha', 'beta'], baseImage: BASE_IMAGE, concurrency: 2},
      c,
    )
    expect(result.failed).toEqual([])
    expect(result.built.sort()).toEqual(['alpha', 'beta'])
    for (const s of result.services) {
      expect(s.builder).toBe('classic')
      expect(s.tag).toMatch(/^7-(nogit\.[0-9a-f]{12}|[0-9a-f]{7}(-dirty)?)$/)
      expect(s.image).toBe(`${REGISTRY}/${p.name}/${s.service}:${s.tag}`)
    }
    // Streamed per service.
    expect(c.out.events.some((e) => e.type === 'stream' && e.scope === 'alpha' && /COPY alpha/.test(e.line))).toBe(true)
    const alpha = result.services.find((s) => s.service === 'alpha')!
    expect(await fileInImage(alpha.imageId!, '/app/alpha/main.js')).toContain('console.log("alpha")')
    expect(await fileInImage(alpha.imageId!, '/app/alpha/secret.txt')).toBeUndefined()
    expect(await fileInImage(alpha.imageId!, '/app/alpha/notes/readme.md')).toBeUndefined()
    expect(await fileInImage(alpha.imageId!, '/app/alpha/notes/keep.md')).toContain('kept by an exception')
  })

  it('skips unchanged services, rebuilds only the changed one, and rebuilds when its image is gone', async () => {
    const project = await p.project()
    const again = await buildImages({project, services: ['alpha', 'beta'], baseImage: BASE_IMAGE}, testContext())
    expect(again.skipped.sort()).toEqual(['alpha', 'beta'])
    await writeFile(path.join(p.dir, 'b/beta/main.js'), 'console.log("beta 2")\n')
    const changed = await buildImages({project, services: ['alpha', 'beta'], baseImage: BASE_IMAGE}, testContext())
    expect(changed.built).toEqual(['beta'])
    expect(changed.skipped).toEqual(['alpha'])
    // A changed build argument is a change too.
    const args = await buildImages(
      {project, services: ['alpha'], baseImage: BASE_IMAGE, buildArgs: {EXTRA: '1'}},
      testContext(),
    )
    expect(args.built).toEqual(['alpha'])
    const docker = await dockerClient()
    const gone = args.services[0]
    await docker.getImage(gone.imageId!).remove({force: true})
    const rebuilt = await buildImages(
      {project, services: ['alpha'], baseImage: BASE_IMAGE, buildArgs: {EXTRA: '1'}},
      testContext(),
    )
    expect(rebuilt.built).toEqual(['alpha'])
    // Back to the plain arguments for the push tests.
    await buildImages({project, services: ['alpha'], baseImage: BASE_IMAGE}, testContext())
  })

  it('builds with BuildKit through the API when the base image is in a registry', async () => {
    const result = await buildImages(
      {project: await p.project(), services: ['beta'], baseImage: BASE_IMAGE_REMOTE, builder: 'auto', force: true},
      testContext(),
    )
    expect(result.failed).toEqual([])
    expect(result.services[0].builder).toBe('buildkit')
    expect(await fileInImage(result.services[0].imageId!, '/app/beta/main.js')).toContain('beta 2')
  })

  it('a failing step fails that build (BUILD_FAILED) with the step and its output, and the others still build', async () => {
    const cases = [
      {baseImage: BASE_IMAGE, builder: 'auto', network: undefined, expected: ['classic']},
      {baseImage: BASE_IMAGE_REMOTE, builder: 'buildkit', network: 'none', expected: ['buildkit']},
      // auto with a registry base image: BuildKit, or the classic builder when the engine has no bridge network for RUN (the sandbox's).
      {baseImage: BASE_IMAGE_REMOTE, builder: 'auto', network: undefined, expected: ['buildkit', 'classic']},
    ] as const
    for (const c of cases) {
      const result = await buildImages(
        {
          project: await p.project(),
          services: ['broken', 'beta'],
          baseImage: c.baseImage,
          builder: c.builder,
          network: c.network,
        },
        testContext(),
      )
      expect(result.failed).toEqual(['broken'])
      const broken = result.services.find((s) => s.service === 'broken')!
      expect(c.expected).toContain(broken.builder)
      expect(broken.failure!.step).toMatch(/RUN \["node", "-e"/)
      expect(broken.failure!.output.join('\n')).toContain('tests failed: 3 of 10')
      expect(broken.failure!.message).toMatch(/non-zero code: 3|exit code: 3/)
    }
  })

  it('pushes, reads the digest back from the registry and locks service → repository@digest', async () => {
    const project = await p.project()
    await buildImages({project, services: ['alpha', 'beta'], baseImage: BASE_IMAGE}, testContext())
    const result = await pushImages({project, services: ['alpha', 'beta']}, testContext())
    expect(result.failed).toEqual([])
    const lock = await readArtifactsLock(p.dir)
    expect(Object.keys(lock.artifacts).sort()).toEqual(['alpha', 'beta'])
    const client = await registryClient(REGISTRY)
    for (const s of ['alpha', 'beta']) {
      const entry = lock.artifacts[s]
      expect(entry.image).toBe(`${REGISTRY}/${p.name}/${s}@${entry.digest}`)
      const head = await client.headManifest(`${p.name}/${s}`, entry.tag)
      expect(head!.digest).toBe(entry.digest)
      // The image ID (config digest) is not the manifest digest.
      expect(entry.digest).not.toBe(entry.imageId)
    }
    expect((await resolveArtifact(project, 'alpha')).image).toBe(lock.artifacts.alpha.image)
    await expect(resolveArtifact(project, 'broken')).rejects.toMatchObject({exit: 'NOT_FOUND'})
  })

  it('a fresh clone of unchanged sources (a CI runner) finds the build in the registry: nothing built or pushed, the same digest locked', async () => {
    const project = await p.project()
    const before = await readArtifactsLock(p.dir)
    const client = await registryClient(REGISTRY)
    const alphaBuild = (await buildImages({project, services: ['alpha'], baseImage: BASE_IMAGE}, testContext()))
      .services[0]
    expect(
      (await client.headManifest(`${p.name}/alpha`, sourceTag(alphaBuild.buildHash, before.artifacts.alpha.tag)))
        ?.digest,
    ).toBe(before.artifacts.alpha.digest)
    // A fresh runner: no build state, no artifacts lock, no local image.
    await rm(path.join(p.dir, BUILD_STATE))
    await rm(path.join(p.dir, ARTIFACTS_LOCK))
    const docker = await dockerClient()
    await docker.getImage(alphaBuild.imageId!).remove({force: true})
    const build = await buildImages({project, services: ['alpha'], baseImage: BASE_IMAGE}, testContext())
    expect(build.skipped).toEqual(['alpha'])
    expect(build.services[0]).toMatchObject({
      registryDigest: before.artifacts.alpha.digest,
      image: before.artifacts.alpha.image,
    })
    expect(
      await docker
        .getImage(alphaBuild.imageId!)
        .inspect()
        .catch(() => undefined),
    ).toBeUndefined()
    const push = await pushImages({project, services: ['alpha']}, testContext())
    expect(push.unchanged).toEqual(['alpha'])
    expect(push.pushed).toEqual([])
    // The same image and the tag it was first pushed as, so it renders with the same version label.
    expect((await readArtifactsLock(p.dir)).artifacts.alpha).toMatchObject({
      image: before.artifacts.alpha.image,
      tag: before.artifacts.alpha.tag,
    })
    // A change of its sources is a new build again.
    await writeFile(path.join(p.dir, 'a/alpha/main.js'), 'console.log("alpha 2")\n')
    const changed = await buildImages({project, services: ['alpha', 'beta'], baseImage: BASE_IMAGE}, testContext())
    expect(changed.built).toEqual(['alpha'])
    expect(changed.skipped).toEqual(['beta'])
    const again = await pushImages({project, services: ['alpha', 'beta']}, testContext())
    expect(again).toMatchObject({pushed: ['alpha'], unchanged: ['beta'], failed: []})
    expect((await readArtifactsLock(p.dir)).artifacts.alpha.digest).not.toBe(before.artifacts.alpha.digest)
  })

  it('builds a bundled service from services/ with its real Dockerfile and .dockerignore', async () => {
    const services = path.resolve('services')
    const bundled = await testProject({catalog: {context: services, dockerfile: 'catalog/Dockerfile'}}, {})
    try {
      const result = await buildImages({project: await bundled.project(), baseImage: BASE_IMAGE}, testContext())
      expect(result.failed).toEqual([])
      const id = result.services[0].imageId!
      expect(await fileInImage(id, '/app/catalog/src/main.ts')).toBeDefined()
      expect(await fileInImage(id, '/app/lib')).toBeDefined()
      // services/.dockerignore keeps tests, docs and the lock file out.
      expect(await fileInImage(id, '/app/package-lock.json')).toBeUndefined()
    } finally {
      await bundled.cleanup()
    }
  })

  it('an unreachable registry is UNAVAILABLE before anything is pushed, and the lock is untouched', async () => {
    const before = await readFile(path.join(p.dir, ARTIFACTS_LOCK), 'utf8')
    const yaml = await readFile(path.join(p.dir, 'retailops.yaml'), 'utf8')
    await writeFile(path.join(p.dir, 'retailops.yaml'), yaml.replace(REGISTRY, '127.0.0.1:5999'))
    try {
      const project = await p.project()
      await buildImages({project, services: ['beta'], baseImage: BASE_IMAGE}, testContext())
      await expect(pushImages({project, services: ['beta']}, testContext())).rejects.toMatchObject({
        exit: 'UNAVAILABLE',
        message: expect.stringContaining('127.0.0.1:5999'),
      })
      expect(await readFile(path.join(p.dir, ARTIFACTS_LOCK), 'utf8')).toBe(before)
    } finally {
      await writeFile(path.join(p.dir, 'retailops.yaml'), yaml)
    }
  })
})
