// Runs a pod template (from a Job, a CronJob's jobTemplate, or a Pod read back from the cluster) the
// way the kubelet would, with the real image in the sandbox's Docker Engine on the host network:
// kwok runs no containers, so this is how a test proves what a Job retailops creates really does.
//
// What the kubelet gives a container, and how it is reproduced here:
//  - in-cluster credentials: a TokenRequest for the pod's ServiceAccount (default audience, 10
//    minutes), written with the API server's CA and the namespace to the files a real pod gets at
//    /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace} (read-only), and
//    KUBERNETES_SERVICE_HOST/PORT set to the sandbox API server's loopback address. The CLI's
//    in-cluster path (no kubeconfig, the service-account files) is what runs, as in a pod; host
//    networking makes 127.0.0.1:6443 the "service" address, and the server's certificate names it.
//  - ConfigMap and Secret volumes: read back from the cluster (items and keys honoured, modes from
//    defaultMode or the item, group fsGroup as the kubelet sets it) into folders bind-mounted
//    read-only; emptyDir: a tmpfs (sizeLimit kept; a host folder when the working directory is in it,
//    see below); subPath: that file or folder only.
//  - env: value, valueFrom secretKeyRef / configMapKeyRef / fieldRef (metadata.namespace, name, labels['…'] of a template given with its metadata,
//    spec.serviceAccountName, status.podIP), envFrom, and $(VAR) expansion in env, command and args.
//  - securityContext (pod, overridden by the container's): runAsUser/runAsGroup → --user,
//    fsGroup/supplementalGroups → --group-add, readOnlyRootFilesystem → --read-only, capabilities
//    drop/add, allowPrivilegeEscalation false → no-new-privileges; runAsNonRoot refuses an image
//    that would run as root, as the kubelet does.
//  - command → entrypoint, args → cmd, exactly (a command without args drops the image's CMD);
//    resources.limits → --memory/--cpus; the image exactly as written (pulled when missing).
import {chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type * as k8s from '@kubernetes/client-node'
import {execa} from 'execa'

import {KubeHttp} from '../../../src/kubernetes/http.js'
import {kubeConfig, sandboxEnv} from '../../support/sandbox.js'
import {randomSuffix} from '../../support/names.js'

type PodSpec = k8s.V1PodSpec
type Container = k8s.V1Container

export interface PodRun {
  exitCode: number
  stdout: string
  stderr: string
  /** The Docker container's name (removed by the time this returns). */
  container: string
}

export interface RunPodOptions {
  namespace: string
  template: k8s.V1PodTemplateSpec | PodSpec
  /** Default 240 s; the container is killed after it, and the run fails. */
  timeoutMs?: number
  /** Extra variables, set after the container's own (a test's knob, never a replacement for the spec's). */
  env?: Record<string, string>
  /** The container to run when the pod has several (default: the only one). */
  container?: string
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

function docker(args: string[], options: {timeout?: number} = {}) {
  return execa('docker', args, {env: {DOCKER_HOST: sandboxEnv().dockerHost}, reject: false, timeout: options.timeout})
}

/** The pod spec of a Job, a CronJob's job template, or a Pod, read back from the cluster. */
export async function jobPodTemplate(
  namespace: string,
  kind: 'Job' | 'CronJob' | 'Pod',
  name: string,
): Promise<PodSpec> {
  const http = new KubeHttp(kubeConfig())
  try {
    const ns = `/namespaces/${encodeURIComponent(namespace)}`
    if (kind === 'Pod')
      return (await http.request<k8s.V1Pod>('GET', `/api/v1${ns}/pods/${encodeURIComponent(name)}`)).spec!
    if (kind === 'Job')
      return (await http.request<k8s.V1Job>('GET', `/apis/batch/v1${ns}/jobs/${encodeURIComponent(name)}`)).spec!
        .template.spec!
    return (await http.request<k8s.V1CronJob>('GET', `/apis/batch/v1${ns}/cronjobs/${encodeURIComponent(name)}`)).spec!
      .jobTemplate.spec!.template.spec!
  } finally {
    http.close()
  }
}

/** Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes, unknown references stay as written. */
export function expandVars(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name?: string) => {
    if (match === '$$') return '$'
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name] : match
  })
}

