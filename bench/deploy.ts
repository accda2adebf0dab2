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
  // --no-kubectl-unchanged (and --no-shared...) as the docs write them.
  allowNegative: true,
  options: {
    rounds: {type: 'string', default: '3'},
    bin: {type: 'string', default: 'bin/dev.js'},
    // Another build (e.g. a `git worktree` of main: OLD/bin/run.js) run the same way in every round, for ratios from one run.
    baseline: {type: 'string'},
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
const BASELINE = values.baseline ? path.resolve(values.baseline) : undefined
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

/** User + system CPU time a process run under `/usr/bin/time -v` reports, in ms. */
function cpuOf(timeOutput: string): number {
  const user = /User time \(seconds\): ([\d.]+)/.exec(timeOutput)
  const system = /System time \(seconds\): ([\d.]+)/.exec(timeOutput)
  return (Number(user?.[1] ?? 0) + Number(system?.[1] ?? 0)) * 1000
}

/**
 * Wall clock of `fn` (a client under /usr/bin/time that answers its own CPU time), and in a scratch
 * cluster the CPU the API server and etcd spent meanwhile: on two shared cores a client's CPU is time
 * the API server does not get.
 */
async function timed(label: string, key: string, fn: () => Promise<number>): Promise<void> {
  const apiserver = scratch?.cpuMs('kube-apiserver') ?? 0
  const etcd = scratch?.cpuMs('etcd') ?? 0
  const t = performance.now()
  const clientCpu = await fn()
  const ms = performance.now() - t
  results[key].push(ms)
  cpu[key] = [...(cpu[key] ?? []), {client: clientCpu, apiserver: 0, etcd: 0}]
  const c = cpu[key].at(-1)!
  if (scratch) {
    c.apiserver = scratch.cpuMs('kube-apiserver') - apiserver
    c.etcd = scratch.cpuMs('etcd') - etcd
  }
  process.stderr.write(
    `  ${label}: ${(ms / 1000).toFixed(2)} s; CPU: client ${(c.client / 1000).toFixed(2)} s${scratch ? `, kube-apiserver ${(c.apiserver / 1000).toFixed(2)} s, etcd ${(c.etcd / 1000).toFixed(2)} s` : ''}\n`,
  )
}

const cleanup = (project: string) => deleteProject(CONTEXT, project)

function cliArgs(bin: string, command: string, dir: string, project: string, extra: string[]): string[] {
  return [bin, command, '--config', path.join(dir, 'retailops.yaml'), ...imageFlags(project), ...extra]
}

/** `retailops deploy`: its CPU time (ms). */
async function retailops(bin: string, dir: string, project: string, extra: string[]): Promise<number> {
  const r = await execa(
    '/usr/bin/time',
    ['-v', process.execPath, ...cliArgs(bin, 'deploy', dir, project, ['--json', '--skip-verify', ...extra])],
    {reject: false, env: {RETAILOPS_KUBE_CONTEXT: CONTEXT}},
  )
  if (r.exitCode !== 0)
    throw new Error(`retailops deploy exited ${r.exitCode}: ${r.stdout.slice(0, 2000)}${r.stderr.slice(-2000)}`)
  return cpuOf(r.stderr)
}

/** A CLI run under /usr/bin/time -v: wall clock, CPU time and peak memory (maximum resident set size). */
async function timedCli(label: string, args: string[]): Promise<{ms: number; cpuMs: number; rssMb: number}> {
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
  const cpuMs = cpuOf(r.stderr)
  process.stderr.write(
    `  ${label}: ${(ms / 1000).toFixed(2)} s, CPU ${(cpuMs / 1000).toFixed(2)} s, ${rssMb.toFixed(0)} MB\n`,
  )
  return {ms, cpuMs, rssMb}
}

/** `kubectl apply --server-side` of the file: its CPU time (ms). */
async function kubectl(file: string): Promise<number> {
  const r = await execa(
    '/usr/bin/time',
    ['-v', KUBECTL, '--context', CONTEXT, 'apply', '--server-side', '--field-manager=bench-kubectl', '-f', file],
    {stdout: 'ignore'},
  )
  return cpuOf(r.stderr)
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
/** retailops' runs of one build into a fresh project: cold, unchanged, render, diff; results under `key` + name. */
async function retailopsSide(bin: string, key: string, project: string): Promise<void> {
  const who = key ? `${path.relative(ROOT, bin)}: ` : ''
  for (const name of ['retailopsCold', 'retailopsUnchanged', 'render', 'renderRss', 'diff', 'diffRss'])
    results[`${key}${name}`] ??= []
  const dir = writeProject(project)
  await timed(`${who}retailops deploy --no-wait, cold`, `${key}retailopsCold`, () =>
    retailops(bin, dir, project, ['--no-wait']),
  )
  await timed(`${who}retailops deploy --no-wait, unchanged`, `${key}retailopsUnchanged`, () =>
    retailops(bin, dir, project, ['--no-wait']),
  )
  const render = await timedCli(`${who}retailops render`, cliArgs(bin, 'render', dir, project, []))
  results[`${key}render`].push(render.ms)
  results[`${key}renderRss`].push(render.rssMb)
  cpu[`${key}render`] = [...(cpu[`${key}render`] ?? []), {client: render.cpuMs, apiserver: 0, etcd: 0}]
  const diff = await timedCli(`${who}retailops diff (nothing changed)`, cliArgs(bin, 'diff', dir, project, ['--json']))
  results[`${key}diff`].push(diff.ms)
  results[`${key}diffRss`].push(diff.rssMb)
  cpu[`${key}diff`] = [...(cpu[`${key}diff`] ?? []), {client: diff.cpuMs, apiserver: 0, etcd: 0}]
  await cleanup(project)
  rmSync(dir, {recursive: true, force: true})
}

/** CPU per timed run: the client's (from /usr/bin/time) and, in a scratch cluster, the API server's and etcd's. */
const cpu: Record<string, {client: number; apiserver: number; etcd: number}[]> = {}
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
      await timed('kubectl apply --server-side, cold', 'kubectlCold', () => kubectl(file))
      if (values['kubectl-unchanged'])
        await timed('kubectl apply --server-side, unchanged', 'kubectlUnchanged', () => kubectl(file))
      await cleanup(kProject)
    }
    rmSync(kDir, {recursive: true, force: true})

    // With --baseline, the two builds take turns going first.
    const sides = BASELINE
      ? [
          {bin: BIN, key: ''},
          {bin: BASELINE, key: 'baseline.'},
        ]
      : [{bin: BIN, key: ''}]
    if (round % 2 === 0) sides.reverse()
    for (const side of sides) await retailopsSide(side.bin, side.key, `bench-${side.key ? 'b' : 'r'}${id}`)
    if (WAIT_RUN) {
      const wProject = `bench-w${id}`
      const wDir = writeProject(wProject)
      await timed(`retailops deploy (waits for ${SERVICES.length * TENANTS} rollouts), cold`, 'retailopsColdWait', () =>
        retailops(BIN, wDir, wProject, []),
      )
      await timed('retailops deploy (waits), unchanged', 'retailopsUnchangedWait', () =>
        retailops(BIN, wDir, wProject, []),
      )
      await cleanup(wProject)
      rmSync(wDir, {recursive: true, force: true})
    }
  }
} finally {
  await scratch?.stop()
}

