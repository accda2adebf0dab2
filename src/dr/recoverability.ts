import {loadYaml} from '../assets/yaml.js'
import type {KeyObject} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

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
        // yaml is loaded by the checks that read a definition, not by `dr plan`, which only names them.
        data = file.endsWith('.json') ? JSON.parse(text) : (await loadYaml()).parse(text)
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
      (): {artifacts: Record<string, {image: string; digest?: string}>} => ({artifacts: {}}),
    )
    const imageContext: ImageCheckContext = {
      project,
      registry: config.registry,
      lock,
      publicKey: await projectPublicKey(project),
      signal: options.signal,
    }
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
      for (const image of images) results.push(await checkImage(imageContext, service, image, mine.length === 0))
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

/** The project's public key for provenance attestations, when it has one (a missing key is not an error here). */
async function projectPublicKey(project: LoadedConfig): Promise<KeyObject | undefined> {
  const {resolveFileOrEnv} = await import('../config/secret-ref.js')
  const {loadPublicKey} = await import('../signing/keys.js')
  return loadPublicKey(resolveFileOrEnv(project.config.signing.publicKey, project.dir)).catch(() => undefined)
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

interface ImageCheckContext {
  project: LoadedConfig
  registry: {url: string; insecure: boolean}
  lock: Record<string, {image: string; digest?: string}>
  publicKey?: KeyObject
  signal?: AbortSignal
}

async function checkImage(
  c: ImageCheckContext,
  service: string,
  image: string,
  fromLock: boolean,
): Promise<RecoverabilityCheck> {
  const origin = fromLock ? ' (from the artifacts lock; not deployed)' : ''
  const result = (status: RecoverabilityCheck['status'], detail: string): RecoverabilityCheck => ({
    service,
    kind: 'image',
    subject: image,
    status,
    detail: `${detail}${origin}`,
  })
  try {
    const {parseReference} = await import('../docker/reference.js')
    const {registryClient, usesPlainHttp} = await import('../docker/registry.js')
    const {baseImageLocation, checkPullable, findProvenance, proveRebuildable} =
      await import('./image-recoverability.js')
    const {readProvenanceFile} = await import('../supplychain/provenance.js')
    const ref = parseReference(image)
    const client = await registryClient(ref.registry, {
      insecure: usesPlainHttp(ref.registry, c.registry),
      signal: c.signal,
    })
    if (!ref.digest) {
      const head = ref.tag ? await client.headManifest(ref.repository, ref.tag) : undefined
      return result(
        'warn',
        `deployed by tag, not digest: the running bytes cannot be proven pullable${head ? ` (the tag now points at ${head.digest})` : ' (and the tag is gone)'}`,
      )
    }
    const pull = await checkPullable(client, ref.repository, ref.digest)
    if (pull.missingManifests.length === 0 && pull.missingBlobs.length === 0)
      return result(
        'pass',
        `${pull.manifests.length} manifest(s) and ${pull.blobsPresent} blob(s) present in ${ref.registry}/${ref.repository} (HEAD on each blob)${pull.foreignLayers ? `; ${pull.foreignLayers} foreign layer(s) not checked` : ''}`,
      )
    const lost = [
      ...pull.missingManifests.map((d) => `manifest ${d}`),
      ...pull.missingBlobs.map(
        (b) => `blob ${b.digest}${b.mediaType ? ` (${b.mediaType})` : ''} of manifest ${b.manifest}`,
      ),
    ]
    const gone = `missing from ${ref.registry}/${ref.repository}: ${lost.join(', ')}`
    // Not pullable: can it be built again from source?
    const locked = Object.entries(c.lock).find(([s, e]) => s === service && e.digest === ref.digest)
    const found = await findProvenance({
      client,
      registry: ref.registry,
      repository: ref.repository,
      digest: ref.digest,
      publicKey: c.publicKey,
      local: locked ? () => readProvenanceFile(c.project.dir, service) : undefined,
    })
    if (!found.provenance)
      return result(
        'fail',
        `${gone}; and not provably rebuildable: no provenance for this digest (${found.why.join('; ')})`,
      )
    const proof = await proveRebuildable(c.project.dir, found.provenance, async (name, digest) => {
      const where = baseImageLocation(name)
      if (!where) return 'not an image reference'
      const baseClient = await registryClient(where.registry, {
        insecure: usesPlainHttp(where.registry, c.registry),
        signal: c.signal,
      })
      return (await baseClient.headManifest(where.repository, digest)) !== undefined
    })
    if (!proof.ok) return result('fail', `${gone}; and not rebuildable from source (${found.source}): ${proof.detail}`)
    return result('warn', `${gone}; rebuildable from source (${found.source}): ${proof.detail}`)
  } catch (error) {
    return result('fail', (error as Error).message.split('\n')[0])
  }
}
