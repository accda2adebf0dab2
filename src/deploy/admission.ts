import type {KeyObject} from 'node:crypto'
import path from 'node:path'

import type {LoadedConfig} from '../config/load.js'
import {selectImages} from '../config/resolve.js'
import {resolveFileOrEnv} from '../config/secret-ref.js'
import {parseReference} from '../docker/reference.js'
import {type RegistryClient, usesPlainHttp} from '../docker/registry.js'
import {toRetailOpsError} from '../errors/index.js'
import {loadPublicKey} from '../signing/keys.js'
import {imageAttestations, PREDICATE_TYPES} from '../supplychain/evidence.js'
import {type CycloneDxBom, matchVulnerabilities, npmComponents} from '../supplychain/match.js'
import {osvIndexRoot} from '../supplychain/osv-index.js'
import {loadOsvDatabase} from '../supplychain/osv.js'
import {ANNOTATION, LABEL} from '../kubernetes/labels.js'
import {containerImages} from '../kubernetes/pods.js'
import type {SignatureResult} from '../kubernetes/policy.js'
import {type KubeObject, objectRef} from '../kubernetes/resources.js'
import {
  admit,
  type AdmissionImage,
  type AttestationEvidence,
  type Decision,
  type Evidence,
  type EvidenceSource,
  expiredWaivers,
} from '../supplychain/policy.js'
import {loadWaivers, type Waiver} from '../supplychain/waivers.js'
import {redact} from '../ui/output.js'
import type {RunContext} from '../ui/context.js'
import {digestOf} from './images.js'

/**
 * Supply-chain admission (supplyChain.policy) as deploy runs it: after the signatures of every
 * image the rendered objects run were verified (verifyRenderedImages), and before anything is
 * applied, every one of those images (init containers and sidecars included, whichever object
 * runs it) is decided by src/supplychain/policy.ts. A refused image stops the deploy
 * (SUPPLY_CHAIN_REFUSED) with nothing applied, in every strategy (rolling, canary, blue-green) and
 * under --dry-run.
 *
 * --skip-verify cannot silently bypass it: under an enforced policy it is refused unless it comes
 * with --force-release --reason, and then the override is recorded on every workload
 * (retailops.dev/supply-chain: overridden, retailops.dev/supply-chain-override: the reason) and in
 * the result. --force-release alone does not override a refusal: a vulnerability that does not
 * matter is waived in the waivers file (reviewed, with an expiry), not at deploy time.
 */

export type SupplyChainOutcome = 'admitted' | 'refused' | 'overridden' | 'not-configured'

export interface SupplyChainResult {
  outcome: SupplyChainOutcome
  decisions: Decision[]
  /** Waivers of the deployed services whose expiry day has passed: reported, and they waive nothing. */
  expiredWaivers: Waiver[]
  waiversFile?: string
  /** --skip-verify --force-release --reason under an enforced policy. */
  override?: {reason: string; at: string}
  /** Refusals that are not about one image (--skip-verify without --force-release). */
  refusals: {rule: string; message: string; fix: string}[]
}

export interface AdmissionStepOptions {
  project: LoadedConfig
  skipVerify?: boolean
  /** --force-release --reason: with --skip-verify, the recorded override of the policy. */
  force?: {reason?: string}
  /** What is known about each image; default: the registry's attestations verified with signing.publicKey. */
  evidence?: EvidenceSource
  /** Default: now (waiver expiry). */
  now?: Date
}

/** Annotation values on each workload: how the supply-chain policy admitted what it runs. */
export const SUPPLY_CHAIN_ANNOTATION = ANNOTATION.supplyChain
export const SUPPLY_CHAIN_OVERRIDE_ANNOTATION = ANNOTATION.supplyChainOverride

/** Every image the objects run, with the services and containers that run it. */
export function admissionImages(objects: KubeObject[]): AdmissionImage[] {
  const byImage = new Map<string, AdmissionImage>()
  for (const c of containerImages(objects)) {
    if (!c.image) continue
    const entry = byImage.get(c.image) ?? {image: c.image, services: [], objects: []}
    const service = c.object.metadata.labels?.[LABEL.service]
    if (service && !entry.services.includes(service)) entry.services.push(service)
    entry.objects.push(`${objectRef(c.object)} (${c.field}: ${c.container})`)
    byImage.set(c.image, entry)
  }
  return [...byImage.values()]
}

