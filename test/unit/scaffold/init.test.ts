import {existsSync} from 'node:fs'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {loadConfig} from '../../../src/config/load.js'
import {initProject, nextBlackFriday} from '../../../src/scaffold/init.js'
import {pinPipelines} from '../../../src/runner/image.js'
import {addService} from '../../../src/scaffold/service-add.js'
import {testContext} from '../../support/context.js'

const ctx = testContext
const base = {
  project: 'shop',
  registry: '127.0.0.1:5000',
  context: 'kwok-retailops',
  now: new Date('2026-11-25T08:00:00Z'),
}

describe('nextBlackFriday', () => {
  it('is the day after the fourth Thursday of November, or next year once over', () => {
    expect(nextBlackFriday(new Date('2026-06-01T00:00:00Z')).start.toISOString()).toBe('2026-11-27T00:00:00.000Z')
    expect(nextBlackFriday(new Date('2027-01-01T00:00:00Z')).start.toISOString()).toBe('2027-11-26T00:00:00.000Z')
    expect(nextBlackFriday(new Date('2026-12-05T00:00:00Z')).start.toISOString()).toBe('2027-11-26T00:00:00.000Z')
  })
})

describe('initProject', () => {
  it('scaffolds a project whose configuration validates', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    const result = await initProject({...base, directory: dir, services: ['catalog', 'cart'], ci: 'gitlab'}, ctx())
    expect(result.services).toEqual(['catalog', 'cart'])
    expect(result.files).toEqual(
      expect.arrayContaining([
        'retailops.yaml',
        'retailops.schema.json',
        'k6/smoke.js',
        '.gitlab-ci.yml',
        'overlays/README.md',
      ]),
    )
    const loaded = await loadConfig(path.join(dir, 'retailops.yaml'))
    expect(Object.keys(loaded.config.services)).toEqual(['catalog', 'cart'])
    expect(loaded.config.registry.insecure).toBe(true)
    expect(loaded.config.campaigns[0].start).toBe('2026-11-27T00:00:00Z')
    expect(await readFile(path.join(dir, '.gitlab-ci.yml'), 'utf8')).toContain('retailops deploy --canary')
  })

  it('scaffolds the reconcile job with the orders and inventory services it reads, and only then', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    const result = await initProject({...base, directory: dir, services: ['orders', 'inventory']}, ctx())
    expect(result.files).toEqual(
      expect.arrayContaining(['services/reconcile/Dockerfile', 'services/reconcile/src/main.ts']),
    )
    const loaded = await loadConfig(path.join(dir, 'retailops.yaml'))
    expect(loaded.config.jobs.reconcile).toMatchObject({
      dependsOn: ['orders', 'inventory'],
      schedule: '*/30 * * * *',
      timeZone: 'Etc/UTC',
      concurrencyPolicy: 'Forbid',
      build: {context: 'services', dockerfile: 'reconcile/Dockerfile'},
    })
    const other = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await initProject({...base, directory: other, services: ['catalog']}, ctx())
    expect((await loadConfig(path.join(other, 'retailops.yaml'))).config.jobs).toEqual({})
  })

  it('writes a CI pipeline that builds, signs, deploys by canary and gates on SLOs', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await initProject({...base, directory: dir}, ctx())
    const ci = await readFile(path.join(dir, '.github/workflows/release.yml'), 'utf8')
    for (const step of ['retailops build', 'retailops sign', 'retailops deploy --canary', 'retailops slo --gate'])
      expect(ci).toContain(step)
  })

  it('pipelines pin the scaffolding CLI version, use only checkout and setup-node, scan and attest, and document exactly the five secrets', async () => {
    const {version} = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    const secrets = ['COSIGN_PRIVATE_KEY', 'COSIGN_PASSWORD', 'KUBECONFIG', 'REGISTRY_USERNAME', 'REGISTRY_PASSWORD']
    for (const ci of ['github', 'gitlab'] as const) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
      await initProject({...base, directory: dir, ci}, ctx())
      const text = await readFile(
        path.join(dir, ci === 'github' ? '.github/workflows/release.yml' : '.gitlab-ci.yml'),
        'utf8',
      )
      expect(text).toContain('npm ci --omit=dev --prefix services')
      expect(text).toContain('--key env://COSIGN_PRIVATE_KEY')
      // Scan before signing (a failing scan signs nothing), SARIF for code scanning; sign attaches the attestations.
      expect(text.indexOf('retailops scan --fail-on critical --sarif retailops-scan.sarif')).toBeGreaterThan(
        text.indexOf('retailops push'),
      )
      expect(text.indexOf('retailops scan')).toBeLessThan(text.indexOf('retailops sign'))
      if (ci === 'github') {
        expect(text).toContain(`RETAILOPS_VERSION: "${version}"`)
        expect(text).toContain('npm install --global "retailops@${RETAILOPS_VERSION}"')
      } else {
        // The GitLab jobs run the runner image (which holds the CLI), pinned later by `retailops runner build`.
        expect(text).not.toContain('npm install')
        expect(parse(text).default.image).toEqual({
          name: 'run `retailops runner build` to pin the runner image here',
          entrypoint: [''],
        })
        expect(text).toMatch(/^ {4}name: .* # retailops runner image \(not pinned yet\)/m)
      }
      const header = text.slice(0, text.search(/^(name|stages):/m))
      for (const secret of secrets) expect(header).toContain(secret)
      if (ci === 'github') {
        expect([...text.matchAll(/uses: (\S+)/g)].map((m) => m[1])).toEqual([
          'actions/checkout@v4',
          'actions/setup-node@v4',
        ])
        // The SARIF goes to code scanning through the REST API with the job's own token, not an action.
        expect(text).toContain('/code-scanning/sarifs')
        expect(text).toContain('GITHUB_TOKEN: ${{ github.token }}')
        expect(text).toContain('security-events: write')
        expect([...text.matchAll(/\$\{\{ secrets\.(\w+) \}\}/g)].map((m) => m[1]).sort()).toEqual([...secrets].sort())
      } else {
        expect(text).toContain('.retailops/artifacts.lock.json')
        expect(text).toMatch(/docker:[\d.]+-dind/)
      }
      const readme = await readFile(path.join(dir, 'README.md'), 'utf8')
      for (const secret of secrets) expect(readme).toContain(`\`${secret}\``)
    }
  })

  it("--runner-image pins the GitLab jobs' image by digest; a tag, or another pipeline, is refused before anything is written", async () => {
    const image = `127.0.0.1:5000/shop/retailops-runner@sha256:${'a'.repeat(64)}`
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    const result = await initProject({...base, directory: dir, ci: 'gitlab', runnerImage: image}, ctx())
    expect(parse(await readFile(path.join(dir, '.gitlab-ci.yml'), 'utf8')).default.image.name).toBe(image)
    expect(result.nextSteps.join('\n')).not.toContain('runner build')
    const fresh = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    const gitlab = await initProject({...base, directory: path.join(fresh, 'g'), ci: 'gitlab'}, ctx())
    expect(gitlab.nextSteps.join('\n')).toContain('retailops runner build')
    for (const [ci, runnerImage, message] of [
      ['gitlab', '127.0.0.1:5000/shop/retailops-runner:0.1.0', /never a tag/],
      ['gitlab', 'not a reference!', /is not an image reference/],
      ['github', image, /--ci github does not use it/],
    ] as const) {
      const target = path.join(fresh, `refused-${ci}-${runnerImage.length}`)
      await expect(initProject({...base, directory: target, ci, runnerImage}, ctx())).rejects.toMatchObject({
        exit: 'USAGE',
        message: expect.stringMatching(message),
      })
      expect(existsSync(target)).toBe(false)
    }
  })

  it("runner build pins the runner image on the GitLab pipeline's marked line only, and names a pipeline without the marker", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await initProject({...base, directory: dir, ci: 'gitlab'}, ctx())
    const file = path.join(dir, '.gitlab-ci.yml')
    const before = await readFile(file, 'utf8')
    const image = `127.0.0.1:5000/shop/retailops-runner@sha256:${'b'.repeat(64)}`
    expect(await pinPipelines(dir, image, '9.9.9', ctx())).toEqual(['.gitlab-ci.yml'])
    const after = await readFile(file, 'utf8')
    expect(parse(after).default.image).toEqual({name: image, entrypoint: ['']})
    // One line changed, and it keeps its marker for the next pin.
    const changed = after.split('\n').filter((line, i) => line !== before.split('\n')[i])
    expect(changed).toEqual([
      `    name: ${image}  # retailops runner image (retailops 9.9.9): pinned by \`retailops runner build\``,
    ])
    const newer = image.replace(/b{64}/, 'c'.repeat(64))
    await pinPipelines(dir, newer, '9.9.10', ctx())
    expect(parse(await readFile(file, 'utf8')).default.image.name).toBe(newer)
    // Without the marker: left alone, and said so.
    await writeFile(file, 'default:\n  image: node:24\n')
    const c = ctx()
    expect(await pinPipelines(dir, image, '9.9.9', c)).toEqual([])
    expect(await readFile(file, 'utf8')).toBe('default:\n  image: node:24\n')
    expect(c.out.warnings.join('\n')).toContain(`set its jobs' image to ${image}`)
  })

  it('keeps a README.md the folder already has (warning), and writes the rest', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await writeFile(path.join(dir, 'README.md'), 'mine\n')
    const c = ctx()
    await initProject({...base, directory: dir}, c)
    expect(await readFile(path.join(dir, 'README.md'), 'utf8')).toBe('mine\n')
    expect(c.out.warnings.join('\n')).toMatch(/README.md exists and was kept/)
    expect(existsSync(path.join(dir, '.github/workflows/release.yml'))).toBe(true)
  })

  it('changes nothing when a file exists and --force is not given', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await writeFile(path.join(dir, 'retailops.yaml'), 'mine\n')
    await expect(initProject({...base, directory: dir}, ctx())).rejects.toThrow(/already has retailops.yaml/)
    expect(await readFile(path.join(dir, 'retailops.yaml'), 'utf8')).toBe('mine\n')
    expect(existsSync(path.join(dir, 'k6'))).toBe(false)
  })

  it('refuses unknown services and missing dependencies before writing', async () => {
    const dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'ro-init-')), 'p')
    await expect(initProject({...base, directory: dir, services: ['search']}, ctx())).rejects.toMatchObject({
      exit: 'NOT_FOUND',
    })
    await expect(initProject({...base, directory: dir, services: ['checkout']}, ctx())).rejects.toThrow(
      /depends on inventory, payments, orders/,
    )
    expect(existsSync(dir)).toBe(false)
  })
})

