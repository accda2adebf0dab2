import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {z} from 'zod'

import {formatDuration, parseDuration} from '../config/duration.js'
import type {LoadedConfig} from '../config/load.js'
import {selectImages} from '../config/resolve.js'
import {NotFoundError, UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {compareFindings, type CycloneDxBom, type Finding, matchVulnerabilities, npmComponents} from './match.js'
import {readSbom, SBOM_PROPERTIES} from './sbom.js'
import {osvIndexRoot} from './osv-index.js'
import {loadOsvDatabase, type OsvDatabaseInfo, parseNpmVersion, REFRESH_STEP} from './osv.js'
import {atOrAbove, type KnownSeverity, type Severity, type Threshold} from './severity.js'
import {expiredWaivers as expiredOf} from './policy.js'
import {findWaiver, isExpired, loadWaivers, type Waiver} from './waivers.js'

/** One SBOM to scan: a service's, or a file given with --sbom. */
export interface ScanInput {
  service?: string
  /** Where the SBOM came from (a path relative to the project or the working directory). */
  sbomFile: string
  bom: CycloneDxBom
  /** The package-lock.json the SBOM's npm packages were installed from (project-relative), when known. */
  lockfile?: string
}

export interface ScanTarget {
  service?: string
  sbomFile: string
  lockfile?: string
  /** npm packages (name@version) matched against the database. */
  packages: number
  /** Components not matched: not npm (the base image and its OS packages are not in an npm database). */
  notScanned: string[]
  /** npm packages whose version is not a semantic version: only the records' exact version lists apply. */
  uncomparable: string[]
  findings: number
}

export interface ScanGate {
  failOn: Threshold
  /** How findings with an unknown severity count against failOn. */
  unknownAs: KnownSeverity
  /** Findings at or above failOn that no current waiver covers. */
  failing: number
  /** Findings at or above failOn that a current waiver lets through. */
  waived: number
  pass: boolean
}

export interface ScanDatabase extends OsvDatabaseInfo {
  /** How long ago the newest record was modified. */
  age: string
  ageMs: number
  maxAge: string
  stale: boolean
}

export interface ScanResult {
  database: ScanDatabase
  targets: ScanTarget[]
  /** Highest severity first. Each names service and id, so a waiver can be applied to it. */
  findings: Finding[]
  counts: Record<Severity, number>
  gate?: ScanGate
  /** The waivers file read (supplyChain.policy.waivers, default .retailops/waivers.yaml), when scanning a project's services. */
  waiversFile?: string
  /** Waivers of the scanned services whose expiry day has passed: reported, and they waive nothing. */
  expiredWaivers: Waiver[]
}

export interface ScanOptions {
  project?: LoadedConfig
  /** Services whose SBOMs to scan; none and no sbomFiles: every service. */
  services: string[]
  /** CycloneDX JSON files to scan (--sbom). */
  sbomFiles: string[]
  /** --db; default supplyChain.vulnerabilityDatabase. */
  database?: string
  /** --max-db-age in ms; default supplyChain.vulnerabilityDatabaseMaxAge. */
  maxAgeMs?: number
  failOn?: Threshold
  unknownAs?: KnownSeverity
  now?: Date
}

const DEFAULT_MAX_AGE = '7d'
const DEFAULT_WAIVERS = '.retailops/waivers.yaml'

/** The parts of a CycloneDX JSON document matching needs; anything else in it is kept as it is. */
interface LooseComponent {
  purl?: string
  name?: string
  version?: string
  'bom-ref'?: string
  components?: LooseComponent[]
}
const component: z.ZodType<LooseComponent> = z.looseObject({
  type: z.string().optional(),
  name: z.string().optional(),
  version: z.string().optional(),
  purl: z.string().optional(),
  'bom-ref': z.string().optional(),
  get components() {
    return z.array(component).optional()
  },
})
const bomSchema = z.looseObject({
  bomFormat: z.literal('CycloneDX', {error: 'is not "CycloneDX": this is not a CycloneDX SBOM'}),
  specVersion: z.string(),
  metadata: z.looseObject({component: component.optional()}).optional(),
  components: z.array(component).optional(),
})

/** A CycloneDX JSON SBOM from a file, validated (USAGE when it is not one: the file came from a flag). */
export async function readBomFile(file: string): Promise<CycloneDxBom> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new NotFoundError(`SBOM ${file} does not exist.`)
    throw new UsageError(`SBOM ${file} cannot be read: ${error.message}`)
  })
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`SBOM ${file} is not JSON: ${(error as Error).message}`, {
      nextSteps: ['Give a CycloneDX JSON SBOM (XML is not read): `retailops sbom` writes them under .retailops/sbom/.'],
    })
  }
  const parsed = bomSchema.safeParse(json)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(document)'} ${i.message}`)
    throw new UsageError(`SBOM ${file} is not a CycloneDX JSON SBOM: ${problems.slice(0, 5).join('; ')}`, {
      nextSteps: ['Give a CycloneDX JSON SBOM: `retailops sbom` writes them under .retailops/sbom/.'],
      details: {file, problems},
    })
  }
  return parsed.data
}

