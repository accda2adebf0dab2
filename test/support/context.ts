import type {RunContext} from '../../src/ui/context.js'
import {RecordingOutput} from '../../src/ui/output.js'

/** A RunContext whose output is recorded (ctx.out.messages) instead of printed. */
export function testContext(signal?: AbortSignal): RunContext & {out: RecordingOutput} {
  return {out: new RecordingOutput(), ...(signal ? {signal} : {})}
}
