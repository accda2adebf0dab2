import {UsageError} from '../errors/index.js'

/**
 * CronJob schedules, checked before anything is written: the standard five fields (minute, hour,
 * day of month, month, day of week; lists, ranges, steps, JAN-DEC and SUN-SAT names, 7 for
 * Sunday) and the macros Kubernetes accepts (@yearly, @monthly, @weekly, @daily, @hourly). A
 * time zone goes in CronJob.spec.timeZone (an IANA name), never as CRON_TZ= in the schedule,
 * which Kubernetes rejects. The next runs are computed as the CronJob controller does: day of
 * month and day of week, when both are restricted, match either (Vixie cron).
 */

export interface CronSchedule {
  expression: string
  minutes: Set<number>
  hours: Set<number>
  days: Set<number>
  months: Set<number>
  weekdays: Set<number>
  /** Day of month / day of week were `*` (unrestricted). */
  anyDay: boolean
  anyWeekday: boolean
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

const FIELDS = [
  {name: 'minute', min: 0, max: 59},
  {name: 'hour', min: 0, max: 23},
  {name: 'day of month', min: 1, max: 31},
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  },
  {name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']},
] as const

const EXAMPLES = [
  '"0 3 * * *" (every day at 03:00)',
  '"30 2 * * 1-5" (weekdays at 02:30)',
  '"0 4 1 * *" (the 1st of every month at 04:00)',
  '@weekly',
]

function bad(expression: string, why: string): UsageError {
  return new UsageError(`--schedule "${expression}": ${why}.`, {
    nextSteps: [
      `A schedule is five fields, minute hour day-of-month month day-of-week, e.g. ${EXAMPLES.join(', ')}; or @hourly, @daily, @weekly, @monthly, @yearly.`,
    ],
  })
}

function parseValue(expression: string, field: (typeof FIELDS)[number], text: string): number {
  const names = 'names' in field ? field.names : undefined
  const upper = text.toUpperCase()
  if (names && names.includes(upper as never)) return names.indexOf(upper as never) + (field.name === 'month' ? 1 : 0)
  if (!/^\d+$/.test(text))
    throw bad(
      expression,
      `"${text}" is not a ${field.name}${names ? ` (a number or ${names[0]}-${names.at(-1)})` : ''}`,
    )
  const n = Number(text)
  if (n < field.min || n > field.max)
    throw bad(expression, `${field.name} ${n} is out of range ${field.min}-${field.max}`)
  return n
}

function parseField(expression: string, field: (typeof FIELDS)[number], text: string): Set<number> {
  const values = new Set<number>()
  for (const part of text.split(',')) {
    if (part === '') throw bad(expression, `the ${field.name} field "${text}" has an empty list item`)
    const [range, stepText, extra] = part.split('/')
    if (extra !== undefined) throw bad(expression, `"${part}" has more than one step`)
    let step = 1
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0)
        throw bad(expression, `the step "/${stepText}" in the ${field.name} field must be a whole number above 0`)
      step = Number(stepText)
    }
    let from: number
    let to: number
    if (range === '*' || range === '?') {
      from = field.min
      to = field.name === 'day of week' ? 6 : field.max
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-')
      if (more !== undefined) throw bad(expression, `"${range}" is not a range`)
      from = parseValue(expression, field, a)
      to = parseValue(expression, field, b)
      if (from > to) throw bad(expression, `the range ${range} in the ${field.name} field runs backwards`)
    } else {
      from = parseValue(expression, field, range)
      to = stepText === undefined ? from : field.max
    }
    for (let v = from; v <= to; v += step) values.add(field.name === 'day of week' && v === 7 ? 0 : v)
  }
  return values
}

