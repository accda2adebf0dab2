import {type KeyObject, verify as cryptoVerify} from 'node:crypto'

import {dsse} from '@sigstore/core'

import {parseReference} from '../docker/reference.js'
import {MEDIA_TYPES, type RegistryClient, registryClient, sha256Digest} from '../docker/registry.js'
import {toRetailOpsError} from '../errors/index.js'
import {
  BUNDLE_MEDIA_TYPE,
  envelopeVerifies,
  INTOTO_PAYLOAD_TYPE,
  parseBundle,
  parseStatement,
} from '../signing/bundle.js'
import {findReferrers, type ReferrerManifest} from '../signing/referrers.js'
import type {RunContext} from '../ui/context.js'
import type {AttestationEvidence} from './policy.js'

/**
 * The attestations of one image digest, read from its registry and verified with the project's
 * public key, in both places cosign keeps them: Sigstore bundles among the digest's OCI 1.1
 * referrers (cosign v3's default; the referrers API or its tag schema) and DSSE envelopes at the
 * legacy `sha256-<hex>.att` tag (cosign v2). An attestation counts only when its DSSE signature
 * verifies with the key and its in-toto statement names this digest as subject.
 */

export const PREDICATE_TYPES = {
  cyclonedx: 'https://cyclonedx.org/bom',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
} as const

const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json'

export interface AttestationFound extends AttestationEvidence {
  /** The verified statement's predicate (the SBOM, the provenance). */
  predicate?: unknown
  /** Where the verified one lives. */
  source?: string
}

interface Candidate {
  source: string
  /** The predicate type the envelope claims (before verification: only used to say which attestation failed). */
  claimed?: string
  payloadType: string
  payload: Buffer
  verifies: boolean
}

/** Every attestation candidate of the digest, in both layouts. */
async function candidates(
  client: RegistryClient,
  repository: string,
  digest: string,
  publicKey: KeyObject,
): Promise<Candidate[]> {
  const out: Candidate[] = []
  const referrers = await findReferrers(client, repository, digest)
  for (const d of referrers.descriptors) {
    if (d.artifactType !== undefined && d.artifactType !== BUNDLE_MEDIA_TYPE) continue
    const source = `${client.registry}/${repository}@${d.digest}`
    const manifest = await client.getManifest(repository, d.digest, MEDIA_TYPES.ociManifest)
    if (!manifest) continue
    const m = manifest.json as unknown as ReferrerManifest
    // A referrer listed for this digest whose subject is another image: never counts for this one.
    if (m.subject?.digest !== undefined && m.subject.digest !== digest) continue
    const layer = (m.layers ?? []).find((l) => l.mediaType === BUNDLE_MEDIA_TYPE)
    if (!layer) continue
    const blob = await client.getBlob(repository, layer.digest)
    const claimed =
      d.annotations?.['dev.sigstore.bundle.predicateType'] ?? m.annotations?.['dev.sigstore.bundle.predicateType']
    if (sha256Digest(blob) !== layer.digest) {
      out.push({source, claimed, payloadType: '', payload: Buffer.alloc(0), verifies: false})
      continue
    }
    try {
      const parsed = parseBundle(blob)
      out.push({
        source,
        claimed: claimed ?? claimedType(parsed.payload),
        payloadType: parsed.payloadType,
        payload: parsed.payload,
        verifies: envelopeVerifies(parsed, publicKey),
      })
    } catch {
      out.push({source, claimed, payloadType: '', payload: Buffer.alloc(0), verifies: false})
    }
  }
  const tag = `${digest.replace(':', '-')}.att`
  const legacy = await client.getManifest(
    repository,
    tag,
    [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(', '),
  )
  for (const layer of ((legacy?.json as unknown as ReferrerManifest | undefined)?.layers ?? []).filter(
    (l) => l.mediaType === DSSE_MEDIA_TYPE,
  )) {
    const source = `${client.registry}/${repository}:${tag}`
    const blob = await client.getBlob(repository, layer.digest)
    const claimed = layer.annotations?.predicateType
    try {
      if (sha256Digest(blob) !== layer.digest) throw new Error('blob digest')
      const envelope = JSON.parse(blob.toString('utf8')) as {
        payloadType: string
        payload: string
        signatures: {sig: string}[]
      }
      const payload = Buffer.from(envelope.payload, 'base64')
      const pae = dsse.preAuthEncoding(envelope.payloadType, payload)
      const verifies = envelope.signatures.some((s) => {
        try {
          return cryptoVerify('sha256', pae, publicKey, Buffer.from(s.sig, 'base64'))
        } catch {
          return false
        }
      })
      out.push({source, claimed: claimed ?? claimedType(payload), payloadType: envelope.payloadType, payload, verifies})
    } catch {
      out.push({source, claimed, payloadType: '', payload: Buffer.alloc(0), verifies: false})
    }
  }
  return out
}

function claimedType(payload: Buffer): string | undefined {
  try {
    const t = (JSON.parse(payload.toString('utf8')) as {predicateType?: unknown}).predicateType
    return typeof t === 'string' ? t : undefined
  } catch {
    return undefined
  }
}

/**
 * The verified attestation of each predicate type asked for: verified (with its predicate),
 * missing (none of that type), or invalid (one claims the type but is signed with another key,
 * was changed after signing, or names another digest).
 */
export async function readAttestations(
  client: RegistryClient,
  target: {repository: string; digest: string},
  publicKey: KeyObject,
  types: string[],
): Promise<Record<string, AttestationFound>> {
  const found = await candidates(client, target.repository, target.digest, publicKey)
  const [algorithm, hex] = target.digest.split(':')
  const out: Record<string, AttestationFound> = {}
  for (const type of types) {
    const problems: string[] = []
    for (const c of found) {
      if (!c.verifies) {
        if (c.claimed === type)
          problems.push(
            `${c.source}: its signature does not verify with the project key (another key, or changed after signing)`,
          )
        continue
      }
      if (c.payloadType !== INTOTO_PAYLOAD_TYPE) continue
      let statement
      try {
        statement = parseStatement(c.payloadType, c.payload)
      } catch {
        continue
      }
      if (statement.predicateType !== type) continue
      if (!statement.subjects.some((s) => s.digest[algorithm] === hex)) {
        problems.push(
          `${c.source}: a valid attestation, but of another image (${statement.subjects[0]?.digest?.[algorithm] ?? 'no sha256'})`,
        )
        continue
      }
      const predicate = (JSON.parse(c.payload.toString('utf8')) as {predicate?: unknown}).predicate
      out[type] = {status: 'verified', predicate, source: c.source}
      break
    }
    out[type] ??= problems.length > 0 ? {status: 'invalid', message: problems.join('; ')} : {status: 'missing'}
  }
  return out
}

/** readAttestations for an image reference (`registry/repo@sha256:…`); unreachable registries answer `unavailable`. */
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
