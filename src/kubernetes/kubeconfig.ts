import {existsSync, readFileSync} from 'node:fs'
import type https from 'node:https'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'

import {registerSecret} from '../ui/output.js'
import {parseSimpleYaml} from './kubeconfig-yaml.js'

/**
 * The yaml library, for a kubeconfig outside the subset parseSimpleYaml reads: required on that
 * path only (this reader is synchronous), so the commands never load it for the usual file.
 */
function parseWithLibrary(text: string): unknown {
  return (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text)
}

/**
 * What raw requests need of a kubeconfig (KubeHttp): the current cluster's server, and the TLS
 * and authentication options for it. @kubernetes/client-node's KubeConfig is one; the plain
 * reader below is the other.
 */
export interface KubeCredentials {
  getCurrentCluster(): {server: string} | null
  /** The context's name, as reports show it. */
  getCurrentContext(): string
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>
}

const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
])
const USER_KEYS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'token-file',
  'extensions',
])

interface Named<T> {
  name?: unknown
  cluster?: T
  user?: T
  context?: T
}

/**
 * A kubeconfig read without @kubernetes/client-node (whose import costs ~600 ms), for the common
 * case: one file, a context whose cluster is https with a CA file or data (or
 * insecure-skip-tls-verify), and a user with a client certificate and/or a token or token file.
 * Anything else — exec plugins, auth providers, proxies, impersonation, several files to merge,
 * in-cluster credentials, contents in a variable, a context that is not there, a file that does
 * not parse — returns undefined, and the caller loads client-node, which handles all of it and
 * reports the errors. The options it applies are the ones client-node's applyToHTTPSOptions
 * would (test/unit/kubernetes/kubeconfig.test.ts compares them); a relative token-file is read
 * from the kubeconfig's folder, as kubectl reads it.
 */
export function readPlainKubeconfig(
  kubeconfig: string | undefined,
  context: string | undefined,
): KubeCredentials | undefined {
  const file = kubeconfig ?? process.env.KUBECONFIG ?? path.join(os.homedir(), '.kube', 'config')
  if (!file || file.startsWith('env://') || file.includes('\n') || file.includes(path.delimiter)) return undefined
  if (!existsSync(file)) return undefined
  let doc: {
    'current-context'?: unknown
    clusters?: Named<Record<string, unknown>>[]
    users?: Named<Record<string, unknown>>[]
    contexts?: Named<Record<string, unknown>>[]
  }
  try {
    const text = readFileSync(file, 'utf8')
    doc = (parseSimpleYaml(text) ?? parseWithLibrary(text)) as typeof doc
  } catch {
    return undefined
  }
  if (!doc || typeof doc !== 'object') return undefined
  const name = context ?? doc['current-context']
  const ctx = doc.contexts?.find((c) => c?.name === name)?.context
  // Without a user, client-node applies no options at all (not even the CA): left to it.
  if (!ctx || typeof ctx.cluster !== 'string' || typeof ctx.user !== 'string') return undefined
  const cluster = doc.clusters?.find((c) => c?.name === ctx.cluster)?.cluster
  const user = doc.users?.find((u) => u?.name === ctx.user)?.user
  if (!cluster || !user || typeof cluster.server !== 'string' || !cluster.server.startsWith('https://'))
    return undefined
  const plain = (entry: Record<string, unknown>, keys: Set<string>) =>
    Object.entries(entry).every(
      ([k, v]) => keys.has(k) && (k === 'extensions' || typeof v === 'string' || typeof v === 'boolean'),
    )
  if (!plain(cluster, CLUSTER_KEYS) || !plain(user, USER_KEYS)) return undefined
  const dir = path.dirname(path.resolve(file))
  const fromFile = (value: unknown) =>
    readFileSync(path.isAbsolute(String(value)) ? String(value) : path.join(dir, String(value)))
  const bytes = (fileKey: unknown, dataKey: unknown): Buffer | undefined =>
    fileKey ? fromFile(fileKey) : dataKey ? Buffer.from(String(dataKey), 'base64') : undefined
  let token: string | undefined
  try {
    token = user.token ? String(user.token) : user['token-file'] ? fromFile(user['token-file']).toString() : undefined
    // Read once, as client-node does; a missing file falls back to it and its error.
    bytes(cluster['certificate-authority'], undefined)
    bytes(user['client-certificate'], undefined)
    bytes(user['client-key'], undefined)
  } catch {
    return undefined
  }
  registerSecret(token)
  if (typeof user['client-key-data'] === 'string') registerSecret(user['client-key-data'])
  const server = cluster.server
  return {
    getCurrentCluster: () => ({server}),
    getCurrentContext: () => String(name),
    applyToHTTPSOptions: (opts) => {
      if (cluster['insecure-skip-tls-verify'] === true) opts.rejectUnauthorized = false
      if (typeof cluster['tls-server-name'] === 'string') opts.servername = cluster['tls-server-name']
      const ca = bytes(cluster['certificate-authority'], cluster['certificate-authority-data'])
      if (ca) opts.ca = ca
      const cert = bytes(user['client-certificate'], user['client-certificate-data'])
      if (cert) opts.cert = cert
      const key = bytes(user['client-key'], user['client-key-data'])
      if (key) opts.key = key
      if (token)
        opts.headers = {...(opts.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}`}
      return Promise.resolve()
    },
  }
}