/** Parses and checks a schedule; a USAGE error says what is wrong and shows examples. */
export function parseCron(input: string): CronSchedule {
  const expression = input.trim()
  if (/^(CRON_)?TZ=/i.test(expression)) {
    throw new UsageError(
      `--schedule "${input}": a time zone does not go in the schedule (Kubernetes rejects CRON_TZ= and TZ=).`,
      {nextSteps: ['Pass it as --time-zone, e.g. --time-zone Europe/Berlin.']},
    )
  }
  if (expression === '') throw bad(input, 'it is empty')
  const expanded = expression.startsWith('@') ? MACROS[expression.toLowerCase()] : expression
  if (expanded === undefined) throw bad(input, `${expression} is not one of ${Object.keys(MACROS).join(', ')}`)
  const parts = expanded.split(/\s+/).filter(Boolean)
  if (parts.length !== 5)
    throw bad(
      input,
      `it has ${parts.length} field${parts.length === 1 ? '' : 's'}, not 5${parts.length === 6 ? ' (seconds are not supported)' : ''}`,
    )
  const [minutes, hours, days, months, weekdays] = parts.map((p, i) => parseField(input, FIELDS[i], p))
  const schedule: CronSchedule = {
    expression,
    minutes,
    hours,
    days,
    months,
    weekdays,
    anyDay: parts[2] === '*' || parts[2] === '?',
    anyWeekday: parts[4] === '*' || parts[4] === '?',
  }
  // "0 0 30 2 *" is valid syntax that never runs: refuse it rather than schedule nothing.
  if (
    schedule.anyWeekday &&
    ![...months].some((m) => [...days].some((d) => d <= [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]))
  ) {
    throw bad(input, 'no month in it has that day, so it would never run')
  }
  return schedule
}

/**
 * Names every tz database has, spelt as Kubernetes wants them. The first Intl.DateTimeFormat of a
 * process loads ICU's time zone data (about 30 ms of CPU), which a configuration on UTC, the
 * default, should not pay on every validation.
 */
const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT'])

/** Checks an IANA time zone name the way the CronJob controller will need it. */
export function checkTimeZone(timeZone: string): string {
  if (UTC_NAMES.has(timeZone)) return timeZone
  let resolved: string
  try {
    resolved = new Intl.DateTimeFormat('en-US', {timeZone}).resolvedOptions().timeZone
  } catch {
    throw new UsageError(`--time-zone ${timeZone} is not a time zone name.`, {
      nextSteps: [
        'Use an IANA name such as Etc/UTC, Europe/Berlin or America/New_York (the CronJob controller looks it up in its tz database).',
      ],
    })
  }
  // The controller's lookup is case-sensitive; Intl's is not.
  if (resolved !== timeZone && resolved.toLowerCase() === timeZone.toLowerCase()) {
    throw new UsageError(`--time-zone ${timeZone}: time zone names are case-sensitive in Kubernetes.`, {
      nextSteps: [`Use ${resolved}.`],
    })
  }
  return timeZone
}

interface Zoned {
  minute: number
  hour: number
  day: number
  month: number
  weekday: number
}

function zoned(formatter: Intl.DateTimeFormat, t: number): Zoned {
  const parts: Record<string, string> = {}
  for (const p of formatter.formatToParts(new Date(t))) parts[p.type] = p.value
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday)
  return {
    minute: Number(parts.minute),
    hour: Number(parts.hour) % 24,
    day: Number(parts.day),
    month: Number(parts.month),
    weekday,
  }
}

/** The next `count` times the schedule fires after `from`, in the time zone. */
export function nextRuns(schedule: CronSchedule, timeZone: string, from: Date, count = 1): Date[] {
  const formatter = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    minute: 'numeric',
    hour: 'numeric',
    day: 'numeric',
    month: 'numeric',
    weekday: 'short',
  })
  const runs: Date[] = []
  let t = Math.floor(from.getTime() / 60_000) * 60_000 + 60_000
  // Five years covers every schedule that runs at all (29 February on a given weekday included).
  const limit = t + 5 * 366 * 86_400_000
  while (runs.length < count && t < limit) {
    const z = zoned(formatter, t)
    const dayMatches =
      schedule.anyDay && schedule.anyWeekday
        ? true
        : schedule.anyDay
          ? schedule.weekdays.has(z.weekday)
          : schedule.anyWeekday
            ? schedule.days.has(z.day)
            : schedule.days.has(z.day) || schedule.weekdays.has(z.weekday)
    if (!schedule.months.has(z.month) || !dayMatches || !schedule.hours.has(z.hour)) {
      // Nothing in this hour can match: go to the next hour (time zone offsets are whole minutes).
      t += (60 - z.minute) * 60_000
      continue
    }
    if (schedule.minutes.has(z.minute)) runs.push(new Date(t))
    t += 60_000
  }
  return runs
}
