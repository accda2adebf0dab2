import {type RaisedEvent, releaseEvent, type ReleaseEvent} from './events.js'
import {redact} from './secrets.js'

export {redact, registerSecret} from './secrets.js'

/**
 * The engine's only way to talk to a person. src/ never prints: it calls an Output, and the
 * command layer decides whether that becomes terminal lines on stderr, nothing (--json, whose
 * document goes to stdout), or a list a test can assert on.
 */
export interface Output {
  info(message: string): void
  warn(message: string): void
  debug(message: string): void
  /** A unit of slow work, shown as progress on stderr. */
  task(title: string): Task
  /** A line of streamed output that belongs to one scope (a service's build, a k6 run). */
  stream(scope: string, line: string): void
  /**
   * A release event (src/ui/events.ts) for whoever is notified of it: the command layer delivers it
   * to the configured destinations. Not printed: the engine reports the same thing with info/warn.
   */
  event(event: RaisedEvent): void
}

export interface Task {
  update(message: string): void
  succeed(message?: string): void
  fail(message?: string): void
}

export type OutputEvent =
  | {type: 'info' | 'warn' | 'debug'; message: string}
  | {type: 'task'; title: string; state: 'start' | 'update' | 'succeed' | 'fail'; message?: string}
  | {type: 'stream'; scope: string; line: string}
  | {type: 'event'; event: ReleaseEvent}

/** Keeps every event; used by tests and to collect warnings for the JSON envelope. */
export class RecordingOutput implements Output {
  readonly events: OutputEvent[] = []

  private readonly listeners: ((event: ReleaseEvent) => void)[] = []

  constructor(private readonly next?: Output) {}

  /** Release events raised so far. */
  get releaseEvents(): ReleaseEvent[] {
    return this.events.flatMap((e) => (e.type === 'event' ? [e.event] : []))
  }

  /** Calls `listener` with every release event raised from now on. */
  onEvent(listener: (event: ReleaseEvent) => void): void {
    this.listeners.push(listener)
  }

  event(raised: RaisedEvent): void {
    const event = releaseEvent(raised)
    this.events.push({type: 'event', event})
    this.next?.event(event)
    for (const listener of this.listeners) listener(event)
  }

  get warnings(): string[] {
    return this.events.filter((e) => e.type === 'warn').map((e) => (e as {message: string}).message)
  }

  messages(type?: OutputEvent['type']): string[] {
    return this.events
      .filter((e) => (type ? e.type === type : e.type !== 'event'))
      .map((e) => ('message' in e && e.message) || ('line' in e && e.line) || ('title' in e && e.title) || '')
  }

  info(message: string): void {
    this.events.push({type: 'info', message: redact(message)})
    this.next?.info(message)
  }

  warn(message: string): void {
    this.events.push({type: 'warn', message: redact(message)})
    this.next?.warn(message)
  }

  debug(message: string): void {
    this.events.push({type: 'debug', message: redact(message)})
    this.next?.debug(message)
  }

  stream(scope: string, line: string): void {
    this.events.push({type: 'stream', scope, line: redact(line)})
    this.next?.stream(scope, line)
  }

  task(title: string): Task {
    const inner = this.next?.task(title)
    const push = (state: 'start' | 'update' | 'succeed' | 'fail', message?: string) =>
      this.events.push({
        type: 'task',
        title: redact(title),
        state,
        message: message === undefined ? undefined : redact(message),
      })
    push('start')
    return {
      update: (m) => (push('update', m), inner?.update(m)),
      succeed: (m) => (push('succeed', m), inner?.succeed(m)),
      fail: (m) => (push('fail', m), inner?.fail(m)),
    }
  }
}

export const silentOutput: Output = {
  info() {},
  warn() {},
  debug() {},
  stream() {},
  event() {},
  task: () => ({update() {}, succeed() {}, fail() {}}),
}
