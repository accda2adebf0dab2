import {resolveFileOrEnv} from '../config/secret-ref.js'
import type {LoadedConfig} from '../config/load.js'
import {resolveArtifacts} from '../docker/artifacts.js'
import {parseReference} from '../docker/reference.js'
import {type RegistryClient, registryClient, usesPlainHttp} from '../docker/registry.js'
import {NotFoundError, toRetailOpsError, UsageError} from '../errors/index.js'
import {throwIfAborted, type RunContext} from '../ui/context.js'
import {keyId, loadPrivateKey, loadPublicKey, type PassphraseSource} from './keys.js'
import {SIGNATURE_FORMATS, type SignatureFormat, signImage, type SignResult} from './sign.js'
import {SignatureError, type SignatureCheck, type VerifiedImage, verifySignatures} from './verify.js'
import {type Attestation, attestImage, type AttestResult} from './attest.js'
import {
  AttestationError,
  type AttestationFinding,
  inspectAttestations,
  predicateTypeOf,
  type VerifiedAttestation,
  verifyAttestations,
} from './verify-attestations.js'

/** One image to sign or verify: a service's pushed digest from the lock, or a reference given on the command line. */
export interface ImageTarget {
  service?: string
  registry: string
  repository: string
  digest: string
  image: string
}

/** A target is a reference when it has a slash or an @; otherwise a service name. No targets: every service in the lock. */
export function isReferenceArg(arg: string): boolean {
  return arg.includes('/') || arg.includes('@')
}

export async function resolveTargets(
  project: LoadedConfig | undefined,
  args: string[],
  ctx: RunContext,
  clients: ClientPool,
): Promise<ImageTarget[]> {
  const refs = args.filter(isReferenceArg)
  const services = args.filter((a) => !isReferenceArg(a))
  if (!project && (services.length > 0 || args.length === 0)) {
    throw new UsageError(
      args.length === 0
        ? 'Name images (REGISTRY/REPO@sha256:…) or run inside a retailops project.'
        : `"${services[0]}" looks like a service name, but there is no retailops.yaml here.`,
      {
        nextSteps: ['Run it in the project folder (or pass --config), or give full image references.'],
      },
    )
  }
  const targets: ImageTarget[] = []
  if (project && (services.length > 0 || refs.length === 0)) {
    const artifacts = await resolveArtifacts(project, services.length > 0 ? services : undefined)
    for (const [service, a] of Object.entries(artifacts)) {
      const ref = parseReference(a.image)
      targets.push({service, registry: ref.registry, repository: ref.repository, digest: a.digest, image: a.image})
    }
  }
  for (const arg of refs) {
    const ref = parseReference(arg)
    let digest = ref.digest
    if (!digest) {
      const head = await (await clients.get(ref.registry)).headManifest(ref.repository, ref.tag ?? 'latest')
      if (!head) throw new NotFoundError(`${arg} does not exist in the registry.`, {details: {image: arg}})
      digest = head.digest
      ctx.out.warn(
        `${arg} is a tag; using the digest it points to now, ${digest}. Tags move: pass REPO@sha256:… instead.`,
      )
    }
    targets.push({
      registry: ref.registry,
      repository: ref.repository,
      digest,
      image: `${ref.registry}/${ref.repository}@${digest}`,
    })
  }
  return targets
}

/** One registry client per host, sharing its tokens. */
export class ClientPool {
  private readonly clients = new Map<string, Promise<RegistryClient>>()

  constructor(
    private readonly project: LoadedConfig | undefined,
    private readonly signal?: AbortSignal,
  ) {}

  get(registry: string): Promise<RegistryClient> {
    if (!this.clients.has(registry)) {
      const insecure = usesPlainHttp(registry, this.project?.config.registry)
      this.clients.set(registry, registryClient(registry, {insecure, signal: this.signal}))
    }
    return this.clients.get(registry)!
  }
}

