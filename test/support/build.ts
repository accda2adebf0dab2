// Whether dist/ holds the code the sources say: `npm run build` compiles src/ and commands/ and
// then writes oclif.manifest.json, so a manifest newer than every source file means dist/ is
// current. Editing a source, or checking out a branch, makes the build stale until the next
// `npm run build`.
import {existsSync, readdirSync, statSync} from 'node:fs'
import path from 'node:path'

import {ROOT} from './paths.js'

/** The folders dist/ is compiled from. */
const SOURCE_FOLDERS = ['src', 'commands']

/** Newest .ts under a folder (recursively). */
function newestSource(dir: string): {file: string; mtimeMs: number} {
  let newest = {file: '', mtimeMs: 0}
  for (const entry of readdirSync(dir, {withFileTypes: true, recursive: true})) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue
    const file = path.join(entry.parentPath, entry.name)
    const {mtimeMs} = statSync(file)
    if (mtimeMs > newest.mtimeMs) newest = {file, mtimeMs}
  }
  return newest
}

/**
 * Why dist/ cannot stand for the sources (no build, or a source newer than the build), with the
 * fix; undefined when it is current.
 */
export function staleBuild(root: string = ROOT): string | undefined {
  const manifest = path.join(root, 'oclif.manifest.json')
  if (!existsSync(path.join(root, 'dist', 'commands')) || !existsSync(manifest))
    return `${root} has no build (dist/, oclif.manifest.json): run \`npm run build\` first.`
  const built = statSync(manifest).mtimeMs
  for (const folder of SOURCE_FOLDERS) {
    const newest = newestSource(path.join(root, folder))
    if (newest.mtimeMs > built)
      return `dist/ is older than ${path.relative(root, newest.file)}: run \`npm run build\` first.`
  }
  return undefined
}
