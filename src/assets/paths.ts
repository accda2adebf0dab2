import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

let root: string | undefined

/** The installed package's root (holds templates/ and services/), from src or from dist alike. */
export function packageRoot(): string {
  if (root) return root
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as {name?: string}).name === 'retailops')
      return (root = dir)
  }
  throw new Error('retailops package root not found')
}

export function packagePath(...parts: string[]): string {
  return path.join(packageRoot(), ...parts)
}