export interface SignImagesOptions {
  project?: LoadedConfig
  /** Service names and/or image references; none = every service in the artifacts lock. */
  targets: string[]
  /** Private key file; default signing.key of the project. */
  key?: string
  passphrase: PassphraseSource
  /** Signature format; default signing.format of the project (bundle without a project). */
  format?: SignatureFormat
  /**
   * The attestations to attach with each image's signature (same key, same format), asked for
   * every target before anything is written: a throw stops the run with nothing signed.
   */
  attestationsFor?: (target: ImageTarget) => Promise<Attestation[]>
}

export interface SignImagesResult {
  key: string
  keyId: string
  format: SignatureFormat
  images: (SignResult & {service?: string; attestations: AttestResult[]})[]
}

/** The key's file (resolved against the project for configured ones), or its `env://NAME` reference as given. */
function projectPath(
  project: LoadedConfig | undefined,
  file: string | undefined,
  fallback: (p: LoadedConfig) => string,
  what: string,
): string {
  if (file) return resolveFileOrEnv(file, process.cwd())
  if (!project) throw new UsageError(`No ${what}: pass --key, or run inside a retailops project.`)
  return resolveFileOrEnv(fallback(project), project.dir)
}

/** Signs the images with the project's (or the given) cosign key; the key and every image are checked before the first signature is written. */
export async function signImages(options: SignImagesOptions, ctx: RunContext): Promise<SignImagesResult> {
  const keyFile = projectPath(options.project, options.key, (p) => p.config.signing.key, 'signing key')
  const clients = new ClientPool(options.project, ctx.signal)
  const targets = await resolveTargets(options.project, options.targets, ctx, clients)
  const format = options.format ?? options.project?.config.signing.format ?? 'bundle'
  if (!SIGNATURE_FORMATS.includes(format))
    throw new UsageError(`Unknown signature format "${format}": use ${SIGNATURE_FORMATS.join(' or ')}.`)
  const privateKey = await loadPrivateKey(keyFile, options.passphrase)
  for (const t of targets) {
    const head = await (await clients.get(t.registry)).headManifest(t.repository, t.digest)
    if (!head)
      throw new NotFoundError(`${t.image} does not exist in the registry; nothing was signed.`, {
        nextSteps: ['Push it again: `retailops push`.'],
        details: {image: t.image},
      })
  }
  const attestations = new Map<ImageTarget, Attestation[]>()
  for (const t of targets) attestations.set(t, (await options.attestationsFor?.(t)) ?? [])
  const images: SignImagesResult['images'] = []
  for (const t of targets) {
    throwIfAborted(ctx.signal)
    const task = ctx.out.task(`Signing ${t.service ?? t.image}`)
    try {
      const client = await clients.get(t.registry)
      const r = await signImage(t, privateKey, client, ctx, format)
      const attested: AttestResult[] = []
      for (const a of attestations.get(t)!) attested.push(await attestImage(t, a, privateKey, client, ctx, format))
      const what = attested.length > 0 ? ` (+ ${attested.map((a) => typeLabel(a.predicateType)).join(', ')})` : ''
      task.succeed(`${r.added ? 'Signed' : 'Already signed'} ${t.image}${what}`)
      images.push({...r, service: t.service, attestations: attested})
    } catch (error) {
      task.fail(`${t.service ?? t.image}: ${(error as Error).message}`)
      const e = toRetailOpsError(error)
      e.details.signed = images.map((i) => i.image)
      throw e
    }
  }
  return {key: keyFile, keyId: keyId(privateKey), format, images}
}

function typeLabel(predicateType: string): string {
  if (predicateType === 'https://cyclonedx.org/bom') return 'SBOM'
  if (predicateType === 'https://slsa.dev/provenance/v1') return 'provenance'
  return predicateType
}

export interface VerifyImagesOptions {
  project?: LoadedConfig
  targets: string[]
  /** Public key file; default signing.publicKey of the project. */
  key?: string
  /** Also list each image's attestations (verified with the same key, and the refused ones with why). */
  attestations?: boolean
  /** Attestation types each image must carry (cosign names: cyclonedx, slsaprovenance1; or predicate URIs); implies attestations. */
  requireAttestations?: string[]
}

