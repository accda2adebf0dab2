import {createHash} from 'node:crypto'
import {mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import type {RetailOpsConfig} from './schema.js'

/**
 * The build of retailops this code belongs to: scripts/bundle-direct.mjs defines it when it bundles
 * the commands (dist/direct/), as a hash of everything tsc built. Code not from that bundle (the
 * sources under tsx, tests, oclif's own start) has none and never uses the cache, so a changed
 * schema can never be answered by an entry an older schema wrote.
 */
declare const __RETAILOPS_BUILD__: string | undefined
const BUILD = typeof __RETAILOPS_BUILD__ === 'string' ? __RETAILOPS_BUILD__ : undefined

/**
 * retailops.yaml as this build last validated it, kept between runs: everyday commands run again
 * and again on a file that has not changed, and parsing it with positions and validating it with
 * the schema is most of their start (issue 18). One entry per configuration file, in the user's
 * cache folder ($XDG_CACHE_HOME/retailops/config, else ~/.cache/…), keyed by the file's exact text
 * and the build; an entry that does not match is ignored and replaced. A configuration holding an
 * inline credential is never written there. RETAILOPS_CONFIG_CACHE=0 turns the cache off.
 */
export function cachedConfig(file: string, text: string): RetailOpsConfig | undefined {
  const entry = entryFile(file)
  if (!entry || !BUILD) return undefined
  try {
    const stored = JSON.parse(readFileSync(entry, 'utf8')) as {key?: string; config?: RetailOpsConfig}
    return stored.key === entryKey(BUILD, file, text) ? stored.config : undefined
  } catch {
    // No entry yet, or one that cannot be read: validate.
    return undefined
  }
}

/** Remembers a configuration the schema accepted; a folder that cannot be written only loses the speed-up. */
export async function rememberConfig(file: string, text: string, config: RetailOpsConfig): Promise<void> {
  const entry = entryFile(file)
  if (!entry || !BUILD) return
  const {isInlineCredential} = await import('./inline-credentials.js')
  if (holdsCredential(config, [], isInlineCredential)) return
  try {
    mkdirSync(path.dirname(entry), {recursive: true, mode: 0o700})
    // Written whole, then renamed: a run reading at the same moment sees the old entry or the new one.
    const partial = `${entry}.${process.pid}.tmp`
    writeFileSync(partial, JSON.stringify({key: entryKey(BUILD, file, text), config}), {mode: 0o600})
    renameSync(partial, entry)
    pruneEntries(path.dirname(entry))
  } catch {
    // Read-only HOME, a full disk: the next run validates again.
  }
}

/** Entries kept: one per configuration file, and projects in temporary folders (tests, CI checkouts) come and go. */
export const MAX_ENTRIES = 200

/** The least recently written entries beyond MAX_ENTRIES go (checked on a write only, never on a hit). */
function pruneEntries(folder: string): void {
  const names = readdirSync(folder)
  if (names.length <= MAX_ENTRIES) return
  const byAge = names
    .map((name) => ({file: path.join(folder, name), mtimeMs: statSync(path.join(folder, name)).mtimeMs}))
    .sort((a, b) => a.mtimeMs - b.mtimeMs)
  for (const {file} of byAge.slice(0, names.length - MAX_ENTRIES)) rmSync(file, {force: true})
}

/** The cache entry of one configuration file, or undefined when the cache is off or has no folder. */
export function entryFile(file: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.RETAILOPS_CONFIG_CACHE === '0') return undefined
  const folder = userCacheFolder(env)
  if (!folder) return undefined
  return path.join(folder, 'retailops', 'config', `${sha256(path.resolve(file)).slice(0, 32)}.json`)
}

/** The user's cache folder, as bin/run.js finds it for the compile cache. */
function userCacheFolder(env: NodeJS.ProcessEnv): string | undefined {
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return env.XDG_CACHE_HOME
  if (process.platform === 'win32' && env.LOCALAPPDATA) return env.LOCALAPPDATA
  try {
    return path.join(os.homedir(), process.platform === 'darwin' ? 'Library/Caches' : '.cache')
  } catch {
    return undefined
  }
}

function entryKey(build: string, file: string, text: string): string {
  return sha256(`${build}\0${path.resolve(file)}\0${text}`)
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function holdsCredential(
  value: unknown,
  keyPath: (string | number)[],
  isCredential: (keyPath: (string | number)[], value: string) => boolean,
): boolean {
  if (typeof value === 'string') return isCredential(keyPath, value)
  if (Array.isArray(value)) return value.some((item, i) => holdsCredential(item, [...keyPath, i], isCredential))
  if (value && typeof value === 'object')
    return Object.entries(value).some(([key, item]) => holdsCredential(item, [...keyPath, key], isCredential))
  return false
}
