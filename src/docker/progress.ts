import {createRequire} from 'node:module'

import protobuf from 'protobufjs'

/**
 * Reads the JSON message stream of POST /build (classic builder and BuildKit) and POST
 * /images/{name}/push. dockerode's followProgress resolves such streams without an error even when
 * the build or push failed: the failure is an event (`error`/`errorDetail`) inside the stream, so
 * every event is inspected here.
 */

export interface StreamEvent {
  stream?: string
  status?: string
  progress?: string
  id?: string
  error?: string
  errorDetail?: {message?: string; code?: number}
  aux?: unknown
}

export interface StepFailure {
  /** The error message of the stream (or of the failing BuildKit step). */
  message: string
  /** The failing step, e.g. "Step 4/7 : RUN npm test" or "[3/5] RUN npm test". */
  step?: string
  /** The step's last lines of output. */
  output: string[]
}

const MAX_STEP_LINES = 60

// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;?]*[ -/]*[@-~]/g

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '')
}

/** Splits a byte stream into lines and each line into a JSON event; a line that is not JSON is passed through as text. */
export class JsonLines {
  private buffer = ''

  constructor(private readonly onEvent: (event: StreamEvent) => void) {}

  push(chunk: Buffer | string): void {
    this.buffer += chunk.toString()
    const lines = this.buffer.split('\n')
    this.buffer = lines.pop() ?? ''
    for (const line of lines) this.line(line)
  }

  end(): void {
    if (this.buffer.trim()) this.line(this.buffer)
    this.buffer = ''
  }

  private line(line: string): void {
    const trimmed = line.trim()
    if (!trimmed) return
    try {
      this.onEvent(JSON.parse(trimmed) as StreamEvent)
    } catch {
      this.onEvent({stream: `${trimmed}\n`})
    }
  }
}

/** Reads an engine message stream to its end, one event per JSON line; rejects only on a transport error. */
export async function followJsonStream(
  stream: NodeJS.ReadableStream,
  onEvent: (event: StreamEvent) => void,
): Promise<void> {
  const lines = new JsonLines(onEvent)
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => lines.push(chunk))
    stream.on('end', () => resolve())
    stream.on('close', () => resolve())
    stream.on('error', reject)
  })
  lines.end()
}

interface DecodedStatus {
  vertexes?: {digest: string; name: string; cached?: boolean; started?: unknown; completed?: unknown; error?: string}[]
  logs?: {vertex: string; msg: Uint8Array | string}[]
  warnings?: {vertex: string; short: Uint8Array | string}[]
}

let statusType: protobuf.Type | undefined

/** BuildKit's StatusResponse, decoded with the proto definition that dockerode ships. */
function decodeStatus(base64: string): DecodedStatus {
  if (!statusType) {
    const require = createRequire(import.meta.url)
    const file = require.resolve('dockerode/lib/proto/buildkit_status.proto')
    statusType = protobuf.loadSync(file).lookupType('moby.buildkit.v1.StatusResponse')
  }
  if (!base64) return {}
  return statusType.toObject(statusType.decode(Buffer.from(base64, 'base64')), {defaults: false})
}

interface Vertex {
  n: number
  name: string
  started: boolean
  done: boolean
  error?: string
  logs: string[]
  partial: string
}

/**
 * Follows a build: turns classic `stream` lines and BuildKit traces into readable lines (one
 * callback per line, prefixed with the BuildKit step number like `docker build --progress plain`),
 * keeps each step's output, and remembers the image ID and the first failure.
 */
export class BuildProgress {
  imageId?: string
  failure?: StepFailure
  readonly lines: string[] = []

  private partial = ''
  private classicStep?: string
  private classicOutput: string[] = []
  private readonly vertexes = new Map<string, Vertex>()

  constructor(private readonly emit: (line: string) => void = () => {}) {}

  handle(event: StreamEvent): void {
    if (event.error || event.errorDetail) {
      this.flushClassic()
      const message = (event.errorDetail?.message ?? event.error ?? 'unknown error').trim()
      this.fail(message)
      return
    }
    if (event.id === 'moby.buildkit.trace') {
      this.buildkit(typeof event.aux === 'string' ? event.aux : '')
      return
    }
    const aux = event.aux as {ID?: string} | undefined
    if (aux && typeof aux === 'object' && typeof aux.ID === 'string') {
      this.imageId = aux.ID
      return
    }
    if (typeof event.stream === 'string') {
      this.classic(event.stream)
      return
    }
    if (typeof event.status === 'string') {
      // Base-image pulls by the classic builder; progress bars are noise in logs.
      if (!event.progress) this.out(`${event.id ? `${event.id}: ` : ''}${event.status}`)
    }
  }

  /** Call after the stream ended. */
  finish(): void {
    this.flushClassic()
  }

