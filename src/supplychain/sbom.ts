import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {Contrib, Enums, Models, Serialize, SPDX, Spec} from '@cyclonedx/cyclonedx-library'
import {PackageURL} from 'packageurl-js'

import {packagePath} from '../assets/paths.js'
import type {LoadedConfig} from '../config/load.js'
import {imageSources, selectImages} from '../config/resolve.js'
import {readArtifactsLock} from '../docker/artifacts.js'
import type {BaseImage} from '../docker/build.js'
import {readJsonFile, writeJsonAtomic} from '../docker/files.js'
import {parseReference} from '../docker/reference.js'
import {ConfigError, NotFoundError, RetailOpsError} from '../errors/index.js'

/**
 * One CycloneDX 1.6 SBOM per image, built with the CycloneDX JavaScript library from what the
 * image really holds: the npm packages its Dockerfile copies in (the build context's
 * package-lock.json, installed there by `npm ci --omit=dev`, so dev dependencies are left out),
 * the base image it is FROM (identity and digest, as the build resolved it), and the image itself
 * as metadata.component (repository and digest once pushed; the engine's image ID before).
 *
 * Kept at `.retailops/sbom/<service>.cdx.json`. `retailops build` writes it; once the service is
 * pushed, readSbom binds it to the pushed digest (the artifacts lock), which is what sign attests.
 */

export const SBOM_DIR = '.retailops/sbom'
export const CYCLONEDX_SPEC = '1.6'
export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json'

/** retailops' own property names in the SBOM (CycloneDX property taxonomy: a namespace prefix). */
export const SBOM_PROPERTIES = {
  service: 'retailops:service',
  imageId: 'retailops:image:id',
  tag: 'retailops:image:tag',
  lockfile: 'retailops:lockfile',
  lockfileSha256: 'retailops:lockfile:sha256',
  baseRef: 'retailops:base-image:ref',
  baseSource: 'retailops:base-image:source',
  /** CycloneDX's npm taxonomy: where the package sits under node_modules. */
  npmPath: 'cdx:npm:package:path',
} as const

/** The parts of a CycloneDX JSON component that retailops and its scanners read. */
export interface SbomComponent {
  type: string
  'bom-ref'?: string
  group?: string
  name: string
  version?: string
  purl?: string
  hashes?: {alg: string; content: string}[]
  licenses?: unknown[]
  properties?: {name: string; value: string}[]
}

/** A CycloneDX JSON document as readSbom and generateSbom return it. */
export interface SbomDocument {
  bomFormat: 'CycloneDX'
  specVersion: string
  serialNumber?: string
  version: number
  metadata: {
    timestamp?: string
    tools?: unknown
    component?: SbomComponent
    properties?: {name: string; value: string}[]
  }
  components?: SbomComponent[]
  dependencies?: {ref: string; dependsOn?: string[]}[]
}

export interface SbomInput {
  service: string
  /** `registry/repository` of the image. */
  repository: string
  tag?: string
  /** The pushed manifest digest, when known. */
  digest?: string
  /** The engine's image ID (config digest), when it was built here. */
  imageId?: string
  /** The FROM images and what the build resolved them to. */
  bases: BaseImage[]
  /** The package-lock.json whose installed packages the image holds; none: no npm packages. */
  lockfile?: string
  /** The project folder: the SBOM names the lockfile relative to it. */
  projectDir?: string
  /** When the image was built (metadata.timestamp); default now. */
  timestamp?: Date
}

interface LockPackage {
  name?: string
  version?: string
  resolved?: string
  integrity?: string
  license?: string
  dev?: boolean
  extraneous?: boolean
  link?: boolean
  inBundle?: boolean
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

interface PackageLock {
  name?: string
  version?: string
  lockfileVersion?: number
  packages?: Record<string, LockPackage>
}

/** A package installed from the lock: what `npm ci --omit=dev` puts under node_modules. */
export interface InstalledPackage {
  /** `node_modules/…` as the lock keys it. */
  path: string
  name: string
  version: string
  integrity?: string
  resolved?: string
  license?: string
  dependencies: string[]
}

/** The lock's packages that `npm ci --omit=dev` installs: under node_modules, not dev, not links. */
export function installedPackages(lock: PackageLock, file = 'package-lock.json'): InstalledPackage[] {
  if (!lock.packages || (lock.lockfileVersion ?? 0) < 2) {
    throw new ConfigError([
      {
        file,
        path: 'lockfileVersion',
        message: `is ${lock.lockfileVersion ?? 'missing'}; the SBOM needs lockfile version 2 or 3 (npm 7 or later): run \`npm install --package-lock-only\``,
      },
    ])
  }
  const out: InstalledPackage[] = []
  for (const [key, p] of Object.entries(lock.packages)) {
    if (!key.includes('node_modules/') || p.dev || p.extraneous || p.link) continue
    const name = p.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length)
    if (!p.version) continue
    out.push({
      path: key,
      name,
      version: p.version,
      integrity: p.integrity,
      resolved: p.resolved,
      license: p.license,
      dependencies: [
        ...Object.keys(p.dependencies ?? {}),
        ...Object.keys(p.optionalDependencies ?? {}),
        ...Object.keys(p.peerDependencies ?? {}),
      ],
    })
  }
  return out.sort((a, b) => a.path.localeCompare(b.path))
}

