// The pipelines `retailops init --ci github|gitlab` writes, executed as their runners would (see
// runner.ts for exactly what stands in for the hosted runner), on two pushes each against the
// sandbox: the first releases everything, the second changes catalog only, which is rebuilt,
// pushed, signed and released by canary while real load reaches both versions; inventory is
// reported unchanged and left alone. Only the five documented secrets come from outside the
// repository (for GitLab also DOCKER_AUTH_CONFIG, which the GitLab runner itself reads to pull the
// job image). The GitLab jobs run inside the retailops runner image the pipeline pins by digest,
// built by `retailops runner build` in the scaffolded project. Needs `npm run build` first (the
// GitHub workflow installs `npm pack` of this repository; the runner image copies dist/).
import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {createServer, type Server} from 'node:http'
import {appendFile, cp, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'

import * as k8s from '@kubernetes/client-node'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseDocument, stringify} from 'yaml'

import {type AuthRegistry, startAuthRegistry} from '../helpers/auth-registry.js'
import {kubeConfig, sandboxEnv} from '../../support/sandbox.js'
import {runGithubWorkflow, runGitlabPipeline, type RunnerOptions, type StepResult} from './runner.js'
import {RegistryClient} from '../../../src/docker/registry.js'
import {BUNDLE_MEDIA_TYPE} from '../../../src/signing/bundle.js'
import {loadPublicKey} from '../../../src/signing/keys.js'
import {PREDICATE_TYPES, readAttestations} from '../../../src/supplychain/evidence.js'
import {runCli} from '../../support/cli.js'
import {randomName} from '../../support/names.js'

const ROOT = path.resolve(import.meta.dirname, '../../..')
const PASSWORD = `ci-${randomBytes(6).toString('hex')}`
const NODE_MAJOR = Number(process.versions.node.split('.')[0])
/** A real package version of the bundled services' lockfile, and an OSV record for it (medium: below the scaffold's failOn critical). */
const OSV_VERSION = '0.1.3'
const OSV_RECORD = {
  schema_version: '1.6.0',
  id: 'TEST-CI-0001',
  aliases: ['CVE-2099-1001'],
  modified: new Date().toISOString(),
  summary: 'a record the pipeline test writes',
  affected: [{package: {ecosystem: 'npm', name: 'tdigest'}, versions: [OSV_VERSION]}],
  severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N'}],
}