/** The baseline build's rows, and the CPU ratio of this build to it for each run (median of rounds). */
function baselineRows(): string {
  const ratio = (name: string) => {
    const mine = (cpu[name] ?? []).map((c) => c.client)
    const theirs = (cpu[`baseline.${name}`] ?? []).map((c) => c.client)
    return theirs.length
      ? `client CPU ${ms(mine)} s against ${ms(theirs)} s: ${(median(mine) / median(theirs)).toFixed(2)}x`
      : ''
  }
  const b = (name: string) => results[`baseline.${name}`] ?? []
  return `| baseline ${values.baseline} deploy --no-wait | ${ms(b('retailopsCold'))} s (${
    k
      ? `per round ${b('retailopsCold')
          .map((r, i) => `${((r / results.kubectlCold[i]) * 100).toFixed(0)} %`)
          .join(' / ')} of kubectl`
      : 'kubectl not run'
  }) | ${ms(b('retailopsUnchanged'))} s |
| baseline render | ${ms(b('render'))} s; peak ${Math.max(...b('renderRss')).toFixed(0)} MB | |
| baseline diff (nothing changed) | | ${ms(b('diff'))} s; peak ${Math.max(...b('diffRss')).toFixed(0)} MB |

This build against the baseline: cold deploy ${ratio('retailopsCold')}; unchanged ${ratio('retailopsUnchanged')}; render ${ratio('render')}; diff ${ratio('diff')}.
`
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
${BASELINE ? baselineRows() : ''}
All runs (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([key, v]) => [key, v.map((x) => Math.round(x))])))}

CPU per run (s; client from /usr/bin/time${scratch ? ', kube-apiserver and etcd from /proc' : ''}):
${Object.entries(cpu)
  .map(
    ([key, runs]) =>
      `- ${key}: ${runs.map((c) => `client ${(c.client / 1000).toFixed(2)}${scratch && c.apiserver + c.etcd > 0 ? ` / apiserver ${(c.apiserver / 1000).toFixed(2)} / etcd ${(c.etcd / 1000).toFixed(2)}` : ''}`).join('; ')}`,
  )
  .join('\n')}`)
process.exit(0)
