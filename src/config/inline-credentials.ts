import {hasEmbeddedSecret, isSecretName} from '../ui/secrets.js'

// Which values of retailops.yaml are inline credentials, without the yaml library: the
// validated-configuration cache (./validated-cache.ts) asks on every write, and loading yaml for it
// cost a first run ~5 ms. ./credentials.ts takes them out of and puts them back into the YAML.

export type KeyPath = (string | number)[]

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
