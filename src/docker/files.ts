import {randomBytes} from 'node:crypto'
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

/** Reads a JSON file; undefined when it does not exist. */
export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/**
 * Writes a file atomically: a temporary file beside it, then rename(2). A reader sees the old
 * content or the new one, never half of it, even if the process dies in between.
 */
export async function writeFileAtomic(file: string, content: string | Uint8Array, mode?: number): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true})
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(tmp, content, {mode})
    await rename(tmp, file)
  } catch (error) {
    await rm(tmp, {force: true})
    throw error
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`)
}

/** Runs read-modify-write updates of one file one after another within this process. */
export class SerialUpdater<T> {
  private chain: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly file: string,
    private readonly empty: () => T,
  ) {}

  update(mutate: (current: T) => T | void): Promise<T> {
    const next = this.chain.then(async () => {
      const current = (await readJsonFile<T>(this.file)) ?? this.empty()
      const updated = mutate(current) ?? current
      await writeJsonAtomic(this.file, updated)
      return updated
    })
    this.chain = next.catch(() => undefined)
    return next
  }
}
