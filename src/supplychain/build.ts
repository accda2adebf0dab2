import path from 'node:path'

import {buildImages, type BuildOptions, type BuildResult, type ServiceBuild} from '../docker/build.js'
import {toRetailOpsError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {
  generateSbom,
  readSbomFile,
  SBOM_PROPERTIES,
  sbomImageDigest,
  sbomPath,
  sbomProperty,
  serviceLockfile,
  writeSbom,
} from './sbom.js'

export interface SbomWritten {
  service: string
  file: string
  components: number
  /** false: the stored SBOM already described this image. */
  written: boolean
}

export type BuildWithSbomsResult = BuildResult & {sboms: SbomWritten[]}

/**
 * `retailops build`: the images, then the SBOM of each image the run built or found unchanged
 * (`.retailops/sbom/<service>.cdx.json`). A failed build gets none.
 */
export async function buildWithSboms(options: BuildOptions, ctx: RunContext): Promise<BuildWithSbomsResult> {
  const result = await buildImages(options, ctx)
  const sboms: SbomWritten[] = []
  for (const r of result.services.filter((s) => s.status !== 'failed')) {
    try {
      sboms.push(await sbomForBuild(options, r))
    } catch (error) {
      const e = toRetailOpsError(error)
      ctx.out.warn(`${r.service}: no SBOM written: ${e.message}`)
    }
  }
  return {...result, sboms}
}

async function sbomForBuild(options: BuildOptions, r: ServiceBuild): Promise<SbomWritten> {
  const {project} = options
  const lockfile = serviceLockfile(project, r.service)
  const digest = r.registryDigest
  const fresh = await generateSbom({
    service: r.service,
    repository: r.repository,
    tag: r.tag,
    digest,
    imageId: r.imageId,
    bases: r.baseImages,
    lockfile,
    projectDir: project.dir,
  })
  const stored = await readSbomFile(project.dir, r.service).catch(() => undefined)
  const same =
    stored !== undefined &&
    sbomProperty(stored, SBOM_PROPERTIES.lockfileSha256) === sbomProperty(fresh, SBOM_PROPERTIES.lockfileSha256) &&
    (digest
      ? sbomImageDigest(stored) === digest
      : r.imageId !== undefined && sbomProperty(stored, SBOM_PROPERTIES.imageId) === r.imageId)
  const components = (fresh.components ?? []).length
  const file = path.relative(project.dir, sbomPath(project.dir, r.service))
  if (same) return {service: r.service, file, components, written: false}
  await writeSbom(project.dir, r.service, fresh)
  return {service: r.service, file, components, written: true}
}
