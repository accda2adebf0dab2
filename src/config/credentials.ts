import {isMap, isPair, isScalar, isSeq, parseDocument} from 'yaml'

import {hasEmbeddedSecret, isSecretName} from '../ui/secrets.js'

/**
 * Credentials written inline in retailops.yaml, taken out of it for copies that leave the
 * workstation (the ConfigMap a scheduled job reads). The copy keeps a placeholder where each
 * credential was; the credentials themselves go into a Secret as {path, value} entries, and the
 * job puts them back when it loads the file (RETAILOPS_CONFIG_CREDENTIALS).
 */

export type KeyPath = (string | number)[]

export interface InlineCredential {
  path: KeyPath
  value: string
}

export {CREDENTIALS_ENV} from './vocabulary.js'

/** What stands in a stripped copy where a credential was. */
export function credentialPlaceholder(path: KeyPath): string {
  return `<credential ${formatKeyPath(path)}: kept in a Secret>`
}

/**
 * A value that is a credential, as src/ui/secrets.ts decides for every output channel: one that
 * carries a password (URL userinfo, `?password=`, JDBC, a DSN), or a secret-named env value.
 */
export function isInlineCredential(path: KeyPath, value: string): boolean {
  if (value === '' || /^<credential .*: kept in a Secret>$/.test(value)) return false
  if (hasEmbeddedSecret(value)) return true
  // services.<name>.env.<NAME>: the only free-form mapping whose keys name what the values are.
  const n = path.length
  return (
    n >= 4 &&
    path[0] === 'services' &&
    path[n - 2] === 'env' &&
    typeof path[n - 1] === 'string' &&
    isSecretName(path[n - 1] as string)
  )
}

export function formatKeyPath(path: KeyPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

/** retailops.yaml without its inline credentials (comments and layout kept), and the credentials. */
export function splitCredentials(text: string): {stripped: string; credentials: InlineCredential[]} {
  const doc = parseDocument(text)
  const credentials: InlineCredential[] = []
  const visit = (node: unknown, path: KeyPath) => {
    if (isMap(node)) {
      for (const pair of node.items)
        if (isPair(pair) && isScalar(pair.key)) visit(pair.value, [...path, String(pair.key.value)])
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]))
    } else if (isScalar(node) && typeof node.value === 'string' && isInlineCredential(path, node.value)) {
      credentials.push({path, value: node.value})
      node.value = credentialPlaceholder(path)
    }
  }
  visit(doc.contents, [])
  return {stripped: doc.toString(), credentials}
}

/** Puts credentials back where their placeholders are; a path without its placeholder is reported. */
export function restoreCredentials(
  setIn: (path: KeyPath, value: string) => void,
  getIn: (path: KeyPath) => unknown,
  credentials: InlineCredential[],
): string[] {
  const problems: string[] = []
  for (const c of credentials) {
    if (!Array.isArray(c.path) || typeof c.value !== 'string') {
      problems.push('an entry is not {path: [...], value: "..."}')
      continue
    }
    if (getIn(c.path) !== credentialPlaceholder(c.path)) {
      problems.push(`${formatKeyPath(c.path)} does not hold its placeholder`)
      continue
    }
    setIn(c.path, c.value)
  }
  return problems
}
