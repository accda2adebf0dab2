/**
 * Deploy benchmark: 7 services for 20 tenants in dedicated namespaces (20 namespaces, ~960
 * objects, 280 pods) deployed into the sandbox by `retailops deploy`, cold and again with nothing
 * changed, against `kubectl apply --server-side` of the same rendered manifests.
 *
 *   eval "$(bash scripts/sandbox.sh env)"
 *   npx tsx bench/deploy.ts [--rounds 3] [--bin bin/run.js]
 *
 * Each round: kubectl cold (fresh namespaces) and again unchanged; then retailops cold
 * (--no-wait, the same work kubectl does), unchanged, and cold with the rollout wait, each into
 * fresh namespaces of an identically shaped project. Namespaces are deleted, and their deletion
 * awaited, between runs. Prints a Markdown table of medians.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {execa} from 'execa'
import {stringify} from 'yaml'

import {loadConfig} from '../src/config/load.js'
import {planObjects, renderStep} from '../src/deploy/engine.js'
import {toYamlDocuments} from '../src/deploy/format.js'
import {kubeHttp} from '../src/kubernetes/client.js'

const {values} = parseArgs({
  options: {rounds: {type: 'string', default: '3'}, bin: {type: 'string', default: 'bin/dev.js'}},
})
const ROOT = path.resolve(import.meta.dirname, '..')
const BIN = path.resolve(ROOT, values.bin)
const CONTEXT = process.env.RETAILOPS_KUBE_CONTEXT ?? 'kwok-retailops'
const SERVICES = ['catalog', 'cart', 'inventory', 'payments', 'orders', 'checkout', 'search']
const DIGEST = `sha256:${'e'.repeat(64)}`

function projectConfig(project: string): Record<string, unknown> {
  return {
    project,
    registry: {url: '127.0.0.1:5000', insecure: true},
    clusters: {main: {context: CONTEXT}},
    environments: {bench: {cluster: 'main', namespace: `${project}-shared`}},
    services: Object.fromEntries(
      SERVICES.map((s) => [
        s,
        {
          tier: ['payments', 'orders', 'checkout'].includes(s) ? 'revenue-critical' : 'operational',
          scaling: {minReplicas: 2, maxReplicas: 4},
          dependsOn: s === 'checkout' ? ['payments', 'orders', 'inventory'] : [],
        },
      ]),
    ),
    tenants: Array.from({length: 20}, (_, i) => ({
      name: `t${String(i + 1).padStart(2, '0')}`,
      model: 'dedicated-namespace',
    })),
  }
}

function writeProject(project: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retailops-bench-'))
  writeFileSync(path.join(dir, 'retailops.yaml'), stringify(projectConfig(project)))
  return dir
}

const imageFlags = (project: string) =>
  SERVICES.flatMap((s) => ['--image', `${s}=127.0.0.1:5000/${project}/${s}@${DIGEST}`])

async function timed(label: string, fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  const ms = performance.now() - t
  process.stderr.write(`  ${label}: ${(ms / 1000).toFixed(2)} s\n`)
  return ms
}

async function cleanup(project: string): Promise<void> {
  const http = kubeHttp({context: CONTEXT})
  const selector = `app.kubernetes.io/part-of=${project}`
  const list = await http.request<{items: {metadata: {name: string}}[]}>('GET', '/api/v1/namespaces', {
    query: {labelSelector: selector},
  })
  await Promise.all(
    list.items.map((n) => http.request('DELETE', `/api/v1/namespaces/${n.metadata.name}`).catch(() => undefined)),
  )
  for (let i = 0; i < 300; i++) {
    const left = await http.request<{items: unknown[]}>('GET', '/api/v1/namespaces', {query: {labelSelector: selector}})
    if (left.items.length === 0) return
    await new Promise((r) => setTimeout(r, 1000))
  }
  throw new Error(`namespaces of ${project} were not deleted within 5 minutes`)
}

async function retailops(dir: string, project: string, extra: string[]): Promise<void> {
  const r = await execa(
    BIN,
    [
      'deploy',
      '--config',
      path.join(dir, 'retailops.yaml'),
      '--json',
      '--skip-verify',
      ...imageFlags(project),
      ...extra,
    ],
    {reject: false, env: {RETAILOPS_KUBE_CONTEXT: CONTEXT}},
  )
  if (r.exitCode !== 0)
    throw new Error(`retailops deploy exited ${r.exitCode}: ${r.stdout.slice(0, 2000)}${r.stderr.slice(-2000)}`)
}

async function kubectl(file: string): Promise<void> {
  await execa(
    'kubectl',
    ['--context', CONTEXT, 'apply', '--server-side', '--field-manager=bench-kubectl', '-f', file],
    {stdout: 'ignore'},
  )
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const results: Record<string, number[]> = {
  kubectlCold: [],
  kubectlUnchanged: [],
  retailopsCold: [],
  retailopsUnchanged: [],
  retailopsColdWait: [],
  retailopsUnchangedWait: [],
}
const rounds = Number(values.rounds)
let objects = 0
const kubectlVersion = (await execa('kubectl', ['version', '--client', '-o', 'json'])).stdout
for (let round = 1; round <= rounds; round++) {
  process.stderr.write(`round ${round} of ${rounds}\n`)
  const id = Math.random().toString(36).slice(2, 6)

  // kubectl: the same manifests retailops renders, in one file, namespaces first.
  const kProject = `bench-k${id}`
  const kDir = writeProject(kProject)
  const plan = await renderStep({
    project: await loadConfig(path.join(kDir, 'retailops.yaml')),
    images: imageFlags(kProject).filter((_, i) => i % 2 === 1),
  })
  const all = planObjects(plan)
  objects = all.length
  const file = path.join(kDir, 'manifests.yaml')
  writeFileSync(file, toYamlDocuments(all))
  results.kubectlCold.push(await timed('kubectl apply --server-side, cold', () => kubectl(file)))
  results.kubectlUnchanged.push(await timed('kubectl apply --server-side, unchanged', () => kubectl(file)))
  await cleanup(kProject)
  rmSync(kDir, {recursive: true, force: true})

  const rProject = `bench-r${id}`
  const rDir = writeProject(rProject)
  results.retailopsCold.push(
    await timed('retailops deploy --no-wait, cold', () => retailops(rDir, rProject, ['--no-wait'])),
  )
  results.retailopsUnchanged.push(
    await timed('retailops deploy --no-wait, unchanged', () => retailops(rDir, rProject, ['--no-wait'])),
  )
  await cleanup(rProject)

  const wProject = `bench-w${id}`
  const wDir = writeProject(wProject)
  results.retailopsColdWait.push(
    await timed('retailops deploy (waits for 140 rollouts), cold', () => retailops(wDir, wProject, [])),
  )
  results.retailopsUnchangedWait.push(
    await timed('retailops deploy (waits), unchanged', () => retailops(wDir, wProject, [])),
  )
  await cleanup(wProject)
  rmSync(rDir, {recursive: true, force: true})
  rmSync(wDir, {recursive: true, force: true})
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const k = median(results.kubectlCold)
console.log(`Deploy benchmark: ${SERVICES.length} services × 20 tenants (dedicated namespaces), ${objects} objects, ${rounds} round(s), medians; CLI ${path.relative(ROOT, BIN)}; kubectl ${JSON.parse(kubectlVersion).clientVersion?.gitVersion}.

| run | cold | unchanged |
| --- | ---: | ---: |
| kubectl apply --server-side | ${s(k)} | ${s(median(results.kubectlUnchanged))} |
| retailops deploy --no-wait | ${s(median(results.retailopsCold))} (${((median(results.retailopsCold) / k) * 100).toFixed(0)} % of kubectl) | ${s(median(results.retailopsUnchanged))} |
| retailops deploy (render, policy, apply, prune, wait for 140 rollouts) | ${s(median(results.retailopsColdWait))} (${((median(results.retailopsColdWait) / k) * 100).toFixed(0)} % of kubectl) | ${s(median(results.retailopsUnchangedWait))} |

All runs: ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([key, v]) => [key, v.map((x) => Math.round(x))])))}`)
process.exit(0)