/** Node's resolution over the lock's paths: from `from`'s node_modules up to the root's. */
function resolveInstalled(paths: Set<string>, from: string, name: string): string | undefined {
  let dir = from
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`
    if (paths.has(candidate)) return candidate
    if (!dir) return undefined
    const at = dir.lastIndexOf('node_modules/')
    dir = at <= 0 ? '' : dir.slice(0, at - 1)
  }
}

export function npmPurl(name: string, version: string): string {
  const [namespace, bare] = name.startsWith('@') ? name.split('/', 2) : [undefined, name]
  return new PackageURL('npm', namespace ?? null, bare, version, null, null).toString()
}

/** purl-spec's oci type: the last path segment as name, the digest as version, the repository as repository_url. */
export function ociPurl(repository: string, digest: string, tag?: string): string {
  const name = repository.slice(repository.lastIndexOf('/') + 1).toLowerCase()
  const qualifiers: Record<string, string> = {repository_url: repository}
  if (tag) qualifiers.tag = tag
  return new PackageURL('oci', null, name, digest, qualifiers, null).toString()
}

/** A serial number that is the same for the same image and content (UUID shape, version 5 bits). */
function serialNumber(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex')
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

let retailopsVersion: string | undefined
export async function toolVersion(): Promise<string> {
  retailopsVersion ??= (JSON.parse(await readFile(packagePath('package.json'), 'utf8')) as {version: string}).version
  return retailopsVersion
}

function baseComponent(base: BaseImage): Models.Component {
  let repository = base.ref
  let tag: string | undefined
  try {
    const ref = parseReference(base.ref)
    repository = `${ref.registry}/${ref.repository}`
    tag = ref.tag
  } catch {
    // An unparsable FROM stays as written.
  }
  const component = new Models.Component(Enums.ComponentType.Container, repository, {
    bomRef: `base:${base.ref}`,
    version: base.digest,
    // The purl's version is a manifest digest; a local image ID (config digest) is not one.
    purl: base.digest && base.source !== 'local' ? ociPurl(repository, base.digest, tag) : undefined,
    description: 'Base image (FROM)',
  })
  component.properties.add(new Models.Property(SBOM_PROPERTIES.baseRef, base.ref))
  component.properties.add(new Models.Property(SBOM_PROPERTIES.baseSource, base.source))
  return component
}

/** An SPDX id as an id, an SPDX expression as an expression, anything else by name. */
function licenseOf(license: string): Models.License {
  const id = SPDX.fixupSpdxId(license)
  if (id) return new Models.SpdxLicense(id)
  if (/\s(OR|AND|WITH)\s/.test(license)) return new Models.LicenseExpression(license)
  return new Models.NamedLicense(license)
}

/** Generates the image's CycloneDX SBOM (JSON, parsed) with the CycloneDX library. */
export async function generateSbom(input: SbomInput): Promise<SbomDocument> {
  const lockText = input.lockfile ? await readFile(input.lockfile, 'utf8').catch(() => undefined) : undefined
  if (input.lockfile && lockText === undefined) {
    throw new NotFoundError(`${input.lockfile} does not exist; the SBOM of ${input.service} is made from it.`, {
      nextSteps: [`Run \`npm install --package-lock-only\` in ${path.dirname(input.lockfile)} and build again.`],
    })
  }
  let lock: PackageLock = {lockfileVersion: 3, packages: {}}
  if (lockText !== undefined) {
    try {
      lock = JSON.parse(lockText) as PackageLock
    } catch (error) {
      throw new ConfigError([{file: input.lockfile!, path: '', message: `is not JSON (${(error as Error).message})`}])
    }
  }
  const packages = installedPackages(lock, input.lockfile)
  const lockSha = lockText !== undefined ? createHash('sha256').update(lockText).digest('hex') : undefined

  const identity = input.digest ?? input.imageId
  const imageComponent = new Models.Component(Enums.ComponentType.Container, input.repository, {
    bomRef: `image:${input.repository}`,
    version: identity ?? input.tag,
    purl: input.digest ? ociPurl(input.repository, input.digest, input.tag) : undefined,
    description: `The ${input.service} service's image`,
  })
  const props = imageComponent.properties
  props.add(new Models.Property(SBOM_PROPERTIES.service, input.service))
  if (input.imageId) props.add(new Models.Property(SBOM_PROPERTIES.imageId, input.imageId))
  if (input.tag) props.add(new Models.Property(SBOM_PROPERTIES.tag, input.tag))
  if (input.lockfile)
    props.add(
      new Models.Property(
        SBOM_PROPERTIES.lockfile,
        input.projectDir ? path.relative(input.projectDir, input.lockfile) : input.lockfile,
      ),
    )
  if (lockSha) props.add(new Models.Property(SBOM_PROPERTIES.lockfileSha256, lockSha))

  const bom = new Models.Bom({
    serialNumber: serialNumber(
      [input.repository, identity ?? '', lockSha ?? '', ...input.bases.map((b) => `${b.ref}@${b.digest}`)].join('\n'),
    ),
  })
  bom.metadata.timestamp = input.timestamp ?? new Date()
  bom.metadata.component = imageComponent
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, 'retailops', {version: await toolVersion()}),
  )

  for (const base of input.bases) {
    const c = baseComponent(base)
    bom.components.add(c)
    imageComponent.dependencies.add(c.bomRef)
  }

  const byPath = new Map<string, Models.Component>()
  for (const p of packages) {
    const [group, name] = p.name.startsWith('@') ? p.name.split('/', 2) : [undefined, p.name]
    const c = new Models.Component(Enums.ComponentType.Library, name, {
      bomRef: `npm:${p.path}`,
      group,
      version: p.version,
      purl: npmPurl(p.name, p.version),
      scope: Enums.ComponentScope.Required,
    })
    if (p.integrity) {
      // An integrity may list several hashes ("sha512-… sha1-…"); each unparsable one is left out.
      for (const one of p.integrity.split(/\s+/)) {
        try {
          const [alg, hex] = Contrib.FromNodePackageJson.Utils.parsePackageIntegrity(one)
          c.hashes.set(alg, hex)
        } catch {
          // not a hash CycloneDX knows
        }
      }
    }
    if (p.license) c.licenses.add(licenseOf(p.license))
    if (p.resolved)
      c.externalReferences.add(new Models.ExternalReference(p.resolved, Enums.ExternalReferenceType.Distribution))
    c.properties.add(new Models.Property(SBOM_PROPERTIES.npmPath, p.path))
    byPath.set(p.path, c)
    bom.components.add(c)
  }
  const paths = new Set(byPath.keys())
  const root = lock.packages?.['']
  const rootDeps = [...Object.keys(root?.dependencies ?? {}), ...Object.keys(root?.optionalDependencies ?? {})]
  for (const name of rootDeps) {
    const at = resolveInstalled(paths, '', name)
    if (at) imageComponent.dependencies.add(byPath.get(at)!.bomRef)
  }
  for (const p of packages) {
    for (const name of p.dependencies) {
      const at = resolveInstalled(paths, p.path, name)
      if (at) byPath.get(p.path)!.dependencies.add(byPath.get(at)!.bomRef)
    }
  }

  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6))
  return JSON.parse(serializer.serialize(bom, {sortLists: true})) as SbomDocument
}

