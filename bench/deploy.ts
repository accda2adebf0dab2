/**
 * Deploy benchmark: N services for M tenants in dedicated namespaces, deployed by
 * `retailops deploy`, cold and again with nothing changed, against `kubectl apply --server-side`
 * of the same rendered manifests; and `render` and `diff` of the project under /usr/bin/time
 * (wall clock and peak memory).
 *
 *   npx tsx bench/deploy.ts [--rounds 3] [--bin bin/run.js] [--services 7] [--tenants 20] [--shared]
 *   npx tsx bench/deploy.ts --services 60 --tenants 50 --rounds 3 --bin bin/run.js   # issue 18: ~20,000 objects
 *
 * By default it runs in a scratch control plane of its own (bench/lib/scratch-cluster.ts), so
 * 20,000 objects never slow the shared sandbox; --shared uses the sandbox's apiserver (context
 * kwok-retailops), as this benchmark did before. In the scratch cluster of a large project
 * (more than 200 service-tenants) the controller manager runs only the namespace and
 * service-account controllers and there is no scheduler: 6,000 ReplicaSets and pods being made
 * while the clock runs would measure the controllers, not the apply, and would load kubectl's
 * runs and retailops' alike. The run that waits for rollouts is then left out (--wait-run forces it).
 *
 * Each round: kubectl cold (fresh namespaces) and again unchanged; then retailops cold
 * (--no-wait, the same work kubectl does), unchanged, `render` and `diff` (nothing to change),
 * and, for small projects, cold with the rollout wait, each into fresh namespaces of an
 * identically shaped project. Namespaces are deleted, and their deletion awaited, between runs.
 * Prints a Markdown table of medians and every run.
 */
import {rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {execa} from 'execa'

import {loadConfig} from '../src/config/load.js'
import {planObjects, renderStep} from '../src/deploy/engine.js'
import {toYamlDocuments} from '../src/deploy/format.js'
import {
  deleteProject,
  imageFlags as benchImageFlags,
  serviceNames,
  writeProject as writeBenchProject,
} from './lib/deploy-project.js'
import {sandboxKubectl, type ScratchCluster, startScratchCluster} from './lib/scratch-cluster.js'

const {values} = parseArgs({
  options: {
    rounds: {type: 'string', default: '3'},
    bin: {type: 'string', default: 'bin/dev.js'},
    services: {type: 'string', default: '7'},
    tenants: {type: 'string', default: '20'},
    shared: {type: 'boolean', default: false},
    'wait-run': {type: 'boolean'},
    // Only retailops' runs (cold, unchanged, render, diff): when kubectl's were measured in another run.
    'skip-kubectl': {type: 'boolean', default: false},
    // kubectl again with nothing changed (on by default; at 18,250 objects on a busy machine it takes half an hour).
    'kubectl-unchanged': {type: 'boolean', default: true},
  },
})
const ROOT = path.resolve(import.meta.dirname, '..')
const BIN = path.resolve(ROOT, values.bin)
const SERVICES = serviceNames(Number(values.services))
const TENANTS = Number(values.tenants)
const LARGE = SERVICES.length * TENANTS > 200
const WAIT_RUN = values['wait-run'] ?? !LARGE
let scratch: ScratchCluster | undefined
if (!values.shared) {
  // One ClusterIP per Service: 3,000 of them need more than kwokctl's default range (no traffic ever uses them).
  const serviceRange = ['kube-apiserver=service-cluster-ip-range=10.96.0.0/16']
  scratch = await startScratchCluster({
    name: 'deploy',
    ...(LARGE && !WAIT_RUN
      ? {
          disable: ['kube-scheduler'],
          extraArgs: [
            ...serviceRange,
            'kube-controller-manager=controllers=namespace,serviceaccount,serviceaccount-token',
          ],
        }
      : {extraArgs: serviceRange}),
  })
  Object.assign(process.env, scratch.env)
  if (WAIT_RUN) await scratch.addSandboxNodes()
}
const CONTEXT = process.env.RETAILOPS_KUBE_CONTEXT ?? 'kwok-retailops'

const SHAPE = {services: SERVICES, tenants: TENANTS, context: CONTEXT}
const writeProject = (project: string) => writeBenchProject(project, SHAPE)
const imageFlags = (project: string) => benchImageFlags(project, SERVICES)

async function timed(label: string, fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  const ms = performance.now() - t
  process.stderr.write(`  ${label}: ${(ms / 1000).toFixed(2)} s\n`)
  return ms
}

const cleanup = (project: string) => deleteProject(CONTEXT, project)

function cliArgs(command: string, dir: string, project: string, extra: string[]): string[] {
  return [BIN, command, '--config', path.join(dir, 'retailops.yaml'), ...imageFlags(project), ...extra]
}

async function retailops(dir: string, project: string, extra: string[]): Promise<void> {
  const r = await execa(process.execPath, cliArgs('deploy', dir, project, ['--json', '--skip-verify', ...extra]), {
    reject: false,
    env: {RETAILOPS_KUBE_CONTEXT: CONTEXT},
  })
  if (r.exitCode !== 0)
    throw new Error(`retailops deploy exited ${r.exitCode}: ${r.stdout.slice(0, 2000)}${r.stderr.slice(-2000)}`)
}

/** A CLI run under /usr/bin/time -v: wall clock and peak memory (maximum resident set size). */
async function timedCli(label: string, args: string[]): Promise<{ms: number; rssMb: number}> {
  const r = await execa('/usr/bin/time', ['-v', process.execPath, ...args], {
    reject: false,
    stdout: 'ignore',
    env: {RETAILOPS_KUBE_CONTEXT: CONTEXT, CI: 'true'},
  })
  if (r.exitCode !== 0) throw new Error(`${label} exited ${r.exitCode}: ${r.stderr.slice(-2000)}`)
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)!
  const ms = (Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3])) * 1000
  const rssMb = Number(rss[1]) / 1024
  process.stderr.write(`  ${label}: ${(ms / 1000).toFixed(2)} s, ${rssMb.toFixed(0)} MB\n`)
  return {ms, rssMb}
}

