import {UsageError} from '../errors/index.js'

export interface ImageReference {
  /** host[:port]; "docker.io" for Docker Hub. */
  registry: string
  /** Repository path inside the registry, e.g. "shop/catalog". */
  repository: string
  tag?: string
  digest?: string
}

const DIGEST = /^sha256:[0-9a-f]{64}$/
const TAG = /^[\w][\w.-]{0,127}$/
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/

/** Parses `registry/repo[:tag][@sha256:…]` the way Docker does (the first part is a registry if it has a dot, a colon or is localhost). */
export function parseReference(text: string): ImageReference {
  const bad = (why: string) =>
    new UsageError(`"${text}" is not an image reference: ${why}.`, {
      nextSteps: ['Use REGISTRY/REPOSITORY@sha256:DIGEST, e.g. 127.0.0.1:5000/shop/catalog@sha256:…'],
    })
  let rest = text.trim()
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256: and 64 lowercase hex characters')
  }
  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw bad(`"${tag}" is not a valid tag`)
  }
  const parts = rest.split('/')
  let registry = 'docker.io'
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost'))
    registry = parts.shift()!
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library')
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p)))
    throw bad('repository names are lowercase letters, digits and separators')
  return {registry, repository: parts.join('/'), tag, digest}
}

export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

export function isDigest(value: string): boolean {
  return DIGEST.test(value)
}
