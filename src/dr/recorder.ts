import type {Output, Task} from '../ui/output.js'
import type {CleanupAction, DrillStep, StepStatus} from './types.js'

export type Clock = () => number

export interface StepHandle {
  readonly step: DrillStep
  /** Ends the step; later calls are ignored (the first outcome is what happened). */
  end(status: StepStatus, detail?: string): void
  ok(detail?: string): void
  fail(detail?: string): void
  warn(detail?: string): void
}

/** Times every step of a drill (the report's timeline) and shows it as progress. */
export class StepRecorder {
  readonly steps: DrillStep[] = []

  constructor(
    private readonly out: Output,
    private readonly clock: Clock = Date.now,
  ) {}

  start(scope: string, name: string, title: string): StepHandle {
    const started = this.clock()
    const step: DrillStep = {scope, name, title, startedAt: new Date(started).toISOString(), status: 'ok'}
    this.steps.push(step)
    const task: Task = this.out.task(`${scope}: ${title}`)
    let done = false
    const end = (status: StepStatus, detail?: string) => {
      if (done) return
      done = true
      const ended = this.clock()
      step.endedAt = new Date(ended).toISOString()
      step.durationMs = ended - started
      step.status = status
      if (detail) step.detail = detail
      const line = `${scope}: ${title}${detail ? ` — ${detail}` : ''}`
      if (status === 'ok' || status === 'skipped') task.succeed(line)
      else if (status === 'warning') task.succeed(`${line} (warning)`)
      else task.fail(line)
    }
    return {step, end, ok: (d) => end('ok', d), fail: (d) => end('failed', d), warn: (d) => end('warning', d)}
  }

  /** Runs fn as a step: ok when it resolves, failed (or interrupted) when it throws, and rethrows. */
  async run<T>(
    scope: string,
    name: string,
    title: string,
    fn: (step: StepHandle) => Promise<T>,
    detail?: (value: T) => string | undefined,
  ): Promise<T> {
    const handle = this.start(scope, name, title)
    try {
      const value = await fn(handle)
      handle.ok(detail?.(value))
      return value
    } catch (error) {
      const aborted =
        (error as {code?: string}).code === 'ABORT_ERR' || (error as {exit?: string}).exit === 'INTERRUPTED'
      handle.end(aborted ? 'interrupted' : 'failed', (error as Error).message.split('\n')[0])
      throw error
    }
  }
}

export interface CleanupTask {
  kind: string
  resource: string
  action: string
  /** Removes the resource; answers what happened (absent when it was already gone). */
  run: () => Promise<Pick<CleanupAction, 'status' | 'detail'>>
}

/**
 * What a drill created, registered *before* it is created (so an interrupted create is still
 * cleaned up), undone in reverse order whatever happens. Cleanup never uses the drill's abort
 * signal: Ctrl-C stops the drill, not its cleanup.
 */
export class CleanupStack {
  private readonly tasks: CleanupTask[] = []
  readonly done: CleanupAction[] = []

  constructor(
    private readonly out: Output,
    private readonly clock: Clock = Date.now,
  ) {}

  push(task: CleanupTask): void {
    this.tasks.push(task)
  }

  get pending(): number {
    return this.tasks.length
  }

  async runAll(): Promise<CleanupAction[]> {
    const actions: CleanupAction[] = []
    while (this.tasks.length > 0) {
      const task = this.tasks.pop()!
      let result: Pick<CleanupAction, 'status' | 'detail'>
      try {
        result = await task.run()
      } catch (error) {
        result = {status: 'failed', detail: (error as Error).message.split('\n')[0]}
      }
      const action: CleanupAction = {
        kind: task.kind,
        resource: task.resource,
        action: task.action,
        ...result,
        at: new Date(this.clock()).toISOString(),
      }
      actions.push(action)
      this.done.push(action)
      const line = `cleanup: ${task.action} ${task.kind} ${task.resource}: ${action.status}${action.detail ? ` (${action.detail})` : ''}`
      if (action.status === 'failed' || action.status === 'manual') this.out.warn(line)
      else this.out.info(line)
    }
    return actions
  }
}
