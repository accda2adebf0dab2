import path from 'node:path'

import {UsageError} from '../errors/index.js'
import {registerSecret} from '../ui/output.js'

/**
 * `env://NAME` names a variable whose value is the secret itself (cosign's convention for keys):
 * CI systems hand secrets over as variables, and a key written to disk on a shared runner is one
 * more copy to leak.
 */
const ENV_REF = /^env:\/\/([A-Za-z_][A-Za-z0-9_]*)$/

/** The variable name of an `env://NAME` reference; undefined for anything else (a path). */
export function envReferenceName(value: string | undefined): string | undefined {
  return value === undefined ? undefined : ENV_REF.exec(value)?.[1]
}

export function isEnvReference(value: string | undefined): boolean {
  return value !== undefined && value.startsWith('env://')
}

/** A path from configuration resolved against the project folder; `env://NAME` stays as written. */
export function resolveFileOrEnv(value: string, baseDir: string): string {
  return isEnvReference(value) ? value : path.resolve(baseDir, value)
}

/**
 * The value of an `env://NAME` reference, registered as a secret (redacted from all output).
 * A malformed reference or an unset/empty variable is USAGE, naming the variable.
 */
export function readEnvReference(reference: string, what: string): string {
  const name = envReferenceName(reference)
  if (!name) {
    throw new UsageError(`${reference} is not a valid variable reference for ${what}.`, {
      nextSteps: [
        'Write env://NAME, where NAME is a variable name (letters, digits, underscore), e.g. env://COSIGN_PRIVATE_KEY.',
      ],
    })
  }
  const value = process.env[name]
  if (value === undefined || value.trim() === '') {
    throw new UsageError(
      `${what} comes from ${reference}, but ${name} is ${value === undefined ? 'not set' : 'empty'}.`,
      {
        nextSteps: [`Set ${name} to the ${what}'s contents (in CI: a secret mapped to the variable ${name}).`],
        details: {variable: name},
      },
    )
  }
  registerSecret(value)
  return normalizeSecretText(value)
}

/**
 * CI secret stores keep multi-line values, but people also paste them base64-encoded (one line)
 * or with literal "\n": a PEM or YAML document is recovered from either.
 */
export function normalizeSecretText(value: string): string {
  const trimmed = value.trim()
  if (/^-----BEGIN /.test(trimmed) && !trimmed.includes('\n') && trimmed.includes('\\n'))
    return `${trimmed.replaceAll('\\n', '\n')}\n`
  if (/^[A-Za-z0-9+/=\s]+$/.test(trimmed) && trimmed.length >= 16 && !trimmed.includes(' ')) {
    const decoded = Buffer.from(trimmed.replace(/\s+/g, ''), 'base64').toString('utf8')
    if (
      /^-----BEGIN |^apiVersion:|^\{|^(clusters|kind|contexts|current-context):/m.test(decoded.trimStart()) &&
      !decoded.includes('\uFFFD')
    )
      return decoded
  }
  return value
}