async function kubectl(file: string): Promise<void> {
  await execa(KUBECTL, ['--context', CONTEXT, 'apply', '--server-side', '--field-manager=bench-kubectl', '-f', file], {
    stdout: 'ignore',
  })
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const results: Record<string, number[]> = {
  kubectlCold: [],
  kubectlUnchanged: [],
  retailopsCold: [],
  retailopsUnchanged: [],
  render: [],
  renderRss: [],
  diff: [],
  diffRss: [],
  retailopsColdWait: [],
  retailopsUnchangedWait: [],
}
const rounds = Number(values.rounds)
let objects = 0
const KUBECTL = sandboxKubectl()
const kubectlVersion = (await execa(KUBECTL, ['version', '--client', '-o', 'json'])).stdout
try {
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
    if (!values['skip-kubectl']) {
      results.kubectlCold.push(await timed('kubectl apply --server-side, cold', () => kubectl(file)))
      if (values['kubectl-unchanged'])
        results.kubectlUnchanged.push(await timed('kubectl apply --server-side, unchanged', () => kubectl(file)))
      await cleanup(kProject)
    }
    rmSync(kDir, {recursive: true, force: true})

    const rProject = `bench-r${id}`
    const rDir = writeProject(rProject)
    results.retailopsCold.push(
      await timed('retailops deploy --no-wait, cold', () => retailops(rDir, rProject, ['--no-wait'])),
    )
    results.retailopsUnchanged.push(
      await timed('retailops deploy --no-wait, unchanged', () => retailops(rDir, rProject, ['--no-wait'])),
    )
    const render = await timedCli('retailops render', cliArgs('render', rDir, rProject, []))
    results.render.push(render.ms)
    results.renderRss.push(render.rssMb)
    const diff = await timedCli('retailops diff (nothing changed)', cliArgs('diff', rDir, rProject, ['--json']))
    results.diff.push(diff.ms)
    results.diffRss.push(diff.rssMb)
    await cleanup(rProject)
    rmSync(rDir, {recursive: true, force: true})

    if (WAIT_RUN) {
      const wProject = `bench-w${id}`
      const wDir = writeProject(wProject)
      results.retailopsColdWait.push(
        await timed(`retailops deploy (waits for ${SERVICES.length * TENANTS} rollouts), cold`, () =>
          retailops(wDir, wProject, []),
        ),
      )
      results.retailopsUnchangedWait.push(
        await timed('retailops deploy (waits), unchanged', () => retailops(wDir, wProject, [])),
      )
      await cleanup(wProject)
      rmSync(wDir, {recursive: true, force: true})
    }
  }
} finally {
  await scratch?.stop()
}

const s = (ms: number | undefined) => (ms === undefined ? 'not run' : `${(ms / 1000).toFixed(2)} s`)
const k = median(results.kubectlCold)
const perRound = results.retailopsCold.map((r, i) => r / results.kubectlCold[i])
const ms = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(' / ')
console.log(`Deploy benchmark: ${SERVICES.length} services × ${TENANTS} tenants (dedicated namespaces), ${objects} objects, ${rounds} round(s), medians; CLI ${path.relative(ROOT, BIN)}; kubectl ${JSON.parse(kubectlVersion).clientVersion?.gitVersion}; ${scratch ? 'a scratch control plane of its own' : "the sandbox's shared apiserver"}.

| run | cold | unchanged |
| --- | ---: | ---: |
| kubectl apply --server-side | ${s(k)} | ${s(median(results.kubectlUnchanged))} |
| retailops deploy --no-wait | ${s(median(results.retailopsCold))} (${k ? `${((median(results.retailopsCold) / k) * 100).toFixed(0)} % of kubectl; per round ${perRound.map((r) => `${(r * 100).toFixed(0)} %`).join(' / ')}` : 'kubectl not run'}) | ${s(median(results.retailopsUnchanged))} (per round ${ms(results.retailopsUnchanged)} s) |
${WAIT_RUN ? `| retailops deploy (render, policy, apply, prune, wait for ${SERVICES.length * TENANTS} rollouts) | ${s(median(results.retailopsColdWait))} (${((median(results.retailopsColdWait) / k) * 100).toFixed(0)} % of kubectl) | ${s(median(results.retailopsUnchangedWait))} |\n` : ''}| retailops render | ${ms(results.render)} s; peak ${Math.max(...results.renderRss).toFixed(0)} MB | |
| retailops diff (nothing changed) | | ${ms(results.diff)} s; peak ${Math.max(...results.diffRss).toFixed(0)} MB |

All runs (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([key, v]) => [key, v.map((x) => Math.round(x))])))}`)
process.exit(0)
