import type {LoadedConfig} from '../config/load.js'
import {toRetailOpsError} from '../errors/index.js'
import {type Attestation, PREDICATE_TYPES} from '../signing/attest.js'
import {type ImageTarget, signImages, type SignImagesOptions, type SignImagesResult} from '../signing/images.js'
import type {RunContext} from '../ui/context.js'
import {readProvenance, SLSA_PROVENANCE_V1} from './provenance.js'
import {readSbom} from './sbom.js'

export interface SignAndAttestOptions extends Omit<SignImagesOptions, 'attestationsFor'> {
  /** Attach the SBOM and provenance attestations of each service's image (default true). */
  attest?: boolean
}

/**
 * `retailops sign`: each image's signature and, for a service's pushed image, the attestations
 * retailops has for exactly that digest: its CycloneDX SBOM (predicate https://cyclonedx.org/bom)
 * and its SLSA provenance (https://slsa.dev/provenance/v1), signed with the same key and stored in
 * the same format. A service without them (never built here) is signed and warned about; one whose
 * SBOM or provenance belongs to another build than the pushed image stops the run before anything
 * is written. Images given by reference get a signature only.
 */
export async function signAndAttest(options: SignAndAttestOptions, ctx: RunContext): Promise<SignImagesResult> {
  const {attest = true, ...rest} = options
  const project = options.project
  return signImages(
    {
      ...rest,
      attestationsFor: attest && project ? (t) => attestationsFor(project, t, ctx) : undefined,
    },
    ctx,
  )
}

/** The attestations retailops has for a service's pushed digest (none for an image given by reference). */
export async function attestationsFor(
  project: LoadedConfig,
  target: ImageTarget,
  ctx: RunContext,
): Promise<Attestation[]> {
  if (!target.service) return []
  const service = target.service
  const out: Attestation[] = []
  const missing = (what: string, error: unknown) => {
    const e = toRetailOpsError(error)
    // No file at all: never built here (a pulled lock, a hand-written one). Another build's: refuse.
    if (e.exit === 'NOT_FOUND' && e.details.absent === true) {
      ctx.out.warn(`${service}: signed without ${what} attestation: ${e.message} ${e.nextSteps.join(' ')}`)
      return
    }
    throw e
  }
  try {
    const {sbom, digest} = await readSbom(project, service)
    if (digest === target.digest) out.push({predicateType: PREDICATE_TYPES.cyclonedx, predicate: sbom})
  } catch (error) {
    missing('an SBOM', error)
  }
  try {
    const {provenance, digest} = await readProvenance(project, service)
    if (digest === target.digest) out.push({predicateType: SLSA_PROVENANCE_V1, predicate: provenance})
  } catch (error) {
    missing('a provenance', error)
  }
  return out
}
