import {Command} from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type {Interfaces} from '@oclif/core'

import {type ExitCodeName, ExitCode, RetailOpsError, toRetailOpsError, UsageError} from '../../src/errors/index.js'
import {loadConfig, type LoadedConfig} from '../../src/config/load.js'
import {resolveEnvironment, type ResolvedEnvironment} from '../../src/config/resolve.js'
import {RecordingOutput, redact, redactDeep, silentOutput, TerminalOutput} from '../../src/ui/index.js'
import type {RunContext} from '../../src/ui/context.js'
import type {ReleaseEventType} from '../../src/ui/events.js'
import {commandNotifier, type Notifier} from '../../src/notify/notifier.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof RetailOpsCommand)['baseFlags'] & T['flags']
>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** The --json document: Salesforce-style envelope, same shape for success and failure. */
export interface JsonEnvelope<T> {
  status: number
  result?: T
  error?: {
    name: string
    code: string
    message: string
    exitCode: number
    nextSteps: string[]
    details: Record<string, unknown>
  }
  warnings: string[]
}

/**
 * Shared behaviour of every command: global flags, the JSON envelope, the exit-code policy,
 * non-interactive detection, Ctrl-C handling and printing each error exactly once.
 */
export abstract class RetailOpsCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    config: Flags.string({
      helpGroup: 'GLOBAL',
      description: 'Path to retailops.yaml (default: nearest in this or a parent folder).',
      env: 'RETAILOPS_CONFIG',
    }),
    environment: Flags.string({
      char: 'e',
      helpGroup: 'GLOBAL',
      description: 'Environment from retailops.yaml.',
      env: 'RETAILOPS_ENVIRONMENT',
    }),
    context: Flags.string({helpGroup: 'GLOBAL', description: "Kubernetes context (overrides the environment's)."}),
    namespace: Flags.string({
      char: 'n',
      helpGroup: 'GLOBAL',
      description: "Kubernetes namespace (overrides the environment's).",
    }),
    yes: Flags.boolean({char: 'y', helpGroup: 'GLOBAL', description: 'Assume yes and use defaults; never prompt.'}),
    verbose: Flags.boolean({helpGroup: 'GLOBAL', description: 'Show debug output and streamed logs.'}),
  }

  /**
   * Every exit code the command can end with: listed under EXIT CODES in --help (help.ts) and in
   * the README. test/unit/cli/exit-codes.test.ts checks each command's list against what it throws.
   */
  static exitCodes: readonly ExitCodeName[] = []

  /**
   * The release events the command's engines may raise (src/ui/events.ts). The notification
   * destinations subscribed to them are checked when the project loads (a variable not set is
   * exit 3, before anything changes); an event raised that is not listed is still delivered.
   */
  static releaseEvents: readonly ReleaseEventType[] = []

  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>
  /** Every positional argument, for commands with `strict = false` that take a list (e.g. services). */
  protected positionals: string[] = []
  /** Flags given on the command line (or by their environment variable), not filled in from a default. */
  protected explicitFlags = new Set<string>()
  protected recorder!: RecordingOutput
  private readonly abort = new AbortController()
  private outcome: ExitCodeName = 'OK'
  /** Delivers the release events the engines raise (retailops.yaml `notifications`); none without it. */
  protected notifier?: Notifier

  public override async init(): Promise<void> {
    await super.init()
    const {args, argv, flags, metadata} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as unknown as typeof RetailOpsCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      // oclif takes a missing argument from piped standard input: `retailops deploy` in a `while
      // read` loop would take the loop's next line for its services and swallow the rest, and
      // every start on a silent pipe waits for it. Arguments come from the command line only.
      args: Object.fromEntries(
        Object.entries(this.ctor.args ?? {}).map(([name, arg]) => [name, {...arg, ignoreStdin: true}]),
      ),
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
    this.positionals = argv as string[]
    this.explicitFlags = new Set(
      Object.keys(flags).filter(
        (name) => (flags as Record<string, unknown>)[name] !== undefined && !metadata.flags[name]?.setFromDefault,
      ),
    )
    const terminal = this.jsonEnabled() ? silentOutput : new TerminalOutput({verbose: this.flags.verbose})
    this.recorder = new RecordingOutput(terminal)
    let interrupts = 0
    const onSignal = (signal: NodeJS.Signals) => {
      interrupts += 1
      if (interrupts > 1) process.exit(ExitCode.INTERRUPTED)
      this.recorder.warn(`${signal} received: stopping and cleaning up (press Ctrl-C again to exit at once).`)
      this.abort.abort()
    }
    // `on`, not `once`: signal-exit (loaded by execa) re-raises a signal when it finds no other
    // listener left, which after a `once` listener fired would kill the process mid-cleanup.
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal)
  }

  /** The context handed to engine functions in src/. */
  protected get ctx(): RunContext {
    return {out: this.recorder, signal: this.abort.signal}
  }

  /** Prompts only with a person at a terminal: never in CI, under --json or --yes, or without a TTY. */
  protected get interactive(): boolean {
    return Boolean(process.stdin.isTTY) && !process.env.CI && !this.jsonEnabled() && !this.flags.yes
  }

  /** Fails fast in non-interactive runs, naming every flag that would have been prompted for. */
  protected requireFlags(missing: {flag: string; description: string}[]): void {
    if (missing.length === 0) return
    throw new UsageError(
      `Missing ${missing.map((m) => `--${m.flag}`).join(', ')} (no prompts in non-interactive mode).`,
      {
        nextSteps: missing.map((m) => `--${m.flag}: ${m.description}`),
        details: {missingFlags: missing.map((m) => m.flag)},
      },
    )
  }

  protected async loadProject(): Promise<LoadedConfig> {
    const project = await loadConfig(this.flags.config)
    if (!this.notifier) {
      const ctor = this.ctor as unknown as typeof RetailOpsCommand
      this.notifier = commandNotifier(
        project,
        ctor.releaseEvents,
        {project: project.config.project, environment: this.flags.environment ?? project.config.defaultEnvironment},
        this.recorder,
      )
      const notifier = this.notifier
      if (notifier) this.recorder.onEvent((event) => notifier.handle(event))
    }
    return project
  }

  /** The environment chosen by --environment, with --context and --namespace applied on top. */
  protected target(project: LoadedConfig): ResolvedEnvironment {
    const env = resolveEnvironment(project.config, this.flags.environment, project.dir)
    return {...env, context: this.flags.context ?? env.context, namespace: this.flags.namespace ?? env.namespace}
  }

  /** A finished command whose outcome is not plain success (a paused rollout, a failed gate). */
  protected setOutcome(exit: ExitCodeName): void {
    this.outcome = exit
  }

  protected warnUser(message: string): void {
    this.recorder.warn(message)
  }

  public override log(message = '', ...args: unknown[]): void {
    if (!this.jsonEnabled()) super.log(redact(message), ...args)
  }

  /**
   * The same pretty JSON oclif writes, without its colouring pass: with no JSON theme configured it
   * colours nothing, yet it tokenises the whole document by regular expressions first (0.4 s of an
   * 18,000-object diff's --json).
   */
  protected override logJson(json: unknown): void {
    if (this.config.theme?.json) return super.logJson(json)
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
  }

  protected override toSuccessJson(result: unknown): JsonEnvelope<unknown> {
    // The result is masked like every other channel: --json is what CI logs keep.
    return {status: ExitCode[this.outcome], result: redactDeep(result), warnings: this.recorder?.warnings ?? []}
  }

  protected override toErrorJson(err: unknown): JsonEnvelope<never> {
    const e = toRetailOpsError(err)
    return {
      status: e.exitCode,
      error: {
        name: e.name,
        code: e.code,
        message: redact(e.message),
        exitCode: e.exitCode,
        nextSteps: e.nextSteps.map(redact),
        details: redactDeep(e.details),
      },
      warnings: this.recorder?.warnings ?? [],
    }
  }

  protected override async catch(err: Error & {oclif?: {exit?: number}}): Promise<void> {
    const e = fromOclif(err) ?? toRetailOpsError(err)
    process.exitCode = e.exitCode
    // Deliveries still on their way end (or time out) first: a failed one is a warning in the envelope.
    await this.notifier?.flush()
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(e))
      return
    }
    const c = (await import('../../src/ui/terminal.js')).makeChalk(process.stderr)
    const lines = [c.red(`✖ ${redact(e.message)}`)]
    if (e.nextSteps.length > 0) lines.push(c.bold('  Try this:'), ...e.nextSteps.map((s) => `    • ${redact(s)}`))
    lines.push(c.dim(`  Exit code ${e.exitCode} (${e.code}).`))
    if (this.flags?.verbose && e.exit === 'INTERNAL' && err.stack) lines.push(c.dim(err.stack))
    process.stderr.write(`${lines.join('\n')}\n`)
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    // Before the --json document is written (oclif writes it after finally): failures are its warnings.
    await this.notifier?.flush()
    if (!err && this.outcome !== 'OK') process.exitCode = ExitCode[this.outcome]
    await super.finally(err)
  }
}

/** oclif's own parse errors carry their exit code in err.oclif.exit; keep it, and the message. */
function fromOclif(err: Error & {oclif?: {exit?: number}}): RetailOpsError | undefined {
  if (err instanceof RetailOpsError || err.oclif?.exit === undefined) return undefined
  if (err.oclif.exit === 0) return undefined
  const usage = new UsageError(err.message.replace(/\nSee more help with --help$/, ''), {
    nextSteps: ['Run the command with --help for its flags and examples.'],
  })
  return usage
}
