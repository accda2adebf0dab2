import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {loadConfig, type LoadedConfig} from '../../src/config/load.js'

export interface TempProject {
  dir: string
  /** dir/retailops.yaml */
  file: string
  /** Writes files relative to dir, creating folders. */
  write: (files: Record<string, string>) => Promise<void>
  load: () => Promise<LoadedConfig>
  remove: () => Promise<void>
}

/** A project in a fresh temp folder (`<prefix>-XXXXXX`): retailops.yaml plus any other files. */
export async function tempProject(
  yaml: string,
  files: Record<string, string> = {},
  prefix = 't-project',
): Promise<TempProject> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-`))
  const file = path.join(dir, 'retailops.yaml')
  const write = async (tree: Record<string, string>) => {
    for (const [name, content] of Object.entries(tree)) {
      await mkdir(path.dirname(path.join(dir, name)), {recursive: true})
      await writeFile(path.join(dir, name), content)
    }
  }
  await write({'retailops.yaml': yaml, ...files})
  return {dir, file, write, load: () => loadConfig(file), remove: () => rm(dir, {recursive: true, force: true})}
}