export function sbomPath(projectDir: string, service: string): string {
  return path.join(projectDir, SBOM_DIR, `${service}.cdx.json`)
}

/** The package-lock.json a service's image installs from: its build context's. */
export function serviceLockfile(project: LoadedConfig, service: string): string {
  return path.resolve(project.dir, imageSources(project.config)[service].build.context, 'package-lock.json')
}

export async function writeSbom(projectDir: string, service: string, sbom: SbomDocument): Promise<string> {
  const file = sbomPath(projectDir, service)
  await writeJsonAtomic(file, sbom)
  return file
}

export function sbomProperty(sbom: SbomDocument, name: string): string | undefined {
  return sbom.metadata.component?.properties?.find((p) => p.name === name)?.value
}

/** The digest the SBOM names for its image: the pushed manifest digest, once bound. */
export function sbomImageDigest(sbom: SbomDocument): string | undefined {
  const c = sbom.metadata.component
  return c?.purl?.startsWith('pkg:oci/') ? c.version : undefined
}

/** The base images as the stored SBOM records them (to bind it to a digest without building again). */
function sbomBases(sbom: SbomDocument): BaseImage[] {
  return (sbom.components ?? [])
    .filter((c) => c.type === 'container')
    .map((c) => {
      const prop = (n: string) => c.properties?.find((p) => p.name === n)?.value
      return {
        ref: prop(SBOM_PROPERTIES.baseRef) ?? c.name,
        digest: c.version,
        source: (prop(SBOM_PROPERTIES.baseSource) ?? 'unresolved') as BaseImage['source'],
      }
    })
}

