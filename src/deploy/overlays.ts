import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {LineCounter, parseDocument} from 'yaml'

import {ConfigError} from '../errors/index.js'
import type {KubeObject} from '../kubernetes/resources.js'
import {objectRef} from '../kubernetes/resources.js'

export interface Overlay {
  kind: string
  name?: string
  patch: Record<string, unknown>
}

/** The schema of an overlays file, built when a project has one: zod is not loaded by a render without overlays. */
async function overlayFile() {
  const {z} = await import('zod')
  const entry = z
    .object({
      kind: z.string().min(1),
      name: z.string().optional(),
      patch: z.record(z.string(), z.unknown()),
    })
    .strict()
  return z.array(entry)
}

/** RFC 7386 JSON merge patch: objects merge, null deletes a key, anything else (arrays too) replaces. */
export function mergePatch<T>(target: T, patch: unknown): T {
  // A string, number or boolean is its own copy; structuredClone of each leaf cost a second of a 20,000-object render.
  if (patch === null || typeof patch !== 'object') return patch as T
  if (Array.isArray(patch)) return cloneData(patch) as T
  const base: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? {...(target as Record<string, unknown>)}
      : {}
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete base[key]
    else base[key] = mergePatch(base[key], value)
  }
  return base as T
}

/** A deep copy of plain data (what YAML and JSON parse to): several times faster than structuredClone for it. */
export function cloneData<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(cloneData) as T
  if (Object.getPrototypeOf(value) !== Object.prototype) return structuredClone(value)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = cloneData(v)
  return out as T
}

/** overlays/<service>.yaml of the project, validated; an absent file is no overlays. */
export async function readOverlays(dir: string, service: string): Promise<Overlay[]> {
  const file = path.join(dir, 'overlays', `${service}.yaml`)
  if (!existsSync(file)) return []
  const lineCounter = new LineCounter()
  const doc = parseDocument(await readFile(file, 'utf8'), {lineCounter})
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        line: lineCounter.linePos(e.pos[0]).line,
        path: '',
        message: `YAML syntax: ${e.message.split('\n')[0]}`,
      })),
    )
  }
  const parsed = (await overlayFile()).safeParse(doc.toJS() ?? [])
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({file, path: i.path.join('.'), message: i.message})),
      {
        nextSteps: ['Each entry is {kind, name?, patch}: see overlays/README.md.'],
      },
    )
  }
  parsed.data.forEach((o, i) => {
    const meta = o.patch.metadata as Record<string, unknown> | undefined
    if (
      o.patch.kind !== undefined ||
      o.patch.apiVersion !== undefined ||
      meta?.name !== undefined ||
      meta?.namespace !== undefined
    ) {
      throw new ConfigError([
        {file, path: `${i}.patch`, message: 'an overlay may not change kind, apiVersion, name or namespace'},
      ])
    }
  })
  return parsed.data
}

/**
 * Applies a service's overlays to its rendered objects, in file order. An overlay that matches
 * nothing is reported, since it is usually a typo in kind or name.
 */
export function applyOverlays(
  objects: KubeObject[],
  overlays: Overlay[],
  source: string,
): {objects: KubeObject[]; unmatched: string[]} {
  const unmatched: string[] = []
  let out = objects
  for (const overlay of overlays) {
    let hit = false
    out = out.map((obj) => {
      if (obj.kind !== overlay.kind || (overlay.name !== undefined && obj.metadata.name !== overlay.name)) return obj
      hit = true
      const patched = mergePatch(obj, overlay.patch)
      if (patched.kind !== obj.kind || patched.metadata?.name !== obj.metadata.name)
        throw new Error(`overlay changed the identity of ${objectRef(obj)}`)
      return patched
    })
    if (!hit)
      unmatched.push(`${source}: ${overlay.kind}${overlay.name ? `/${overlay.name}` : ''} matches no rendered object`)
  }
  return {objects: out, unmatched}
}