describe('initProject with hostile flag values', () => {
  const tricky = [
    'team: prod # main',
    'say "hi" and \'bye\'',
    'line one\nservices: {}\nproject: evil',
    '#not-a-comment',
    'tab\there, back\\slash, ü 🛒',
    '- [list] {map} &anchor *alias !tag %directive @at `tick`',
  ]

  it.each(tricky)('keeps %j exactly as the kube context, adding no key', async (value) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await initProject(
      {...base, directory: dir, services: ['catalog'], context: value, prometheus: 'http://127.0.0.1:9090/#frag'},
      ctx(),
    )
    const loaded = await loadConfig(path.join(dir, 'retailops.yaml'))
    expect(loaded.config.clusters.main.context).toBe(value)
    expect(loaded.config.project).toBe('shop')
    expect(Object.keys(loaded.config.services)).toEqual(['catalog'])
    expect(loaded.config.environments.production.prometheus).toBe('http://127.0.0.1:9090/#frag')
  })

  it('quotes the registry, and refuses a project or namespace that is not a DNS label before writing anything', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
    await initProject(
      {...base, directory: dir, services: ['catalog'], registry: 'registry.example.com:5000 # mirror'},
      ctx(),
    )
    expect((await loadConfig(path.join(dir, 'retailops.yaml'))).config.registry).toMatchObject({
      url: 'registry.example.com:5000 # mirror',
      insecure: false,
    })

    const empty = path.join(await mkdtemp(path.join(os.tmpdir(), 'ro-init-')), 'p')
    await expect(
      initProject({...base, directory: empty, project: 'shop\nregistry: {url: evil}'}, ctx()),
    ).rejects.toMatchObject({exit: 'CONFIG', message: expect.stringContaining('project')})
    await expect(initProject({...base, directory: empty, namespace: 'ns: x'}, ctx())).rejects.toMatchObject({
      exit: 'CONFIG',
      message: expect.stringContaining('environments.production.namespace'),
    })
    expect(existsSync(empty)).toBe(false)
  })

  it('marks only a loopback registry insecure (127.example.com is not one)', async () => {
    for (const [registry, insecure] of [
      ['127.0.0.1:5000', true],
      ['[::1]:5000', true],
      ['localhost:5000', true],
      ['127.example.com:5000', false],
      ['localhost.example.com', false],
    ] as const) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-init-'))
      await initProject({...base, directory: dir, services: ['catalog'], registry}, ctx())
      expect((await loadConfig(path.join(dir, 'retailops.yaml'))).config.registry, registry).toEqual({
        url: registry,
        insecure,
      })
    }
  })
})

