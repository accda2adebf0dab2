import {createWriteStream} from 'node:fs'
import {mkdir, open, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {NotFoundError, PermissionError, RetailOpsError, UnavailableError, UsageError} from '../errors/index.js'

/**
 * Where backups are kept: a prefix in an S3-compatible bucket (`s3://bucket/prefix`) or a local
 * directory. Everything that reads or writes backups (DR drills, `retailops backup`) goes through
 * a BackupLocation, so both kinds behave alike: listings with sizes and times, streaming reads,
 * checksums where the store keeps one.
 */
export interface StoredObject {
  /** The key relative to the location's prefix (forward slashes). */
  key: string
  size: number
  modified: Date
  etag?: string
  /** SHA-256 the store computed or was given on upload, hex (S3 ChecksumSHA256; absent for composite multipart checksums). */
  checksumSha256?: string
  /** User metadata (S3 `x-amz-meta-*`), lower-case keys; only from `head`. */
  metadata?: Record<string, string>
}

export interface BackupLocation {
  readonly kind: 's3' | 'directory'
  /** s3://bucket/prefix or the absolute directory: what reports show. */
  readonly url: string
  /** Every object under the prefix (and `sub`, if given), all pages, sorted by key. */
  list(sub?: string, signal?: AbortSignal): Promise<StoredObject[]>
  /** One object's size, time, checksum and metadata; undefined when there is none. */
  head(key: string, signal?: AbortSignal): Promise<StoredObject | undefined>
  /** The object's bytes as a stream (never buffered whole). */
  read(key: string, signal?: AbortSignal): Promise<Readable>
  /** A small object as text (a manifest, a checksum sidecar). */
  readText(key: string, signal?: AbortSignal): Promise<string>
  /** Streams the object into a local file (written under a temporary name, renamed when complete). */
  download(key: string, file: string, signal?: AbortSignal): Promise<{bytes: number}>
  put(
    key: string,
    body: Buffer | string | Readable,
    options?: {metadata?: Record<string, string>; contentLength?: number; signal?: AbortSignal},
  ): Promise<void>
  delete(key: string, signal?: AbortSignal): Promise<void>
  close(): void
}

export interface LocationOptions {
  /** Relative directories are taken from here (the project's folder). */
  baseDir: string
  /** S3 endpoint override (an S3-compatible store); default RETAILOPS_S3_ENDPOINT, then the SDK's own (AWS_ENDPOINT_URL_S3, AWS). */
  endpoint?: string
  region?: string
  /** Path-style requests (bucket in the path): default true with an endpoint override, false on AWS. */
  forcePathStyle?: boolean
  env?: NodeJS.ProcessEnv
}

export type ParsedLocation =
  {kind: 's3'; bucket: string; prefix: string; url: string} | {kind: 'directory'; dir: string; url: string}

/** s3://bucket[/prefix] or a directory (absolute, or relative to baseDir); a malformed one is CONFIG. */
export function parseLocation(spec: string, baseDir: string): ParsedLocation {
  const text = spec.trim()
  if (/^s3:\/\//i.test(text)) {
    const rest = text.slice(5)
    const slash = rest.indexOf('/')
    const bucket = slash === -1 ? rest : rest.slice(0, slash)
    const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/^\/+/, '')
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      throw new RetailOpsError(
        'CONFIG',
        `${spec}: "${bucket}" is not a valid S3 bucket name (3-63 lower-case letters, digits, dots and dashes)`,
      )
    const normal = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`
    return {kind: 's3', bucket, prefix: normal, url: `s3://${bucket}/${normal}`}
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text))
    throw new RetailOpsError(
      'CONFIG',
      `${spec}: only s3://bucket/prefix or a directory can hold backups (file:// is not needed: give the path)`,
    )
  const dir = path.resolve(baseDir, text)
  return {kind: 'directory', dir, url: dir}
}

export async function openLocation(spec: string | ParsedLocation, options: LocationOptions): Promise<BackupLocation> {
  const parsed = typeof spec === 'string' ? parseLocation(spec, options.baseDir) : spec
  if (parsed.kind === 'directory') return new DirectoryLocation(parsed.dir)
  return S3Location.create(parsed.bucket, parsed.prefix, options)
}

/** The endpoint an s3:// location is read through: explicit, RETAILOPS_S3_ENDPOINT, else the SDK decides (AWS). */
export function s3Endpoint(options: Pick<LocationOptions, 'endpoint' | 'env'>): string | undefined {
  const env = options.env ?? process.env
  return options.endpoint ?? (env.RETAILOPS_S3_ENDPOINT || undefined)
}

function hexFromBase64(b64: string | undefined): string | undefined {
  if (!b64 || b64.includes('-')) return undefined
  const buf = Buffer.from(b64, 'base64')
  return buf.length === 32 ? buf.toString('hex') : undefined
}

function joinKey(prefix: string, key: string): string {
  return `${prefix}${key.replace(/^\/+/, '')}`
}

// ------------------------------------------------------------------------------------------ S3