/** Bytes of a quantity such as 256Mi or 1G (for --tmpfs size and --memory). */
function bytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity.trim())
  if (!m) throw new Error(`quantity "${quantity}" is not understood by the pod runner`)
  const scale: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  }
  return Math.round(Number(m[1]) * (m[2] ? scale[m[2]] : 1))
}

function cpus(quantity: string): number {
  return quantity.endsWith('m') ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity)
}

class Cluster {
  private readonly http: KubeHttp
  private readonly cache = new Map<string, Promise<{data: Record<string, Buffer>} | undefined>>()

  constructor(
    readonly kc: k8s.KubeConfig,
    readonly namespace: string,
  ) {
    this.http = new KubeHttp(kc)
  }

  /** A ConfigMap's or Secret's keys as bytes; undefined when it does not exist. */
  source(kind: 'ConfigMap' | 'Secret', name: string) {
    const key = `${kind}/${name}`
    if (!this.cache.has(key)) {
      const plural = kind === 'ConfigMap' ? 'configmaps' : 'secrets'
      this.cache.set(
        key,
        this.http
          .request<{data?: Record<string, string>; binaryData?: Record<string, string>}>(
            'GET',
            `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/${plural}/${encodeURIComponent(name)}`,
          )
          .then(
            (obj) => {
              const data: Record<string, Buffer> = {}
              for (const [k, v] of Object.entries(obj.data ?? {}))
                data[k] = kind === 'Secret' ? Buffer.from(v, 'base64') : Buffer.from(v, 'utf8')
              for (const [k, v] of Object.entries(obj.binaryData ?? {})) data[k] = Buffer.from(v, 'base64')
              return {data}
            },
            (error: {statusCode?: number}) => {
              if (error.statusCode === 404) return undefined
              throw error
            },
          ),
      )
    }
    return this.cache.get(key)!
  }

  async key(
    kind: 'ConfigMap' | 'Secret',
    ref: {name?: string; key: string; optional?: boolean},
    what: string,
  ): Promise<string | undefined> {
    const found = await this.source(kind, ref.name ?? '')
    const value = found?.data[ref.key]
    if (value === undefined && !ref.optional) {
      throw new Error(
        `${what}: ${kind} ${this.namespace}/${ref.name} ${found ? `has no key "${ref.key}"` : 'does not exist'}; the kubelet would not start this container (CreateContainerConfigError).`,
      )
    }
    return value?.toString('utf8')
  }

