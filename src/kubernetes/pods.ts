import type {KubeObject} from './resources.js'

/**
 * Where a workload keeps its pod spec. Every kind that runs containers is covered, so a check
 * that walks images (signatures, digests) cannot be side-stepped by a Job, a CronJob or a bare Pod.
 */
export const POD_SPEC_PATHS: Record<string, string[]> = {
  Pod: ['spec'],
  PodTemplate: ['template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
}

export type ContainerField = 'containers' | 'initContainers' | 'ephemeralContainers'
export const CONTAINER_FIELDS: ContainerField[] = ['containers', 'initContainers', 'ephemeralContainers']

export interface PodSpecLike {
  containers?: {name: string; image?: string}[]
  initContainers?: {name: string; image?: string}[]
  ephemeralContainers?: {name: string; image?: string}[]
  [key: string]: unknown
}

/** The pod spec of a workload object, or undefined for kinds that run no containers. */
export function podSpecOf(obj: KubeObject): PodSpecLike | undefined {
  const steps = POD_SPEC_PATHS[obj.kind]
  if (!steps) return undefined
  let at: unknown = obj
  for (const step of steps) {
    if (at === null || typeof at !== 'object') return undefined
    at = (at as Record<string, unknown>)[step]
  }
  return at !== null && typeof at === 'object' ? (at as PodSpecLike) : undefined
}

/** One container of one object: which list it is in and the image it runs ("" when none is set). */
export interface ContainerImage {
  object: KubeObject
  field: ContainerField
  container: string
  image: string
}

/** Every container, init container and ephemeral container image of every object, in order. */
export function containerImages(objects: KubeObject[]): ContainerImage[] {
  const out: ContainerImage[] = []
  for (const object of objects) {
    const spec = podSpecOf(object)
    if (!spec) continue
    for (const field of CONTAINER_FIELDS) {
      const list = spec[field]
      if (!Array.isArray(list)) continue
      for (const c of list)
        out.push({object, field, container: String(c?.name ?? ''), image: typeof c?.image === 'string' ? c.image : ''})
    }
  }
  return out
}
