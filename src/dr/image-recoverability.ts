import type {KeyObject} from 'node:crypto'
import path from 'node:path'

import pLimit from 'p-limit'

import type {RegistryClient} from '../docker/registry.js'
import {parseReference} from '../docker/reference.js'
import {gitHasCommit, gitPathAt} from '../docker/revision.js'
import {PREDICATE_TYPES} from '../signing/attest.js'
import {inspectAttestations} from '../signing/verify-attestations.js'
import {keyId} from '../signing/keys.js'
import {RETAILOPS_BUILD_TYPE, sha256Hex, type SlsaProvenance} from '../supplychain/provenance.js'

/**
 * Whether a deployed image can come back after a registry loss, the seed's "replicate container
 * registries or maintain rebuild capability": either every byte a pull needs is still in the
 * registry (each manifest of the digest, index children included, and a HEAD answered for each
 * of their blobs), or the image can be built again from source, because its provenance records
 * a clean commit that the project's repository still holds, with the Dockerfile, the build
 * context and the lockfile (by hash) present at that commit and each base image still pullable
 * by the digest it was built from.
 */

export interface Descriptor {
  mediaType?: string
  digest: string
  size?: number
  /** A foreign (non-distributable) layer: pulled from these URLs, never from the registry. */
  urls?: string[]
  platform?: {os?: string; architecture?: string; variant?: string}
}

const DIGEST = /^sha256:[0-9a-f]{64}$/

function descriptors(value: unknown): Descriptor[] {
  if (!Array.isArray(value)) return []
  return value.filter(
    (d): d is Descriptor =>
      Boolean(d) &&
      typeof d === 'object' &&
      typeof (d as Descriptor).digest === 'string' &&
      DIGEST.test((d as Descriptor).digest),
  )
}

/** What a manifest refers to: an index's (or manifest list's) child manifests, or an image manifest's config and layers. */
export function manifestReferences(json: Record<string, unknown>): {
  manifests: Descriptor[]
  blobs: Descriptor[]
  foreign: Descriptor[]
} {
  if (Array.isArray(json.manifests)) return {manifests: descriptors(json.manifests), blobs: [], foreign: []}
  const all = [...descriptors([json.config]), ...descriptors(json.layers)]
  return {
    manifests: [],
    blobs: all.filter((d) => !d.urls?.length),
    foreign: all.filter((d) => Boolean(d.urls?.length)),
  }
}

export interface MissingBlob {
  digest: string
  mediaType?: string
  /** The manifest that refers to it. */
  manifest: string
}

export interface PullCheck {
  /** Manifests read (the digest and, for an index, its children). */
  manifests: string[]
  /** Distinct blobs a HEAD answered for. */
  blobsPresent: number
  missingManifests: string[]
  missingBlobs: MissingBlob[]
  /** Foreign layers: not in the registry by design, not checked. */
  foreignLayers: number
}

/** Reads the digest's manifest (and an index's children) and HEADs every blob they refer to. */
export async function checkPullable(client: RegistryClient, repository: string, digest: string): Promise<PullCheck> {
  const result: PullCheck = {manifests: [], blobsPresent: 0, missingManifests: [], missingBlobs: [], foreignLayers: 0}
  const blobs = new Map<string, MissingBlob>()
  const queue = [digest]
  const seen = new Set<string>()
  while (queue.length > 0) {
    const next = queue.shift()!
    if (seen.has(next)) continue
    seen.add(next)
    const manifest = await client.getManifest(repository, next)
    if (!manifest) {
      result.missingManifests.push(next)
      continue
    }
    result.manifests.push(next)
    const refs = manifestReferences(manifest.json)
    queue.push(...refs.manifests.map((m) => m.digest))
    result.foreignLayers += refs.foreign.length
    for (const b of refs.blobs)
      if (!blobs.has(b.digest)) blobs.set(b.digest, {digest: b.digest, mediaType: b.mediaType, manifest: next})
  }
  const limit = pLimit(8)
  const present = await Promise.all(
    [...blobs.values()].map((b) => limit(async () => ({b, ok: await client.blobExists(repository, b.digest)}))),
  )
  for (const {b, ok} of present) {
    if (ok) result.blobsPresent++
    else result.missingBlobs.push(b)
  }
  return result
}

/** What rebuilding an image needs, as its provenance records it. */
export interface RebuildInputs {
  commit?: string
  sourceUri?: string
  /** The build context, relative to the project. */
  context: string
  /** The Dockerfile, relative to the context. */
  dockerfile: string
  lockfile?: {name: string; sha256: string}
  bases: {name: string; digest?: string}[]
  dirty: boolean
}

export function rebuildInputs(p: SlsaProvenance): RebuildInputs {
  const def = p.buildDefinition
  const lock = def.resolvedDependencies.find((d) => d.name === 'package-lock.json' && d.digest?.sha256)
  return {
    commit: def.externalParameters.source?.digest.gitCommit,
    sourceUri: def.externalParameters.source?.uri,
    context: def.externalParameters.context,
    dockerfile: def.externalParameters.dockerfile,
    lockfile: lock ? {name: (lock.uri ?? '').replace(/^file:/, ''), sha256: lock.digest!.sha256} : undefined,
    bases: def.resolvedDependencies
      .filter((d) => (d.annotations as {role?: string} | undefined)?.role === 'base-image')
      .map((d) => {
        const [algorithm, hex] = Object.entries(d.digest ?? {})[0] ?? []
        return {name: d.name ?? d.uri ?? '?', digest: hex ? `${algorithm}:${hex}` : undefined}
      }),
    dirty: def.internalParameters.dirty,
  }
}

