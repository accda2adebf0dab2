import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {parse as parseYaml} from 'yaml'

import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import type {RecoverabilityCheck} from './types.js'

/**
 * The seed's recoverability list beyond databases: every deployed image can still be pulled by
 * digest, every referenced Secret and ConfigMap exists, and the message topics and search indexes
 * a service owns can be recreated, which retailops takes to mean: their definitions are kept as
 * code in the project (definitions/topics/<name>.yaml|yml|json with a positive integer
 * `partitions`; definitions/search-indexes/<name>.json|yaml|yml with a `mappings` or `settings`
 * object), so they can be recreated from the repository after a loss.
 */
export const DEFINITION_DIRS = {topic: 'definitions/topics', searchIndex: 'definitions/search-indexes'} as const
const EXTENSIONS = ['.yaml', '.yml', '.json']

export interface PodSpecLike {
  containers?: {
    name: string
    image?: string
    env?: {
      valueFrom?: {
        secretKeyRef?: {name?: string; optional?: boolean}
        configMapKeyRef?: {name?: string; optional?: boolean}
      }
    }[]
    envFrom?: {secretRef?: {name?: string; optional?: boolean}; configMapRef?: {name?: string; optional?: boolean}}[]
  }[]
  initContainers?: PodSpecLike['containers']
  volumes?: {
    secret?: {secretName?: string; optional?: boolean}
    configMap?: {name?: string; optional?: boolean}
    projected?: {
      sources?: {secret?: {name?: string; optional?: boolean}; configMap?: {name?: string; optional?: boolean}}[]
    }
  }[]
  imagePullSecrets?: {name?: string}[]
}

export interface DeploymentLike {
  metadata: {name: string; labels?: Record<string, string>}
  spec?: {template?: {spec?: PodSpecLike}}
}

/** Every image, Secret and ConfigMap a pod spec refers to (optional references are marked). */
export function podReferences(spec: PodSpecLike | undefined): {
  images: string[]
  secrets: Map<string, boolean>
  configMaps: Map<string, boolean>
} {
  const images = new Set<string>()
  const secrets = new Map<string, boolean>()
  const configMaps = new Map<string, boolean>()
  const add = (map: Map<string, boolean>, name: string | undefined, optional: boolean | undefined) => {
    if (!name) return
    map.set(name, (map.get(name) ?? true) && Boolean(optional))
  }
  for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    if (c.image) images.add(c.image)
    for (const e of c.env ?? []) {
      add(secrets, e.valueFrom?.secretKeyRef?.name, e.valueFrom?.secretKeyRef?.optional)
      add(configMaps, e.valueFrom?.configMapKeyRef?.name, e.valueFrom?.configMapKeyRef?.optional)
    }
    for (const e of c.envFrom ?? []) {
      add(secrets, e.secretRef?.name, e.secretRef?.optional)
      add(configMaps, e.configMapRef?.name, e.configMapRef?.optional)
    }
  }
  for (const v of spec?.volumes ?? []) {
    add(secrets, v.secret?.secretName, v.secret?.optional)
    add(configMaps, v.configMap?.name, v.configMap?.optional)
    for (const s of v.projected?.sources ?? []) {
      add(secrets, s.secret?.name, s.secret?.optional)
      add(configMaps, s.configMap?.name, s.configMap?.optional)
    }
  }
  for (const s of spec?.imagePullSecrets ?? []) add(secrets, s.name, false)
  return {images: [...images], secrets, configMaps}
}

/** Checks one topic or search-index definition file's content. */
export function checkDefinition(
  kind: 'topic' | 'searchIndex',
  name: string,
  data: unknown,
): {ok: boolean; detail: string} {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return {ok: false, detail: 'not a mapping'}
  const d = data as Record<string, unknown>
  if (d.name !== undefined && d.name !== name) return {ok: false, detail: `defines "${String(d.name)}", not "${name}"`}
  if (kind === 'topic') {
    if (!Number.isInteger(d.partitions) || (d.partitions as number) < 1)
      return {ok: false, detail: 'needs partitions: a positive integer'}
    return {
      ok: true,
      detail: `${String(d.partitions)} partitions${d.replicationFactor ? `, replication ${String(d.replicationFactor)}` : ''}`,
    }
  }
  const isObject = (v: unknown) => Boolean(v) && typeof v === 'object' && !Array.isArray(v)
  if (!isObject(d.mappings) && !isObject(d.settings)) return {ok: false, detail: 'needs a mappings or settings object'}
  return {
    ok: true,
    detail: `${isObject(d.mappings) ? `${Object.keys((d.mappings as {properties?: object}).properties ?? (d.mappings as object)).length} mapped fields` : 'settings only'}`,
  }
}

