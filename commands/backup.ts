import * as Flags from '@oclif/core/flags'

import {type BackupResult, backupNamespace} from '../src/dr/backup.js'
import {type BackupScheduleResult, scheduleBackup, unscheduleBackup} from '../src/dr/backup-schedule.js'
import {renderBackup, renderBackupSchedule} from '../src/dr/render.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {runnerImageFlag} from './_base/flags.js'

export type BackupCommandResult =
  | ({action: 'backup'} & BackupResult)
  | ({action: 'schedule'} & BackupScheduleResult)
  | {action: 'unschedule'; namespace: string; removed: string[]}

export default class Backup extends RetailOpsCommand<typeof Backup> {
  static override summary = "Back up the objects retailops manages in an environment's namespace, in Velero's layout."
  static override description = [
    "Reads every object labelled app.kubernetes.io/managed-by=retailops in the environment's namespace (the kinds a deploy writes, and Secrets)",
    'and writes them to --to (or backup.location): s3://bucket/prefix, read and written with the AWS SDK (RETAILOPS_S3_ENDPOINT for an S3-compatible store), or a directory.',
    "The layout is Velero's (backups/<name>/<name>.tar.gz and velero-backup.json), with retailops-backup.json holding the tarball's size and SHA-256,",
    'so a kubernetes datastore with kubernetes.backup.location restores it in `dr drill` exactly as it restores a Velero backup.',
    "--schedule CRON instead creates a CronJob in the environment's namespace that runs the backup with the runner image by digest; --unschedule removes it.",
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
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> --environment production --to s3://shop-backups/retailops',
    '<%= config.bin %> <%= command.id %> --environment production --schedule "0 */6 * * *"',
    '<%= config.bin %> <%= command.id %> --environment production --unschedule',
  ]
  static override flags = {
    to: Flags.string({
      description: 'Where the backup goes: s3://bucket/prefix or a directory (default backup.location).',
    }),
    schedule: Flags.string({
      description:
        'Instead of backing up now, create a CronJob that backs up on this cron schedule: five fields or @hourly, @daily, … (needs an s3:// location).',
      exclusive: ['unschedule'],
    }),
    'time-zone': Flags.string({
      description: 'Time zone of --schedule (an IANA name; default Etc/UTC).',
      dependsOn: ['schedule'],
    }),
    'runner-image': runnerImageFlag('Runner image the backup CronJob runs', {dependsOn: ['schedule']}),
    unschedule: Flags.boolean({
      description: "Delete the namespace's backup CronJob and its permissions (never a backup).",
    }),
  }

  async run(): Promise<BackupCommandResult> {
    const project = await this.loadProject()
    const environment = this.target(project)
    const f = this.flags
    if (f.unschedule) {
      const removed = await unscheduleBackup(environment)
      this.log(removed.length ? `Removed ${removed.join(', ')}.` : `No backup schedule in ${environment.namespace}.`)
      return {action: 'unschedule', namespace: environment.namespace, removed}
    }
    if (f.schedule !== undefined) {
      const scheduled = await scheduleBackup(
        {
          project,
          environment,
          to: f.to,
          schedule: f.schedule,
          timeZone: f['time-zone'],
          runnerImage: f['runner-image'],
        },
        this.ctx,
      )
      this.log(renderBackupSchedule(scheduled))
      return {action: 'schedule', ...scheduled}
    }
    const result = await backupNamespace({project, environment, to: f.to, signal: this.ctx.signal}, this.ctx)
    this.log(renderBackup(result))
    return {action: 'backup', ...result}
  }
}