/** retailops' SBOMs name the lockfile they were made from (project-relative). */
function lockfileOf(bom: CycloneDxBom): string | undefined {
  return bom.metadata?.component?.properties?.find((p) => p.name === SBOM_PROPERTIES.lockfile)?.value
}

/** A service's SBOM as `retailops build` wrote it, bound to the pushed digest when there is one. */
async function serviceInput(project: LoadedConfig, service: string): Promise<ScanInput> {
  const {file, sbom} = await readSbom(project, service)
  return {service, sbomFile: path.relative(project.dir, file), bom: sbom, lockfile: lockfileOf(sbom)}
}

function databasePath(options: ScanOptions): string {
  if (options.database) return path.resolve(options.database)
  const configured = options.project?.config.supplyChain?.vulnerabilityDatabase
  if (configured && options.project) return path.resolve(options.project.dir, configured)
  throw new UsageError(
    'No vulnerability database: give --db PATH or set supplyChain.vulnerabilityDatabase in retailops.yaml.',
    {
      nextSteps: [
        REFRESH_STEP,
        'Then `retailops scan --db osv-npm.zip`, or set supplyChain.vulnerabilityDatabase: osv-npm.zip in retailops.yaml.',
      ],
    },
  )
}

/** An age as people read it: days and hours, or hours and minutes under a day. */
function roughAge(ms: number): string {
  const unit = ms >= 86_400_000 ? 3_600_000 : 60_000
  return formatDuration(Math.floor(ms / unit) * unit)
}

/** The SBOMs to scan, every one read and validated before the database is opened. */
async function collectInputs(options: ScanOptions): Promise<ScanInput[]> {
  const inputs: ScanInput[] = []
  const {project} = options
  if (options.services.length > 0 && !project)
    throw new UsageError(`Scanning services (${options.services.join(', ')}) needs retailops.yaml.`, {
      nextSteps: ['Run it in the project, give --config, or scan a CycloneDX file with --sbom FILE.'],
    })
  if (project && (options.services.length > 0 || options.sbomFiles.length === 0)) {
    for (const service of selectImages(project.config, options.services))
      inputs.push(await serviceInput(project, service))
  }
  for (const file of options.sbomFiles) {
    const bom = await readBomFile(file)
    inputs.push({sbomFile: file, bom, lockfile: lockfileOf(bom)})
  }
  if (inputs.length === 0)
    throw new UsageError('Nothing to scan: give services, or a CycloneDX file with --sbom FILE.', {
      nextSteps: ['Run it in a project (every service is scanned), or give --sbom FILE.'],
    })
  return inputs
}

/**
 * `retailops scan`: matches the npm packages of each SBOM (the services' or --sbom files) against
 * an OSV database (folder or zip), rates each finding from the record's CVSS vector, reports the
 * database's age, and evaluates --fail-on. Reads only; writes nothing.
 */