/** How a deploy's signature result counts as evidence. */
export function signatureEvidence(result: SignatureResult | undefined, image: string): AttestationEvidence {
  if (!digestOf(image))
    return {status: 'missing', message: 'it is referenced by a tag; only an image pinned by digest can be verified'}
  if (!result) return {status: 'missing', message: 'it was never verified'}
  switch (result.status) {
    case 'verified':
      return {status: 'verified'}
    case 'unsigned':
      return {status: 'missing', message: result.message}
    case 'unavailable':
      return {status: 'unavailable', message: result.message}
    default:
      return {status: 'invalid', message: result.message}
  }
}

/** A supplier of the attestation and vulnerability part of an image's evidence (signature aside). */
export type AttestationEvidenceSource = (
  image: AdmissionImage,
) => Promise<Pick<Evidence, 'sbom' | 'provenance' | 'vulnerabilities'>>

export async function admissionStep(
  objects: KubeObject[],
  signatures: Record<string, SignatureResult>,
  options: AdmissionStepOptions & {attestations?: AttestationEvidenceSource},
  ctx: RunContext,
): Promise<SupplyChainResult> {
  const {config, dir} = options.project
  const policy = config.supplyChain?.policy
  if (!policy) return {outcome: 'not-configured', decisions: [], expiredWaivers: [], refusals: []}
  const images = admissionImages(objects)
  const services = selectImages(config)
  const deployed = [...new Set(images.flatMap((i) => i.services))]
  const now = options.now ?? new Date()
  // Read and validated before anything else: a bad waivers file is exit CONFIG with nothing applied.
  const waivers = await loadWaivers(dir, policy.waivers, services)
  const expired = expiredWaivers(waivers.waivers, deployed, now)
  for (const w of expired)
    ctx.out.warn(
      `supply chain: the waiver of ${w.id} for ${w.service} in ${waivers.file} expired on ${w.expires} (reason: ${w.reason}); it waives nothing now. Fix the vulnerability, or renew the waiver after a new review.`,
    )
  const base = {expiredWaivers: expired, waiversFile: waivers.file}

  if (options.skipVerify) {
    const reason = options.force?.reason?.trim()
    if (!reason) {
      return {
        ...base,
        outcome: 'refused',
        decisions: [],
        refusals: [
          {
            rule: 'skip-verify',
            message:
              '--skip-verify would deploy images the supply-chain policy (supplyChain.policy) has not checked: no signature, SBOM, provenance or vulnerability check would run.',
            fix: 'Deploy without --skip-verify; in an emergency, override the policy with --skip-verify --force-release --reason "why" (recorded on every workload and in the result).',
          },
        ],
      }
    }
    const override = {reason: redact(reason), at: now.toISOString()}
    ctx.out.warn(
      `SUPPLY-CHAIN POLICY OVERRIDDEN (--skip-verify --force-release): ${override.reason}. Recorded on each workload (${SUPPLY_CHAIN_ANNOTATION}: overridden).`,
    )
    mark(objects, () => 'overridden', override.reason)
    return {...base, outcome: 'overridden', decisions: [], refusals: [], override}
  }

  const task = ctx.out.task(
    `Checking the supply chain of ${images.length} image${images.length === 1 ? '' : 's'} (supplyChain.policy)`,
  )
  const attestations = options.attestations ?? registryAttestations(options.project, ctx)
  const evidence: EvidenceSource =
    options.evidence ??
    (async (image) => {
      const signature = signatureEvidence(signatures[image.image], image.image)
      if (!digestOf(image.image)) return {signature, sbom: signature, provenance: signature}
      return {signature, ...(await attestations(image))}
    })
  const decisions = await admit(images, policy, {
    evidence,
    waivers: waivers.waivers,
    now,
    publicKeyFile: resolveFileOrEnv(config.signing.publicKey, dir),
    waiversFile: waivers.file,
  })
  const refused = decisions.filter((d) => !d.admitted)
  if (refused.length > 0) task.fail(`${refused.length} of ${decisions.length} images refused`)
  else task.succeed(`${decisions.length} image${decisions.length === 1 ? '' : 's'} admitted`)
  for (const d of decisions)
    for (const v of d.vulnerabilities.filter(
      (x) => x.waiver && !x.waiver.expired && !x.refused && x.severity !== 'none',
    ))
      ctx.out.info(
        `supply chain: ${v.id} (${v.severity}) in ${v.package}@${v.version} waived for ${v.service} until ${v.waiver!.expires}: ${v.waiver!.reason}`,
      )
  const byImage = new Map(decisions.map((d) => [d.image, d]))
  mark(objects, (images) => (images.every((i) => byImage.get(i)?.admitted) ? 'admitted' : 'refused'))
  return {...base, outcome: refused.length > 0 ? 'refused' : 'admitted', decisions, refusals: []}
}

