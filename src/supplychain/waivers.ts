import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {z} from 'zod'

import {parseYamlFile} from '../config/parse.js'
import {ConfigError} from '../errors/index.js'

/**
 * Vulnerability waivers: a file in the repository (supplyChain.policy.waivers), reviewed like code.
 * A waiver lets one vulnerability through for one service until the end of its expiry day (UTC);
 * an expired one is reported and waives nothing.
 */
export interface Waiver {
  /** The vulnerability's id or one of its aliases (GHSA-…, CVE-…). */
  id: string
  service: string
  reason: string
  /** YYYY-MM-DD: the last day (UTC) the waiver applies. */
  expires: string
}

export interface LoadedWaivers {
  file: string
  /** False when the file does not exist (no waivers). */
  found: boolean
  waivers: Waiver[]
}

const DATE = /^\d{4}-\d{2}-\d{2}$/

const waiverSchema = z
  .object({
    id: z.string().trim().min(1).describe('vulnerability id or alias'),
    service: z.string().trim().min(1),
    reason: z.string().trim().min(1),
    expires: z
      .union([z.string(), z.date()])
      .transform((v) => (v instanceof Date ? v.toISOString().slice(0, 10) : v.trim()))
      .refine(
        (v) =>
          DATE.test(v) &&
          !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) &&
          new Date(`${v}T00:00:00Z`).toISOString().startsWith(v),
        {
          message: 'expected a date YYYY-MM-DD (the last day the waiver applies)',
        },
      ),
  })
  .strict()

const waiversFileSchema = z
  .object({
    waivers: z
      .array(waiverSchema)
      .nullish()
      .transform((w) => w ?? []),
  })
  .strict()

/** The end of a waiver's last day, UTC. */
export function waiverEnds(waiver: Pick<Waiver, 'expires'>): Date {
  return new Date(Date.parse(`${waiver.expires}T00:00:00Z`) + 24 * 3600 * 1000)
}

export function isExpired(waiver: Pick<Waiver, 'expires'>, now: Date): boolean {
  return now.getTime() >= waiverEnds(waiver).getTime()
}

/**
 * Parses and validates a waivers file: every entry needs id, service, reason and expires; services
 * must be the project's; one vulnerability is waived once per service. Bad entries are exit
 * CONFIG, naming the file, the line and the entry.
 */
export function parseWaivers(text: string, file: string, services: string[]): Waiver[] {
  const {waivers} = parseYamlFile(text, file, waiversFileSchema)
  const issues: {file: string; path: string; message: string}[] = []
  const seen = new Map<string, number>()
  waivers.forEach((w, i) => {
    if (!services.includes(w.service))
      issues.push({
        file,
        path: `waivers[${i}].service`,
        message: `"${w.service}" is not a service of this project (known: ${services.join(', ')})`,
      })
    const key = `${w.service}\u0000${w.id.toUpperCase()}`
    const first = seen.get(key)
    if (first !== undefined)
      issues.push({
        file,
        path: `waivers[${i}]`,
        message: `waives ${w.id} for ${w.service} again (waivers[${first}] already does): keep one`,
      })
    else seen.set(key, i)
  })
  if (issues.length > 0) throw new ConfigError(issues, {nextSteps: [`Fix the entries above in ${file}.`]})
  return waivers
}

/** Reads the waivers file (relative to the project folder); a missing file has no waivers. */
export async function loadWaivers(projectDir: string, relative: string, services: string[]): Promise<LoadedWaivers> {
  const file = path.resolve(projectDir, relative)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {file, found: false, waivers: []}
    throw new ConfigError([{file, path: '', message: `cannot read the waivers file: ${(error as Error).message}`}])
  }
  return {file, found: true, waivers: parseWaivers(text, file, services)}
}

/** The waiver that covers a vulnerability (by id or alias) for a service, if one does. */
export function findWaiver(waivers: Waiver[], service: string, ids: string[]): Waiver | undefined {
  const wanted = new Set(ids.map((id) => id.toUpperCase()))
  return waivers.find((w) => w.service === service && wanted.has(w.id.toUpperCase()))
}
