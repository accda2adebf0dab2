import {createTwoFilesPatch} from 'diff'
import {stringify} from 'yaml'

import {type KubeObject, objectRef} from './resources.js'

/** Fields the server owns or that change on every write: left out of diffs. */
const SERVER_METADATA = ['managedFields', 'resourceVersion', 'uid', 'creationTimestamp', 'generation', 'selfLink']
const SERVER_ANNOTATIONS = ['deployment.kubernetes.io/revision', 'kubectl.kubernetes.io/last-applied-configuration']

export function normalizeForDiff(obj: KubeObject | undefined): Record<string, unknown> | undefined {
  if (!obj) return undefined
  const copy = structuredClone(obj) as Record<string, unknown> & {metadata: Record<string, unknown>}
  delete copy.status
  for (const k of SERVER_METADATA) delete copy.metadata[k]
  const annotations = copy.metadata.annotations as Record<string, string> | undefined
  if (annotations) {
    for (const k of SERVER_ANNOTATIONS) delete annotations[k]
    if (Object.keys(annotations).length === 0) delete copy.metadata.annotations
  }
  return copy
}

function toYaml(obj: Record<string, unknown> | undefined): string {
  return obj ? stringify(obj, {sortMapEntries: true, lineWidth: 0}) : ''
}

/** Unified diff between the live object and what it would become; empty when they are the same. */
export function objectDiff(live: KubeObject | undefined, desired: KubeObject | undefined): string {
  const ref = objectRef((desired ?? live)!)
  const before = toYaml(normalizeForDiff(live))
  const after = toYaml(normalizeForDiff(desired))
  if (before === after) return ''
  return createTwoFilesPatch(
    live ? `live/${ref}` : '/dev/null',
    desired ? `applied/${ref}` : '/dev/null',
    before,
    after,
    undefined,
    undefined,
    {context: 3},
  )
    .split('\n')
    .filter((line) => !line.startsWith('====='))
    .join('\n')
}
