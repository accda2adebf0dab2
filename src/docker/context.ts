import {createHash} from 'node:crypto'
import {createReadStream, type Dirent} from 'node:fs'
import {lstat, readFile, readdir, readlink} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import dockerignore from '@balena/dockerignore'
import pLimit from 'p-limit'
import tar from 'tar-stream'

import {NotFoundError, UsageError} from '../errors/index.js'

/**
 * The build context, made by retailops itself: dockerode's `{context, src}` filter hands absolute
 * paths to the .dockerignore matcher, so patterns below the top level never match and ignored
 * files reach the image. Here every path is relative to the context, in POSIX form, matched with
 * @balena/dockerignore (a port of moby's patternmatcher: `!` exceptions, `**`, last match wins).
 */

export interface ContextEntry {
  /** POSIX path relative to the context root, as it appears in the tar. */
  name: string
  type: 'file' | 'directory' | 'symlink'
  /** Permission bits (0o755, 0o644, ...). */
  mode: number
  size: number
  /** Where to read it from. */
  source: string
  /** Symlink target, as stored. */
  linkname?: string
  /** sha256 of the content (files only). */
  sha256?: string
  /** inode, size, mtime, ctime when scanned (files only): keys the in-process hash cache. */
  stamp?: string
}

export interface ScannedContext {
  /** Absolute context folder. */
  dir: string
  /** Name of the Dockerfile inside the tar (what /build's `dockerfile` parameter gets). */
  dockerfile: string
  /** The ignore file that applied (absolute), if any. */
  ignoreFile?: string
  /** Sorted by name; directories before their content. */
  entries: ContextEntry[]
  /** Hash of every entry's name, type, mode and content: changes when anything sent to the builder changes. */
  digest: string
}

export interface ScanOptions {
  /** Context folder (absolute or relative to cwd). */
  context: string
  /** Dockerfile path, absolute or relative to the context. Default "Dockerfile". */
  dockerfile?: string
}

/** Files Docker always sends even when .dockerignore lists them. */
const ALWAYS_SENT = ['.dockerignore']

/**
 * The ignore rules for a build: `<Dockerfile>.dockerignore` beside the Dockerfile when it exists
 * (BuildKit's per-Dockerfile ignore file), else `.dockerignore` at the context root.
 */
export async function readIgnoreRules(
  contextDir: string,
  dockerfileAbs: string,
): Promise<{file?: string; patterns: string[]}> {
  for (const file of [`${dockerfileAbs}.dockerignore`, path.join(contextDir, '.dockerignore')]) {
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
    if (text !== undefined) return {file, patterns: parseDockerignore(text)}
  }
  return {patterns: []}
}

