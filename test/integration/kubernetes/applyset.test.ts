// Applyset scope against the sandbox's real kube-apiserver: a scaffolded project and a copy of it
// that changes only environments.production.namespace, deployed side by side with the real CLI.
// Neither may prune the other; objects labelled by earlier versions (applyset id without the
// namespace) are adopted in their own namespace only.
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {parse, parseDocument, stringify} from 'yaml'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {loadConfig} from '../../../src/config/load.js'
import {applyStep, renderStep} from '../../../src/deploy/engine.js'
import {applySetId, legacyApplySetId} from '../../../src/deploy/render.js'
import {kubeHttp} from '../../../src/kubernetes/client.js'
import type {KubeObject} from '../../../src/kubernetes/resources.js'
import {CONTEXT, digest, randomId} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli, runCliJson} from '../../support/cli.js'

const APPLYSET = 'retailops.dev/applyset'
const SERVICES = ['catalog', 'cart', 'inventory']

type Deployment = KubeObject & {spec: {replicas: number; strategy?: unknown}}

describe('applyset scope: a second environment never deletes the first', () => {
  const id = randomId()
  const project = `t-applyset-${id}`
  const nsA = `t-applyset-${id}-a`
  const nsB = `t-applyset-${id}-b`
  const root = mkdtempSync(path.join(os.tmpdir(), 'retailops-applyset-'))
  const dirA = path.join(root, 'a')
  const dirB = path.join(root, 'b')
  const http = kubeHttp({context: CONTEXT})

  const cli = async (dir: string, args: string[]) => {
    const r = await runCliJson(args, {cwd: dir})
    return {exitCode: r.exitCode, json: r.doc, stderr: r.stderr}
  }
  const images = (services: string[]) =>
    services.flatMap((s) => ['--image', `${s}=127.0.0.1:5000/${project}/${s}@${digest('a')}`])
  const deploy = (dir: string, services = SERVICES) =>
    cli(dir, ['deploy', ...images(services), '--skip-verify', '--timeout', '4m'])
  const deployments = async (ns: string): Promise<Map<string, Deployment>> => {
    const list = await http.request<{items: Deployment[]}>('GET', `/apis/apps/v1/namespaces/${ns}/deployments`)
    return new Map(list.items.map((d) => [d.metadata.name, d]))
  }
  const services = async (ns: string): Promise<string[]> => {
    const list = await http.request<{items: KubeObject[]}>('GET', `/api/v1/namespaces/${ns}/services`)
    return list.items.map((s) => s.metadata.name).sort()
  }

  beforeAll(async () => {
    const init = await runCli([
      'init',
      '--directory',
      dirA,
      '--project',
      project,
      '--target-namespace',
      nsA,
      '--kube-context',
      CONTEXT,
      '--services',
      SERVICES.join(','),
      '--ci',
      'none',
      '--yes',
      '--json',
    ])
    expect(init.exitCode, init.stdout + init.stderr).toBe(0)
    // Placeholder images (never built, so never attested): no supply-chain policy here; it has its own test.
    const scaffolded = parseDocument(readFileSync(path.join(dirA, 'retailops.yaml'), 'utf8'))
    scaffolded.deleteIn(['supplyChain', 'policy'])
    writeFileSync(path.join(dirA, 'retailops.yaml'), scaffolded.toString())
    // The copy: the same project, only environments.production.namespace changed.
    cpSync(dirA, dirB, {recursive: true})
    const file = path.join(dirB, 'retailops.yaml')
    const text = readFileSync(file, 'utf8')
    const namespaceLine = new RegExp(`(\\n {4}namespace: "?)${nsA}("?\\n)`)
    expect(text).toMatch(namespaceLine)
    writeFileSync(file, text.replace(namespaceLine, `$1${nsB}$2`))
    expect(
      (parse(readFileSync(file, 'utf8')) as {environments: {production: {namespace: string}}}).environments.production
        .namespace,
    ).toBe(nsB)
  })

  afterAll(async () => {
    for (const ns of [nsA, nsB]) await http.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined)
    rmSync(root, {recursive: true, force: true})
  })

  it('deploying the copy prunes nothing of the first namespace, and the first keeps the copy whole', async () => {
    const a = await deploy(dirA)
    expect(a.exitCode, JSON.stringify(a.json.error)).toBe(0)
    const before = await deployments(nsA)
    expect([...before.keys()].sort()).toEqual([...SERVICES].sort())
    const servicesBefore = await services(nsA)

    const b = await deploy(dirB)
    expect(b.exitCode, JSON.stringify(b.json.error)).toBe(0)
    expect(b.json.result.pruned).toEqual([])

    // The first namespace: the same objects (same uid), replicas, labels and strategy as before.
    const after = await deployments(nsA)
    expect([...after.keys()].sort()).toEqual([...SERVICES].sort())
    for (const [name, d] of before) {
      const now = after.get(name)!
      expect(now.metadata.uid).toBe(d.metadata.uid)
      expect(now.metadata.deletionTimestamp).toBeUndefined()
      expect(now.spec.replicas).toBe(d.spec.replicas)
      expect(now.spec.strategy).toEqual(d.spec.strategy)
      expect(now.metadata.labels?.[APPLYSET]).toBe(applySetId(project, 'production', nsA, 'main'))
    }
    expect(await services(nsA)).toEqual(servicesBefore)
    // The copy has its own applyset.
    const copy = await deployments(nsB)
    expect([...copy.keys()].sort()).toEqual([...SERVICES].sort())
    for (const d of copy.values())
      expect(d.metadata.labels?.[APPLYSET]).toBe(applySetId(project, 'production', nsB, 'main'))

    // And the other way round: deploying the first again leaves the copy alone.
    const again = await deploy(dirA)
    expect(again.exitCode).toBe(0)
    expect(again.json.result.pruned).toEqual([])
    const copyAfter = await deployments(nsB)
    expect([...copyAfter.keys()].sort()).toEqual([...SERVICES].sort())
    for (const [name, d] of copy) expect(copyAfter.get(name)!.metadata.uid).toBe(d.metadata.uid)
  })

  it('adopts what an earlier version labelled without the namespace, in its own namespace only', async () => {
    // What a version before the namespace was part of the id applied into the first namespace:
    // the same render and field manager, every object labelled project.environment.cluster.
    const legacy = legacyApplySetId(project, 'production', 'main')
    const plan = await renderStep({
      project: await loadConfig(path.join(dirA, 'retailops.yaml')),
      images: SERVICES.map((s) => `${s}=127.0.0.1:5000/${project}/${s}@${digest('a')}`),
    })
    for (const t of plan.targets) {
      t.applySet = legacy
      t.legacyApplySet = legacy
      for (const o of t.objects) o.metadata.labels = {...o.metadata.labels, [APPLYSET]: legacy}
    }
    const old = await applyStep(plan, {prune: false}, testContext())
    expect(old.failed).toEqual([])
    for (const d of (await deployments(nsA)).values()) expect(d.metadata.labels?.[APPLYSET]).toBe(legacy)
    const copyBefore = await deployments(nsB)

    // The copy, deployed with nothing changed, does not see the first namespace's legacy objects.
    const b = await deploy(dirB)
    expect(b.exitCode).toBe(0)
    expect(b.json.result.pruned).toEqual([])
    expect([...(await deployments(nsA)).keys()].sort()).toEqual([...SERVICES].sort())

    // The first, deployed without cart: its legacy objects are relabelled, and cart (its own, no longer rendered) is pruned.
    const config = path.join(dirA, 'retailops.yaml')
    const full = readFileSync(config, 'utf8')
    const parsed = parse(full) as {services: Record<string, unknown>; campaigns: {peak: Record<string, unknown>}[]}
    delete parsed.services.cart
    for (const c of parsed.campaigns) delete c.peak.cart
    writeFileSync(config, stringify(parsed))
    try {
      const r = await deploy(dirA, ['catalog', 'inventory'])
      expect(r.exitCode, JSON.stringify(r.json.error)).toBe(0)
      const pruned = (r.json.result.pruned as {ref: string; deleted: boolean}[]).map((p) => p.ref)
      expect(pruned).toContain(`Deployment ${nsA}/cart`)
      expect(pruned.every((ref) => ref.includes(` ${nsA}/`))).toBe(true)
      const first = await deployments(nsA)
      expect([...first.keys()].sort()).toEqual(['catalog', 'inventory'])
      for (const d of first.values())
        expect(d.metadata.labels?.[APPLYSET]).toBe(applySetId(project, 'production', nsA, 'main'))
      // The copy is whole: every Deployment, same uid, same replicas.
      const copyAfter = await deployments(nsB)
      expect([...copyAfter.keys()].sort()).toEqual([...SERVICES].sort())
      for (const [name, d] of copyBefore) {
        expect(copyAfter.get(name)!.metadata.uid).toBe(d.metadata.uid)
        expect(copyAfter.get(name)!.spec.replicas).toBe(d.spec.replicas)
      }
    } finally {
      writeFileSync(config, full)
    }
  })
})