describe('the scaffolded CI pipelines, run as their runners run them', () => {
  const sandbox = sandboxEnv()
  let work: string
  let registry: AuthRegistry
  let tarball: string
  let version: string
  let kubeconfigContents: string
  const namespaces: string[] = []
  const kc = kubeConfig(sandbox)
  const apps = kc.makeApiClient(k8s.AppsV1Api)
  // GitHub's code-scanning API as the upload step reaches it (api.github.com cannot be reached from
  // here): a server on 127.0.0.1 that keeps every request and answers as GitHub does (202).
  const GITHUB_TOKEN = `ghs_${randomBytes(12).toString('hex')}`
  const uploads: {method: string; url: string; authorization?: string; body: string}[] = []
  let codeScanning: Server
  let codeScanningUrl: string

  beforeAll(async () => {
    codeScanning = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        uploads.push({
          method: req.method ?? '',
          url: req.url ?? '',
          authorization: req.headers.authorization,
          body: Buffer.concat(chunks).toString('utf8'),
        })
        const ok = req.headers.authorization === `Bearer ${GITHUB_TOKEN}`
        res.writeHead(ok ? 202 : 401, {'content-type': 'application/json'})
        res.end(JSON.stringify(ok ? {id: randomBytes(8).toString('hex')} : {message: 'Bad credentials'}))
      })
    })
    await new Promise<void>((resolve) => codeScanning.listen(0, '127.0.0.1', resolve))
    codeScanningUrl = `http://127.0.0.1:${(codeScanning.address() as {port: number}).port}`
    if (!existsSync(path.join(ROOT, 'dist', 'commands', 'init.js')))
      throw new Error(
        'dist/ is missing: run `npm run build` first (the pipelines install `npm pack` of this repository).',
      )
    if (NODE_MAJOR !== 24)
      throw new Error(
        `the runner stands in with this Node (${process.versions.node}); run the tests with Node 24 (scripts/setup-node.sh)`,
      )
    work = await mkdtemp(path.join(os.tmpdir(), 't-ci-'))
    version = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {version: string}).version
    const pack = await execa('npm', ['pack', '--pack-destination', work, '--json'], {cwd: ROOT})
    tarball = path.join(work, (JSON.parse(pack.stdout) as {filename: string}[])[0].filename)
    registry = await startAuthRegistry('ci', PASSWORD)
    // The secret a user pastes: `kubectl config view --raw --minify --flatten` (certificates inline,
    // no file paths of this machine: the GitLab jobs run in a container that has none of them).
    const own = new k8s.KubeConfig()
    own.loadFromFile(sandbox.kubeconfig)
    own.setCurrentContext(sandbox.context)
    const cluster = own.getCurrentCluster()!
    const user = own.getCurrentUser()!
    const inline = async (data: string | undefined, file: string | undefined) =>
      data ?? (file ? (await readFile(file)).toString('base64') : undefined)
    kubeconfigContents = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: cluster.name,
          cluster: {server: cluster.server, 'certificate-authority-data': await inline(cluster.caData, cluster.caFile)},
        },
      ],
      users: [
        {
          name: user.name,
          user: {
            'client-certificate-data': await inline(user.certData, user.certFile),
            'client-key-data': await inline(user.keyData, user.keyFile),
            ...(user.token ? {token: user.token} : {}),
          },
        },
      ],
      contexts: [{name: sandbox.context, context: {cluster: cluster.name, user: user.name}}],
      'current-context': sandbox.context,
    })
  }, 180_000)

  afterAll(async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api)
    for (const ns of namespaces) await core.deleteNamespace({name: ns}).catch(() => undefined)
    await registry?.stop()
    await new Promise((resolve) => codeScanning?.close(resolve))
    if (work) await rm(work, {recursive: true, force: true})
  })

  /** A project as a user scaffolds it, with its signing key made, committed to a repository the runner clones. */
  async function scaffold(
    ci: 'github' | 'gitlab',
  ): Promise<{origin: string; project: string; namespace: string; secrets: Record<string, string>}> {
    const project = randomName(`t-ci-${ci}`)
    const namespace = project
    namespaces.push(namespace)
    const origin = path.join(work, `${ci}-origin`)
    // Every step of the scaffold must succeed: a failed one throws with its output.
    const cli = async (args: string[], env: Record<string, string> = {}, cwd = origin) => {
      const r = await runCli(args, {cwd, env, built: true})
      if (r.exitCode !== 0)
        throw new Error(`retailops ${args.join(' ')} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`)
      return r
    }
    await cli(
      [
        'init',
        '--directory',
        origin,
        '--project',
        project,
        '--registry',
        registry.registry,
        '--kube-context',
        sandbox.context,
        '--target-namespace',
        namespace,
        '--prometheus',
        sandbox.prometheusUrl,
        '--services',
        'catalog,inventory',
        '--ci',
        ci,
        '--yes',
        '--json',
      ],
      {},
      work,
    )
    // The project's own choices: the sandbox's Node 24 base image (no Docker Hub here) and a short canary for catalog.
    const doc = parseDocument(await readFile(path.join(origin, 'retailops.yaml'), 'utf8'))
    for (const s of ['catalog', 'inventory'])
      doc.setIn(['services', s, 'build', 'args'], {BASE_IMAGE: sandbox.baseImageRemote})
    doc.setIn(['services', 'catalog', 'rollout'], {
      strategy: 'canary',
      steps: [{setWeight: 50}, {analysis: {count: 3}}],
      analysis: {interval: '20s', count: 3},
    })
    // The OSV database, committed as the scaffold's retailops.yaml says (no internet here: one record
    // the test writes, for a real package version of the services' lockfile, below the policy's failOn).
    doc.setIn(['supplyChain', 'vulnerabilityDatabase'], '.retailops/osv')
    await mkdir(path.join(origin, '.retailops/osv'), {recursive: true})
    await writeFile(path.join(origin, '.retailops/osv', `${OSV_RECORD.id}.json`), JSON.stringify(OSV_RECORD))
    await writeFile(path.join(origin, 'retailops.yaml'), doc.toString())
    await cli(['keys', 'generate', '--json'], {COSIGN_PASSWORD: PASSWORD})
    if (ci === 'gitlab') {
      await cp(path.join(os.homedir(), '.npm'), path.join(work, 'gitlab-cache', 'npm', '.npm'), {recursive: true})
      // The GitLab jobs run the runner image: the user builds, pushes and signs it once, which pins its digest in .gitlab-ci.yml.
      const built = await cli(['runner', 'build', '--base-image', sandbox.baseImage, '--json'], {
        COSIGN_PASSWORD: PASSWORD,
        REGISTRY_USERNAME: 'ci',
        REGISTRY_PASSWORD: PASSWORD,
        DOCKER_HOST: sandbox.dockerHost,
      })
      const runner = JSON.parse(built.stdout).result as {image: string; pinned: string[]}
      expect(runner.pinned).toEqual(['.gitlab-ci.yml'])
      const pinned = parseDocument(await readFile(path.join(origin, '.gitlab-ci.yml'), 'utf8')).getIn([
        'default',
        'image',
        'name',
      ])
      expect(pinned).toBe(runner.image)
      expect(runner.image).toMatch(
        new RegExp(`^${registry.registry.replace(/\./g, '\\.')}/${project}/retailops-runner@sha256:[0-9a-f]{64}$`),
      )
      // The CLI in that image is the version that scaffolded the pipeline.
      const env = JSON.parse(
        (
          await execa('docker', ['image', 'inspect', '--format', '{{json .Config.Env}}', runner.image], {
            env: {DOCKER_HOST: sandbox.dockerHost},
          })
        ).stdout,
      ) as string[]
      expect(env).toContain(`RETAILOPS_RUNNER=${version}`)
    }
    const COSIGN_PRIVATE_KEY = await readFile(path.join(origin, '.retailops/cosign.key'), 'utf8')
    await rm(path.join(origin, '.retailops/cosign.key'))
    await execa('git', ['init', '--quiet', '--initial-branch', 'main'], {cwd: origin})
    await execa('git', ['add', '-A'], {cwd: origin})
    await execa(
      'git',
      ['-c', 'user.name=ci', '-c', 'user.email=ci@example.invalid', 'commit', '--quiet', '-m', 'scaffold'],
      {cwd: origin},
    )
    // Load for the canary runs the services from here (test infrastructure, not the pipeline).
    await cp(path.join(ROOT, 'services', 'node_modules'), path.join(origin, 'services', 'node_modules'), {
      recursive: true,
    })
    return {
      origin,
      project,
      namespace,
      secrets: {
        COSIGN_PRIVATE_KEY,
        COSIGN_PASSWORD: PASSWORD,
        KUBECONFIG: kubeconfigContents,
        REGISTRY_USERNAME: 'ci',
        REGISTRY_PASSWORD: PASSWORD,
        // GitLab's own variable for pulling job images from a registry that needs credentials (documented in the pipeline).
        ...(ci === 'gitlab'
          ? {
              DOCKER_AUTH_CONFIG: JSON.stringify({
                auths: {[registry.registry]: {auth: Buffer.from(`ci:${PASSWORD}`).toString('base64')}},
              }),
            }
          : {}),
      },
    }
  }

  async function commitChange(origin: string): Promise<void> {
    await appendFile(
      path.join(origin, 'services/catalog/src/main.ts'),
      `\n// release ${randomBytes(4).toString('hex')}\n`,
    )
    await execa(
      'git',
      ['-c', 'user.name=ci', '-c', 'user.email=ci@example.invalid', 'commit', '--quiet', '-am', 'catalog: a change'],
      {cwd: origin},
    )
  }

  function runnerOptions(
    origin: string,
    secrets: Record<string, string>,
    onStep?: RunnerOptions['onStep'],
  ): RunnerOptions {
    const home = path.join(work, randomName('home'))
    const prefix = path.join(home, 'npm-global')
    // GitLab's runner cache, as a previous pipeline left it: this machine's npm cache (no downloads here).
    const gitlabCache = path.join(work, 'gitlab-cache')
    return {
      origin,
      secrets,
      gitlabCache,
      tarball,
      version,
      nodeMajor: NODE_MAJOR,
      onStep,
      github: {apiUrl: codeScanningUrl, repository: 'retail/shop', ref: 'refs/heads/main', token: GITHUB_TOKEN},
      runnerEnv: {
        // The hosted runner's machine: Node 24 (setup-node / image node:24) with npm's global bin on PATH, a home, a Docker Engine.
        PATH: [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(
          ':',
        ),
        HOME: home,
        DOCKER_HOST: sandbox.dockerHost,
        npm_config_prefix: prefix,
        // The runner's npm cache (a hosted runner downloads from the registry; here it is warm).
        npm_config_cache: path.join(os.homedir(), '.npm'),
        npm_config_prefer_offline: 'true',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        // How this machine trusts the registry (a TLS-inspecting proxy's CA), as a runner's network is set up
        // for it: without it, a package the cache does not describe yet fails SELF_SIGNED_CERT_IN_CHAIN, and npm
        // retries until the test times out.
        ...Object.fromEntries(
          ['NODE_EXTRA_CA_CERTS', 'npm_config_cafile', 'npm_config_ca']
            .filter((name) => process.env[name])
            .map((name) => [name, process.env[name]!]),
        ),
      },
    }
  }

  const json = (results: StepResult[], match: RegExp) => {
    const step = results.find((r) => match.test(r.name))
    if (!step) throw new Error(`no step matching ${match} ran; steps: ${results.map((r) => r.name).join(' | ')}`)
    return (JSON.parse(step.stdout) as {status: number; result: Record<string, unknown>}).result as Record<string, any>
  }

  const deployed = async (namespace: string) => {
    const list = await apps.listNamespacedDeployment({namespace})
    return Object.fromEntries(
      list.items.map((d) => [
        d.metadata!.name!,
        {image: d.spec!.template.spec!.containers[0].image!, generation: d.metadata!.generation!},
      ]),
    )
  }

  // retailops signs as cosign v3 does: a Sigstore bundle referrer, listed (Debian's registry has no
  // referrers API) in the image index at the tag `sha256-<hex>`.
  const signatureExists = async (image: string) => {
    const [repo, digest] = image.replace(`${registry.registry}/`, '').split('@')
    const res = await fetch(`http://${registry.registry}/v2/${repo}/manifests/${digest.replace(':', '-')}`, {
      headers: {
        authorization: `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`,
        accept: 'application/vnd.oci.image.index.v1+json',
      },
    })
    if (res.status !== 200) return false
    const index = (await res.json()) as {manifests?: {artifactType?: string}[]}
    return (index.manifests ?? []).some((m) => m.artifactType === BUNDLE_MEDIA_TYPE)
  }

  /** The image's SBOM and provenance attestations, read back from the registry and verified with the project's public key. */
  const attestations = async (image: string, origin: string) => {
    const [repository, digest] = image.replace(`${registry.registry}/`, '').split('@')
    const client = new RegistryClient({
      registry: registry.registry,
      insecure: true,
      credentials: async () => ({username: 'ci', password: PASSWORD, serveraddress: registry.registry}),
    })
    const found = await readAttestations(
      client,
      {repository, digest},
      await loadPublicKey(path.join(origin, '.retailops/cosign.pub')),
      [PREDICATE_TYPES.cyclonedx, PREDICATE_TYPES.slsaprovenance1],
    )
    return {
      sbom: found[PREDICATE_TYPES.cyclonedx].status,
      provenance: found[PREDICATE_TYPES.slsaprovenance1].status,
      components: (
        (found[PREDICATE_TYPES.cyclonedx].predicate as {components?: {purl?: string}[]} | undefined)?.components ?? []
      ).map((c) => c.purl),
    }
  }

  /** What the scan step reported, and (GitHub) the SARIF the upload step posted to code scanning for this commit. */
  const scanned = async (results: StepResult[], ci: 'github' | 'gitlab', origin: string) => {
    const scan = json(results, /retailops scan/)
    const ids = JSON.stringify(scan).includes(OSV_RECORD.id)
    if (ci === 'github') {
      expect(results.some((r) => /Upload the findings to code scanning/.test(r.name))).toBe(true)
      expect(uploads, 'one request to the code-scanning API').toHaveLength(1)
      const [upload] = uploads.splice(0)
      expect(upload).toMatchObject({
        method: 'POST',
        url: '/repos/retail/shop/code-scanning/sarifs',
        authorization: `Bearer ${GITHUB_TOKEN}`,
      })
      const body = JSON.parse(upload.body) as {commit_sha: string; ref: string; sarif: string}
      const head = (await execa('git', ['rev-parse', 'HEAD'], {cwd: origin})).stdout.trim()
      expect({commit_sha: body.commit_sha, ref: body.ref}).toEqual({commit_sha: head, ref: 'refs/heads/main'})
      const sarif = JSON.parse(gunzipSync(Buffer.from(body.sarif, 'base64')).toString('utf8')) as {
        version: string
        runs: {automationDetails: {id: string}; results: {ruleId: string}[]}[]
      }
      expect(sarif.version).toBe('2.1.0')
      expect(sarif.runs[0].automationDetails.id).toBe('retailops-scan/')
      expect(sarif.runs[0].results.map((r) => r.ruleId)).toContain(OSV_RECORD.id)
    }
    return ids
  }

  /** The demo's traffic helper: stable and canary processes registered with Prometheus, load until the rollout ends. */
  function startLoad(projectDir: string, namespace: string): {child: ChildProcess; log: () => string} {
    let log = ''
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'scripts/demo/traffic.mjs'),
        '--project',
        projectDir,
        '--service',
        'catalog',
        '--namespace',
        namespace,
        '--max-seconds',
        '600',
      ],
      {
        env: {...process.env, RETAILOPS_KUBE_CONTEXT: sandbox.context},
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    child.stderr.on('data', (d) => (log += String(d)))
    return {child, log: () => log}
  }

  async function twoPushes(ci: 'github' | 'gitlab'): Promise<void> {
    const run = ci === 'github' ? runGithubWorkflow : runGitlabPipeline
    const file = ci === 'github' ? '.github/workflows/release.yml' : '.gitlab-ci.yml'
    const {origin, project, namespace, secrets} = await scaffold(ci)
    const pipeline = await readFile(path.join(origin, file), 'utf8')
    for (const secret of Object.keys(secrets))
      expect(pipeline.split('\n').slice(0, 30).join('\n'), `${secret} documented at the top`).toContain(secret)
    expect(await readFile(path.join(origin, 'README.md'), 'utf8')).toContain('COSIGN_PRIVATE_KEY')

    // Push 1: everything is new.
    const first = await run(file, pipeline, runnerOptions(origin, secrets))
    expect(first.every((s) => s.exitCode === 0)).toBe(true)
    const build1 = json(first, /retailops build/i)
    expect(build1.built.sort()).toEqual(['catalog', 'inventory'])
    const after1 = await deployed(namespace)
    expect(Object.keys(after1).sort()).toEqual(['catalog', 'inventory'])
    for (const s of ['catalog', 'inventory']) {
      expect(after1[s].image).toMatch(
        new RegExp(`^${registry.registry.replace(/\./g, '\\.')}/${project}/${s}@sha256:[0-9a-f]{64}$`),
      )
      expect(await signatureExists(after1[s].image), `${s} signed`).toBe(true)
      const attested = await attestations(after1[s].image, origin)
      expect({sbom: attested.sbom, provenance: attested.provenance}, `${s} attested`).toEqual({
        sbom: 'verified',
        provenance: 'verified',
      })
      expect(attested.components).toContain(`pkg:npm/${OSV_RECORD.affected[0].package.name}@${OSV_VERSION}`)
    }
    // The scan found the committed record's vulnerability (below failOn: reported, not failing), and deploy admitted every image.
    expect(await scanned(first, ci, origin)).toBe(true)
    const deploy1 = json(first, /deploy --canary/)
    expect(deploy1.supplyChain.outcome).toBe('admitted')
    expect(deploy1.supplyChain.decisions.map((d: {admitted: boolean}) => d.admitted)).toEqual([true, true])

    // Push 2: catalog changes; it is released by canary under load, inventory is left alone.
    await commitChange(origin)
    let load: ReturnType<typeof startLoad> | undefined
    const second = await run(
      file,
      pipeline,
      runnerOptions(origin, secrets, (name) => {
        if (/deploy --canary/.test(name) && !load) load = startLoad(origin, namespace)
      }),
    ).finally(async () => {
      // The helper stops by itself once it sees the rollout end; a failed pipeline may leave it waiting.
      if (load && load.child.exitCode === null) {
        const exited = new Promise((r) => load!.child.once('exit', r))
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))])
        if (load.child.exitCode === null) load.child.kill('SIGTERM')
        await exited
      }
    })
    expect(second.every((s) => s.exitCode === 0)).toBe(true)
    await scanned(second, ci, origin)
    const build2 = json(second, /retailops build/i)
    expect(build2.built).toEqual(['catalog'])
    expect(build2.skipped).toEqual(['inventory'])
    const push2 = json(second, /retailops push/i)
    expect(push2.pushed).toEqual(['catalog'])
    expect(push2.unchanged).toEqual(['inventory'])
    const deploy2 = json(second, /deploy --canary/)
    const catalogRollout = deploy2.release.rollouts.find((r: {service: string}) => r.service === 'catalog')
    expect(catalogRollout, JSON.stringify(deploy2.release)).toMatchObject({phase: 'Healthy'})
    expect(deploy2.release.rollouts.map((r: {service: string}) => r.service)).toEqual(['catalog'])
    const after2 = await deployed(namespace)
    expect(after2.catalog.image).not.toBe(after1.catalog.image)
    expect(after2.catalog.image).toBe(push2.services.find((s: {service: string}) => s.service === 'catalog').image)
    expect(await signatureExists(after2.catalog.image)).toBe(true)
    expect(await attestations(after2.catalog.image, origin)).toMatchObject({sbom: 'verified', provenance: 'verified'})
    expect(deploy2.supplyChain.outcome).toBe('admitted')
    expect(after2.inventory).toEqual(after1.inventory)
    expect(load?.log()).toMatch(/sent [1-9]\d* requests/)
  }

  it('GitHub Actions: first push releases everything; a push changing catalog releases it by canary and skips inventory', async () => {
    await twoPushes('github')
  }, 900_000)

  it('GitLab CI: the same, with the artifacts lock passed from the build job to the release job', async () => {
    await twoPushes('gitlab')
  }, 900_000)
})