export async function checkDefinitions(
  project: LoadedConfig,
  service: string,
  kind: 'topic' | 'searchIndex',
  names: string[],
): Promise<RecoverabilityCheck[]> {
  const dir = path.join(project.dir, DEFINITION_DIRS[kind])
  return Promise.all(
    names.map(async (name): Promise<RecoverabilityCheck> => {
      const file = EXTENSIONS.map((ext) => path.join(dir, `${name}${ext}`)).find((f) => existsSync(f))
      const rel = path.join(DEFINITION_DIRS[kind], name)
      if (!file)
        return {
          service,
          kind,
          subject: name,
          status: 'fail',
          detail: `no definition at ${rel}.{yaml,yml,json}: it could not be recreated after a loss`,
        }
      let data: unknown
      try {
        const text = await readFile(file, 'utf8')
        data = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
      } catch (error) {
        return {
          service,
          kind,
          subject: name,
          status: 'fail',
          detail: `${path.relative(project.dir, file)}: unreadable (${(error as Error).message.split('\n')[0]})`,
        }
      }
      const check = checkDefinition(kind, name, data)
      return {
        service,
        kind,
        subject: name,
        status: check.ok ? 'pass' : 'fail',
        detail: `${path.relative(project.dir, file)}: ${check.detail}`,
      }
    }),
  )
}

export interface RecoverabilityOptions {
  project: LoadedConfig
  environment: ResolvedEnvironment
  services: string[]
  signal?: AbortSignal
}

/** Runs every recoverability check of the services; a system that cannot be reached fails its checks, it does not stop the drill. */
export async function checkRecoverability(options: RecoverabilityOptions): Promise<RecoverabilityCheck[]> {
  const {project, environment, services} = options
  const config = project.config
  const namespace = environment.namespace
  const results: RecoverabilityCheck[] = []
  for (const service of services) {
    const s = config.services[service]
    results.push(...(await checkDefinitions(project, service, 'topic', s.topics)))
    results.push(...(await checkDefinitions(project, service, 'searchIndex', s.searchIndexes)))
  }

  // The cluster: deployed images and referenced Secrets and ConfigMaps.
  let deployments: DeploymentLike[]
  let kube: {get: (p: string) => Promise<unknown>; close: () => void} | undefined
  try {
    const {kubeCredentials} = await import('../kubernetes/client.js')
    const {KubeHttp} = await import('../kubernetes/http.js')
    const http = new KubeHttp(kubeCredentials({context: environment.context, kubeconfig: environment.kubeconfig}))
    kube = {get: (p) => http.request('GET', p, {signal: options.signal}), close: () => http.close()}
    const {collectionPath} = await import('../kubernetes/resources.js')
    const list = (await kube.get(
      `${collectionPath('Deployment', namespace)}?labelSelector=${encodeURIComponent('app.kubernetes.io/managed-by=retailops')}`,
    )) as {items: DeploymentLike[]}
    deployments = list.items
  } catch (error) {
    const detail = `cannot read Deployments in ${namespace}: ${(error as Error).message.split('\n')[0]}`
    for (const service of services)
      results.push({service, kind: 'image', subject: `${service} (deployed images)`, status: 'fail', detail})
    kube?.close()
    return results
  }

  try {
    const {readArtifactsLock} = await import('../docker/artifacts.js')
    const {artifacts: lock} = await readArtifactsLock(project.dir).catch(
      (): {artifacts: Record<string, {image: string}>} => ({artifacts: {}}),
    )
    for (const service of services) {
      const s = config.services[service]
      const mine = deployments.filter(
        (d) =>
          d.metadata.labels?.['retailops.dev/service'] === service ||
          d.metadata.labels?.['app.kubernetes.io/name'] === service,
      )
      const secrets = new Map<string, boolean>(s.secrets.map((n) => [n, false]))
      const configMaps = new Map<string, boolean>(s.configMaps.map((n) => [n, false]))
      const images = new Set<string>()
      for (const d of mine) {
        const refs = podReferences(d.spec?.template?.spec)
        for (const i of refs.images) images.add(i)
        for (const [n, optional] of refs.secrets) secrets.set(n, (secrets.get(n) ?? true) && optional)
        for (const [n, optional] of refs.configMaps) configMaps.set(n, (configMaps.get(n) ?? true) && optional)
      }
      if (images.size === 0) {
        const locked = lock[service]
        if (locked?.image) images.add(locked.image)
        else
          results.push({
            service,
            kind: 'image',
            subject: service,
            status: 'skip',
            detail: `not deployed in ${namespace} and not in the artifacts lock`,
          })
      }
      for (const image of images)
        results.push(await checkImage(service, image, config.registry, mine.length === 0, options.signal))
      for (const [name, optional] of secrets)
        results.push(await checkObject(kube, service, 'secret', namespace, name, optional))
      for (const [name, optional] of configMaps)
        results.push(await checkObject(kube, service, 'configMap', namespace, name, optional))
    }
  } finally {
    kube.close()
  }
  return results
}