export interface ImageAttestations {
  verified: Omit<VerifiedAttestation, 'predicate'>[]
  refused: AttestationFinding[]
}

export interface VerifyImagesResult {
  key: string
  keyId: string
  images: (VerifiedImage & {service?: string; attestations?: ImageAttestations})[]
}

/**
 * Verifies every target; throws SignatureError (exit 9) naming each refused image and the check
 * that refused it (details.check for one image, details.refused for several).
 */
export async function verifyImages(options: VerifyImagesOptions, ctx: RunContext): Promise<VerifyImagesResult> {
  const keyFile = projectPath(options.project, options.key, (p) => p.config.signing.publicKey, 'public key')
  const publicKey = await loadPublicKey(keyFile)
  const required = (options.requireAttestations ?? []).map(predicateTypeOf)
  const listAttestations = options.attestations === true || required.length > 0
  const clients = new ClientPool(options.project, ctx.signal)
  const targets = await resolveTargets(options.project, options.targets, ctx, clients)
  const images: VerifyImagesResult['images'] = []
  const refused: {
    service?: string
    image: string
    check: string
    message: string
    error: SignatureError | AttestationError
  }[] = []
  for (const t of targets) {
    throwIfAborted(ctx.signal)
    const client = await clients.get(t.registry)
    const head = await client.headManifest(t.repository, t.digest)
    if (!head) throw new NotFoundError(`${t.image} does not exist in the registry.`, {details: {image: t.image}})
    try {
      const v = await verifySignatures(t, publicKey, client)
      ctx.out.info(
        `✔ ${t.service ? `${t.service}: ` : ''}${t.image} ${v.format === 'bundle' ? 'signature bundle' : 'signature (.sig)'} verified (key ${v.keyId.slice(0, 19)}…)${v.repositoryBound ? '' : '; the signature names no repository (cosign v3 default), so it is not bound to this one'}`,
      )
      let attestations: ImageAttestations | undefined
      if (listAttestations) {
        const found = await (required.length > 0
          ? verifyAttestations(t, publicKey, client, {types: required})
          : inspectAttestations(t, publicKey, client))
        attestations = {
          verified: found.attestations.map(({predicate: _p, ...a}) => a),
          refused: found.findings.filter((f) => f.check !== 'ok'),
        }
        for (const a of attestations.verified)
          ctx.out.info(`  ✔ ${typeLabel(a.predicateType)} attestation (${a.format}) verified: ${a.source}`)
        for (const f of attestations.refused) ctx.out.warn(`${t.image}: attestation refused (${f.check}): ${f.reason}`)
      }
      images.push({...v, service: t.service, ...(attestations ? {attestations} : {})})
    } catch (error) {
      if (!(error instanceof SignatureError) && !(error instanceof AttestationError)) throw error
      ctx.out.info(`✖ ${t.service ? `${t.service}: ` : ''}${error.message}`)
      refused.push({service: t.service, image: t.image, check: error.check, message: error.message, error})
    }
  }
  if (refused.length === 1 && targets.length === 1) throw refused[0].error
  if (refused.length > 0) {
    const lines = refused.map((r) => `  ${r.service ?? r.image}: ${r.check}: ${r.message}`)
    const message = `${refused.length} of ${targets.length} images are refused:\n${lines.join('\n')}`
    const details = {
      refused: refused.map(({error: e, ...r}) => ({...r, details: e.details})),
      verified: images.map((i) => i.image),
    }
    // A refused signature outranks a refused attestation: exit SIGNATURE when any signature failed.
    const signature = refused.find((r) => r.error instanceof SignatureError)
    if (signature) {
      throw new SignatureError(signature.error.check as SignatureCheck, message, details, signature.error.nextSteps)
    }
    const first = refused[0].error as AttestationError
    throw new AttestationError(first.check, first.predicateType, message, details, first.nextSteps)
  }
  return {key: keyFile, keyId: keyId(publicKey), images}
}
