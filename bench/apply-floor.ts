/**
 * Where a cold deploy's time goes: the API server. The same objects (N services × M tenants in
 * dedicated namespaces, as bench/deploy.ts renders them) are applied cold into a scratch control
 * plane (bench/lib/scratch-cluster.ts, shaped as bench/deploy.ts's large one) three ways, each
 * into fresh namespaces:
 *   - `kubectl apply --server-side` (one request at a time),
 *   - `retailops deploy --no-wait` (the built CLI),
 *   - a minimal client: one server-side apply PATCH per object over keep-alive connections, in
 *     apply waves, at each --concurrency, in this process and nothing else (no render, no list,
 *     no policy): the fastest any client can be against this API server.
 * For each: wall clock, objects per second, and the CPU the kube-apiserver and etcd processes
 * spent (from /proc), per object. With --profile, a CPU profile of the API server during the first
 * minimal-client run (its /debug/pprof/profile), summarised with `go tool pprof` when Go is there.
 *
 *   npx tsx bench/apply-floor.ts [--services 60] [--tenants 5] [--concurrency 8,32,64] [--bin bin/run.js] [--profile]
 */
import {existsSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {execa} from 'execa'
import pLimit from 'p-limit'

import {loadConfig} from '../src/config/load.js'
import {planObjects, renderStep} from '../src/deploy/engine.js'
import {toYamlDocuments} from '../src/deploy/format.js'
import {waves} from '../src/kubernetes/apply.js'
import {kubeHttp} from '../src/kubernetes/client.js'
import {type KubeObject, objectPath} from '../src/kubernetes/resources.js'
import {imageFlags, serviceNames, writeProject} from './lib/deploy-project.js'
import {sandboxKubectl, startScratchCluster} from './lib/scratch-cluster.js'

const {values} = parseArgs({
  options: {
    services: {type: 'string', default: '60'},
    tenants: {type: 'string', default: '5'},
    concurrency: {type: 'string', default: '8,32,64'},
    bin: {type: 'string', default: 'bin/run.js'},
    profile: {type: 'boolean', default: false},
  },
})
const ROOT = path.resolve(import.meta.dirname, '..')
const BIN = path.resolve(ROOT, values.bin)
const SERVICES = serviceNames(Number(values.services))
const TENANTS = Number(values.tenants)
const CONCURRENCY = values.concurrency.split(',').map(Number)

const scratch = await startScratchCluster({
  name: 'floor',
  disable: ['kube-scheduler'],
  extraArgs: [
    'kube-apiserver=service-cluster-ip-range=10.96.0.0/16',
    'kube-controller-manager=controllers=namespace,serviceaccount,serviceaccount-token',
  ],
})
Object.assign(process.env, scratch.env)
const CONTEXT = scratch.context
const SHAPE = {services: SERVICES, tenants: TENANTS, context: CONTEXT}

interface Run {
  label: string
  objects: number
  ms: number
  apiserverMs: number
  etcdMs: number
}
const runs: Run[] = []

async function measured(label: string, objects: number, fn: () => Promise<unknown>): Promise<void> {
  const a = scratch.cpuMs('kube-apiserver')
  const e = scratch.cpuMs('etcd')
  const t = performance.now()
  await fn()
  const run = {
    label,
    objects,
    ms: performance.now() - t,
    apiserverMs: scratch.cpuMs('kube-apiserver') - a,
    etcdMs: scratch.cpuMs('etcd') - e,
  }
  runs.push(run)
  process.stderr.write(
    `  ${label}: ${(run.ms / 1000).toFixed(2)} s, apiserver ${(run.apiserverMs / objects).toFixed(2)} ms CPU/object\n`,
  )
}

async function renderProject(project: string): Promise<{project: string; dir: string; objects: KubeObject[]}> {
  const dir = writeProject(project, SHAPE)
  const plan = await renderStep({
    project: await loadConfig(path.join(dir, 'retailops.yaml')),
    images: imageFlags(project, SERVICES).filter((_, i) => i % 2 === 1),
  })
  return {project, dir, objects: planObjects(plan)}
}

/** One server-side apply per object, wave after wave, `concurrency` in flight: nothing but the requests. */
async function minimalApply(objects: KubeObject[], concurrency: number): Promise<void> {
  // The one keep-alive client of this context (kubeHttp is cached per context): the profile's request shares it.
  const http = kubeHttp({context: CONTEXT})
  const limit = pLimit(concurrency)
  for (const wave of waves(objects))
    await Promise.all(
      wave.map((o) =>
        limit(() =>
          http.request('PATCH', objectPath(o), {
            query: {fieldManager: 'bench-minimal', fieldValidation: 'Ignore'},
            contentType: 'application/apply-patch+yaml',
            body: o,
          }),
        ),
      ),
    )
}

/** The API server's CPU profile while `fn` runs, summarised by `go tool pprof -top -cum`. */
async function profiled(fn: () => Promise<void>): Promise<string> {
  const http = kubeHttp({context: CONTEXT})
  const chunks: Buffer[] = []
  const profile = http.request('GET', '/debug/pprof/profile', {
    query: {seconds: 20},
    timeoutMs: 120_000,
    onData: (c) => chunks.push(c),
  })
  await fn()
  await profile
  const file = path.join(scratch.kubeconfig, '..', 'apiserver.pprof')
  writeFileSync(file, Buffer.concat(chunks))
  const go = ['/usr/local/go/bin/go', '/usr/bin/go'].find((g) => existsSync(g))
  if (!go) return `(go is not installed: the profile is ${file})`
  const top = await execa(go, ['tool', 'pprof', '-top', '-cum', '-nodecount=400', file], {reject: false})
  const wanted = [
    /ipallocator\.\(\*Allocator\)\.(AllocateNextService|Free|Used)$/,
    /handlers\.\(\*applyPatcher\)\.applyPatchToCurrentObject$/,
    /sigs\.k8s\.io\/yaml\.unmarshal$/,
    /managedfields\/internal\.\(\*FieldManager\)\.Apply$/,
    /etcd3\.\(\*store\)\.GuaranteedUpdate$/,
    /admission\.chainAdmissionHandler\.(Admit|Validate)$/,
    /runtime\.gcBgMarkWorker$/,
    /filters\.withAuthentication\.func1$/,
    /responsewriters\.WriteObjectNegotiated$/,
  ]
  return top.stdout
    .split('\n')
    .filter((l) => l.includes('Total samples') || wanted.some((w) => w.test(l.trim().split(/\s+/).at(-1) ?? '')))
    .join('\n')
}

let profileSummary = ''
try {
  let n = 0
  const fresh = async () => renderProject(`floor-${(n++).toString(36)}${Math.random().toString(36).slice(2, 5)}`)

  const k = await fresh()
  const manifests = path.join(k.dir, 'manifests.yaml')
  writeFileSync(manifests, toYamlDocuments(k.objects))
  await measured('kubectl apply --server-side', k.objects.length, () =>
    execa(
      sandboxKubectl(),
      ['--context', CONTEXT, 'apply', '--server-side', '--field-manager=bench-kubectl', '-f', manifests],
      {stdout: 'ignore'},
    ),
  )

  const r = await fresh()
  await measured('retailops deploy --no-wait', r.objects.length, async () => {
    const run = await execa(
      process.execPath,
      [
        BIN,
        'deploy',
        '--config',
        path.join(r.dir, 'retailops.yaml'),
        ...imageFlags(r.project, SERVICES),
        '--json',
        '--skip-verify',
        '--no-wait',
      ],
      {reject: false, env: {RETAILOPS_KUBE_CONTEXT: CONTEXT}},
    )
    if (run.exitCode !== 0) throw new Error(`retailops deploy exited ${run.exitCode}: ${run.stderr.slice(-2000)}`)
  })

  for (const [i, c] of CONCURRENCY.entries()) {
    const m = await fresh()
    const apply = () => measured(`minimal client, ${c} in flight`, m.objects.length, () => minimalApply(m.objects, c))
    if (i === 0 && values.profile) profileSummary = await profiled(apply)
    else await apply()
  }
  // The projects' namespaces go with the scratch cluster.
  for (const dir of [k.dir, r.dir]) rmSync(dir, {recursive: true, force: true})
} finally {
  await scratch.stop()
}

const objects = runs[0]?.objects ?? 0
const kubectlMs = runs[0]?.ms ?? 0
console.log(`Cold apply against one API server: ${SERVICES.length} services × ${TENANTS} tenants, ${objects} objects, a scratch control plane of its own; CPU of the kube-apiserver and etcd processes from /proc.

| run | wall clock | objects/s | % of kubectl | apiserver CPU/object | etcd CPU/object |
| --- | ---: | ---: | ---: | ---: | ---: |
${runs
  .map(
    (r) =>
      `| ${r.label} | ${(r.ms / 1000).toFixed(2)} s | ${((r.objects / r.ms) * 1000).toFixed(0)} | ${((r.ms / kubectlMs) * 100).toFixed(0)} % | ${(r.apiserverMs / r.objects).toFixed(2)} ms | ${(r.etcdMs / r.objects).toFixed(2)} ms |`,
  )
  .join('\n')}
${profileSummary ? `\nAPI server CPU profile during the first minimal-client run (go tool pprof -top -cum):\n\n\`\`\`\n${profileSummary}\n\`\`\`` : ''}`)
process.exit(0)
