import type {KeyObject} from 'node:crypto'

import {parseReference} from '../docker/reference.js'
import {type RegistryClient, registryClient} from '../docker/registry.js'
import {toRetailOpsError} from '../errors/index.js'
import {PREDICATE_TYPES} from '../signing/attest.js'
import {inspectAttestations} from '../signing/verify-attestations.js'
import type {RunContext} from '../ui/context.js'
import type {AttestationEvidence} from './policy.js'

export {PREDICATE_TYPES}

/**
 * What the supply-chain policy needs to know about an image's attestations, from the signing
 * engine's verifier (src/signing/verify-attestations.ts: Sigstore bundles among the digest's OCI
 * referrers and DSSE envelopes at the legacy `.att` tag, each checked with the key as `cosign
 * verify-attestation` does): per predicate type, verified (with its predicate), missing, or
 * invalid (another key, changed after signing, another digest or repository).
 */
export interface AttestationFound extends AttestationEvidence {
  /** The verified statement's predicate (the SBOM, the provenance). */
  predicate?: unknown
  /** Where the verified one lives. */
  source?: string
}

export async function readAttestations(
  client: RegistryClient,
  target: {repository: string; digest: string},
  publicKey: KeyObject,
  types: string[],
): Promise<Record<string, AttestationFound>> {
  const found = await inspectAttestations({registry: client.registry, ...target}, publicKey, client)
  const out: Record<string, AttestationFound> = {}
  for (const type of types) {
    const verified = found.byType[type]?.[0]
    if (verified) {
      out[type] = {status: 'verified', predicate: verified.predicate, source: verified.source}
      continue
    }
    // Refused ones of this type, and those whose type nobody can tell (not verified, no annotation).
    const refused = found.findings.filter(
      (f) => f.check !== 'ok' && f.check !== 'missing' && (f.predicateType === type || f.predicateType === undefined),
    )
    out[type] =
      refused.length > 0
        ? {status: 'invalid', message: refused.map((f) => `${f.check}: ${f.reason}`).join('; ')}
        : {status: 'missing'}
  }
  return out
}

/** readAttestations for an image reference (`registry/repo@sha256:…`); an unreachable registry answers `unavailable`. */
export async function imageAttestations(
  image: string,
  publicKey: KeyObject,
  types: string[],
  options: {insecure: boolean; clients?: Map<string, Promise<RegistryClient>>},
  ctx: Pick<RunContext, 'signal'>,
): Promise<Record<string, AttestationFound>> {
  const ref = parseReference(image)
  try {
    if (!ref.digest) throw new Error('not pinned by digest')
    const clients = options.clients ?? new Map<string, Promise<RegistryClient>>()
    if (!clients.has(ref.registry))
      clients.set(ref.registry, registryClient(ref.registry, {insecure: options.insecure, signal: ctx.signal}))
    return await readAttestations(
      await clients.get(ref.registry)!,
      {repository: ref.repository, digest: ref.digest},
      publicKey,
      types,
    )
  } catch (error) {
    const message = toRetailOpsError(error).message
    return Object.fromEntries(types.map((t) => [t, {status: 'unavailable' as const, message}]))
  }
}
