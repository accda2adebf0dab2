import {Chalk, type ChalkInstance} from 'chalk'

import {type Output, redact, type Task} from './output.js'

export interface TerminalOptions {
  stream?: NodeJS.WriteStream
  verbose?: boolean
  /** Show streamed lines (build steps, k6 output) as they arrive. */
  showStreams?: boolean
}

/** Colour only when the stream is a terminal and NO_COLOR is unset (FORCE_COLOR wins). */
export function colorLevel(stream: NodeJS.WriteStream): 0 | 1 | 2 | 3 {
  if (process.env.FORCE_COLOR !== undefined) return process.env.FORCE_COLOR === '0' ? 0 : 1
  if (process.env.NO_COLOR !== undefined || process.env.TERM === 'dumb') return 0
  return stream.isTTY ? 2 : 0
}

export function makeChalk(stream: NodeJS.WriteStream = process.stdout): ChalkInstance {
  return new Chalk({level: colorLevel(stream)})
}

/**
 * Line-oriented progress on stderr. Parallel tasks (several builds at once) each get their own
 * lines prefixed by scope, which reads well both in a terminal and in a CI log.
 */
export class TerminalOutput implements Output {
  private readonly out: NodeJS.WriteStream
  private readonly c: ChalkInstance

  constructor(private readonly options: TerminalOptions = {}) {
    this.out = options.stream ?? process.stderr
    this.c = makeChalk(this.out)
  }

  private write(line: string): void {
    this.out.write(`${redact(line)}\n`)
  }

  info(message: string): void {
    this.write(message)
  }

  warn(message: string): void {
    this.write(this.c.yellow(`▲ Warning: ${message}`))
  }

  /** Release events go to notification destinations; the engine's own info line already told the terminal. */
  event(): void {}

  debug(message: string): void {
    if (this.options.verbose) this.write(this.c.dim(message))
  }

  stream(scope: string, line: string): void {
    if (this.options.showStreams || this.options.verbose) this.write(`${this.c.dim(`${scope} │`)} ${line}`)
  }

  task(title: string): Task {
    const started = Date.now()
    const elapsed = () => this.c.dim(`(${((Date.now() - started) / 1000).toFixed(1)}s)`)
    this.write(`${this.c.cyan('…')} ${title}`)
    return {
      update: (m) => this.write(`${this.c.dim('  ·')} ${title}: ${m}`),
      succeed: (m) => this.write(`${this.c.green('✔')} ${m ?? title} ${elapsed()}`),
      fail: (m) => this.write(`${this.c.red('✖')} ${m ?? title} ${elapsed()}`),
    }
  }
}