type S3Module = typeof import('@aws-sdk/client-s3')

class S3Location implements BackupLocation {
  readonly kind = 's3' as const
  readonly url: string

  private constructor(
    private readonly sdk: S3Module,
    private readonly client: InstanceType<S3Module['S3Client']>,
    readonly bucket: string,
    readonly prefix: string,
    private readonly where: string,
  ) {
    this.url = `s3://${bucket}/${prefix}`
  }

  static async create(bucket: string, prefix: string, options: LocationOptions): Promise<S3Location> {
    const sdk = await import('@aws-sdk/client-s3')
    const env = options.env ?? process.env
    const endpoint = s3Endpoint(options)
    const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1'
    // Credentials: the SDK's default chain (environment, profile, web identity, instance role).
    const client = new sdk.S3Client({
      region,
      ...(endpoint ? {endpoint} : {}),
      forcePathStyle: options.forcePathStyle ?? Boolean(endpoint),
      maxAttempts: 3,
      // Checksums only when the operation needs one: S3-compatible stores differ in what they accept.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
    return new S3Location(sdk, client, bucket, prefix, endpoint ? `${endpoint} (bucket ${bucket})` : `bucket ${bucket}`)
  }

  private fail(error: unknown, what: string): never {
    throw s3Error(error, what, this.where)
  }

  async list(sub = '', signal?: AbortSignal): Promise<StoredObject[]> {
    const out: StoredObject[] = []
    const Prefix = joinKey(this.prefix, sub)
    try {
      for await (const page of this.sdk.paginateListObjectsV2({client: this.client}, {Bucket: this.bucket, Prefix})) {
        signal?.throwIfAborted()
        for (const o of page.Contents ?? []) {
          if (!o.Key || o.Key.endsWith('/')) continue
          out.push({
            key: o.Key.slice(this.prefix.length),
            size: o.Size ?? 0,
            modified: o.LastModified ?? new Date(0),
            ...(o.ETag ? {etag: o.ETag.replaceAll('"', '')} : {}),
          })
        }
      }
    } catch (error) {
      this.fail(error, `listing ${this.url}${sub}`)
    }
    return out.sort((a, b) => a.key.localeCompare(b.key))
  }

  async head(key: string, signal?: AbortSignal): Promise<StoredObject | undefined> {
    try {
      const res = await this.client.send(
        new this.sdk.HeadObjectCommand({Bucket: this.bucket, Key: joinKey(this.prefix, key), ChecksumMode: 'ENABLED'}),
        {abortSignal: signal},
      )
      const sha = hexFromBase64(res.ChecksumSHA256)
      return {
        key,
        size: res.ContentLength ?? 0,
        modified: res.LastModified ?? new Date(0),
        ...(res.ETag ? {etag: res.ETag.replaceAll('"', '')} : {}),
        ...(sha ? {checksumSha256: sha} : {}),
        metadata: Object.fromEntries(Object.entries(res.Metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      }
    } catch (error) {
      if (isS3NotFound(error)) return undefined
      this.fail(error, `reading ${this.url}${key}`)
    }
  }

  async read(key: string, signal?: AbortSignal): Promise<Readable> {
    try {
      const res = await this.client.send(
        new this.sdk.GetObjectCommand({Bucket: this.bucket, Key: joinKey(this.prefix, key)}),
        {abortSignal: signal},
      )
      return res.Body as Readable
    } catch (error) {
      if (isS3NotFound(error)) throw new NotFoundError(`${this.url}${key} does not exist`)
      this.fail(error, `reading ${this.url}${key}`)
    }
  }

  async readText(key: string, signal?: AbortSignal): Promise<string> {
    const chunks: Buffer[] = []
    for await (const chunk of await this.read(key, signal)) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }

  async download(key: string, file: string, signal?: AbortSignal): Promise<{bytes: number}> {
    return downloadTo(await this.read(key, signal), file, signal)
  }

  async put(
    key: string,
    body: Buffer | string | Readable,
    options: {metadata?: Record<string, string>; contentLength?: number; signal?: AbortSignal} = {},
  ): Promise<void> {
    try {
      await this.client.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: joinKey(this.prefix, key),
          Body: body,
          ...(options.contentLength === undefined ? {} : {ContentLength: options.contentLength}),
          ...(options.metadata ? {Metadata: options.metadata} : {}),
        }),
        {abortSignal: options.signal},
      )
    } catch (error) {
      this.fail(error, `writing ${this.url}${key}`)
    }
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(new this.sdk.DeleteObjectCommand({Bucket: this.bucket, Key: joinKey(this.prefix, key)}), {
        abortSignal: signal,
      })
    } catch (error) {
      if (isS3NotFound(error)) return
      this.fail(error, `deleting ${this.url}${key}`)
    }
  }

  close(): void {
    this.client.destroy()
  }
}

function isS3NotFound(error: unknown): boolean {
  const e = error as {name?: string; $metadata?: {httpStatusCode?: number}}
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404
}

