import {isMap, isPair, isScalar, isSeq, parseDocument} from 'yaml'

import {credentialPlaceholder, formatKeyPath, isInlineCredential, type KeyPath} from './inline-credentials.js'

/**
 * Credentials written inline in retailops.yaml, taken out of it for copies that leave the
 * workstation (the ConfigMap a scheduled job reads). The copy keeps a placeholder where each
 * credential was; the credentials themselves go into a Secret as {path, value} entries, and the
 * job puts them back when it loads the file (RETAILOPS_CONFIG_CREDENTIALS).
 */

export {credentialPlaceholder, formatKeyPath, isInlineCredential, type KeyPath} from './inline-credentials.js'

export interface InlineCredential {
  path: KeyPath
  value: string
}

export {CREDENTIALS_ENV} from './vocabulary.js'

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
