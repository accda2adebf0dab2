import {existsSync} from 'node:fs'
import {readFile, stat} from 'node:fs/promises'
import path from 'node:path'

import {ConfigError, NotFoundError} from '../errors/index.js'
import type {InlineCredential} from './credentials.js'
import type {RetailOpsConfig} from './schema.js'
import {cachedConfig, rememberConfig} from './validated-cache.js'
import {CREDENTIALS_ENV} from './vocabulary.js'

export const CONFIG_FILE = 'retailops.yaml'

/**
 * The largest retailops.yaml accepted: a real project (hundreds of services, tenants and
 * campaigns) is tens of kilobytes; a bigger file is a mistake or an attack, and refusing it keeps
 * every command's start-up fast.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** Alias expansions allowed when the YAML is turned into data (a "billion laughs" file needs millions). */
export const MAX_ALIAS_COUNT = 100

export interface LoadedConfig {
  /** Absolute path of retailops.yaml. */
  file: string
  /** Folder of retailops.yaml: every relative path in it is relative to this. */
  dir: string
  config: RetailOpsConfig
}

/** --config, then RETAILOPS_CONFIG, then retailops.yaml in this folder or the nearest parent. */
export function findConfigFile(explicit?: string, cwd = process.cwd()): string {
  const given = explicit ?? process.env.RETAILOPS_CONFIG
  if (given) {
    const file = path.resolve(cwd, given)
    if (!existsSync(file)) {
      throw new NotFoundError(`Configuration file ${file} does not exist.`, {
        nextSteps: ['Check the --config path, or run `retailops init` to create a project.'],
      })
    }
    return file
  }
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, CONFIG_FILE)
    if (existsSync(candidate)) return candidate
    if (path.dirname(dir) === dir) break
  }
  throw new NotFoundError(`No ${CONFIG_FILE} in ${cwd} or any parent folder.`, {
    nextSteps: ['Run `retailops init` to scaffold a project, or pass --config PATH.'],
  })
}

/**
 * retailops.yaml found, read and validated. A file this build validated before, byte for byte, is
 * taken from the validated-configuration cache (./validated-cache.ts) without the YAML parser or
 * the schema: they cost most of an everyday command's start (issue 18). Anything else is parsed
 * and validated by the quick path (./quick-parse.ts: js-yaml and the validator compiled from the
 * schema) when it is valid, else by the full one (./parse.ts: positions, zod, every problem with
 * its line), and, when valid, remembered.
 */
export async function loadConfig(explicit?: string, cwd?: string): Promise<LoadedConfig> {
  const file = findConfigFile(explicit, cwd)
  // Checked before reading: a huge file is refused without being loaded.
  assertConfigSize((await stat(file)).size, file)
  const text = await readFile(file, 'utf8')
  const dir = path.dirname(file)
  const credentials = await readCredentials()
  // Credentials put back from a Secret (scheduled jobs) are never cached: the job's file is its own.
  const cached = credentials ? undefined : cachedConfig(file, text)
  if (cached) return {file, dir, config: cached}
  // Credentials are put back into the YAML document with positions: only the full path does that.
  let config = credentials ? undefined : (await import('./quick-parse.js')).parseValidConfig(text)
  if (!config) {
    const {parseConfig} = await import('./parse.js')
    config = parseConfig(text, file, credentials)
  }
  if (!credentials) await rememberConfig(file, text, config)
  return {file, dir, config}
}

/**
 * A scheduled job's retailops.yaml (a ConfigMap) holds placeholders where inline credentials were;
 * the credentials come from a Secret mounted as the file RETAILOPS_CONFIG_CREDENTIALS names.
 */
async function readCredentials(): Promise<InlineCredential[] | undefined> {
  const file = process.env[CREDENTIALS_ENV]
  if (!file) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (error) {
    throw new ConfigError([
      {
        file,
        path: '',
        message: `cannot read the credentials file ${CREDENTIALS_ENV} names: ${(error as Error).message}`,
      },
    ])
  }
  if (!Array.isArray(parsed))
    throw new ConfigError([{file, path: '', message: 'expected a JSON list of {path, value} entries'}])
  return parsed as InlineCredential[]
}

/** A file over MAX_CONFIG_BYTES is refused (exit 3) before it is read or parsed. */
export function assertConfigSize(bytes: number, file: string): void {
  if (bytes <= MAX_CONFIG_BYTES) return
  throw new ConfigError(
    [
      {
        file,
        path: '',
        message: `the file is ${(bytes / 1024 / 1024).toFixed(1)} MiB; a configuration may be at most ${MAX_CONFIG_BYTES / 1024 / 1024} MiB`,
      },
    ],
    {
      nextSteps: [
        `Check that --config names retailops.yaml (not a data file); a real project's configuration is far below ${MAX_CONFIG_BYTES / 1024 / 1024} MiB.`,
      ],
    },
  )
}
