import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {renderStep, runDeploy} from '../../../src/deploy/engine.js'
import {type RegistryClient, registryClient} from '../../../src/docker/registry.js'
import {kubeClients, kubeHttp} from '../../../src/kubernetes/client.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {release} from '../../../src/rollout/release.js'
import {resolveEnvironment} from '../../../src/config/resolve.js'
import {decryptPrivateKey, writeKeyPair} from '../../../src/signing/keys.js'
import {signImage} from '../../../src/signing/sign.js'
import {pushMinimalImage} from '../docker/helpers.js'
import {
  baseConfig,
  CONTEXT,
  kubeProject,
  projectNs,
  SECURE_SERVICE,
  snapshot,
  type KubeProject,
} from '../kubernetes/helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'
import {sandboxEnv} from '../../support/sandbox.js'

const env = sandboxEnv()
const REGISTRY = env.registry
const PASSWORD = 'admission-test-passphrase'

/** A vulnerable package of the SBOMs the test attests: a real package and version of the bundled services' lockfiles. */
const VULNERABLE = {name: 'prom-client', version: '15.1.3'}
const HIGH = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' // 7.5
const MEDIUM = 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N' // 4.2

/**
 * Issue 16 item 5: supplyChain.policy enforced by deploy before anything is applied, against the
 * sandbox's registry and cluster. Signatures are retailops'; the SBOM (CycloneDX) and SLSA
 * provenance attestations are made by the real cosign v3 with its defaults (`cosign attest`,
 * bundles as OCI referrers), one image per case. After every refusal the cluster is read back:
 * nothing was created or changed.
 */