/** Lines of a .dockerignore: comments and blank lines dropped, surrounding whitespace trimmed (as moby does). */
export function parseDockerignore(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

/** A matcher over context-relative POSIX paths; case-sensitive, as Docker on Linux. */
export function ignoreMatcher(patterns: string[]): {ignores(relPath: string): boolean; hasExceptions: boolean} {
  const ig = dockerignore.default({ignorecase: false}).add(patterns)
  return {ignores: (p) => ig.ignores(p), hasExceptions: patterns.some((p) => p.startsWith('!'))}
}

function toPosix(rel: string): string {
  return rel.split(path.sep).join('/')
}

/** Walks the context, applies the ignore rules and hashes every file sent. */
export async function scanContext(options: ScanOptions): Promise<ScannedContext> {
  const dir = path.resolve(options.context)
  const dirStat = await lstat(dir).catch(() => undefined)
  if (!dirStat?.isDirectory()) {
    throw new NotFoundError(`Build context ${dir} does not exist or is not a folder.`, {
      nextSteps: ['Check services.<name>.build.context in retailops.yaml (it is relative to retailops.yaml).'],
      details: {context: dir},
    })
  }
  const dockerfileAbs = path.resolve(dir, options.dockerfile ?? 'Dockerfile')
  const dfStat = await lstat(dockerfileAbs).catch(() => undefined)
  if (!dfStat?.isFile()) {
    throw new NotFoundError(`Dockerfile ${dockerfileAbs} does not exist.`, {
      nextSteps: ['Create it, or set services.<name>.build.dockerfile (relative to the build context).'],
      details: {dockerfile: dockerfileAbs, context: dir},
    })
  }
  const relDockerfile = toPosix(path.relative(dir, dockerfileAbs))
  const outside = relDockerfile.startsWith('../') || path.isAbsolute(relDockerfile)

  const rules = await readIgnoreRules(dir, dockerfileAbs)
  const matcher = ignoreMatcher(rules.patterns)
  const forced = new Set([...ALWAYS_SENT, ...(outside ? [] : [relDockerfile])])

  const entries: ContextEntry[] = []
  const walk = async (abs: string, rel: string): Promise<void> => {
    let children: Dirent[]
    try {
      children = await readdir(abs, {withFileTypes: true})
    } catch (error) {
      throw new UsageError(`Cannot read ${abs} in the build context: ${(error as Error).message}`, {cause: error})
    }
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const child of children) {
      const childRel = rel ? `${rel}/${child.name}` : child.name
      const childAbs = path.join(abs, child.name)
      const ignored = matcher.ignores(childRel) && !forced.has(childRel)
      if (child.isDirectory()) {
        // Like moby: an ignored folder is skipped whole unless an exception pattern may re-include part of it.
        if (ignored && !matcher.hasExceptions) continue
        if (!ignored) {
          const st = await lstat(childAbs)
          entries.push({name: childRel, type: 'directory', mode: st.mode & 0o7777, size: 0, source: childAbs})
        }
        await walk(childAbs, childRel)
      } else if (!ignored) {
        if (child.isSymbolicLink()) {
          const linkname = await readlink(childAbs)
          entries.push({name: childRel, type: 'symlink', mode: 0o777, size: 0, source: childAbs, linkname})
        } else if (child.isFile()) {
          const st = await lstat(childAbs)
          entries.push({
            name: childRel,
            type: 'file',
            mode: st.mode & 0o7777,
            size: st.size,
            source: childAbs,
            stamp: `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`,
          })
        }
        // Sockets, FIFOs and devices are never sent (Docker skips them too).
      }
    }
  }
  await walk(dir, '')

  let dockerfile = relDockerfile
  if (outside) {
    // Docker's CLI does the same: a Dockerfile outside the context is added under a generated name.
    const st = await lstat(dockerfileAbs)
    dockerfile = `.retailops.Dockerfile.${createHash('sha256').update(dockerfileAbs).digest('hex').slice(0, 12)}`
    entries.push({name: dockerfile, type: 'file', mode: st.mode & 0o777, size: st.size, source: dockerfileAbs})
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

  const limit = pLimit(32)
  await Promise.all(
    entries
      .filter((e) => e.type === 'file')
      .map((e) => limit(async () => (e.sha256 = await hashFileCached(e.source, e.stamp)))),
  )

  const h = createHash('sha256')
  for (const e of entries) h.update(`${e.type}\0${e.name}\0${e.mode.toString(8)}\0${e.sha256 ?? e.linkname ?? ''}\n`)
  return {dir, dockerfile, ignoreFile: rules.file, entries, digest: h.digest('hex')}
}

/**
 * Content hashes by file, valid while inode, size, mtime and ctime are unchanged: services that
 * share one context (the bundled ones share services/) hash each file once per process.
 */
const hashCache = new Map<string, {stamp: string; sha256: Promise<string>}>()

function hashFileCached(file: string, stamp?: string): Promise<string> {
  const hit = stamp ? hashCache.get(file) : undefined
  if (hit && hit.stamp === stamp) return hit.sha256
  const sha256 = hashFile(file)
  if (stamp) hashCache.set(file, {stamp, sha256})
  sha256.catch(() => hashCache.delete(file))
  return sha256
}

async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256')
  await pipeline(createReadStream(file), h)
  return h.digest('hex')
}

/** A fixed timestamp keeps the tar (and the builder's cache keys) identical for identical content. */
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z')

/** The context as an uncompressed tar stream, entries in sorted order with owner 0:0 and a fixed mtime. */
export function contextTar(scanned: ScannedContext): Readable {
  const pack = tar.pack()
  const common = {mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: ''}
  void (async () => {
    try {
      for (const e of scanned.entries) {
        if (e.type === 'directory') {
          pack.entry({...common, name: `${e.name}/`, type: 'directory', mode: e.mode})
        } else if (e.type === 'symlink') {
          pack.entry({...common, name: e.name, type: 'symlink', linkname: e.linkname, mode: e.mode})
        } else {
          // Streamed with backpressure; tar-stream fails the entry if the size changed since the scan.
          await pipeline(
            createReadStream(e.source),
            pack.entry({...common, name: e.name, type: 'file', mode: e.mode, size: e.size}),
          )
        }
      }
      pack.finalize()
    } catch (error) {
      pack.destroy(error as Error)
    }
  })()
  return pack as unknown as Readable
}

/** Names in the tar, for tests and `--verbose`. */
export function contextNames(scanned: ScannedContext): string[] {
  return scanned.entries.map((e) => (e.type === 'directory' ? `${e.name}/` : e.name))
}