describe('addService', () => {
  it('adds the skeleton and a config entry, keeping comments', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-add-'))
    await initProject({...base, directory: dir, services: ['catalog']}, ctx())
    const project = await loadConfig(path.join(dir, 'retailops.yaml'))
    const result = await addService(project, {name: 'recommendations', tier: 'tolerant', rpsPerPod: 300}, ctx())
    expect(result.files).toEqual([
      'services/recommendations/Dockerfile',
      'services/recommendations/Dockerfile.dockerignore',
      'services/recommendations/src/main.ts',
    ])
    const text = await readFile(path.join(dir, 'retailops.yaml'), 'utf8')
    expect(text).toContain('# retailops configuration.')
    const reloaded = await loadConfig(path.join(dir, 'retailops.yaml'))
    expect(reloaded.config.services.recommendations).toMatchObject({
      tier: 'tolerant',
      scaling: {rpsPerPod: 300, minReplicas: 1},
    })
    await expect(addService(reloaded, {name: 'recommendations', tier: 'tolerant'}, ctx())).rejects.toThrow(
      /already exists/,
    )
    await expect(addService(reloaded, {name: 'Bad_Name', tier: 'tolerant'}, ctx())).rejects.toMatchObject({
      exit: 'USAGE',
    })
  })
})

describe('the service skeleton', () => {
  it('runs as a real service with probes and metrics', async () => {
    const {execa} = await import('execa')
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ro-skel-'))
    await initProject({...base, directory: dir, services: ['catalog']}, ctx())
    const project = await loadConfig(path.join(dir, 'retailops.yaml'))
    await addService(project, {name: 'hello', tier: 'tolerant'}, ctx())
    // The copied services use the repository's installed dependencies.
    const {symlink} = await import('node:fs/promises')
    await symlink(path.resolve('services/node_modules'), path.join(dir, 'services/node_modules'))
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    const child = execa(process.execPath, ['hello/src/main.ts'], {
      cwd: path.join(dir, 'services'),
      env: {PORT: String(port), HOST: '127.0.0.1'},
      reject: false,
    })
    try {
      let ready: Response | undefined
      // Up to 30 s: Node's type stripping of the service on a loaded 2-core machine can take seconds.
      for (let i = 0; i < 300 && !ready?.ok; i++) {
        ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
        if (!ready?.ok) await new Promise((r) => setTimeout(r, 100))
      }
      expect(ready?.status).toBe(200)
      expect(await (await fetch(`http://127.0.0.1:${port}/hello`)).json()).toEqual({service: 'hello', message: 'hello'})
      expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(
        /http_requests_total\{[^}]*route="\/hello"/,
      )
    } finally {
      child.kill('SIGTERM')
      expect((await child).exitCode).toBe(0)
    }
  }, 60_000)
})
