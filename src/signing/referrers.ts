import {MEDIA_TYPES, type RegistryClient, sha256Digest} from '../docker/registry.js'
import {RetailOpsError} from '../errors/index.js'

/**
 * OCI 1.1 referrers, as cosign v3 stores bundles: a manifest whose `subject` is the image, found
 * through `GET /v2/<repo>/referrers/<digest>`, or, on registries without that API (Debian's
 * distribution 2.8), through the referrers tag schema: an image index at the tag `sha256-<hex>`
 * listing every referrer of that digest.
 */

/** The OCI empty descriptor: the config of an artifact manifest that has none. */
export const OCI_EMPTY_BLOB = Buffer.from('{}')
export const OCI_EMPTY_DESCRIPTOR = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: sha256Digest(OCI_EMPTY_BLOB),
  size: 2,
}

export interface ReferrerDescriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
}

export interface ReferrerManifest {
  schemaVersion: 2
  mediaType: string
  artifactType?: string
  config: ReferrerDescriptor
  layers: ReferrerDescriptor[]
  subject?: ReferrerDescriptor
  annotations?: Record<string, string>
}

/** The referrers tag schema's tag for a digest: `sha256-<hex>` (no suffix). */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-')
}

export interface FoundReferrers {
  via: 'referrers-api' | 'tag-schema'
  /** Where they were listed: `registry/repo/referrers/<digest>` or `registry/repo:sha256-<hex>`. */
  where: string
  descriptors: ReferrerDescriptor[]
}

function asDescriptors(list: unknown): ReferrerDescriptor[] {
  if (!Array.isArray(list)) return []
  return list.filter(
    (d): d is ReferrerDescriptor =>
      typeof d === 'object' && d !== null && typeof (d as ReferrerDescriptor).digest === 'string',
  )
}

/** Every referrer of the digest: the referrers API when the registry has one, else the tag schema. */
export async function findReferrers(
  client: RegistryClient,
  repository: string,
  digest: string,
): Promise<FoundReferrers> {
  const api = await client.getReferrers(repository, digest)
  if (api)
    return {
      via: 'referrers-api',
      where: `${client.registry}/${repository}/referrers/${digest}`,
      descriptors: asDescriptors(api.manifests),
    }
  const tag = referrersTag(digest)
  const index = await client.getManifest(repository, tag, MEDIA_TYPES.ociIndex)
  const descriptors = index && index.mediaType === MEDIA_TYPES.ociIndex ? asDescriptors(index.json.manifests) : []
  return {via: 'tag-schema', where: `${client.registry}/${repository}:${tag}`, descriptors}
}

export interface AttachReferrerOptions {
  repository: string
  /** The image manifest the artifact refers to (digest, media type and size, as the registry serves it). */
  subject: {digest: string; mediaType: string; size: number}
  artifactType: string
  layer: {mediaType: string; content: Buffer}
  annotations: Record<string, string>
}

export interface AttachedReferrer {
  digest: string
  manifest: ReferrerManifest
  via: 'referrers-api' | 'tag-schema'
  where: string
}

/**
 * Pushes an artifact manifest with `subject` (by digest) and, when the registry does not index
 * it itself (no OCI-Subject answer), adds it to the `sha256-<hex>` index, as cosign v3 and
 * go-containerregistry do.
 */
export async function attachReferrer(
  client: RegistryClient,
  options: AttachReferrerOptions,
): Promise<AttachedReferrer> {
  const {repository, subject} = options
  await client.uploadBlob(repository, OCI_EMPTY_BLOB)
  const layer = await client.uploadBlob(repository, options.layer.content)
  // Field for field what cosign v3.1 writes (the empty config descriptor carries the artifactType too).
  const manifest: ReferrerManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: {...OCI_EMPTY_DESCRIPTOR, artifactType: options.artifactType},
    layers: [{mediaType: options.layer.mediaType, size: layer.size, digest: layer.digest}],
    annotations: options.annotations,
    subject: {mediaType: subject.mediaType, size: subject.size, digest: subject.digest},
    artifactType: options.artifactType,
  }
  const body = Buffer.from(JSON.stringify(manifest))
  const digest = sha256Digest(body)
  const put = await client.putManifestWithSubject(repository, digest, body, MEDIA_TYPES.ociManifest)
  if (put.subjectIndexed)
    return {digest, manifest, via: 'referrers-api', where: `${client.registry}/${repository}@${digest}`}

  const tag = referrersTag(subject.digest)
  const existing = await client.getManifest(repository, tag, MEDIA_TYPES.ociIndex)
  if (existing && existing.mediaType !== MEDIA_TYPES.ociIndex) {
    throw new RetailOpsError(
      'SIGNATURE',
      `${client.registry}/${repository}:${tag} exists but is not an OCI image index (${existing.mediaType}); it cannot list referrers.`,
      {
        details: {tag, mediaType: existing.mediaType},
        nextSteps: [
          "Something else uses the referrers tag schema's tag; remove it, or sign in the legacy format (`--signature-format legacy`).",
        ],
      },
    )
  }
  const index = existing ? (existing.json as {manifests?: unknown}) : {}
  const entries = asDescriptors(index.manifests).filter((d) => d.digest !== digest)
  const next = {
    ...(existing ? existing.json : {}),
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    // cosign lists mediaType, size, digest and artifactType; the annotations are the manifest's own (OCI: "SHOULD" copy them).
    manifests: [
      ...entries,
      {
        mediaType: MEDIA_TYPES.ociManifest,
        size: body.length,
        digest,
        artifactType: options.artifactType,
        annotations: options.annotations,
      },
    ],
  }
  await client.putManifest(repository, tag, Buffer.from(JSON.stringify(next)), MEDIA_TYPES.ociIndex)
  return {digest, manifest, via: 'tag-schema', where: `${client.registry}/${repository}@${digest}`}
}