  private out(line: string): void {
    this.lines.push(line)
    this.emit(line)
  }

  private fail(message: string): void {
    if (this.failure) return
    const failed = [...this.vertexes.values()].find((v) => v.error && !/context canceled/.test(v.error))
    if (failed) {
      this.failure = {message, step: `#${failed.n} ${failed.name}`, output: failed.logs.slice(-MAX_STEP_LINES)}
    } else {
      this.failure = {message, step: this.classicStep, output: this.classicOutput.slice(-MAX_STEP_LINES)}
    }
    this.out(`ERROR: ${message}`)
  }

  private classic(text: string): void {
    this.partial += text
    const parts = this.partial.split('\n')
    this.partial = parts.pop() ?? ''
    for (const raw of parts) this.classicLine(raw.replace(/\r$/, ''))
  }

  private flushClassic(): void {
    if (this.partial) this.classicLine(this.partial)
    this.partial = ''
  }

  private classicLine(raw: string): void {
    // The classic builder colours a RUN step's stderr red with ANSI escapes.
    const line = stripAnsi(raw)
    if (!line.trim()) return
    if (/^Step \d+\/\d+ : /.test(line)) {
      this.classicStep = line
      this.classicOutput = []
    } else {
      this.classicOutput.push(line)
    }
    this.out(line)
  }

  private vertex(digest: string, name = ''): Vertex {
    let v = this.vertexes.get(digest)
    if (!v) {
      v = {n: this.vertexes.size + 1, name, started: false, done: false, logs: [], partial: ''}
      this.vertexes.set(digest, v)
    }
    if (name && !v.name) v.name = name
    return v
  }

  private buildkit(aux: string): void {
    let status: DecodedStatus
    try {
      status = decodeStatus(aux)
    } catch {
      return
    }
    for (const raw of status.vertexes ?? []) {
      const v = this.vertex(raw.digest, raw.name)
      if (raw.started && !v.started) {
        v.started = true
        this.out(`#${v.n} ${v.name}`)
      }
      if (raw.error && !v.error) {
        v.error = raw.error
        this.out(`#${v.n} ERROR: ${raw.error}`)
      }
      if (raw.completed && !v.done) {
        v.done = true
        if (raw.cached) this.out(`#${v.n} CACHED`)
        else if (!raw.error) this.out(`#${v.n} DONE`)
      }
    }
    for (const log of status.logs ?? []) {
      const v = this.vertex(log.vertex)
      const text =
        v.partial +
        (typeof log.msg === 'string'
          ? Buffer.from(log.msg, 'base64').toString('utf8')
          : Buffer.from(log.msg).toString('utf8'))
      const parts = text.split('\n')
      v.partial = parts.pop() ?? ''
      for (const line of parts) {
        const clean = stripAnsi(line.replace(/\r$/, ''))
        if (!clean.trim()) continue
        v.logs.push(clean)
        if (v.logs.length > MAX_STEP_LINES * 4) v.logs.splice(0, v.logs.length - MAX_STEP_LINES)
        this.out(`#${v.n} ${clean}`)
      }
    }
    for (const w of status.warnings ?? []) {
      const v = this.vertex(w.vertex)
      const text =
        typeof w.short === 'string'
          ? Buffer.from(w.short, 'base64').toString('utf8')
          : Buffer.from(w.short).toString('utf8')
      this.out(`#${v.n} WARNING: ${text}`)
    }
  }
}

export interface PushOutcome {
  digest?: string
  size?: number
  failure?: string
}

/** Follows a push: the manifest digest (aux.Digest or the "digest: sha256:… size: N" status) and the first error. */
export class PushProgress {
  readonly outcome: PushOutcome = {}
  private readonly reported = new Set<string>()

  constructor(private readonly emit: (line: string) => void = () => {}) {}

  handle(event: StreamEvent): void {
    if (event.error || event.errorDetail) {
      const message = (event.errorDetail?.message ?? event.error ?? 'unknown error').trim()
      this.outcome.failure ??= message
      this.emit(`ERROR: ${message}`)
      return
    }
    const aux = event.aux as {Digest?: string; Size?: number} | undefined
    if (aux && typeof aux === 'object' && typeof aux.Digest === 'string') {
      this.outcome.digest = aux.Digest
      this.outcome.size = aux.Size
      return
    }
    if (typeof event.status === 'string') {
      const m = /^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$/.exec(event.status)
      if (m) {
        this.outcome.digest ??= m[2]
        this.outcome.size ??= Number(m[3])
      }
      // One line per layer and state, without the byte counters.
      const key = `${event.id ?? ''} ${event.status}`
      if (!event.progress && !this.reported.has(key)) {
        this.reported.add(key)
        this.emit(event.id ? `${event.id}: ${event.status}` : event.status)
      }
    }
  }
}