/** An S3 SDK error as retailops' own: unreachable (5), refused credentials (6), missing bucket (4). */
export function s3Error(error: unknown, what: string, where: string): RetailOpsError {
  if (error instanceof RetailOpsError) return error
  const e = error as Error & {name?: string; code?: string; $metadata?: {httpStatusCode?: number}}
  if (e?.name === 'AbortError' || e?.code === 'ABORT_ERR')
    return new RetailOpsError('INTERRUPTED', `${what}: interrupted`, {cause: error})
  const status = e?.$metadata?.httpStatusCode
  const name = e?.name ?? 'Error'
  const detail = `${name}${status ? ` (HTTP ${status})` : ''}: ${e?.message ?? String(error)}`
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e?.message ?? ''))
    return new PermissionError(`${what}: no credentials for ${where}: ${e.message}`, {
      cause: error,
      nextSteps: ['Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or a workload role).'],
    })
  if (status === 403 || ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch'].includes(name))
    return new PermissionError(`${what}: ${where} refused the credentials: ${detail}`, {
      cause: error,
      nextSteps: ['Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the profile) and that they may read the bucket.'],
    })
  if (name === 'NoSuchBucket' || status === 404)
    return new NotFoundError(`${what}: ${where}: ${detail}`, {
      cause: error,
      nextSteps: ['Check the bucket name in the backup location (s3://bucket/prefix).'],
    })
  if (!status || status >= 500)
    return new UnavailableError(`${what}: ${where} could not be reached: ${detail}`, {
      cause: error,
      nextSteps: ["Check the endpoint (RETAILOPS_S3_ENDPOINT or the location's endpoint) and that the store is up."],
    })
  return new RetailOpsError('UNAVAILABLE', `${what}: ${where}: ${detail}`, {cause: error})
}

// ------------------------------------------------------------------------------------------ directory

class DirectoryLocation implements BackupLocation {
  readonly kind = 'directory' as const
  readonly url: string

  constructor(readonly dir: string) {
    this.url = dir
  }

  private file(key: string): string {
    const file = path.resolve(this.dir, key)
    if (file !== this.dir && !file.startsWith(`${this.dir}${path.sep}`))
      throw new UsageError(`${key} is outside the backup location ${this.dir}`)
    return file
  }

  async list(sub = '', signal?: AbortSignal): Promise<StoredObject[]> {
    const root = this.file(sub)
    const out: StoredObject[] = []
    const walk = async (dir: string): Promise<void> => {
      signal?.throwIfAborted()
      let entries
      try {
        entries = await readdir(dir, {withFileTypes: true})
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT' && dir !== this.dir) return
        if (code === 'ENOENT') throw new NotFoundError(`The backup directory ${this.dir} does not exist`)
        if (code === 'EACCES') throw new PermissionError(`The backup directory ${dir} cannot be read (EACCES)`)
        throw error
      }
      for (const e of entries) {
        const full = path.join(dir, e.name)
        if (e.isDirectory()) await walk(full)
        else if (e.isFile()) {
          const s = await stat(full)
          out.push({key: path.relative(this.dir, full).split(path.sep).join('/'), size: s.size, modified: s.mtime})
        }
      }
    }
    await walk(root)
    return out.sort((a, b) => a.key.localeCompare(b.key))
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const s = await stat(this.file(key))
      return s.isFile() ? {key, size: s.size, modified: s.mtime, metadata: {}} : undefined
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  async read(key: string): Promise<Readable> {
    const file = this.file(key)
    // Opened first, so a missing file is an error here rather than on the stream.
    const handle = await open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new NotFoundError(`${file} does not exist`)
      throw error
    })
    return handle.createReadStream({autoClose: true})
  }

  async readText(key: string): Promise<string> {
    return readFile(this.file(key), 'utf8')
  }

  async download(key: string, file: string, signal?: AbortSignal): Promise<{bytes: number}> {
    return downloadTo(await this.read(key), file, signal)
  }

  async put(key: string, body: Buffer | string | Readable, options: {signal?: AbortSignal} = {}): Promise<void> {
    const file = this.file(key)
    await mkdir(path.dirname(file), {recursive: true})
    const tmp = `${file}.partial-${process.pid}`
    try {
      if (typeof body === 'string' || Buffer.isBuffer(body)) await writeFile(tmp, body)
      else if (options.signal) await pipeline(body, createWriteStream(tmp), {signal: options.signal})
      else await pipeline(body, createWriteStream(tmp))
      await rename(tmp, file)
    } finally {
      await rm(tmp, {force: true})
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.file(key), {force: true})
  }

  close(): void {}
}

async function downloadTo(body: Readable, file: string, signal?: AbortSignal): Promise<{bytes: number}> {
  const tmp = `${file}.partial`
  let bytes = 0
  body.on('data', (chunk: Buffer) => {
    bytes += chunk.length
  })
  try {
    const out = createWriteStream(tmp, {mode: 0o600})
    await (signal ? pipeline(body, out, {signal}) : pipeline(body, out))
    await rename(tmp, file)
  } finally {
    await rm(tmp, {force: true})
  }
  return {bytes}
}
