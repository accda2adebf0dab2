import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

export * from './charts.js'
export * from './html.js'

/** Writes a rendered report, creating the folder; returns the absolute path. */
export async function writeReport(file: string, content: string): Promise<string> {
  const target = path.resolve(file)
  await mkdir(path.dirname(target), {recursive: true})
  await writeFile(target, content, 'utf8')
  return target
}
