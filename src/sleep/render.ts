import type {SleepScheduleResult} from './schedule.js'
import type {SleepResult} from './sleep.js'

export function renderSleep(result: SleepResult): string {
  const lines = [result.message]
  for (const t of result.targets) {
    const values = Object.entries(t.saved)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
    lines.push(`  ${t.namespace}/${t.kind}/${t.name}: ${t.outcome} (saved ${values})`)
  }
  return lines.join('\n')
}

export function renderSleepSchedule(s: SleepScheduleResult): string {
  return [
    `Scheduled in ${s.namespace} (runner ${s.runnerImage}):`,
    `  sleep: CronJob ${s.sleep.name}  "${s.sleep.schedule}" ${s.sleep.timeZone}  next ${s.sleep.nextRuns[0] ?? '-'}`,
    `  wake:  CronJob ${s.wake.name}  "${s.wake.schedule}" ${s.wake.timeZone}  next ${s.wake.nextRuns[0] ?? '-'}`,
    `Remove with: retailops sleep --environment ${s.environment} --unschedule`,
  ].join('\n')
}