/** What in the provenance alone rules a rebuild out (no system asked). */
export function rebuildBlockers(inputs: RebuildInputs): string[] {
  const blockers: string[] = []
  if (!inputs.commit) blockers.push('the provenance records no source commit (built outside git)')
  if (inputs.dirty)
    blockers.push(`built from ${inputs.commit ?? 'a work tree'} with uncommitted changes, which no commit holds`)
  for (const b of inputs.bases)
    if (!b.digest)
      blockers.push(`base image ${b.name} is recorded without a digest: the same base cannot be pulled again`)
  return blockers
}

export interface RebuildProof {
  ok: boolean
  /** Where the provenance came from. */
  provenance?: string
  /** What was proven, or every reason it could not be. */
  detail: string
}

/**
 * Checks the recorded build inputs against the project's repository and the base images'
 * registries. `baseExists` answers whether a base image's digest can still be pulled.
 */
export async function proveRebuildable(
  projectDir: string,
  provenance: SlsaProvenance,
  baseExists: (name: string, digest: string) => Promise<boolean | string>,
): Promise<{ok: boolean; detail: string}> {
  if (provenance.buildDefinition?.buildType !== RETAILOPS_BUILD_TYPE)
    return {ok: false, detail: `the provenance's build type is not ${RETAILOPS_BUILD_TYPE}: its inputs cannot be read`}
  const inputs = rebuildInputs(provenance)
  const problems = rebuildBlockers(inputs)
  if (inputs.commit && !inputs.dirty) {
    const commit = inputs.commit
    if (!(await gitHasCommit(projectDir, commit))) {
      problems.push(
        `commit ${commit} is not in the repository at ${projectDir}${inputs.sourceUri ? ` (source ${inputs.sourceUri})` : ''}`,
      )
    } else {
      const context = await gitPathAt(projectDir, commit, inputs.context)
      if (context?.type !== 'tree')
        problems.push(`the build context ${inputs.context} is not a folder at ${commit.slice(0, 12)}`)
      const dockerfile = path.posix.join(inputs.context, inputs.dockerfile)
      const file = await gitPathAt(projectDir, commit, dockerfile)
      if (file?.type !== 'blob') problems.push(`${dockerfile} is not at ${commit.slice(0, 12)}`)
      if (inputs.lockfile) {
        const lock = await gitPathAt(projectDir, commit, inputs.lockfile.name)
        if (lock?.type !== 'blob') problems.push(`${inputs.lockfile.name} is not at ${commit.slice(0, 12)}`)
        else if (sha256Hex(lock.content) !== inputs.lockfile.sha256)
          problems.push(
            `${inputs.lockfile.name} at ${commit.slice(0, 12)} has SHA-256 ${sha256Hex(lock.content).slice(0, 12)}…, the build used ${inputs.lockfile.sha256.slice(0, 12)}…`,
          )
      }
    }
  }
  for (const base of inputs.bases) {
    if (!base.digest) continue
    const answer = await baseExists(base.name, base.digest).catch((error: Error) => error.message.split('\n')[0])
    if (answer !== true)
      problems.push(
        `base image ${base.name}@${base.digest.slice(0, 19)}… cannot be pulled${typeof answer === 'string' ? ` (${answer})` : ''}`,
      )
  }
  if (problems.length > 0) return {ok: false, detail: problems.join('; ')}
  return {
    ok: true,
    detail: `commit ${inputs.commit!.slice(0, 12)} holds ${path.posix.join(inputs.context, inputs.dockerfile)}${inputs.lockfile ? ` and ${inputs.lockfile.name} (SHA-256 matches)` : ''}; ${inputs.bases.length} base image(s) pullable by digest`,
  }
}

/**
 * The image's provenance: the SLSA provenance attestation verified with the project's public key
 * (bound to this digest by its signature), else the provenance file `retailops build` wrote, when
 * the artifacts lock binds it to this digest.
 */
export async function findProvenance(options: {
  client: RegistryClient
  registry: string
  repository: string
  digest: string
  publicKey?: KeyObject
  local?: () => Promise<SlsaProvenance | undefined>
}): Promise<{provenance?: SlsaProvenance; source?: string; why: string[]}> {
  const why: string[] = []
  if (options.publicKey) {
    const found = await inspectAttestations(
      {registry: options.registry, repository: options.repository, digest: options.digest},
      options.publicKey,
      options.client,
    ).catch((error: Error) => {
      why.push(`its attestations could not be read (${error.message.split('\n')[0]})`)
      return undefined
    })
    const slsa = found?.byType[PREDICATE_TYPES.slsaprovenance1]?.[0]
    if (slsa)
      return {
        provenance: slsa.predicate as SlsaProvenance,
        source: `SLSA provenance attestation signed with ${keyId(options.publicKey)}`,
        why,
      }
    if (found) why.push(`no SLSA provenance attestation verifies with ${keyId(options.publicKey)}`)
  } else why.push('no public key to verify a provenance attestation with (signing.publicKey)')
  const local = await options.local?.().catch((error: Error) => {
    why.push(`the provenance file is unreadable (${error.message.split('\n')[0]})`)
    return undefined
  })
  if (local)
    return {
      provenance: local,
      source: 'the provenance file `retailops build` wrote (bound to this digest by the artifacts lock)',
      why,
    }
  return {why}
}

/** A base image reference's registry and repository, for the pullability HEAD. */
export function baseImageLocation(name: string): {registry: string; repository: string} | undefined {
  try {
    const ref = parseReference(name.replace(/^oci:\/\//, ''))
    return {registry: ref.registry, repository: ref.repository}
  } catch {
    return undefined
  }
}
