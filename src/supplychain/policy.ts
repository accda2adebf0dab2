import pLimit from 'p-limit'

import type {SupplyChainPolicyConfig} from '../config/schema.js'
import {atOrAbove, type Severity} from './severity.js'
import {isExpired, findWaiver, type Waiver} from './waivers.js'

/**
 * The supply-chain admission policy (supplyChain.policy): what deploy checks about every image
 * the rendered objects run before anything is applied. The decision is pure (decide()); what is
 * known about each image (its signature, its attestations verified with the project key, the
 * vulnerabilities its attested SBOM matches) is gathered by the caller's Evidence source, so the
 * same rules run in deploy and in tests.
 */

export type AdmissionRule = 'signature' | 'sbom' | 'provenance' | 'vulnerability'

/** One image the rendered objects run, with what runs it. */
export interface AdmissionImage {
  image: string
  /** The services whose objects run it (retailops.dev/service); waivers are per service. */
  services: string[]
  /** "Deployment shop/checkout (initContainers: migrate)" for each container that runs it. */
  objects: string[]
}

export type EvidenceStatus = 'verified' | 'missing' | 'invalid' | 'unavailable'

export interface AttestationEvidence {
  status: EvidenceStatus
  /** Why it is not verified (wrong key, tampered, another digest, registry unreachable…). */
  message?: string
}

export interface VulnerabilityMatch {
  id: string
  aliases: string[]
  package: string
  version: string
  /** As `retailops scan` rates it (the record's CVSS); unknown counts as critical, as scan's --fail-on does by default. */
  severity: Severity
  /** Versions that fix it, when the record says. */
  fixed: string[]
}

export interface Evidence {
  signature: AttestationEvidence
  sbom: AttestationEvidence
  provenance: AttestationEvidence
  /** The vulnerabilities the verified SBOM's components match (undefined: not scanned). */
  vulnerabilities?: VulnerabilityMatch[]
}

export interface Refusal {
  rule: AdmissionRule
  message: string
  fix: string
}

export interface VulnerabilityVerdict extends VulnerabilityMatch {
  service: string
  /** Refused: at or above failOn and no current waiver. */
  refused: boolean
  waiver?: Waiver & {expired: boolean}
}

export interface Decision {
  image: string
  services: string[]
  objects: string[]
  admitted: boolean
  refusals: Refusal[]
  evidence: {signature: EvidenceStatus; sbom: EvidenceStatus; provenance: EvidenceStatus}
  /** Every vulnerability found (below the threshold too), with whether it refused and the waiver that let it through. */
  vulnerabilities: VulnerabilityVerdict[]
}

export interface DecideOptions {
  policy: SupplyChainPolicyConfig
  waivers: Waiver[]
  now: Date
  /** The project's public key file, named in fixes. */
  publicKeyFile: string
  /** The waivers file, named in fixes. */
  waiversFile: string
}

function serviceArg(image: AdmissionImage): string {
  return image.services.length > 0 ? image.services.join(' ') : 'SERVICE'
}