export async function scan(options: ScanOptions, ctx: RunContext): Promise<ScanResult> {
  const now = options.now ?? new Date()
  const dbPath = databasePath(options)
  const maxAgeMs =
    options.maxAgeMs ??
    parseDuration(options.project?.config.supplyChain?.vulnerabilityDatabaseMaxAge ?? DEFAULT_MAX_AGE) ??
    7 * 86_400_000
  const inputs = await collectInputs(options)
  const packages = new Set(inputs.flatMap((i) => npmComponents(i.bom).components.map((c) => c.name)))
  const db = await loadOsvDatabase(dbPath, {packages, now, indexRoot: osvIndexRoot()}, ctx)

  const ageMs = Math.max(0, now.getTime() - Date.parse(db.info.newestRecord))
  const database: ScanDatabase = {
    ...db.info,
    path: options.database ?? path.relative(options.project?.dir ?? process.cwd(), dbPath),
    age: roughAge(ageMs),
    ageMs,
    maxAge: formatDuration(maxAgeMs),
    stale: ageMs > maxAgeMs,
  }
  if (database.stale)
    ctx.out.warn(
      `The vulnerability database ${database.path} is stale: its newest record is ${database.age} old (${db.info.newestRecord}; allowed ${database.maxAge}). Vulnerabilities published since are not found. ${REFRESH_STEP}`,
    )

  const targets: ScanTarget[] = []
  // The same waivers deploy's admission applies: a finding a current waiver covers does not fail --fail-on.
  const scannedServices = [...new Set(inputs.flatMap((i) => (i.service ? [i.service] : [])))]
  const waivers =
    options.project && scannedServices.length > 0
      ? await loadWaivers(
          options.project.dir,
          options.project.config.supplyChain?.policy?.waivers ?? DEFAULT_WAIVERS,
          selectImages(options.project.config),
        )
      : undefined
  const expiredWaivers = waivers ? expiredOf(waivers.waivers, scannedServices, now) : []
  for (const w of expiredWaivers)
    ctx.out.warn(
      `The waiver of ${w.id} for ${w.service} in ${waivers!.file} expired on ${w.expires} (reason: ${w.reason}); it waives nothing now.`,
    )
  const findings: Finding[] = []
  for (const input of inputs) {
    const {components, other} = npmComponents(input.bom)
    const found = matchVulnerabilities(input.bom, db, {service: input.service})
    const uncomparable = components.filter((c) => !parseNpmVersion(c.version)).map((c) => `${c.name}@${c.version}`)
    if (uncomparable.length > 0)
      ctx.out.warn(
        `${input.service ?? input.sbomFile}: ${uncomparable.join(', ')} ${uncomparable.length === 1 ? 'has' : 'have'} no semantic version; only records listing that exact version can match.`,
      )
    targets.push({
      ...(input.service ? {service: input.service} : {}),
      sbomFile: input.sbomFile,
      ...(input.lockfile ? {lockfile: input.lockfile} : {}),
      packages: components.length,
      notScanned: other,
      uncomparable,
      findings: found.length,
    })
    for (const f of found) {
      const waiver = waivers && f.service ? findWaiver(waivers.waivers, f.service, [f.id, ...f.aliases]) : undefined
      findings.push(waiver ? {...f, waiver: {...waiver, expired: isExpired(waiver, now)}} : f)
    }
  }
  // Per target, then across targets: highest severity first.
  findings.sort(compareFindings)

  const counts: Record<Severity, number> = {critical: 0, high: 0, medium: 0, low: 0, none: 0, unknown: 0}
  for (const f of findings) counts[f.severity] += 1
  let gate: ScanGate | undefined
  if (options.failOn) {
    const unknownAs = options.unknownAs ?? 'critical'
    const over = findings.filter((f) => atOrAbove(f.severity, options.failOn!, unknownAs))
    const waived = over.filter((f) => f.waiver && !f.waiver.expired).length
    const failing = over.length - waived
    gate = {failOn: options.failOn, unknownAs, failing, waived, pass: failing === 0}
  }
  return {
    database,
    targets,
    findings,
    counts,
    ...(gate ? {gate} : {}),
    ...(waivers ? {waiversFile: path.relative(options.project!.dir, waivers.file)} : {}),
    expiredWaivers,
  }
}
