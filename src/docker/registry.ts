import {createHash} from 'node:crypto'

import {normalizeHostPort} from '../config/hosts.js'
import {isLoopbackHost} from '../config/loopback.js'
import {PermissionError, RefusedError, RetailOpsError, UnavailableError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'
import type {RegistryAuth} from './credentials.js'

/**
 * A small client of the OCI distribution API (what `docker push` and cosign speak): the
 * WWW-Authenticate challenge flow (Bearer token from the realm, or Basic), manifests by tag or
 * digest (GET/HEAD/PUT), and blobs (HEAD, GET, monolithic upload by POST then PUT).
 */

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const

/** Everything a pull may get: indexes first, so a multi-arch image answers with its index digest. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
].join(', ')

export interface RegistryClientOptions {
  /** host[:port] */
  registry: string
  /** Plain HTTP: only ever a loopback registry (usesPlainHttp decides; the constructor refuses anything else). */
  insecure?: boolean
  /** Looked up on the first authentication challenge only. */
  credentials?: () => Promise<RegistryAuth | undefined>
  signal?: AbortSignal
  /** Per-request timeout. */
  timeoutMs?: number
}

export interface ManifestHead {
  digest: string
  mediaType: string
  size: number
}

export interface Manifest extends ManifestHead {
  body: Buffer
  json: Record<string, unknown>
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

interface Challenge {
  scheme: string
  params: Record<string, string>
}

/** `Bearer realm="…",service="…",scope="…"` → {scheme, params}. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header)
  if (!m) return undefined
  const params: Record<string, string> = {}
  for (const p of m[2].matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g))
    params[p[1].toLowerCase()] = p[2] ?? p[3]
  return {scheme: m[1].toLowerCase(), params}
}

export class RegistryClient {
  readonly registry: string
  readonly base: string
  private authHeader?: string
  private readonly tokens = new Map<string, string>()
  private credentialsPromise?: Promise<RegistryAuth | undefined>

  constructor(private readonly options: RegistryClientOptions) {
    this.registry = options.registry
    if (options.insecure && !isLoopbackHost(options.registry)) {
      throw new RefusedError(
        `Refusing to speak plain HTTP to the registry ${options.registry}: plain HTTP is only ever used for a loopback registry (127.0.0.1, localhost, [::1]).`,
        {
          nextSteps: ['Serve the registry over HTTPS and remove registry.insecure from retailops.yaml.'],
          details: {registry: options.registry},
        },
      )
    }
    this.base = `${options.insecure ? 'http' : 'https'}://${options.registry}`
  }

  /**
   * Credentials (Basic, a bearer token, a refresh token) travel only over HTTPS, or over plain
   * HTTP to this very registry when it is a loopback one the configuration names (traffic that
   * never leaves the machine). Anything else is refused before a byte is sent.
   */
  credentialsAllowed(url: URL): boolean {
    if (url.protocol === 'https:') return true
    return (
      url.protocol === 'http:' &&
      Boolean(this.options.insecure) &&
      normalizeHostPort(url.host) === normalizeHostPort(this.registry)
    )
  }

  private refuseCleartext(url: URL, what: string): RefusedError {
    return new RefusedError(
      `Refusing to send ${what} for ${this.registry} to ${url.origin}: it is plain HTTP, and credentials never travel unencrypted (only a loopback registry that retailops.yaml names as registry.url is spoken to over HTTP).`,
      {
        nextSteps: [
          `Serve ${url.host} over HTTPS (for a token service: make the registry's auth.token.realm an https:// URL).`,
          `Or, for an anonymous pull, remove the credentials for ${this.registry} from the Docker config.`,
        ],
        details: {registry: this.registry, url: `${url.origin}${url.pathname}`},
      },
    )
  }

  private creds(): Promise<RegistryAuth | undefined> {
    this.credentialsPromise ??= this.options.credentials?.() ?? Promise.resolve(undefined)
    return this.credentialsPromise
  }