export async function readSbomFile(projectDir: string, service: string): Promise<SbomDocument | undefined> {
  const file = sbomPath(projectDir, service)
  const doc = await readJsonFile<SbomDocument>(file).catch((error: Error) => {
    throw new ConfigError([
      {file, path: '', message: `not valid JSON (${error.message}); run \`retailops build ${service}\` again`},
    ])
  })
  if (doc && (doc.bomFormat !== 'CycloneDX' || !doc.metadata?.component)) {
    throw new ConfigError([
      {file, path: 'bomFormat', message: `is not a CycloneDX SBOM retailops wrote; run \`retailops build ${service}\``},
    ])
  }
  return doc
}

export interface ReadSbomResult {
  file: string
  sbom: SbomDocument
  /** The pushed digest it names, or undefined before push. */
  digest?: string
}

/**
 * A service's SBOM. When the service is pushed (artifacts lock), the SBOM is the pushed image's:
 * one written for the engine image the push came from is bound to the pushed digest (and
 * stored so); one for another build is refused (the pushed image is not what was built last).
 */
export async function readSbom(project: LoadedConfig, service: string): Promise<ReadSbomResult> {
  const file = sbomPath(project.dir, service)
  const stored = await readSbomFile(project.dir, service)
  if (!stored) {
    throw new NotFoundError(`No SBOM for ${service} (${path.relative(project.dir, file)}).`, {
      nextSteps: [`Run \`retailops build ${service}\`: it writes the SBOM of each image it builds.`],
      details: {service, file, absent: true},
    })
  }
  const pushed = (await readArtifactsLock(project.dir)).artifacts[service]
  if (!pushed) return {file, sbom: stored, digest: sbomImageDigest(stored)}
  const bound = sbomImageDigest(stored)
  if (bound === pushed.digest) return {file, sbom: stored, digest: bound}
  const imageId = sbomProperty(stored, SBOM_PROPERTIES.imageId)
  if (bound !== undefined || !imageId || imageId !== pushed.imageId) {
    throw new RetailOpsError(
      'NOT_FOUND',
      `The SBOM of ${service} describes ${bound ?? imageId ?? 'another image'}, not the pushed image ${pushed.image}.`,
      {
        nextSteps: [`Build and push it again: \`retailops build ${service} && retailops push ${service}\`.`],
        details: {service, file, sbomImage: bound ?? imageId, pushed: pushed.image},
      },
    )
  }
  const lockfile = sbomProperty(stored, SBOM_PROPERTIES.lockfile)
  const sbom = await generateSbom({
    service,
    repository: pushed.repository,
    tag: sbomProperty(stored, SBOM_PROPERTIES.tag) ?? pushed.tag,
    digest: pushed.digest,
    imageId,
    bases: sbomBases(stored),
    lockfile: lockfile && path.resolve(project.dir, lockfile),
    projectDir: project.dir,
    timestamp: stored.metadata.timestamp ? new Date(stored.metadata.timestamp) : undefined,
  })
  if (sbomProperty(sbom, SBOM_PROPERTIES.lockfileSha256) !== sbomProperty(stored, SBOM_PROPERTIES.lockfileSha256)) {
    throw new RetailOpsError(
      'NOT_FOUND',
      `${lockfile} changed since ${service}'s image was built; its SBOM can no longer be made from it.`,
      {
        nextSteps: [`Build and push it again: \`retailops build ${service} && retailops push ${service}\`.`],
        details: {service, file, lockfile},
      },
    )
  }
  await writeSbom(project.dir, service, sbom)
  return {file, sbom, digest: pushed.digest}
}

export interface SbomSummary {
  service: string
  file: string
  /** The image it describes: the pushed `registry/repo@sha256:…`, or `registry/repo` (image ID) before push. */
  image: string
  digest?: string
  imageId?: string
  components: number
  packages: number
  baseImages: {name: string; version?: string}[]
}

/** `retailops sbom`: every selected service's SBOM, bound to its pushed digest where it has one. */
export async function readSboms(project: LoadedConfig, services?: string[]): Promise<SbomSummary[]> {
  const names = selectImages(project.config, services)
  const out: SbomSummary[] = []
  for (const service of names) {
    const {file, sbom, digest} = await readSbom(project, service)
    const components = sbom.components ?? []
    const repository = sbom.metadata.component?.name ?? service
    out.push({
      service,
      file: path.relative(project.dir, file),
      image: digest ? `${repository}@${digest}` : repository,
      digest,
      imageId: sbomProperty(sbom, SBOM_PROPERTIES.imageId),
      components: components.length,
      packages: components.filter((c) => c.purl?.startsWith('pkg:npm/')).length,
      baseImages: components.filter((c) => c.type === 'container').map((c) => ({name: c.name, version: c.version})),
    })
  }
  return out
}
