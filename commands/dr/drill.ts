import * as Flags from '@oclif/core/flags'

import {durationFlag} from '../../src/config/duration.js'
import {runDrill} from '../../src/dr/drill.js'
import {allowSourceServerReason} from '../../src/dr/plan.js'
import {renderDrillSchedule, renderDrillSummary} from '../../src/dr/render.js'
import {type DrillScheduleResult, scheduleDrill, unscheduleDrill} from '../../src/dr/schedule.js'
import type {DrillRecord} from '../../src/dr/types.js'
import {UsageError} from '../../src/errors/index.js'
import {RetailOpsCommand} from '../_base/base-command.js'
import {drillSelectionFlags, passThroughFlags, runnerImageFlag} from '../_base/flags.js'
import {releaseEvents} from '../../src/notify/events.js'

/**
 * Flags of the scheduling itself, or set by the schedule (environment, namespace, context,
 * --timeout, --record-in-cluster); every other flag given is passed on to the scheduled drill.
 */
const NOT_SCHEDULED = new Set([
  'schedule',
  'time-zone',
  'schedule-name',
  'unschedule',
  'runner-image',
  'scratch-size',
  'record-in-cluster',
  'timeout',
  'config',
  'environment',
  'context',
  'namespace',
  'yes',
  'verbose',
  'json',
])

type UnscheduleResult = Awaited<ReturnType<typeof unscheduleDrill>>

export default class DrDrill extends RetailOpsCommand<typeof DrDrill> {
  static override summary =
    'Run a restore drill: restore backups into isolated targets, validate them, and measure RTO and RPO against the tier targets.'
  static override description = [
    'Every selected datastore is restored into a drill-named target (retailops_drill_<id>_<name> databases, retailops-drill-<id>-<name> namespaces, new AWS resources) that never overlaps a source,',
    "validated, and cleaned up even when the drill fails or is interrupted. RTO runs from the drill's start to the validated copy; RPO from the restored data's newest point to the start.",
    'The recoverability checks (images pullable by digest, every blob present, or rebuildable from the commit their provenance records; Secrets and ConfigMaps present, topic and search-index definitions kept) run alongside.',
    'The record and Markdown and HTML reports go to .retailops/drills/<id>/.',
    "--schedule CRON instead creates a CronJob in the environment's namespace that runs the same drill (the same selection and flags) in the cluster with the runner image by digest,",
    'as a ServiceAccount allowed only what that drill does; each run keeps its record in a ConfigMap there, which `dr history` reads. --unschedule removes it.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'SIGNATURE',
    'REFUSED',
    'DR_TARGET_MISSED',
    'DR_VALIDATION_FAILED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['drill.passed', 'drill.missed'])
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --tier revenue-critical --json',
    '<%= config.bin %> <%= command.id %> --service orders --datastore orders-db --no-recoverability',
    '<%= config.bin %> <%= command.id %> --tier revenue-critical --schedule "0 3 * * *" --time-zone Europe/Berlin',
    '<%= config.bin %> <%= command.id %> --tier revenue-critical --unschedule',
  ]
  static override flags = {
    ...drillSelectionFlags,
    recoverability: Flags.boolean({
      description: 'Run the recoverability checks (images, Secrets, ConfigMaps, topics, search indexes).',
      default: true,
      allowNo: true,
    }),
    concurrency: Flags.integer({description: 'Datastores restored at once.', default: 4, min: 1, max: 16}),
    timeout: Flags.string({
      description:
        'Stop the drill after this long (it cleans up and ends INTERRUPTED). Scheduled drills default to the longest a selected datastore may take, at least 1h.',
    }),
    'record-in-cluster': Flags.boolean({
      description:
        "Also keep the record in a ConfigMap retailops-dr-record-<id> in the environment's namespace, where `dr history` finds it from anywhere (scheduled drills do).",
    }),
    schedule: Flags.string({
      description:
        'Instead of running now, create a CronJob that runs this drill on this cron schedule: five fields (minute hour day-of-month month day-of-week) or @daily, @weekly, ….',
      helpValue: '<cron>',
      exclusive: ['unschedule'],
    }),
    'time-zone': Flags.string({
      description: 'Time zone of --schedule (an IANA name; default Etc/UTC).',
      dependsOn: ['schedule'],
    }),
    'schedule-name': Flags.string({
      description:
        'Name of the schedule (default: made from --tier/--service/--datastore, "all" without them); several schedules can live in one namespace.',
    }),
    'runner-image': runnerImageFlag('Runner image the scheduled drill runs'),
    'scratch-size': Flags.string({
      description: "Size of the scheduled drill's scratch space (its /tmp: dumps go there).",
      default: '10Gi',
    }),
    unschedule: Flags.boolean({
      description:
        'Delete the schedule (selected as --schedule would name it, or by --schedule-name), its ConfigMap and Secret, its permissions and admission policy.',
      exclusive: ['schedule'],
    }),
  }

  async run(): Promise<DrillRecord | DrillScheduleResult | UnscheduleResult> {
    const f = this.flags
    const project = await this.loadProject()
    const environment = this.target(project)
    const filters = {tiers: f.tier, services: f.service, datastores: f.datastore}
    const allowSourceServer = allowSourceServerReason(f['allow-source-server'])
    const timeoutMs = durationFlag('timeout', f.timeout)
    if (timeoutMs !== undefined && timeoutMs < 60_000)
      throw new UsageError(`--timeout ${f.timeout}: a drill needs at least a minute.`)
    if (!f.schedule && !f.unschedule) {
      for (const name of ['schedule-name', 'runner-image'] as const)
        if (f[name] !== undefined) throw new UsageError(`--${name} goes with --schedule or --unschedule.`)
    }
    if (f.unschedule) {
      const result = await unscheduleDrill({environment, filters, scheduleName: f['schedule-name']}, this.ctx)
      if (result.unscheduled.length > 0) this.log(`Removed ${result.unscheduled.join(', ')}.`)
      return result
    }
    if (f.schedule !== undefined) {
      const result = await scheduleDrill(
        {
          project,
          environment,
          filters,
          recoverability: f.recoverability,
          allowSourceServer,
          cron: f.schedule,
          timeZone: f['time-zone'],
          scheduleName: f['schedule-name'],
          timeoutMs,
          scratchSize: f['scratch-size'],
          drillFlags: passThroughFlags(f, this.explicitFlags, NOT_SCHEDULED),
          runnerImage: f['runner-image'],
        },
        this.ctx,
      )
      this.log(renderDrillSchedule(result))
      return result
    }
    const record = await runDrill(
      {
        project,
        environment,
        filters,
        recoverability: f.recoverability,
        concurrency: f.concurrency,
        allowSourceServer,
        timeoutMs,
        recordInCluster: f['record-in-cluster'],
      },
      this.ctx,
    )
    this.log(renderDrillSummary(record))
    if (record.exit !== 'OK') this.setOutcome(record.exit)
    else if (record.clusterRecord?.error) this.setOutcome(record.clusterRecord.error.exit)
    return record
  }
}
