import {eventPatternMatches} from '../config/vocabulary.js'
import {RELEASE_EVENT_NAMES, type ReleaseEventType} from '../ui/events.js'

/** The event names a list of names and wildcards (`rollout.*`) stands for: a command's `releaseEvents`. */
export function releaseEvents(patterns: string[]): ReleaseEventType[] {
  return RELEASE_EVENT_NAMES.filter((e) => patterns.some((p) => eventPatternMatches(p, e)))
}