/** The rules, for one image and what is known about it. */
export function decide(image: AdmissionImage, evidence: Evidence, options: DecideOptions): Decision {
  const {policy} = options
  const refusals: Refusal[] = []
  const svc = serviceArg(image)
  const why = (e: AttestationEvidence) => (e.message ? `: ${e.message}` : '')
  if (policy.requireSignature && evidence.signature.status !== 'verified') {
    refusals.push({
      rule: 'signature',
      message: `${image.image} has ${evidence.signature.status === 'missing' ? 'no signature' : 'no signature that verifies'} with the project key${why(evidence.signature)}`,
      fix:
        evidence.signature.status === 'unavailable'
          ? `Make the registry reachable and ${options.publicKeyFile} readable, then deploy again.`
          : `Sign it with the project key: \`retailops sign ${svc}\` (or \`cosign sign --key cosign.key ${image.image}\`); the public key is ${options.publicKeyFile}.`,
    })
  }
  const attestation = (rule: 'sbom' | 'provenance', e: AttestationEvidence, what: string) => {
    if (e.status === 'verified') return
    refusals.push({
      rule,
      message: `${image.image} has ${e.status === 'missing' ? `no ${what} attestation` : `no ${what} attestation that verifies`} with the project key${why(e)}`,
      fix:
        e.status === 'unavailable'
          ? 'Make the registry reachable, then deploy again.'
          : `Build, push and sign it with retailops, which attaches the ${what} attestation: \`retailops build ${svc} && retailops push ${svc} && retailops sign ${svc}\` (key ${options.publicKeyFile}).`,
    })
  }
  if (policy.requireSbom) attestation('sbom', evidence.sbom, 'SBOM (CycloneDX)')
  if (policy.requireProvenance) attestation('provenance', evidence.provenance, 'SLSA provenance')

  const vulnerabilities: VulnerabilityVerdict[] = []
  if (policy.failOn) {
    const threshold = policy.failOn
    if (evidence.vulnerabilities === undefined) {
      // Without a verified SBOM there is nothing to scan: that cannot pass a vulnerability gate.
      refusals.push({
        rule: 'vulnerability',
        message: `${image.image} cannot be checked for vulnerabilities at or above ${threshold}: it has no verified SBOM attestation${why(evidence.sbom)}`,
        fix: `Attach a signed SBOM: \`retailops sign ${svc}\` after \`retailops build\` (it attaches the SBOM attestation).`,
      })
    } else {
      const services = image.services.length > 0 ? image.services : ['']
      for (const service of services) {
        for (const v of evidence.vulnerabilities) {
          const waiver = findWaiver(options.waivers, service, [v.id, ...v.aliases])
          const expired = waiver ? isExpired(waiver, options.now) : false
          const over = atOrAbove(v.severity, threshold)
          vulnerabilities.push({
            ...v,
            service,
            refused: over && (!waiver || expired),
            ...(waiver ? {waiver: {...waiver, expired}} : {}),
          })
        }
      }
      for (const v of vulnerabilities.filter((x) => x.refused)) {
        const names = [v.id, ...v.aliases.filter((a) => a !== v.id)].join(' / ')
        const fixedIn =
          v.fixed.length > 0
            ? `upgrade ${v.package} to ${v.fixed.join(' or ')} in services/${v.service}/package-lock.json and rebuild`
            : `remove or replace ${v.package}`
        refusals.push({
          rule: 'vulnerability',
          message: `${image.image} (${v.service}): ${v.package}@${v.version} has ${names}, severity ${v.severity} (at or above ${threshold})${v.waiver?.expired ? `; its waiver expired on ${v.waiver.expires}` : ''}`,
          fix: `${fixedIn[0].toUpperCase()}${fixedIn.slice(1)}; or, if it does not affect ${v.service}, waive it in ${options.waiversFile}: {id: ${v.id}, service: ${v.service}, reason: "…", expires: YYYY-MM-DD}${v.waiver?.expired ? ' (renew the expired waiver only after a new review)' : ''}.`,
        })
      }
    }
  }
  return {
    image: image.image,
    services: image.services,
    objects: image.objects,
    admitted: refusals.length === 0,
    refusals,
    evidence: {
      signature: evidence.signature.status,
      sbom: evidence.sbom.status,
      provenance: evidence.provenance.status,
    },
    vulnerabilities,
  }
}

/** Gathers what is known about one image (signature, attestations, vulnerabilities); never throws for a refusal. */
export type EvidenceSource = (image: AdmissionImage) => Promise<Evidence>

export interface AdmissionContext extends DecideOptions {
  evidence: EvidenceSource
  concurrency?: number
}

/** admit(images, policy, ctx): one decision per image, in the order given. */
export async function admit(
  images: AdmissionImage[],
  policy: SupplyChainPolicyConfig,
  ctx: Omit<AdmissionContext, 'policy'>,
): Promise<Decision[]> {
  const limit = pLimit(ctx.concurrency ?? 4)
  return Promise.all(
    images.map((image) => limit(async () => decide(image, await ctx.evidence(image), {...ctx, policy}))),
  )
}

/** Waivers of the deployed services that have expired: reported on every deploy until renewed or removed. */
export function expiredWaivers(waivers: Waiver[], services: string[], now: Date): Waiver[] {
  return waivers.filter((w) => services.includes(w.service) && isExpired(w, now))
}
