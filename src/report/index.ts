import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {redact} from '../ui/secrets.js'

export * from './charts.js'
export * from './html.js'

/** Writes a rendered report (secrets masked, like every output), creating the folder; returns the absolute path. */
export async function writeReport(file: string, content: string): Promise<string> {
  const target = path.resolve(file)
  await mkdir(path.dirname(target), {recursive: true})
  await writeFile(target, redact(content), 'utf8')
  return target
}