async function checkObject(
  kube: {get: (p: string) => Promise<unknown>},
  service: string,
  kind: 'secret' | 'configMap',
  namespace: string,
  name: string,
  optional: boolean,
): Promise<RecoverabilityCheck> {
  const {namedPath} = await import('../kubernetes/resources.js')
  try {
    await kube.get(namedPath(kind === 'secret' ? 'Secret' : 'ConfigMap', name, namespace))
    return {service, kind, subject: name, status: 'pass', detail: `exists in ${namespace}`}
  } catch (error) {
    const code = (error as {statusCode?: number}).statusCode
    if (code === 404)
      return {
        service,
        kind,
        subject: name,
        status: optional ? 'warn' : 'fail',
        detail: `missing from ${namespace}${optional ? ' (referenced as optional)' : ''}`,
      }
    return {
      service,
      kind,
      subject: name,
      status: 'fail',
      detail: `cannot read it: ${(error as Error).message.split('\n')[0]}`,
    }
  }
}

async function checkImage(
  service: string,
  image: string,
  registry: {url: string; insecure: boolean},
  fromLock: boolean,
  signal?: AbortSignal,
): Promise<RecoverabilityCheck> {
  const origin = fromLock ? ' (from the artifacts lock; not deployed)' : ''
  try {
    const {parseReference} = await import('../docker/reference.js')
    const {registryClient, usesPlainHttp} = await import('../docker/registry.js')
    const ref = parseReference(image)
    const client = await registryClient(ref.registry, {insecure: usesPlainHttp(ref.registry, registry), signal})
    if (!ref.digest) {
      const head = ref.tag ? await client.headManifest(ref.repository, ref.tag) : undefined
      return {
        service,
        kind: 'image',
        subject: image,
        status: 'warn',
        detail: `deployed by tag, not digest${origin}: the running bytes cannot be proven pullable${head ? ` (the tag now points at ${head.digest})` : ' (and the tag is gone)'}`,
      }
    }
    const head = await client.headManifest(ref.repository, ref.digest)
    if (!head)
      return {
        service,
        kind: 'image',
        subject: image,
        status: 'fail',
        detail: `manifest ${ref.digest} is gone from ${ref.registry}/${ref.repository}${origin}`,
      }
    if (head.digest !== ref.digest)
      return {
        service,
        kind: 'image',
        subject: image,
        status: 'fail',
        detail: `the registry answered digest ${head.digest}${origin}`,
      }
    return {
      service,
      kind: 'image',
      subject: image,
      status: 'pass',
      detail: `HEAD manifest ${ref.digest.slice(0, 19)}… answered 200 (${head.mediaType || 'unknown media type'})${origin}`,
    }
  } catch (error) {
    return {
      service,
      kind: 'image',
      subject: image,
      status: 'fail',
      detail: `${(error as Error).message.split('\n')[0]}${origin}`,
    }
  }
}