/** Records the outcome on every object that runs containers. */
function mark(objects: KubeObject[], status: (images: string[]) => string, override?: string): void {
  const byObject = new Map<KubeObject, string[]>()
  for (const c of containerImages(objects)) byObject.set(c.object, [...(byObject.get(c.object) ?? []), c.image])
  for (const [object, images] of byObject)
    object.metadata.annotations = {
      ...object.metadata.annotations,
      [SUPPLY_CHAIN_ANNOTATION]: status(images),
      ...(override ? {[SUPPLY_CHAIN_OVERRIDE_ANNOTATION]: override} : {}),
    }
}

/**
 * The default: the image's SBOM and provenance attestations read from its registry and verified
 * with signing.publicKey (src/supplychain/evidence.ts), and, when failOn is set, the verified
 * SBOM's components matched against supplyChain.vulnerabilityDatabase (its zip indexed on first use).
 */
export function registryAttestations(project: LoadedConfig, ctx: RunContext): AttestationEvidenceSource {
  const {config, dir} = project
  const keyFile = resolveFileOrEnv(config.signing.publicKey, dir)
  const failOn = config.supplyChain?.policy?.failOn
  let key: Promise<KeyObject> | undefined
  let loading: Promise<unknown> = Promise.resolve()
  const clients = new Map<string, Promise<RegistryClient>>()
  return async (image) => {
    let publicKey: KeyObject
    try {
      publicKey = await (key ??= loadPublicKey(keyFile))
    } catch (error) {
      const message = `cannot read the public key ${keyFile}: ${toRetailOpsError(error).message}`
      return {sbom: {status: 'unavailable', message}, provenance: {status: 'unavailable', message}}
    }
    const registry = parseReference(image.image).registry
    const found = await imageAttestations(
      image.image,
      publicKey,
      [PREDICATE_TYPES.cyclonedx, PREDICATE_TYPES.slsaprovenance1],
      {insecure: usesPlainHttp(registry, config.registry), clients},
      ctx,
    )
    const sbom = found[PREDICATE_TYPES.cyclonedx]
    const provenance = found[PREDICATE_TYPES.slsaprovenance1]
    const strip = ({status, message}: AttestationEvidence) => ({status, ...(message ? {message} : {})})
    if (!failOn || sbom.status !== 'verified') return {sbom: strip(sbom), provenance: strip(provenance)}
    // A database that cannot be read stops the deploy (its own exit code): never "no vulnerabilities".
    // One load at a time: the first reads the zip and writes its index, the others read only their packages from it.
    const bom = sbom.predicate as CycloneDxBom
    const loaded = loading.then(() =>
      loadOsvDatabase(
        path.resolve(dir, config.supplyChain!.vulnerabilityDatabase!),
        {packages: npmComponents(bom).components.map((c) => c.name), indexRoot: osvIndexRoot()},
        ctx,
      ),
    )
    loading = loaded.catch(() => undefined)
    const findings = matchVulnerabilities(bom, await loaded)
    return {
      sbom: strip(sbom),
      provenance: strip(provenance),
      vulnerabilities: findings.map((f) => ({
        id: f.id,
        aliases: f.aliases,
        package: f.package,
        version: f.version,
        severity: f.severity,
        fixed: f.fixedIn,
      })),
    }
  }
}
