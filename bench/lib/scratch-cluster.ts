/**
 * A scratch Kubernetes control plane of its own for the large benchmarks: a second etcd,
 * kube-apiserver (and, unless disabled, kube-controller-manager, kube-scheduler and the kwok
 * controller) started by kwokctl's binary runtime from the sandbox's cached binaries, exactly as
 * scripts/sandbox.sh starts the shared one, but on random 127.0.0.1 ports, with its own work
 * directory under /tmp and its own kubeconfig. 800 nodes or 20,000 objects in the shared
 * apiserver would slow every test running against it; here they only cost this benchmark.
 *
 *   const cluster = await startScratchCluster({name: 'cost'})
 *   process.env.KUBECONFIG = cluster.kubeconfig   // and RETAILOPS_KUBE_CONTEXT = cluster.context
 *   ...
 *   await cluster.stop()                          // also runs on Ctrl-C / SIGTERM / exit
 *
 * `nice -n 10` applies to the components (they inherit it from the kwokctl process).
 */
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {execa} from 'execa'

const ROOT = path.resolve(import.meta.dirname, '..', '..')

export interface ScratchCluster {
  name: string
  kubeconfig: string
  context: string
  /** Environment for child processes (kubectl, the CLI) that points at this cluster only. */
  env: Record<string, string>
  /** Applies the sandbox's node pools (scripts/sandbox/nodes.sh) and waits for them to be Ready. */
  addSandboxNodes(): Promise<void>
  /** Installs the Gateway API CRDs the sandbox has (for rollouts routed by HTTPRoute). */
  addGatewayApi(): Promise<void>
  kubectl(args: string[], options?: {input?: string}): Promise<string>
  /** User + system CPU a component (kube-apiserver, etcd) has used so far, in ms, from /proc. */
  cpuMs(binary: 'kube-apiserver' | 'etcd'): number
  stop(): Promise<void>
}

/** The scratch cluster's own process of `binary`, found by its path (its work directory is named after the cluster). */
function componentPid(cluster: string, binary: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv0 = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0]
      if (argv0.includes(cluster) && argv0.endsWith(`/${binary}`)) return Number(entry)
    } catch {
      // gone in between
    }
  }
  throw new Error(`no ${binary} process of ${cluster}`)
}

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim())

/** User + system CPU of a process so far, in ms. */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

export interface ScratchOptions {
  /** Part of the cluster name (bench-<name>-<random>). */
  name: string
  /** kwokctl components to leave out, e.g. kube-scheduler when every pod is bound by nodeName. */
  disable?: string[]
  /** kwokctl --extra-args values (component=flag=value), e.g. kube-controller-manager=controllers=namespace. */
  extraArgs?: string[]
}

function binaryPaths(): Record<string, string> {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts/build-binaries.sh'), 'paths'], {encoding: 'utf8'})
  return Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
}

/** The sandbox's kubectl (the cluster's version), not whichever `kubectl` comes first on PATH (a cloud SDK's dispatcher, say). */
export function sandboxKubectl(): string {
  return `${binaryPaths().K8S_BIN}/kubectl`
}