  async token(serviceAccount: string): Promise<string> {
    const r = await this.http.request<{status: {token: string}}>(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`,
      {
        body: {apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {expirationSeconds: 600}},
      },
    )
    return r.status.token
  }

  close() {
    this.http.close()
  }
}

/** Writes files with the kubelet's modes; group-owned by fsGroup, and group-readable, when the pod sets one (as the kubelet does). */
async function materialise(
  dir: string,
  files: {path: string; content: Buffer; mode: number}[],
  fsGroup?: number,
): Promise<void> {
  await mkdir(dir, {recursive: true, mode: 0o755})
  await chmod(dir, fsGroup === undefined ? 0o755 : 0o2775)
  if (fsGroup !== undefined) await chown(dir, 0, fsGroup)
  for (const file of files) {
    const target = path.join(dir, file.path)
    if (!target.startsWith(dir + path.sep)) throw new Error(`volume item path "${file.path}" leaves the volume`)
    await mkdir(path.dirname(target), {recursive: true, mode: 0o755})
    await writeFile(target, file.content)
    // With fsGroup the kubelet hands the files to that group, readable by it (SetVolumeOwnership: mode | 0440).
    await chmod(target, fsGroup === undefined ? file.mode : file.mode | 0o440)
    if (fsGroup !== undefined) await chown(target, 0, fsGroup)
  }
}

function pick(container: Container[], name?: string): Container {
  if (name) {
    const c = container.find((x) => x.name === name)
    if (!c) throw new Error(`the pod has no container "${name}" (it has ${container.map((x) => x.name).join(', ')})`)
    return c
  }
  if (container.length !== 1)
    throw new Error(
      `the pod has ${container.length} containers (${container.map((x) => x.name).join(', ')}): say which to run (container)`,
    )
  return container[0]
}

/**
 * Runs the pod's container to completion in the sandbox's Docker Engine, as the kubelet would
 * (see the top of this file), and removes it. initContainers run first, in order; a failing one
 * is the result, as it would keep the pod from starting.
 */
export async function runPodTemplate(options: RunPodOptions): Promise<PodRun> {
  const spec: PodSpec = 'containers' in options.template ? options.template : options.template.spec!
  if (!spec) throw new Error('the template has no pod spec')
  const container = pick(spec.containers, options.container)
  const kc = kubeConfig()
  const cluster = new Cluster(kc, options.namespace)
  const work = await mkdtemp(path.join(os.tmpdir(), 'retailops-pod-'))
  await chmod(work, 0o755)
  try {
    for (const init of spec.initContainers ?? []) {
      const r = await runContainer(spec, init, options, cluster, work)
      if (r.exitCode !== 0) return r
    }
    return await runContainer(spec, container, options, cluster, work)
  } finally {
    cluster.close()
    await rm(work, {recursive: true, force: true})
  }
}

async function runContainer(
  spec: PodSpec,
  container: Container,
  options: RunPodOptions,
  cluster: Cluster,
  work: string,
): Promise<PodRun> {
  const name = `retailops-pod-${options.namespace}-${container.name}-${randomSuffix()}`.slice(0, 120)
  const podName = name
  const args: string[] = ['create', '--name', name, '--network', 'host', '--hostname', podName.slice(0, 63)]
  const pod = spec.securityContext ?? {}
  const own = container.securityContext ?? {}
  const fsGroup = pod.fsGroup ?? undefined

  // The image, exactly as written; pulled when missing (IfNotPresent), always when Always.
  const image = container.image
  if (!image) throw new Error(`container ${container.name} has no image`)
  const present = (await docker(['image', 'inspect', image])).exitCode === 0
  if (container.imagePullPolicy === 'Always' || !present) {
    if (container.imagePullPolicy === 'Never' && !present)
      throw new Error(`${image} is not in the Docker Engine and imagePullPolicy is Never (ErrImageNeverPull)`)
    const pull = await docker(['pull', image], {timeout: 300_000})
    if (pull.exitCode !== 0) {
      throw new Error(
        `Cannot pull ${image} from the sandbox registry (ErrImagePull): ${pull.stderr.trim()}\nThe Job's image must be pushed there first: for the runner, sandboxRunnerImage() (test/integration/helpers/runner-image.ts) builds and pushes it with \`retailops runner build\`.`,
      )
    }
  }
  const inspected = JSON.parse((await docker(['image', 'inspect', image])).stdout)[0] as {
    Config: {User?: string; Env?: string[]}
  }

  // Identity and privileges.
  const uid = own.runAsUser ?? pod.runAsUser
  const gid = own.runAsGroup ?? pod.runAsGroup
  const runAsNonRoot = own.runAsNonRoot ?? pod.runAsNonRoot
  const imageUser = (inspected.Config.User ?? '').split(':')[0]
  if (runAsNonRoot) {
    if (uid === 0)
      throw new Error(`container ${container.name}: runAsNonRoot and runAsUser 0 (CreateContainerConfigError)`)
    if (uid === undefined && (imageUser === '' || imageUser === '0' || imageUser === 'root'))
      throw new Error(
        `container ${container.name}: runAsNonRoot and the image ${image} runs as root (CreateContainerConfigError)`,
      )
    if (uid === undefined && !/^\d+$/.test(imageUser))
      throw new Error(
        `container ${container.name}: runAsNonRoot and the image's user "${imageUser}" is not numeric (the kubelet cannot verify it is non-root)`,
      )
  }
  if (uid !== undefined) args.push('--user', `${uid}:${gid ?? 0}`)
  else if (gid !== undefined) args.push('--user', `${imageUser || 0}:${gid}`)
  for (const group of [...(fsGroup === undefined ? [] : [fsGroup]), ...(pod.supplementalGroups ?? [])])
    args.push('--group-add', String(group))
  if (own.readOnlyRootFilesystem) args.push('--read-only')
  if (own.privileged) args.push('--privileged')
  for (const cap of own.capabilities?.drop ?? []) args.push('--cap-drop', cap)
  for (const cap of own.capabilities?.add ?? []) args.push('--cap-add', cap)
  if (own.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges')
  const seccomp = own.seccompProfile?.type ?? pod.seccompProfile?.type
  if (seccomp === 'Unconfined') args.push('--security-opt', 'seccomp=unconfined')
  const limits = container.resources?.limits ?? {}
  if (limits.memory) args.push('--memory', String(bytes(String(limits.memory))))
  if (limits.cpu) args.push('--cpus', String(cpus(String(limits.cpu))))
  if (container.workingDir) args.push('--workdir', container.workingDir)

  // Environment: the service-account "service" address, envFrom, then env in order ($(VAR) sees what came before).
  const env: Record<string, string> = {}
  const server = new URL(cluster.kc.getCurrentCluster()!.server)
  const automount = spec.automountServiceAccountToken !== false
  if (automount) {
    env.KUBERNETES_SERVICE_HOST = server.hostname
    env.KUBERNETES_SERVICE_PORT = server.port || '443'
    env.KUBERNETES_SERVICE_PORT_HTTPS = env.KUBERNETES_SERVICE_PORT
  }
  const what = `container ${container.name}`
  for (const from of container.envFrom ?? []) {
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret'
    const ref = from.configMapRef ?? from.secretRef
    const found = await cluster.source(kind, ref?.name ?? '')
    if (!found) {
      if (ref?.optional) continue
      throw new Error(
        `${what}: envFrom ${kind} ${options.namespace}/${ref?.name} does not exist (CreateContainerConfigError)`,
      )
    }
    for (const [k, v] of Object.entries(found.data)) env[`${from.prefix ?? ''}${k}`] = v.toString('utf8')
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom
    let value: string | undefined
    if (!from) value = expandVars(variable.value ?? '', env)
    else if (from.secretKeyRef) value = await cluster.key('Secret', from.secretKeyRef, `${what}, env ${variable.name}`)
    else if (from.configMapKeyRef)
      value = await cluster.key('ConfigMap', from.configMapKeyRef, `${what}, env ${variable.name}`)
    else if (from.fieldRef) {
      const fields: Record<string, string> = {
        'metadata.namespace': options.namespace,
        'metadata.name': podName,
        'spec.serviceAccountName': spec.serviceAccountName ?? 'default',
        'spec.nodeName': os.hostname(),
        'status.podIP': '127.0.0.1',
        'status.hostIP': '127.0.0.1',
        // The pod's labels, as the kubelet reads them (a template given with its metadata: a Job's or a CronJob's).
        ...Object.fromEntries(
          Object.entries(('metadata' in options.template ? options.template.metadata?.labels : undefined) ?? {}).map(
            ([k, v]) => [`metadata.labels['${k}']`, v],
          ),
        ),
      }
      value = fields[from.fieldRef.fieldPath]
      if (value === undefined)
        throw new Error(
          `${what}, env ${variable.name}: fieldRef ${from.fieldRef.fieldPath} is not supported by the pod runner`,
        )
    } else
      throw new Error(
        `${what}, env ${variable.name}: valueFrom ${Object.keys(from).join(', ')} is not supported by the pod runner`,
      )
    if (value !== undefined) env[variable.name] = value
  }
  Object.assign(env, options.env ?? {})
  for (const [k, v] of Object.entries(env)) args.push('--env', `${k}=${v}`)

  // Volumes: the service-account files, then each volumeMount from its volume.
  const mounts = container.volumeMounts ?? []
  if (automount && !mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) {
    const ca = cluster.kc.getCurrentCluster()!
    const caBytes = ca.caData ? Buffer.from(ca.caData, 'base64') : await readFile(ca.caFile!)
    const dir = path.join(work, `${container.name}-serviceaccount`)
    const token = await cluster.token(spec.serviceAccountName ?? 'default')
    await materialise(
      dir,
      [
        {path: 'token', content: Buffer.from(token), mode: 0o644},
        {path: 'ca.crt', content: caBytes, mode: 0o644},
        {path: 'namespace', content: Buffer.from(options.namespace), mode: 0o644},
      ],
      fsGroup,
    )
    args.push('--mount', `type=bind,source=${dir},target=${SERVICE_ACCOUNT_DIR},readonly`)
  }
  for (const mount of mounts) {
    const volume = (spec.volumes ?? []).find((v) => v.name === mount.name)
    if (!volume) throw new Error(`${what}: volumeMount ${mount.name} names no volume of the pod`)
    const sub = mount.subPath ? expandVars(mount.subPath, env) : undefined
    if (volume.emptyDir) {
      if (sub) throw new Error(`${what}: subPath on the emptyDir ${mount.name} is not supported by the pod runner`)
      const mode = fsGroup === undefined ? 0o1777 : 0o2777
      const wd = container.workingDir
      if (wd && (wd === mount.mountPath || wd.startsWith(`${mount.mountPath.replace(/\/+$/, '')}/`))) {
        // Docker 20.10 resets a tmpfs to 0755 root when it creates the working directory in it;
        // a host folder (what the kubelet uses for an emptyDir on disk) keeps its mode.
        const dir = path.join(work, `${container.name}-emptydir-${mount.name}`)
        await materialise(dir, [], fsGroup)
        await chmod(dir, mode)
        args.push('--mount', `type=bind,source=${dir},target=${mount.mountPath}`)
        continue
      }
      const size = volume.emptyDir.sizeLimit ? `,size=${bytes(String(volume.emptyDir.sizeLimit))}` : ''
      args.push('--tmpfs', `${mount.mountPath}:rw,exec,mode=${mode.toString(8)}${size}`)
      continue
    }
    let files: {path: string; content: Buffer; mode: number}[]
    if (volume.configMap || volume.secret) {
      const kind = volume.configMap ? 'ConfigMap' : 'Secret'
      const source = volume.configMap ?? volume.secret!
      const sourceName = volume.configMap ? volume.configMap.name : volume.secret!.secretName
      const defaultMode = source.defaultMode ?? 0o644
      const found = await cluster.source(kind, sourceName ?? '')
      if (!found && !source.optional)
        throw new Error(
          `${what}: volume ${mount.name}: ${kind} ${options.namespace}/${sourceName} does not exist; the kubelet would leave the pod in ContainerCreating (FailedMount).`,
        )
      const data = found?.data ?? {}
      if (source.items?.length) {
        files = []
        for (const item of source.items) {
          if (data[item.key] === undefined) {
            if (source.optional) continue
            throw new Error(
              `${what}: volume ${mount.name}: ${kind} ${options.namespace}/${sourceName} has no key "${item.key}" (FailedMount)`,
            )
          }
          files.push({path: item.path, content: data[item.key], mode: item.mode ?? defaultMode})
        }
      } else files = Object.entries(data).map(([k, v]) => ({path: k, content: v, mode: defaultMode}))
    } else {
      throw new Error(
        `${what}: volume ${mount.name} is ${Object.keys(volume)
          .filter((k) => k !== 'name')
          .join(', ')}; the pod runner materialises configMap, secret and emptyDir volumes`,
      )
    }
    const dir = path.join(work, `${container.name}-volume-${mount.name}`)
    await materialise(dir, files, fsGroup)
    const source = sub ? path.join(dir, sub) : dir
    // ConfigMap and Secret volumes are read-only in a pod whatever the mount says.
    args.push('--mount', `type=bind,source=${source},target=${mount.mountPath},readonly`)
  }

  // command → entrypoint (the rest before args), args → cmd; $(VAR) expanded as the kubelet does.
  const command = (container.command ?? []).map((c) => expandVars(c, env))
  const cmdArgs = (container.args ?? []).map((a) => expandVars(a, env))
  if (command.length > 0) args.push('--entrypoint', command[0])
  args.push(image, ...(command.length > 0 ? command.slice(1) : []), ...cmdArgs)

  const created = await docker(args)
  if (created.exitCode !== 0) throw new Error(`docker create for ${what} failed: ${created.stderr.trim()}`)
  try {
    const timeoutMs = options.timeoutMs ?? 240_000
    const started = await docker(['start', '--attach', name], {timeout: timeoutMs})
    if (started.timedOut)
      throw new Error(
        `${what} did not finish within ${timeoutMs} ms (activeDeadlineSeconds of the test); output so far:\n${started.stdout}\n${started.stderr}`,
      )
    const state = JSON.parse((await docker(['inspect', '--format', '{{json .State}}', name])).stdout) as {
      ExitCode: number
      OOMKilled: boolean
      Error: string
    }
    if (state.Error) throw new Error(`${what} could not run: ${state.Error}`)
    if (state.OOMKilled)
      throw new Error(`${what} was OOM-killed at its memory limit ${limits.memory}\n${started.stderr}`)
    // Logs are read from the engine, not the attach stream, so stdout and stderr stay apart and complete.
    const logs = await docker(['logs', name])
    return {exitCode: state.ExitCode, stdout: logs.stdout, stderr: logs.stderr, container: name}
  } finally {
    await docker(['rm', '--force', name])
  }
}
