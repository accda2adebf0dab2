// `retailops runner build` against the sandbox: the image is built from this package, pushed,
// signed and verified, recorded in the artifacts lock as `runner`; then the image itself is run
// the way a restricted pod runs it (user 65532, read-only root filesystem, /tmp the only
// writable place) and inspected: the CLI and templates are there, no compiler is.
import {existsSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {RUNNER_UID} from '../../../src/kubernetes/runner-job.js'
import {readArtifactsLock} from '../../../src/docker/artifacts.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {runCli} from '../../support/cli.js'
import {randomName} from '../../support/names.js'

const ROOT = path.resolve(import.meta.dirname, '../../..')

describe('the runner image', () => {
  const sandbox = sandboxEnv()
  let dir: string
  let project: string
  const docker = (args: string[]) => execa('docker', args, {env: {DOCKER_HOST: sandbox.dockerHost}, reject: false})
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, {cwd: dir, env: {NO_COLOR: '1', ...env}, built: true})

  beforeAll(async () => {
    if (!existsSync(path.join(ROOT, 'dist', 'commands', 'runner', 'build.js')))
      throw new Error('dist/ is missing or stale: run `npm run build` first.')
    dir = await mkdtemp(path.join(os.tmpdir(), 't-runner-'))
    project = randomName('t-runner')
    await writeFile(
      path.join(dir, 'retailops.yaml'),
      `project: ${project}\nregistry: {url: "${sandbox.registry}", insecure: true}\nservices:\n  api: {tier: tolerant}\n`,
    )
    await writeKeyPair({
      keyPath: path.join(dir, '.retailops/cosign.key'),
      publicKeyPath: path.join(dir, '.retailops/cosign.pub'),
      passphrase: 'runner-pass',
    })
  })

  afterAll(async () => {
    const images = await docker([
      'images',
      '--format',
      '{{.Repository}}:{{.Tag}}',
      `${sandbox.registry}/${project}/retailops-runner`,
    ])
    for (const image of images.stdout.split('\n').filter(Boolean)) await docker(['rmi', '-f', image])
    await rm(dir, {recursive: true, force: true})
  })

  it('builds, pushes, signs, verifies and records it as "runner"; a wrong passphrase records nothing', async () => {
    const wrong = await cli(['runner', 'build', '--base-image', sandbox.baseImage, '--json'], {COSIGN_PASSWORD: 'nope'})
    expect(wrong.exitCode, wrong.stdout).toBe(6)
    expect((await readArtifactsLock(dir)).artifacts.runner).toBeUndefined()

    const r = await cli(['runner', 'build', '--base-image', sandbox.baseImage, '--json'], {
      COSIGN_PASSWORD: 'runner-pass',
    })
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const result = JSON.parse(r.stdout).result
    const lock = await readArtifactsLock(dir)
    expect(lock.artifacts.runner).toMatchObject({
      image: result.image,
      digest: result.digest,
      repository: `${sandbox.registry}/${project}/retailops-runner`,
    })
    const head = await fetch(`http://${sandbox.registry}/v2/${project}/retailops-runner/manifests/${result.digest}`, {
      method: 'HEAD',
      headers: {
        accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
      },
    })
    expect(head.status).toBe(200)
    // Verified again on its own, as deploy and prewarm --schedule verify images.
    const verify = await cli(['verify', result.image, '--json'])
    expect(verify.exitCode, verify.stdout).toBe(0)
    expect(result.devPackagesExcluded).toBeGreaterThan(0)

    // Again from the same files: nothing is built, the digest stays (CronJobs keep running the same bytes).
    const again = await cli(['runner', 'build', '--base-image', sandbox.baseImage, '--json'], {
      COSIGN_PASSWORD: 'runner-pass',
    })
    expect(again.exitCode, again.stdout + again.stderr).toBe(0)
    expect(JSON.parse(again.stdout).result).toMatchObject({
      upToDate: true,
      builder: 'none',
      digest: result.digest,
      tag: result.tag,
    })
    expect((await readArtifactsLock(dir)).artifacts.runner.digest).toBe(result.digest)
    // --force builds anyway, and the lock follows the newest verified build (engine builds are not byte-reproducible).
    const forced = await cli(['runner', 'build', '--base-image', sandbox.baseImage, '--force', '--json'], {
      COSIGN_PASSWORD: 'runner-pass',
    })
    expect(forced.exitCode, forced.stdout + forced.stderr).toBe(0)
    const second = JSON.parse(forced.stdout).result
    expect(second.upToDate).toBe(false)
    expect((await readArtifactsLock(dir)).artifacts.runner.digest).toBe(second.digest)
    // A lock entry whose digest the registry no longer serves under its tag is rebuilt, not trusted.
    const lockFile = path.join(dir, '.retailops/artifacts.lock.json')
    const edited = JSON.parse(await readFile(lockFile, 'utf8'))
    edited.artifacts.runner.digest = `sha256:${'0'.repeat(64)}`
    edited.artifacts.runner.image = `${edited.artifacts.runner.repository}@${edited.artifacts.runner.digest}`
    await writeFile(lockFile, JSON.stringify(edited))
    const stale = await cli(['runner', 'build', '--base-image', sandbox.baseImage, '--json'], {
      COSIGN_PASSWORD: 'runner-pass',
    })
    expect(stale.exitCode, stale.stdout + stale.stderr).toBe(0)
    expect(JSON.parse(stale.stdout).result.upToDate).toBe(false)
    expect((await readArtifactsLock(dir)).artifacts.runner.digest).toBe(JSON.parse(stale.stdout).result.digest)
  }, 600_000)

  it('runs as 65532 with a read-only root filesystem, holds the CLI and its templates, and no compiler', async () => {
    const {image} = (await readArtifactsLock(dir)).artifacts.runner
    const inspect = JSON.parse((await docker(['image', 'inspect', image])).stdout)[0].Config
    expect(inspect.User).toBe('65532:65532')
    expect(inspect.Entrypoint).toEqual(['node', '/opt/retailops/bin/run.js'])
    const run = (args: string[], entrypoint?: string) =>
      docker([
        'run',
        '--rm',
        '--read-only',
        '--tmpfs',
        '/tmp:rw,mode=1777',
        '--cap-drop',
        'ALL',
        '--security-opt',
        'no-new-privileges',
        '--network',
        'none',
        ...(entrypoint ? ['--entrypoint', entrypoint] : []),
        image,
        ...args,
      ])
    const version = await run(['--version'])
    expect(version.exitCode, version.stderr).toBe(0)
    expect(version.stdout).toMatch(/^retailops\/\d+\.\d+\.\d+/)
    // A command that writes: init renders every template into /tmp, the one writable place.
    const init = await run([
      'init',
      '--directory',
      '/tmp/p',
      '--project',
      'shop',
      '--registry',
      'r.example',
      '--kube-context',
      'c',
      '--ci',
      'gitlab',
      '--yes',
      '--json',
    ])
    expect(init.exitCode, init.stdout + init.stderr).toBe(0)
    expect(JSON.parse(init.stdout).result.files).toEqual(
      expect.arrayContaining(['.gitlab-ci.yml', 'retailops.yaml', 'README.md']),
    )
    // A pod's runAsUser is usually a uid without a passwd entry (the CronJobs' RUNNER_UID): commands still run.
    const anyUid = await docker([
      'run',
      '--rm',
      '--read-only',
      '--tmpfs',
      '/tmp:rw,mode=1777',
      '--cap-drop',
      'ALL',
      '--user',
      `${RUNNER_UID}:${RUNNER_UID}`,
      '--network',
      'none',
      image,
      'init',
      '--directory',
      '/tmp/q',
      '--project',
      'shop',
      '--registry',
      'r.example',
      '--kube-context',
      'c',
      '--yes',
      '--json',
    ])
    expect(anyUid.exitCode, anyUid.stdout + anyUid.stderr).toBe(0)
    const probe = await run(
      [
        '-e',
        `
      const fs = require('node:fs'), path = require('node:path')
      const compilers = ['tsc', 'gcc', 'cc', 'g++', 'c++', 'clang', 'make', 'go', 'esbuild']
      const onPath = process.env.PATH.split(':').flatMap((d) => compilers.filter((c) => fs.existsSync(path.join(d, c))).map((c) => path.join(d, c)))
      const modules = ['typescript', 'esbuild', 'vitest', 'tsx'].filter((m) => fs.existsSync('/opt/retailops/node_modules/' + m))
      let writable = true; try { fs.writeFileSync('/opt/retailops/x', '') } catch { writable = false }
      console.log(JSON.stringify({uid: process.getuid(), onPath, modules, writable, templates: fs.existsSync('/opt/retailops/templates/ci/github-actions.yml.tmpl'), src: fs.existsSync('/opt/retailops/src')}))
    `,
      ],
      'node',
    )
    expect(probe.exitCode, probe.stderr).toBe(0)
    expect(JSON.parse(probe.stdout)).toEqual({
      uid: 65532,
      onPath: [],
      modules: [],
      writable: false,
      templates: true,
      src: false,
    })
  }, 300_000)
})
