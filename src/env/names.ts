import {execa} from 'execa'

import {formatDuration, parseDuration} from '../config/duration.js'
import {UsageError} from '../errors/index.js'

/**
 * What makes a namespace a preview environment, and the names derived from a preview's name. One
 * namespace per preview, `<project>-preview-<name>`: the preview's own applyset (environment
 * `preview-<name>`), quota, isolation and Secrets, so destroying it is deleting that namespace.
 */

export const PREVIEW = {
  /** Label: the preview's name. */
  name: 'retailops.dev/preview',
  /** Label: the project the preview belongs to (list, sweep and destroy select by it). */
  of: 'retailops.dev/preview-of',
  owner: 'retailops.dev/preview-owner',
  created: 'retailops.dev/preview-created',
  expires: 'retailops.dev/preview-expires',
  ttl: 'retailops.dev/preview-ttl',
  /** What was deployed: "artifacts lock" or "branch <name> (<commit>)". */
  source: 'retailops.dev/preview-source',
  services: 'retailops.dev/preview-services',
} as const

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
export const MIN_TTL_MS = 60_000
export const MAX_TTL_MS = 30 * 86_400_000

/** The preview's namespace; the name is checked first (a DNS-1123 label that leaves room for the prefix). */
export function previewNamespace(project: string, name: string): string {
  const namespace = `${project}-preview-${name}`
  if (!DNS_LABEL.test(name) || namespace.length > 63) {
    const room = 63 - `${project}-preview-`.length
    throw new UsageError(
      `Preview name "${name}": a preview name is lowercase letters, digits and dashes, starting and ending with a letter or digit, at most ${room} characters (its namespace ${project}-preview-NAME must fit in 63).`,
      {nextSteps: ['e.g. `retailops env create pr-142` or `retailops env create feature-cart`']},
    )
  }
  return namespace
}

/** The environment name a preview's objects carry (retailops.dev/environment and the applyset id). */
export function previewEnvironment(name: string): string {
  return `preview-${name}`
}

/** --ttl: a duration between a minute and 30 days. */
export function parseTtl(value: string, flag = 'ttl'): number {
  const ms = parseDuration(value)
  if (ms === undefined)
    throw new UsageError(`--${flag} ${value}: expected a duration such as 8h, 90m or 2d.`, {
      nextSteps: ['A preview lives for its TTL; `retailops env extend NAME --ttl 4h` gives it more time.'],
    })
  if (ms < MIN_TTL_MS || ms > MAX_TTL_MS)
    throw new UsageError(
      `--${flag} ${value}: a preview's TTL is between ${formatDuration(MIN_TTL_MS)} and ${formatDuration(MAX_TTL_MS)}.`,
      {nextSteps: ['Give a shorter TTL and extend it when needed (`retailops env extend`).']},
    )
  return ms
}

/**
 * Who creates the preview: the CI identity when in CI (GitLab, GitHub), else the git user, else
 * the login name. Recorded on the namespace; list shows it.
 */
export async function previewOwner(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.RETAILOPS_OWNER) return env.RETAILOPS_OWNER
  if (env.GITLAB_USER_LOGIN) return `gitlab:${env.GITLAB_USER_LOGIN}`
  if (env.GITHUB_ACTOR) return `github:${env.GITHUB_ACTOR}`
  const git = await execa('git', ['config', 'user.email'], {cwd, timeout: 10_000}).then(
    (r) => r.stdout.trim(),
    () => '',
  )
  if (git) return git
  return env.USER ?? env.LOGNAME ?? 'unknown'
}
