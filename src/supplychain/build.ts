import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {imageSources} from '../config/resolve.js'
import {buildImages, type BuildOptions, type BuildResult, type ServiceBuild} from '../docker/build.js'
import {dockerClient, engineInfo} from '../docker/engine.js'
import {gitSource, type GitSource} from '../docker/revision.js'
import {toRetailOpsError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {generateProvenance, provenancePath, readProvenanceFile, sha256Hex, writeProvenance} from './provenance.js'
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

export interface ProvenanceWritten {
  service: string
  file: string
  /** false: the stored provenance already described this image (an unchanged service keeps its build's). */
  written: boolean
}

export type BuildWithSupplyChainResult = BuildResult & {sboms: SbomWritten[]; provenance: ProvenanceWritten[]}

/**
 * `retailops build`: the images, then for each image the run built or found unchanged its
 * CycloneDX SBOM (`.retailops/sbom/<service>.cdx.json`) and its SLSA provenance
 * (`.retailops/provenance/<service>.slsa.json`). A failed build gets neither; a service whose
 * SBOM or provenance cannot be made is warned about (sign then has nothing to attest for it).
 */
export async function buildWithSupplyChain(
  options: BuildOptions,
  ctx: RunContext,
): Promise<BuildWithSupplyChainResult> {
  const result = await buildImages(options, ctx)
  const sboms: SbomWritten[] = []
  const provenance: ProvenanceWritten[] = []
  const ok = result.services.filter((s) => s.status !== 'failed')
  if (ok.length === 0) return {...result, sboms, provenance}
  const source = await gitSource(options.project.dir)
  for (const r of ok) {
    try {
      sboms.push(await sbomForBuild(options, r))
    } catch (error) {
      ctx.out.warn(`${r.service}: no SBOM written: ${toRetailOpsError(error).message}`)
    }
    try {
      provenance.push(await provenanceForBuild(options, r, source, result.revision.dirty))
    } catch (error) {
      ctx.out.warn(`${r.service}: no provenance written: ${toRetailOpsError(error).message}`)
    }
  }
  return {...result, sboms, provenance}
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

async function provenanceForBuild(
  options: BuildOptions,
  r: ServiceBuild,
  source: GitSource | undefined,
  dirty: boolean,
): Promise<ProvenanceWritten> {
  const {project} = options
  const file = path.relative(project.dir, provenancePath(project.dir, r.service))
  // An unchanged image keeps the provenance of the build that made it.
  const stored = await readProvenanceFile(project.dir, r.service).catch(() => undefined)
  const internal = stored?.buildDefinition.internalParameters
  if (
    internal &&
    ((r.imageId !== undefined && internal.imageId === r.imageId) ||
      (r.registryDigest !== undefined && internal.registryDigest === r.registryDigest))
  )
    return {service: r.service, file, written: false}

  const build = imageSources(project.config)[r.service].build
  const lockfile = serviceLockfile(project, r.service)
  const lockText = await readFile(lockfile, 'utf8').catch(() => undefined)
  let platform: string
  if (r.imageId) {
    const image = await (await dockerClient()).getImage(r.imageId).inspect()
    platform = `${image.Os}/${image.Architecture}${image.Variant ? `/${image.Variant}` : ''}`
  } else {
    const info = await engineInfo()
    platform = `${info.os}/${info.arch}`
  }
  const startedOn = new Date(r.startedAt)
  const provenance = await generateProvenance({
    service: r.service,
    repository: r.repository,
    tag: r.tag,
    context: build.context,
    dockerfile: r.dockerfile,
    buildArgs: r.buildArgs,
    target: build.target,
    platform,
    builder: r.registryDigest ? 'registry' : (r.builder ?? 'classic'),
    buildHash: r.buildHash,
    imageId: r.imageId,
    registryDigest: r.registryDigest,
    bases: r.baseImages,
    source,
    dirty,
    lockfile: lockText
      ? {name: path.relative(project.dir, lockfile).split(path.sep).join('/'), sha256: sha256Hex(lockText)}
      : undefined,
    startedOn,
    finishedOn: new Date(startedOn.getTime() + r.durationMs),
  })
  await writeProvenance(project.dir, r.service, provenance)
  return {service: r.service, file, written: true}
}
