import {existsSync} from 'node:fs'
import path from 'node:path'

import pLimit from 'p-limit'

import type {LoadedConfig} from '../config/load.js'
import type {SignatureResult} from '../kubernetes/policy.js'
import type {RunContext} from '../ui/context.js'

/**
 * The hook deploy calls to verify image signatures before anything is applied. The build/sign
 * engine (src/docker/) provides an in-process verifier; until a caller passes one, deploy uses
 * the cosign CLI (RETAILOPS_COSIGN or `cosign` on PATH) with signing.publicKey, since retailops
 * writes cosign-format signatures.
 */
export type ImageVerifier = (images: string[], ctx: RunContext) => Promise<Record<string, SignatureResult>>

export function classifyCosignFailure(stderr: string): SignatureResult['status'] {
  if (/no signatures found|no matching signatures|signature not found|MANIFEST_UNKNOWN/i.test(stderr)) return 'unsigned'
  if (/connection refused|dial tcp|i\/o timeout|no such host|TLS handshake/i.test(stderr)) return 'unavailable'
  return 'invalid'
}

export function cosignVerifier(options: {cosign?: string; publicKey: string; allowHttp?: boolean}): ImageVerifier {
  const bin = options.cosign ?? process.env.RETAILOPS_COSIGN ?? 'cosign'
  return async (images, ctx) => {
    const {execa} = await import('execa')
    const limit = pLimit(4)
    const out: Record<string, SignatureResult> = {}
    await Promise.all(
      [...new Set(images)].map((image) =>
        limit(async () => {
          const args = ['verify', '--key', options.publicKey, '--insecure-ignore-tlog', '--offline', ...(options.allowHttp ? ['--allow-http-registry'] : []), image]
          ctx.out.debug(`${bin} ${args.join(' ')}`)
          const r = await execa(bin, args, {reject: false, timeout: 60_000, cancelSignal: ctx.signal, env: {COSIGN_EXPERIMENTAL: '0'}})
          if ((r as {code?: string}).code === 'ENOENT' || (r.failed && /ENOENT/.test(String(r.message)))) {
            out[image] = {image, status: 'unavailable', message: `${bin} not found: install cosign or set RETAILOPS_COSIGN`}
          } else if (r.exitCode === 0) {
            out[image] = {image, status: 'verified'}
          } else {
            const stderr = String(r.stderr ?? '')
            out[image] = {image, status: classifyCosignFailure(stderr), message: stderr.split('\n').filter(Boolean).pop()?.slice(0, 300)}
          }
        }),
      ),
    )
    return out
  }
}

/** The verifier for a project: cosign with signing.publicKey, or one that reports why it cannot verify. */
export function defaultImageVerifier(project: LoadedConfig): ImageVerifier {
  const publicKey = path.resolve(project.dir, project.config.signing.publicKey)
  if (!existsSync(publicKey)) {
    return async (images) =>
      Object.fromEntries(images.map((image) => [image, {image, status: 'unavailable' as const, message: `public key ${publicKey} does not exist (run \`retailops keys generate\`)`}]))
  }
  return cosignVerifier({publicKey, allowHttp: project.config.registry.insecure})
}