describe('deploy admits images by the supply-chain policy (sandbox registry, cosign v3 and apiserver)', () => {
  let t: KubeProject
  let client: RegistryClient
  let dir: string
  const repo = (name: string) => `${t.name}/${name}`
  const images: Record<string, string> = {}
  const cosignEnv = {
    COSIGN_PASSWORD: PASSWORD,
    COSIGN_YES: 'true',
    TUF_ROOT: path.join(os.tmpdir(), 'retailops-cosign-tuf'),
    HOME: os.tmpdir(),
  }
  const attest = async (
    image: string,
    type: 'cyclonedx' | 'slsaprovenance1',
    predicate: unknown,
    key = 'cosign.key',
  ) => {
    const file = path.join(dir, `${type}-${Math.random().toString(36).slice(2)}.json`)
    writeFileSync(file, JSON.stringify(predicate))
    const r = await execa(
      env.cosign3,
      [
        'attest',
        '--key',
        path.join(dir, key),
        '--type',
        type,
        '--predicate',
        file,
        '--use-signing-config=false',
        '--tlog-upload=false',
        '--allow-http-registry',
        '--allow-insecure-registry',
        '-y',
        image,
      ],
      {cwd: dir, env: cosignEnv, reject: false},
    )
    expect(r.exitCode, r.stderr).toBe(0)
  }
  const sbom = (packages: {name: string; version: string}[]) => ({
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    metadata: {component: {type: 'container', name: 'catalog'}},
    components: packages.map((p) => ({
      type: 'library',
      name: p.name,
      version: p.version,
      purl: `pkg:npm/${p.name}@${p.version}`,
      'bom-ref': `pkg:npm/${p.name}@${p.version}`,
    })),
  })
  const provenance = (image: string) => ({
    buildDefinition: {
      buildType: 'https://retailops.dev/build/v1',
      externalParameters: {service: 'catalog'},
      resolvedDependencies: [{uri: 'git+https://example.invalid/shop.git', digest: {gitCommit: 'a'.repeat(40)}}],
    },
    runDetails: {builder: {id: 'https://retailops.dev/builder/test'}, metadata: {invocationId: image}},
  })
  /** Pushes a minimal image and gives it what `pieces` names. */
  const prepare = async (
    name: string,
    pieces: {sign?: boolean; sbom?: {name: string; version: string}[]; sbomKey?: string; provenance?: boolean},
  ) => {
    const digest = await pushMinimalImage(client, repo('catalog'), name)
    const image = `${REGISTRY}/${repo('catalog')}@${digest}`
    if (pieces.sign)
      await signImage(
        {registry: REGISTRY, repository: repo('catalog'), digest},
        decryptPrivateKey(keys.privateKeyPem, PASSWORD),
        client,
        testContext(),
      )
    if (pieces.sbom) await attest(image, 'cyclonedx', sbom(pieces.sbom), pieces.sbomKey)
    if (pieces.provenance) await attest(image, 'slsaprovenance1', provenance(image))
    images[name] = image
    return image
  }
  let keys: {privateKeyPem: string}
  const lock = (image: string) =>
    writeFileSync(
      path.join(t.dir, '.retailops/artifacts.lock.json'),
      JSON.stringify({
        lockfileVersion: 1,
        artifacts: {
          catalog: {
            repository: `${REGISTRY}/${repo('catalog')}`,
            digest: image.split('@')[1],
            image,
            tag: 'test',
            pushedAt: new Date().toISOString(),
          },
        },
      }),
    )
  const waivers = (entries: {id: string; service: string; reason: string; expires: string}[]) =>
    writeFileSync(
      path.join(t.dir, '.retailops/waivers.yaml'),
      `waivers:\n${entries.map((e) => `  - ${JSON.stringify(e)}`).join('\n')}\n`,
    )
  const namespaceObjects = async (namespace: string) => {
    const http = kubeHttp({context: CONTEXT})
    const ns = await http.request('GET', `/api/v1/namespaces/${namespace}`).catch(() => undefined)
    if (!ns) return undefined
    const list = await http.request<{items: KubeObject[]}>('GET', `/apis/apps/v1/namespaces/${namespace}/deployments`)
    return list.items.map((d) => d.metadata.name)
  }
  const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10)

  beforeAll(async () => {
    t = kubeProject()
    dir = t.dir
    t.config = {
      ...baseConfig(t, {catalog: SECURE_SERVICE}),
      supplyChain: {
        vulnerabilityDatabase: 'osv',
        policy: {failOn: 'high'},
      },
    }
    t.writeConfig()
    mkdirSync(path.join(t.dir, '.retailops'), {recursive: true})
    await writeKeyPair({
      keyPath: path.join(dir, 'cosign.key'),
      publicKeyPath: path.join(dir, '.retailops/cosign.pub'),
      passphrase: PASSWORD,
    })
    keys = {privateKeyPem: readFileSync(path.join(dir, 'cosign.key'), 'utf8')}
    // Another team's key: its attestations must not count.
    await writeKeyPair({
      keyPath: path.join(dir, 'other.key'),
      publicKeyPath: path.join(dir, 'other.pub'),
      passphrase: PASSWORD,
    })
    // The OSV database: records the test writes for real package versions (no network here).
    mkdirSync(path.join(t.dir, 'osv'), {recursive: true})
    const record = (id: string, alias: string, name: string, vector: string) => ({
      schema_version: '1.6.0',
      id,
      aliases: [alias],
      modified: new Date().toISOString(),
      published: new Date().toISOString(),
      summary: `test record for ${name}`,
      affected: [
        {package: {ecosystem: 'npm', name}, ranges: [{type: 'SEMVER', events: [{introduced: '0'}, {fixed: '99.0.0'}]}]},
      ],
      severity: [{type: 'CVSS_V3', score: vector}],
    })
    writeFileSync(
      path.join(t.dir, 'osv/GHSA-tsta-high-0001.json'),
      JSON.stringify(record('GHSA-tsta-high-0001', 'CVE-2099-0001', VULNERABLE.name, HIGH)),
    )
    writeFileSync(
      path.join(t.dir, 'osv/GHSA-tsta-medm-0002.json'),
      JSON.stringify(record('GHSA-tsta-medm-0002', 'CVE-2099-0002', 'tdigest', MEDIUM)),
    )
    client = await registryClient(REGISTRY, {insecure: true})
    const clean = [
      {name: 'tdigest', version: '2.6.9'},
      {name: 'bintrees', version: '1.0.2'},
    ]
    const vulnerable = [...clean, VULNERABLE]
    await prepare('unsigned', {sbom: clean, provenance: true})
    await prepare('no-sbom', {sign: true, provenance: true})
    await prepare('other-key', {sign: true, sbom: clean, sbomKey: 'other.key', provenance: true})
    await prepare('no-provenance', {sign: true, sbom: clean})
    await prepare('vulnerable', {sign: true, sbom: vulnerable, provenance: true})
    await prepare('clean', {sign: true, sbom: clean, provenance: true})
  }, 240_000)
  afterAll(async () => t?.cleanup())

  const refused = async (image: string, rule: string) => {
    lock(image)
    const r = await runDeploy({project: await t.load()}, testContext())
    expect(r.outcome).toBe('SUPPLY_CHAIN_REFUSED')
    expect(r.apply.objects).toEqual([])
    const decision = r.supplyChain.decisions.find((d) => d.image === image)!
    expect(decision.admitted).toBe(false)
    const refusal = decision.refusals.find((x) => x.rule === rule)
    expect(refusal, JSON.stringify(decision.refusals)).toBeDefined()
    expect(refusal!.message).toContain(image)
    expect(refusal!.fix).not.toBe('')
    return {r, decision, refusal: refusal!}
  }

  it('refuses an unsigned image, naming the image, the rule and the fix; nothing is created', async () => {
    const {refusal, decision} = await refused(images.unsigned, 'signature')
    expect(refusal.fix).toContain('retailops sign catalog')
    expect(decision.evidence).toMatchObject({signature: 'missing', sbom: 'verified', provenance: 'verified'})
    expect(await namespaceObjects(projectNs(t))).toBeUndefined()
  })

  it('refuses an image without an SBOM attestation (and so without a vulnerability check)', async () => {
    const {decision} = await refused(images['no-sbom'], 'sbom')
    expect(decision.refusals.map((x) => x.rule)).toEqual(['sbom', 'vulnerability'])
    expect(await namespaceObjects(projectNs(t))).toBeUndefined()
  })

  it('refuses an SBOM attestation signed with another key', async () => {
    const {decision} = await refused(images['other-key'], 'sbom')
    expect(decision.evidence.sbom).toBe('invalid')
    expect(await namespaceObjects(projectNs(t))).toBeUndefined()
  })

  it('refuses an image without a provenance attestation', async () => {
    const {decision} = await refused(images['no-provenance'], 'provenance')
    expect(decision.refusals.map((x) => x.rule)).toEqual(['provenance'])
    expect(await namespaceObjects(projectNs(t))).toBeUndefined()
  })

  it('refuses a vulnerability at or above failOn through the CLI: exit 15, the package, the id and the fix', async () => {
    lock(images.vulnerable)
    const cli = await runCli(['deploy', '--json', '--config', path.join(t.dir, 'retailops.yaml')], {
      env: {NO_COLOR: '1'},
    })
    expect(cli.exitCode, cli.stderr).toBe(15)
    const doc = JSON.parse(cli.stdout) as {
      result: {
        outcome: string
        supplyChain: {
          decisions: {
            refusals: {rule: string; message: string; fix: string}[]
            vulnerabilities: {id: string; refused: boolean}[]
          }[]
        }
      }
    }
    expect(doc.result.outcome).toBe('SUPPLY_CHAIN_REFUSED')
    const [decision] = doc.result.supplyChain.decisions
    expect(decision.refusals).toEqual([
      expect.objectContaining({
        rule: 'vulnerability',
        message: expect.stringContaining(
          `${VULNERABLE.name}@${VULNERABLE.version} has GHSA-tsta-high-0001 / CVE-2099-0001, severity high`,
        ),
      }),
    ])
    expect(decision.refusals[0].fix).toContain('waivers.yaml')
    // The medium one is reported, not refused.
    expect(decision.vulnerabilities.map((v) => [v.id, v.refused]).sort()).toEqual([
      ['GHSA-tsta-high-0001', true],
      ['GHSA-tsta-medm-0002', false],
    ])
    expect(await namespaceObjects(projectNs(t))).toBeUndefined()
  })

  it('deploys the vulnerable image once a current waiver (by its CVE alias) covers it, and records the admission', async () => {
    waivers([
      {id: 'CVE-2099-0001', service: 'catalog', reason: 'the vulnerable parser is not reachable', expires: day(30)},
    ])
    lock(images.vulnerable)
    const r = await runDeploy({project: await t.load()}, testContext())
    expect({outcome: r.outcome, failed: r.apply.failed}).toEqual({outcome: 'OK', failed: []})
    expect(r.supplyChain.outcome).toBe('admitted')
    expect(
      r.supplyChain.decisions[0].vulnerabilities.find((v) => v.id === 'GHSA-tsta-high-0001')?.waiver,
    ).toMatchObject({
      id: 'CVE-2099-0001',
      expired: false,
    })
    const d = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    expect(d.spec?.template.spec?.containers[0].image).toBe(images.vulnerable)
    expect(d.metadata?.annotations?.['retailops.dev/supply-chain']).toBe('admitted')
  })

  it('an expired waiver waives nothing and is reported; the running Deployment is left exactly as it was', async () => {
    const live = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    const applySet = live.metadata!.labels!['retailops.dev/applyset']
    const before = await snapshot(applySet)
    waivers([
      {id: 'CVE-2099-0001', service: 'catalog', reason: 'the vulnerable parser is not reachable', expires: day(-2)},
    ])
    // A new build of the same vulnerable content: a change the deploy would apply.
    const ctx = testContext()
    lock(images.vulnerable)
    const r = await runDeploy({project: await t.load(), images: [`catalog=${images.vulnerable}`]}, ctx)
    expect(r.outcome).toBe('SUPPLY_CHAIN_REFUSED')
    expect(r.supplyChain.expiredWaivers).toEqual([expect.objectContaining({id: 'CVE-2099-0001', expires: day(-2)})])
    expect(r.supplyChain.decisions[0].refusals[0].message).toContain(`its waiver expired on ${day(-2)}`)
    expect(ctx.out.warnings.join('\n')).toMatch(/waiver of CVE-2099-0001 for catalog .* expired/)
    expect(await snapshot(applySet)).toEqual(before)
  })

  it('checks every image the objects run: an unsigned init container is refused by name, nothing changes', async () => {
    waivers([])
    lock(images.clean)
    const plan = await renderStep({project: await t.load()})
    const app = (
      plan.targets[0].objects.find((o) => o.kind === 'Deployment') as KubeObject & {
        spec: {template: {spec: {containers: Record<string, unknown>[]}}}
      }
    ).spec.template.spec.containers[0]
    const {readinessProbe: _r, livenessProbe: _l, startupProbe: _s, ports: _p, ...init} = app
    t.overlay('catalog', [
      {
        kind: 'Deployment',
        name: 'catalog',
        patch: {spec: {template: {spec: {initContainers: [{...init, name: 'migrate', image: images.unsigned}]}}}},
      },
    ])
    const live = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    const before = await snapshot(live.metadata!.labels!['retailops.dev/applyset'])
    const r = await runDeploy({project: await t.load()}, testContext())
    expect(r.outcome).toBe('SUPPLY_CHAIN_REFUSED')
    const decision = r.supplyChain.decisions.find((d) => d.image === images.unsigned)!
    expect(decision.objects).toEqual([`Deployment ${projectNs(t)}/catalog (initContainers: migrate)`])
    expect(decision.refusals.map((x) => x.rule)).toEqual(['signature'])
    expect(r.supplyChain.decisions.find((d) => d.image === images.clean)?.admitted).toBe(true)
    expect(await snapshot(live.metadata!.labels!['retailops.dev/applyset'])).toEqual(before)
    t.overlay('catalog', undefined)
  })

  it('a canary release goes through the same check: refused, nothing claimed or applied', async () => {
    const project = await t.load()
    const live = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    const before = await snapshot(live.metadata!.labels!['retailops.dev/applyset'])
    const {result, exit} = await release(
      {
        project,
        env: resolveEnvironment(project.config, undefined, project.dir),
        strategy: 'canary',
        router: 'replicas',
        images: [`catalog=${images['no-provenance']}`],
      },
      testContext(),
    )
    expect(exit).toBe('SUPPLY_CHAIN_REFUSED')
    expect(result.release).toBeUndefined()
    expect(result.supplyChain.decisions[0].refusals.map((x) => x.rule)).toEqual(['provenance'])
    expect(await snapshot(live.metadata!.labels!['retailops.dev/applyset'])).toEqual(before)
    const configMaps = await kubeClients({context: CONTEXT}).core.listNamespacedConfigMap({namespace: projectNs(t)})
    expect(configMaps.items.map((c) => c.metadata?.name).filter((n) => n?.includes('rollout'))).toEqual([])
  })

  it('--skip-verify does not bypass the policy: refused (exit 15) unless --force-release --reason, which is recorded', async () => {
    lock(images.unsigned)
    const cli = await runCli(['deploy', '--skip-verify', '--json', '--config', path.join(t.dir, 'retailops.yaml')], {
      env: {NO_COLOR: '1'},
    })
    expect(cli.exitCode, cli.stderr).toBe(15)
    const doc = JSON.parse(cli.stdout) as {result: {supplyChain: {refusals: {rule: string; fix: string}[]}}}
    expect(doc.result.supplyChain.refusals).toEqual([
      expect.objectContaining({rule: 'skip-verify', fix: expect.stringContaining('--force-release --reason')}),
    ])
    const d0 = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    expect(d0.spec?.template.spec?.containers[0].image).toBe(images.vulnerable)

    const forced = await runDeploy(
      {project: await t.load(), skipVerify: true, force: {reason: 'INC-42: registry attestation outage'}},
      testContext(),
    )
    expect(forced.outcome).toBe('OK')
    expect(forced.supplyChain).toMatchObject({
      outcome: 'overridden',
      override: {reason: 'INC-42: registry attestation outage'},
    })
    const d = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    expect(d.spec?.template.spec?.containers[0].image).toBe(images.unsigned)
    expect(d.metadata?.annotations).toMatchObject({
      'retailops.dev/supply-chain': 'overridden',
      'retailops.dev/supply-chain-override': 'INC-42: registry attestation outage',
      'retailops.dev/signature-verification': 'skipped',
    })
  })

  it('attestations cosign v2 made (DSSE envelopes at the legacy .att tag) count too; dry run: admitted, nothing applied', async () => {
    const digest = await pushMinimalImage(client, repo('catalog'), 'cosign-v2')
    const image = `${REGISTRY}/${repo('catalog')}@${digest}`
    await signImage(
      {registry: REGISTRY, repository: repo('catalog'), digest},
      decryptPrivateKey(keys.privateKeyPem, PASSWORD),
      client,
      testContext(),
    )
    for (const [type, predicate] of [
      ['cyclonedx', sbom([{name: 'bintrees', version: '1.0.2'}])],
      ['slsaprovenance1', provenance(image)],
    ] as const) {
      const file = path.join(dir, `v2-${type}.json`)
      writeFileSync(file, JSON.stringify(predicate))
      const r = await execa(
        env.cosign,
        [
          'attest',
          '--key',
          path.join(dir, 'cosign.key'),
          '--type',
          type,
          '--predicate',
          file,
          '--tlog-upload=false',
          '--allow-insecure-registry',
          '-y',
          image,
        ],
        {cwd: dir, env: cosignEnv, reject: false},
      )
      expect(r.exitCode, r.stderr).toBe(0)
    }
    expect((await client.getManifest(repo('catalog'), `${digest.replace(':', '-')}.att`))?.json).toBeDefined()
    const live = await kubeClients({context: CONTEXT}).apps.readNamespacedDeployment({
      name: 'catalog',
      namespace: projectNs(t),
    })
    const before = await snapshot(live.metadata!.labels!['retailops.dev/applyset'])
    const r = await runDeploy({project: await t.load(), images: [`catalog=${image}`], dryRun: true}, testContext())
    expect(r.supplyChain.outcome).toBe('admitted')
    expect(r.supplyChain.decisions[0].evidence).toEqual({
      signature: 'verified',
      sbom: 'verified',
      provenance: 'verified',
    })
    expect(r.outcome).toBe('OK')
    expect(await snapshot(live.metadata!.labels!['retailops.dev/applyset'])).toEqual(before)
  })

  it('a bad waivers file is exit CONFIG naming the file and the entry, nothing applied', async () => {
    writeFileSync(
      path.join(t.dir, '.retailops/waivers.yaml'),
      'waivers:\n  - {id: CVE-2099-0001, service: catalog, expires: soon}\n',
    )
    const cli = await runCli(['deploy', '--json', '--config', path.join(t.dir, 'retailops.yaml')], {
      env: {NO_COLOR: '1'},
    })
    expect(cli.exitCode).toBe(3)
    expect(cli.stderr + cli.stdout).toContain(path.join(t.dir, '.retailops/waivers.yaml'))
    expect(cli.stderr + cli.stdout).toMatch(/waivers\[0\]\.(reason|expires)/)
    waivers([])
  })
})