  /** One request with the auth flow: on 401 answer the challenge and retry once. */
  async request(
    method: string,
    pathOrUrl: string,
    init: {headers?: Record<string, string>; body?: Uint8Array | string; scope?: string} = {},
  ): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.base}${pathOrUrl}`
    const send = async () => {
      const headers: Record<string, string> = {...init.headers}
      const token = init.scope ? this.tokens.get(init.scope) : undefined
      if (token) headers.authorization = `Bearer ${token}`
      else if (this.authHeader) headers.authorization = this.authHeader
      // An upload Location may name another host: credentials follow only where they are safe.
      if (headers.authorization && !this.credentialsAllowed(new URL(url)))
        throw this.refuseCleartext(new URL(url), 'credentials')
      try {
        return await fetch(url, {
          method,
          headers,
          body: init.body,
          redirect: 'follow',
          signal: this.signal(),
        })
      } catch (error) {
        throw this.unreachable(error)
      }
    }
    let res = await send()
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '')
      await res.arrayBuffer().catch(() => undefined)
      if (challenge) {
        await this.answer(challenge, init.scope)
        res = await send()
      }
    }
    if (res.status === 401 || res.status === 403) {
      const text = await res.text().catch(() => '')
      throw this.refused(res.status, method, url, text)
    }
    return res
  }

  private signal(): AbortSignal {
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 60_000)
    return this.options.signal ? AbortSignal.any([this.options.signal, timeout]) : timeout
  }

  private unreachable(error: unknown): RetailOpsError {
    if ((error as Error).name === 'AbortError' && this.options.signal?.aborted) {
      const e = new Error('Interrupted') as NodeJS.ErrnoException
      e.code = 'ABORT_ERR'
      return new RetailOpsError('INTERRUPTED', 'Interrupted.', {cause: e})
    }
    const cause = (error as {cause?: {code?: string; message?: string}}).cause
    const why = cause?.code ?? cause?.message ?? (error as Error).message
    return new UnavailableError(`Cannot reach the registry ${this.base}: ${why}.`, {
      nextSteps: this.options.insecure
        ? ['Start the registry (`bash scripts/sandbox.sh up` for the sandbox) or fix registry.url in retailops.yaml.']
        : [
            `Check registry.url; plain HTTP is only spoken to a loopback registry that retailops.yaml names as registry.url${isLoopbackRegistry(this.registry) ? ` (${this.registry} is not it)` : ''}.`,
          ],
      details: {registry: this.registry, cause: why},
      cause: error,
    })
  }

  private refused(status: number, method: string, url: string, body: string): PermissionError {
    const detail = (() => {
      try {
        const errors = (JSON.parse(body) as {errors?: {code?: string; message?: string}[]}).errors ?? []
        return errors.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ')
      } catch {
        return body.slice(0, 200)
      }
    })()
    return new PermissionError(
      `The registry ${this.registry} refused ${method} ${new URL(url).pathname} (HTTP ${status}${detail ? `: ${detail}` : ''}).`,
      {
        nextSteps: [
          `Log in with an account that may push there: \`retailops registry login ${this.registry}\`, REGISTRY_USERNAME and REGISTRY_PASSWORD, or \`docker login ${this.registry}\` (retailops reads ~/.docker/config.json and its credential helpers).`,
        ],
        details: {registry: this.registry, status, method, path: new URL(url).pathname},
      },
    )
  }

  private async answer(challenge: Challenge, scope?: string): Promise<void> {
    const creds = await this.creds()
    if (challenge.scheme === 'basic') {
      if (!creds?.username) return
      if (!this.credentialsAllowed(new URL(this.base)))
        throw this.refuseCleartext(new URL(this.base), 'Basic credentials')
      this.authHeader = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`
      registerSecret(this.authHeader.slice(6))
      return
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return
    let realm: URL
    try {
      realm = new URL(challenge.params.realm)
    } catch {
      throw new UnavailableError(
        `The registry ${this.registry} named a token service that is not a URL: "${challenge.params.realm}".`,
        {details: {registry: this.registry}},
      )
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new UnavailableError(
        `The registry ${this.registry} named a token service with an unsupported scheme: ${realm.protocol}.`,
        {details: {registry: this.registry}},
      )
    }
    const sendsCredentials = Boolean(creds?.identitytoken || creds?.username)
    if (sendsCredentials && !this.credentialsAllowed(realm))
      throw this.refuseCleartext(realm, creds?.identitytoken ? 'a refresh token' : 'Basic credentials')
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    const wanted = scope ?? challenge.params.scope
    if (wanted) realm.searchParams.set('scope', wanted)
    const headers: Record<string, string> = {}
    let res: Response
    try {
      if (creds?.identitytoken) {
        // OAuth2 refresh-token grant, as the Docker CLI does with identity tokens.
        const form = new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: creds.identitytoken,
          service: challenge.params.service ?? '',
          client_id: 'retailops',
        })
        if (wanted) form.set('scope', wanted)
        res = await fetch(challenge.params.realm, {
          method: 'POST',
          headers: {'content-type': 'application/x-www-form-urlencoded'},
          body: form,
          signal: this.signal(),
        })
      } else {
        if (creds?.username)
          headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`
        res = await fetch(realm, {headers, signal: this.signal()})
      }
    } catch (error) {
      throw this.unreachable(error)
    }
    if (res.status === 401 || res.status === 403)
      throw this.refused(res.status, 'GET', realm.toString(), await res.text().catch(() => ''))
    if (!res.ok)
      throw new UnavailableError(`The registry's token service ${realm.origin} answered HTTP ${res.status}.`, {
        details: {registry: this.registry},
      })
    const body = (await res.json()) as {token?: string; access_token?: string}
    const token = body.token ?? body.access_token
    if (!token) throw new UnavailableError(`The registry's token service ${realm.origin} returned no token.`)
    registerSecret(token)
    this.tokens.set(scope ?? wanted ?? '', token)
  }

  private scope(repository: string, push = false): string {
    return `repository:${repository}:${push ? 'pull,push' : 'pull'}`
  }

  private async check(res: Response, what: string): Promise<Response> {
    if (res.ok) return res
    const text = await res.text().catch(() => '')
    const status = res.status
    const message = `The registry ${this.registry} answered HTTP ${status} to ${what}${text ? `: ${text.trim().slice(0, 300)}` : ''}`
    if (status >= 500) throw new UnavailableError(message, {details: {registry: this.registry, status}})
    throw new RetailOpsError('PUSH_FAILED', message, {details: {registry: this.registry, status}})
  }

  /** GET /v2/: reachable and credentials accepted (answers the challenge for the repository's scope). */
  async ping(repository?: string, push = false): Promise<void> {
    const res = await this.request('GET', '/v2/', {scope: repository ? this.scope(repository, push) : undefined})
    await res.arrayBuffer()
    if (res.status === 404) {
      throw new UnavailableError(`${this.base} is not an OCI registry (GET /v2/ answered 404).`, {
        nextSteps: ['Check registry.url in retailops.yaml.'],
      })
    }
    if (!res.ok && res.status !== 401) await this.check(res, 'GET /v2/')
  }

  /** The repository's tags (GET /v2/<name>/tags/list, following Link pagination); empty when the repository does not exist. */
  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = []
    let next: string | undefined = `/v2/${repository}/tags/list?n=1000`
    while (next) {
      const res = await this.request('GET', next, {scope: this.scope(repository)})
      if (res.status === 404) {
        await res.arrayBuffer()
        return tags
      }
      await this.check(res, `GET ${repository} tags`)
      tags.push(...(((await res.json()) as {tags?: string[] | null}).tags ?? []))
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1]
    }
    return tags
  }

  /** HEAD a manifest: its digest (Docker-Content-Digest) and media type; undefined when it does not exist. */
  async headManifest(
    repository: string,
    reference: string,
    accept = MANIFEST_ACCEPT,
  ): Promise<ManifestHead | undefined> {
    const res = await this.request('HEAD', `/v2/${repository}/manifests/${reference}`, {
      headers: {accept},
      scope: this.scope(repository),
    })
    if (res.status === 404) return undefined
    await this.check(res, `HEAD ${repository}:${reference}`)
    const digest = res.headers.get('docker-content-digest')
    if (!digest) {
      // Some registries omit the header on HEAD: fall back to GET and hash the body.
      const m = await this.getManifest(repository, reference, accept)
      return m && {digest: m.digest, mediaType: m.mediaType, size: m.size}
    }
    return {
      digest,
      mediaType: res.headers.get('content-type') ?? '',
      size: Number(res.headers.get('content-length') ?? 0),
    }
  }

  /** GET a manifest; the digest is computed from the bytes (and must match Docker-Content-Digest). */
  async getManifest(repository: string, reference: string, accept = MANIFEST_ACCEPT): Promise<Manifest | undefined> {
    const res = await this.request('GET', `/v2/${repository}/manifests/${reference}`, {
      headers: {accept},
      scope: this.scope(repository),
    })
    if (res.status === 404) {
      await res.arrayBuffer()
      return undefined
    }
    await this.check(res, `GET ${repository}:${reference}`)
    const body = Buffer.from(await res.arrayBuffer())
    const digest = sha256Digest(body)
    const header = res.headers.get('docker-content-digest')
    if (header && header !== digest) {
      throw new RetailOpsError(
        'SIGNATURE',
        `The registry sent a manifest for ${repository}:${reference} whose content does not match its digest (${header} vs ${digest}).`,
        {
          details: {repository, reference, header, computed: digest},
        },
      )
    }
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw new RetailOpsError(
        'SIGNATURE',
        `The manifest the registry returned for ${repository}@${reference} hashes to ${digest}.`,
        {details: {repository, reference, computed: digest}},
      )
    }
    const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    return {
      digest,
      body,
      json,
      size: body.length,
      mediaType: (json.mediaType as string) ?? res.headers.get('content-type') ?? '',
    }
  }

  /** PUT a manifest; Content-Type must equal the body's mediaType (distribution answers MANIFEST_INVALID otherwise). */
  async putManifest(repository: string, reference: string, body: Buffer, mediaType: string): Promise<string> {
    const res = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      headers: {'content-type': mediaType},
      body,
      scope: this.scope(repository, true),
    })
    await this.check(res, `PUT ${repository}:${reference}`)
    await res.arrayBuffer()
    return res.headers.get('docker-content-digest') ?? sha256Digest(body)
  }

  /**
   * PUT a manifest and tell whether the registry indexed its `subject` itself: a registry with the
   * OCI 1.1 referrers API answers with an OCI-Subject header; others leave the referrers tag
   * schema to the client.
   */
  async putManifestWithSubject(
    repository: string,
    reference: string,
    body: Buffer,
    mediaType: string,
  ): Promise<{digest: string; subjectIndexed: boolean}> {
    const res = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      headers: {'content-type': mediaType},
      body,
      scope: this.scope(repository, true),
    })
    await this.check(res, `PUT ${repository}:${reference}`)
    await res.arrayBuffer()
    return {
      digest: res.headers.get('docker-content-digest') ?? sha256Digest(body),
      subjectIndexed: res.headers.has('oci-subject'),
    }
  }

  /**
   * GET /v2/<repo>/referrers/<digest> (OCI distribution 1.1): the image index of the manifests
   * whose subject is this digest, or undefined when the registry has no referrers API (it answers
   * 404, as distribution 2.8 does; the caller then reads the `sha256-<hex>` tag schema instead).
   */
  async getReferrers(repository: string, digest: string): Promise<{manifests: Record<string, unknown>[]} | undefined> {
    const res = await this.request('GET', `/v2/${repository}/referrers/${digest}`, {
      headers: {accept: MEDIA_TYPES.ociIndex},
      scope: this.scope(repository),
    })
    if (res.status === 404 || res.status === 405) {
      await res.arrayBuffer()
      return undefined
    }
    await this.check(res, `GET ${repository}/referrers/${digest}`)
    const type = res.headers.get('content-type') ?? ''
    const text = await res.text()
    if (!type.includes(MEDIA_TYPES.ociIndex) && !type.includes('json')) return undefined
    const json = JSON.parse(text) as {manifests?: Record<string, unknown>[]}
    return {manifests: Array.isArray(json.manifests) ? json.manifests : []}
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, {scope: this.scope(repository)})
    if (res.status === 404) return false
    await this.check(res, `HEAD blob ${digest}`)
    return true
  }

  /** GET a blob; its content is checked against the digest. */
  async getBlob(repository: string, digest: string): Promise<Buffer> {
    const res = await this.request('GET', `/v2/${repository}/blobs/${digest}`, {scope: this.scope(repository)})
    await this.check(res, `GET blob ${digest}`)
    return Buffer.from(await res.arrayBuffer())
  }

  /** Uploads a blob (POST an upload, PUT the content with its digest) unless the registry has it already. */
  async uploadBlob(repository: string, content: Buffer): Promise<{digest: string; size: number}> {
    const digest = sha256Digest(content)
    if (await this.blobExists(repository, digest)) return {digest, size: content.length}
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`, {scope: this.scope(repository, true)})
    await this.check(start, `POST ${repository}/blobs/uploads/`)
    await start.arrayBuffer()
    const location = start.headers.get('location')
    if (!location)
      throw new RetailOpsError(
        'PUSH_FAILED',
        `The registry ${this.registry} started an upload without a Location header.`,
      )
    const url = new URL(location, this.base)
    url.searchParams.set('digest', digest)
    const put = await this.request('PUT', url.toString(), {
      headers: {'content-type': 'application/octet-stream', 'content-length': String(content.length)},
      body: content,
      scope: this.scope(repository, true),
    })
    await this.check(put, `PUT blob ${digest}`)
    await put.arrayBuffer()
    return {digest, size: content.length}
  }
}

/** A loopback registry (127.0.0.0/8, localhost, [::1]): its traffic never leaves the machine. */
export function isLoopbackRegistry(registry: string): boolean {
  return isLoopbackHost(registry)
}

/**
 * Whether retailops speaks plain HTTP to a registry: only to a loopback registry that the
 * configuration names (registry.url), as the Docker Engine does for loopback; with no
 * configuration at all, to a loopback registry the command line names. Every other registry an
 * image names (Docker Hub, a cloud registry) is HTTPS, whatever registry.insecure says.
 */
export function usesPlainHttp(registry: string, configured: {url: string} | undefined): boolean {
  if (!isLoopbackRegistry(registry)) return false
  return !configured || normalizeHostPort(configured.url) === normalizeHostPort(registry)
}

/** A client for a registry host with Docker's credentials; plain HTTP when `insecure` (callers with a configuration decide with usesPlainHttp; a non-loopback registry is refused). */
export async function registryClient(
  registry: string,
  options: {insecure?: boolean; signal?: AbortSignal} = {},
): Promise<RegistryClient> {
  const {registryCredentials} = await import('./credentials.js')
  return new RegistryClient({
    registry,
    // Unset: no configuration decided, and a loopback registry the caller names is plain HTTP (usesPlainHttp without one).
    insecure: options.insecure ?? usesPlainHttp(registry, undefined),
    credentials: () => registryCredentials(registry),
    signal: options.signal,
  })
}
