import {execa} from 'execa'

export interface Revision {
  /** Short commit, or undefined outside a git work tree. */
  commit?: string
  /** Uncommitted changes (tracked or untracked files) in the work tree. */
  dirty: boolean
}

/** The git commit of the folder's work tree and whether it has uncommitted changes. */
export async function gitRevision(dir: string): Promise<Revision> {
  try {
    const head = await execa('git', ['rev-parse', '--short=7', 'HEAD'], {cwd: dir, timeout: 10_000})
    const status = await execa('git', ['status', '--porcelain', '--untracked-files=normal'], {
      cwd: dir,
      timeout: 30_000,
    })
    return {commit: head.stdout.trim(), dirty: status.stdout.trim() !== ''}
  } catch {
    return {dirty: false}
  }
}

/** A Docker tag may hold [A-Za-z0-9_.-], start with a word character, and have at most 128 characters. */
export function sanitizeTag(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[.-]+/, '')
  return (cleaned || 'x').slice(0, 128)
}

/**
 * The image tag: configuration version and git commit, `-dirty` when the tree has uncommitted
 * changes, e.g. `3-1a2b3c4` or `3-1a2b3c4-dirty`. Outside git the build hash stands in for the commit.
 */
export function imageTag(version: string, revision: Revision, buildHash: string): string {
  const commit = revision.commit ?? `nogit.${buildHash.slice(0, 12)}`
  return sanitizeTag(`${version}-${commit}${revision.dirty ? '-dirty' : ''}`)
}

export interface GitSource {
  /** The full commit of HEAD. */
  commit: string
  /** The `origin` remote's URL (credentials removed), when there is one. */
  remote?: string
  /** The branch or tag HEAD is on (`refs/heads/main`), when it is on one. */
  ref?: string
}

/** Where the folder's sources come from, for provenance: full commit, origin remote, symbolic ref. Undefined outside git. */
export async function gitSource(dir: string): Promise<GitSource | undefined> {
  const git = (args: string[]) =>
    execa('git', args, {cwd: dir, timeout: 10_000}).then(
      (r) => r.stdout.trim() || undefined,
      () => undefined,
    )
  const commit = await git(['rev-parse', 'HEAD'])
  if (!commit) return undefined
  const [remote, ref] = await Promise.all([git(['remote', 'get-url', 'origin']), git(['symbolic-ref', '-q', 'HEAD'])])
  return {commit, remote: remote?.replace(/\/\/[^/@]*@/, '//'), ref}
}

/** Whether the repository around `dir` holds the commit (a full or abbreviated object name). */
export async function gitHasCommit(dir: string, commit: string): Promise<boolean> {
  if (!/^[0-9a-f]{7,64}$/i.test(commit)) return false
  return execa('git', ['cat-file', '-e', `${commit}^{commit}`], {cwd: dir, timeout: 10_000}).then(
    () => true,
    () => false,
  )
}

/**
 * What a path (relative to `dir`, which may be a sub-folder of the repository) is at a commit:
 * a file with its content, a folder, or nothing.
 */
export async function gitPathAt(
  dir: string,
  commit: string,
  file: string,
): Promise<{type: 'blob'; content: Buffer} | {type: 'tree'} | undefined> {
  const spec = `${commit}:./${file.split('\\').join('/').replace(/^\.\//, '')}`
  const type = await execa('git', ['cat-file', '-t', spec], {cwd: dir, timeout: 10_000}).then(
    (r) => r.stdout.trim(),
    () => undefined,
  )
  if (type === 'tree') return {type: 'tree'}
  if (type !== 'blob') return undefined
  const blob = await execa('git', ['cat-file', 'blob', spec], {
    cwd: dir,
    timeout: 30_000,
    encoding: 'buffer',
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  })
  return {type: 'blob', content: Buffer.from(blob.stdout)}
}
