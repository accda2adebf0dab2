import {ExitCode, type ExitCodeName} from './exit-codes.js'

export {ExitCode, EXIT_CODE_MEANINGS, type ExitCodeName, type ExitCodeValue} from './exit-codes.js'

export interface ErrorOptions {
  /** What the user should do next; printed as "Try this:" lines and `nextSteps` in --json. */
  nextSteps?: string[]
  /** Machine-readable context for --json (never secrets). */
  details?: Record<string, unknown>
  cause?: unknown
}

/**
 * Every error retailops expects carries a stable code, an exit code from the policy table and
 * next steps. Anything else that escapes is treated as a bug (exit 1).
 */
export class RetailOpsError extends Error {
  readonly exit: ExitCodeName
  readonly nextSteps: string[]
  readonly details: Record<string, unknown>

  constructor(exit: ExitCodeName, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.exit = exit
    this.nextSteps = options.nextSteps ?? []
    this.details = options.details ?? {}
  }

  get exitCode(): number {
    return ExitCode[this.exit]
  }

  get code(): string {
    return this.exit
  }
}

export class UsageError extends RetailOpsError {
  constructor(message: string, options?: ErrorOptions) {
    super('USAGE', message, options)
  }
}

export class NotFoundError extends RetailOpsError {
  constructor(message: string, options?: ErrorOptions) {
    super('NOT_FOUND', message, options)
  }
}

export class UnavailableError extends RetailOpsError {
  constructor(message: string, options?: ErrorOptions) {
    super('UNAVAILABLE', message, options)
  }
}

export class PermissionError extends RetailOpsError {
  constructor(message: string, options?: ErrorOptions) {
    super('PERMISSION', message, options)
  }
}

export class RefusedError extends RetailOpsError {
  constructor(message: string, options?: ErrorOptions) {
    super('REFUSED', message, options)
  }
}

/** One problem in one configuration file, located so an editor can jump to it. */
export interface ConfigIssue {
  file: string
  line?: number
  column?: number
  path: string
  message: string
}

/** A configuration with thousands of problems shows this many; the rest are counted. */
export const MAX_ISSUES_SHOWN = 20

export class ConfigError extends RetailOpsError {
  readonly issues: ConfigIssue[]
  /** How many problems were found, shown or not. */
  readonly total: number

  constructor(issues: ConfigIssue[], options: ErrorOptions & {total?: number} = {}) {
    const shown = issues.slice(0, MAX_ISSUES_SHOWN)
    const total = Math.max(options.total ?? issues.length, issues.length)
    const lines = shown.map((i) => `  ${formatLocation(i)} ${i.path || '(root)'}: ${i.message}`)
    if (total > shown.length) lines.push(`  ... and ${(total - shown.length).toLocaleString('en-US')} more`)
    super('CONFIG', `Invalid configuration:\n${lines.join('\n')}`, {
      nextSteps: options.nextSteps ?? [
        'Fix the keys above; `retailops config schema` prints the JSON Schema for editor completion.',
      ],
      details: {issues: shown, total, ...options.details},
      cause: options.cause,
    })
    this.issues = shown
    this.total = total
  }
}

function formatLocation(issue: ConfigIssue): string {
  if (issue.line === undefined) return `${issue.file}:`
  return `${issue.file}:${issue.line}${issue.column === undefined ? '' : `:${issue.column}`}`
}

/** Normalises anything thrown into a RetailOpsError: unknown errors become INTERNAL. */
export function toRetailOpsError(error: unknown): RetailOpsError {
  if (error instanceof RetailOpsError) return error
  if (error instanceof Error && (error as NodeJS.ErrnoException).code === 'ABORT_ERR') {
    return new RetailOpsError('INTERRUPTED', 'Interrupted.', {cause: error})
  }
  const message = error instanceof Error ? error.message : String(error)
  return new RetailOpsError('INTERNAL', `Unexpected error: ${message}`, {
    nextSteps: ['Run again with --verbose for the stack trace, and report it if it persists.'],
    cause: error,
  })
}
