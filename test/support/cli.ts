// The one way tests run the retailops CLI: a real process, as users and CI run it.
// bin/run.js runs the build (dist/, the manifest: what npm publishes); bin/dev.js runs the
// TypeScript sources through tsx and, ignoring the manifest, loads every command on each start
// (seconds per run, against well under one for bin/run.js: over a suite of hundreds of runs,
// minutes). So the built CLI runs whenever dist/ is current (test/support/build.ts: CI builds
// before it tests), and the sources run after an edit not yet built: a test never runs old code.
// `built: true` insists on the build, `built: false` on the sources; RETAILOPS_TEST_CLI=built or
// =sources sets the default for a whole run.
import {existsSync} from 'node:fs'
import path from 'node:path'

import {execa, type ResultPromise} from 'execa'

import {staleBuild} from './build.js'
import {ROOT} from './paths.js'

export interface CliOptions {
  cwd?: string
  /** Added to this process's environment; CI=true always (no prompts, no spinners). */
  env?: Record<string, string | undefined>
  /** Start from an empty environment instead of this process's: only PATH, CI and `env`. */
  cleanEnv?: boolean
  /** Written to the CLI's standard input (otherwise it has none). */
  input?: string
  /**
   * true: the built package (bin/run.js; dist/ must exist); false: the sources (bin/dev.js);
   * default: the build when it is current, else the sources (see the top of this file).
   */
  built?: boolean
  /** Append --json. */
  json?: boolean
  /** Kill the CLI after this long (default 280 s, under the integration test timeout). */
  timeoutMs?: number
}

/** The --json envelope every command prints (commands/_base). */
export interface JsonDocument {
  status: number
  // The result's shape is each command's; tests read what they assert.
  result?: any
  error?: any
  warnings: string[]
}

export interface CliRun {
  exitCode: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON, when it is JSON. */
  doc: JsonDocument | undefined
}

let buildIsCurrent: boolean | undefined

/** Whether a run without `built` runs the build: RETAILOPS_TEST_CLI, else whether dist/ is current (checked once per file). */
function defaultBuilt(): boolean {
  const chosen = process.env.RETAILOPS_TEST_CLI
  if (chosen === 'sources') return false
  if (chosen === 'built') {
    const stale = staleBuild()
    if (stale) throw new Error(`RETAILOPS_TEST_CLI=built, but ${stale}`)
    return true
  }
  if (chosen) throw new Error(`RETAILOPS_TEST_CLI is "${chosen}": use built, sources, or leave it unset`)
  buildIsCurrent ??= staleBuild() === undefined
  return buildIsCurrent
}

function command(built: boolean): string {
  const bin = path.join(ROOT, 'bin', built ? 'run.js' : 'dev.js')
  if (built && !existsSync(path.join(ROOT, 'dist', 'commands'))) {
    throw new Error(`${bin} needs the built CLI (dist/ is missing): run \`npm run build\` first`)
  }
  return bin
}

// This process's Node (not whichever `node` PATH finds first), with bin/dev.js's shebang flag.
function argv(args: string[], options: CliOptions): string[] {
  const built = options.built ?? defaultBuilt()
  const node = built ? [] : ['--disable-warning=ExperimentalWarning']
  return [...node, command(built), ...args, ...(options.json ? ['--json'] : [])]
}

function execaOptions(options: CliOptions) {
  return {
    cwd: options.cwd,
    env: {...(options.cleanEnv ? {PATH: process.env.PATH} : {}), CI: 'true', ...options.env},
    extendEnv: !options.cleanEnv,
    reject: false,
    ...(options.input === undefined ? {stdin: 'ignore' as const} : {input: options.input}),
    timeout: options.timeoutMs ?? 280_000,
  }
}

function parse(stdout: string): JsonDocument | undefined {
  try {
    return JSON.parse(stdout) as JsonDocument
  } catch {
    return undefined
  }
}

/** Runs the CLI to its end; never throws on a non-zero exit. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const r = await execa(process.execPath, argv(args, options), execaOptions(options))
  return {exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, doc: parse(r.stdout)}
}

/** Runs the CLI with --json and fails the test when it printed no JSON document. */
export async function runCliJson(args: string[], options: CliOptions = {}): Promise<CliRun & {doc: JsonDocument}> {
  const run = await runCli(args, {...options, json: true})
  if (!run.doc)
    throw new Error(`retailops ${args.join(' ')} printed no JSON (exit ${run.exitCode}):\n${run.stdout}\n${run.stderr}`)
  return run as CliRun & {doc: JsonDocument}
}

/**
 * Starts the CLI in the background, to interrupt or kill it mid-run; await it for the result.
 * No timeout unless one is given, and a signal sent to it is the only one (no SIGKILL after a
 * grace period): what a test sees after SIGINT is the CLI's own cleanup.
 */
export function startCli(args: string[], options: CliOptions = {}): BackgroundCli {
  return execa(process.execPath, argv(args, options), {
    ...execaOptions(options),
    timeout: options.timeoutMs,
    forceKillAfterDelay: false,
  })
}

export type BackgroundCli = ResultPromise<ReturnType<typeof execaOptions> & {forceKillAfterDelay: false}>