export async function startScratchCluster(options: ScratchOptions): Promise<ScratchCluster> {
  const p = binaryPaths()
  for (const bin of [`${p.K8S_BIN}/kube-apiserver`, `${p.ETCD_BIN}/etcd`, `${p.KWOK_BIN}/kwokctl`])
    if (!existsSync(bin))
      throw new Error(`${bin} is missing: run \`bash scripts/sandbox.sh up\` first (it builds and caches it)`)
  const name = `bench-${options.name}-${randomBytes(2).toString('hex')}`
  const dir = path.join('/tmp', `retailops-scratch-${name}`)
  mkdirSync(dir, {recursive: true})
  const kubeconfig = path.join(dir, 'kubeconfig')
  const configFile = path.join(dir, 'kwokctl.yaml')
  writeFileSync(
    configFile,
    `kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverBinary: ${p.K8S_BIN}/kube-apiserver
  kubeControllerManagerBinary: ${p.K8S_BIN}/kube-controller-manager
  kubeSchedulerBinary: ${p.K8S_BIN}/kube-scheduler
  kubectlBinary: ${p.K8S_BIN}/kubectl
  etcdBinary: ${p.ETCD_BIN}/etcd
  etcdctlBinary: ${p.ETCD_BIN}/etcdctl
  kwokControllerBinary: ${p.KWOK_BIN}/kwok
  nodeLeaseDurationSeconds: 40
  kubeAuthorization: true
  kubeAdmission: true
`,
  )
  const stagesDir = path.join(ROOT, 'scripts/sandbox/stages')
  const stages = readdirSync(stagesDir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => ['--config', path.join(stagesDir, f)])
  const env = {
    ...process.env,
    KWOK_WORKDIR: path.join(dir, 'kwok'),
    PATH: `${p.K8S_BIN}:${p.KWOK_BIN}:${p.ETCD_BIN}:${process.env.PATH}`,
  } as Record<string, string>
  // Without a default route kube-apiserver cannot pick its advertise address (as in sandbox.sh).
  const routes = existsSync('/proc/net/route') ? execFileSync('cat', ['/proc/net/route'], {encoding: 'utf8'}) : ''
  const hasDefault = routes
    .split('\n')
    .slice(1)
    .some((l) => l.split(/\s+/)[1] === '00000000')
  const extra = hasDefault ? [] : ['--extra-args', 'kube-apiserver=advertise-address=127.0.0.1']
  const disable = (options.disable ?? []).flatMap((c) => ['--disable', c])
  for (const a of options.extraArgs ?? []) extra.push('--extra-args', a)

  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await execa('nice', ['-n', '10', 'kwokctl', 'delete', 'cluster', '--name', name, '--kubeconfig', kubeconfig], {
      env,
      reject: false,
    })
    rmSync(dir, {recursive: true, force: true})
  }
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: deleting scratch cluster ${name}…\n`)
    void stop().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  process.once('exit', () => {
    // Last resort (an uncaught error): synchronous, so the components never outlive the run.
    if (!stopped)
      try {
        execFileSync('kwokctl', ['delete', 'cluster', '--name', name, '--kubeconfig', kubeconfig], {
          env,
          stdio: 'ignore',
        })
        rmSync(dir, {recursive: true, force: true})
      } catch {
        // nothing more to do on the way out
      }
  })

  const started = Date.now()
  const created = await execa(
    'nice',
    [
      '-n',
      '10',
      'kwokctl',
      'create',
      'cluster',
      '--name',
      name,
      '--runtime',
      'binary',
      '--config',
      configFile,
      ...stages,
      ...extra,
      ...disable,
      '--kubeconfig',
      kubeconfig,
      '--wait',
      '3m',
    ],
    {env, reject: false, all: true},
  )
  if (created.exitCode !== 0) {
    await stop()
    throw new Error(`kwokctl create cluster ${name} failed:\n${created.all?.slice(-3000)}`)
  }
  const context = `kwok-${name}`
  const childEnv = {KUBECONFIG: kubeconfig, RETAILOPS_KUBE_CONTEXT: context}
  const kubectl = async (args: string[], o: {input?: string} = {}): Promise<string> =>
    (
      await execa(`${p.K8S_BIN}/kubectl`, ['--kubeconfig', kubeconfig, '--context', context, ...args], {
        input: o.input,
      })
    ).stdout
  // The default ServiceAccount must exist before pods can be created in a namespace.
  for (let i = 0; i < 120; i++) {
    if ((await kubectl(['-n', 'default', 'get', 'serviceaccounts', '-o', 'name']).catch(() => '')).includes('default'))
      break
    if (options.disable?.includes('kube-controller-manager')) break
    await new Promise((r) => setTimeout(r, 500))
  }
  process.stderr.write(
    `scratch cluster ${name} up in ${((Date.now() - started) / 1000).toFixed(1)} s (${kubeconfig})\n`,
  )
  const pids = new Map<string, number>()
  return {
    name,
    kubeconfig,
    context,
    env: childEnv,
    kubectl,
    cpuMs(binary) {
      let pid = pids.get(binary)
      if (pid === undefined) pids.set(binary, (pid = componentPid(name, binary)))
      return processCpuMs(pid)
    },
    async addSandboxNodes() {
      const nodes = execFileSync('bash', [path.join(ROOT, 'scripts/sandbox/nodes.sh')], {
        encoding: 'utf8',
        env: {...process.env, K8S_VERSION: p.K8S_VERSION, KWOK_VERSION: p.KWOK_VERSION},
      })
      await kubectl(['apply', '-f', '-'], {input: nodes})
      await kubectl([
        'wait',
        '--for=condition=Ready',
        'node',
        '-l',
        'retailops.dev/sandbox-node=true',
        '--timeout=120s',
      ])
    },
    async addGatewayApi() {
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', p.GATEWAY_API_CRDS])
      // Right after creation a CRD may have no status.conditions yet, and kubectl wait fails on
      // that at once ("<nil> is of the type <nil>") instead of waiting: ask again.
      for (let attempt = 1; ; attempt++) {
        try {
          await kubectl([
            'wait',
            '--for=condition=Established',
            'crd/httproutes.gateway.networking.k8s.io',
            'crd/gateways.gateway.networking.k8s.io',
            '--timeout=60s',
          ])
          break
        } catch (error) {
          if (attempt >= 10) throw error
          await new Promise((r) => setTimeout(r, 500))
        }
      }
    },
    stop,
  }
}

// `npx tsx bench/lib/scratch-cluster.ts [name]`: a scratch cluster held until Ctrl-C, for profiling by hand.
if (import.meta.url === `file://${process.argv[1]}`) {
  const cluster = await startScratchCluster({name: process.argv[2] ?? 'hold'})
  await cluster.addSandboxNodes()
  process.stdout.write(`export KUBECONFIG=${cluster.kubeconfig} RETAILOPS_KUBE_CONTEXT=${cluster.context}\n`)
  setInterval(() => undefined, 1 << 30)
}
