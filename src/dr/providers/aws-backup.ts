import {createHash} from 'node:crypto'

import type {BackupClient, RecoveryPointByBackupVault} from '@aws-sdk/client-backup'

import {formatDuration, parseDuration} from '../../config/duration.js'
import type {DatastoreConfig} from '../../config/schema.js'
import {PermissionError, RetailOpsError, UnavailableError} from '../../errors/index.js'
import {throwIfAborted} from '../../ui/context.js'
import {drillResourceName} from '../naming.js'
import {sleep} from '../../kubernetes/wait.js'
import type {ValidationResult} from '../types.js'
import {type DrillProvider, type ProviderResult, RESTORE_FAILED} from './types.js'

/**
 * AWS Backup restore drill: the newest COMPLETED recovery point of the datastore's resource,
 * restored by StartRestoreJob into a new, drill-named resource, polled to a terminal status,
 * checked, reported back with PutRestoreValidationResult, and cleaned up.
 *
 * Cleanup: on-demand restores are never deleted by AWS, and deleting needs the restored resource's
 * own service API (RDS, DynamoDB, EC2, EFS, S3…), which retailops does not carry. The drill
 * therefore reports the CreatedResourceArn and the exact command that deletes it as a "manual"
 * cleanup step (a warning, in the report and the JSON), never silently leaves it.
 */
export interface AwsBackupOptions {
  /** First poll interval; grows 1.5× per poll up to maxPollMs. */
  pollMs?: number
  maxPollMs?: number
  /** Builds the client; tests use aws-sdk-client-mock on BackupClient. */
  client?: (region: string | undefined) => Promise<BackupClient>
}

type Aws = NonNullable<DatastoreConfig['awsBackup']>
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'ABORTED'])

function regionOf(cfg: Aws, env: NodeJS.ProcessEnv): string | undefined {
  return cfg.region ?? cfg.resourceArn?.split(':')[3] ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION
}

/** IdempotencyToken: a retried StartRestoreJob of the same drill, resource and point does nothing new. */
export function idempotencyToken(drillId: string, resource: string, recoveryPointArn: string): string {
  return createHash('sha256').update(`${drillId}\0${resource}\0${recoveryPointArn}`).digest('hex').slice(0, 36)
}

/** The newest COMPLETED recovery point (AWS lists in no promised order). */
export function newestCompleted(points: RecoveryPointByBackupVault[]): RecoveryPointByBackupVault | undefined {
  return points
    .filter((p) => p.Status === 'COMPLETED' && p.CreationDate)
    .reduce<RecoveryPointByBackupVault | undefined>(
      (best, p) => (!best || p.CreationDate!.getTime() > best.CreationDate!.getTime() ? p : best),
      undefined,
    )
}

/** Keys whose values the report masks. */
const SENSITIVE = /password|secret|token|kms|key/i

/**
 * Where each supported resource type's restore lands. `nameKeys` name the new resource and are
 * always the drill's name; `trueKeys` must stay "true" (false would restore into an existing file
 * system or bucket: the source). EBS volumes and EC2 instances are always new, with ids AWS
 * assigns. Any other type is refused: retailops could not prove its restore creates a new resource.
 */
export const RESTORE_TARGETS: Record<string, {nameKeys: string[]; trueKeys: string[]}> = {
  RDS: {nameKeys: ['DBInstanceIdentifier'], trueKeys: []},
  Aurora: {nameKeys: ['DBClusterIdentifier'], trueKeys: []},
  DocumentDB: {nameKeys: ['DBClusterIdentifier'], trueKeys: []},
  Neptune: {nameKeys: ['DBClusterIdentifier'], trueKeys: []},
  DynamoDB: {nameKeys: ['targetTableName'], trueKeys: []},
  EFS: {nameKeys: ['CreationToken'], trueKeys: ['newFileSystem']},
  S3: {nameKeys: ['DestinationBucketName'], trueKeys: ['NewBucket']},
  EBS: {nameKeys: [], trueKeys: []},
  EC2: {nameKeys: [], trueKeys: []},
}

const TRUE_KEYS = new Set(Object.values(RESTORE_TARGETS).flatMap((t) => t.trueKeys))

/** Every key the drill itself sets, for any type: restoreMetadata may not set them. */
export const DRILL_OWNED_KEYS = [
  ...new Set(Object.values(RESTORE_TARGETS).flatMap((t) => [...t.nameKeys, ...t.trueKeys])),
]

/** The resource type an ARN names, as AWS Backup spells it (undefined when the ARN does not say). */
export function resourceTypeOfArn(arn: string | undefined): string | undefined {
  if (!arn) return undefined
  const [, , service, , , ...rest] = arn.split(':')
  const resource = rest.join(':')
  if (service === 'rds')
    return resource.startsWith('cluster:') ? 'Aurora' : resource.startsWith('db:') ? 'RDS' : undefined
  if (service === 'dynamodb') return 'DynamoDB'
  if (service === 'elasticfilesystem') return 'EFS'
  if (service === 's3') return 'S3'
  if (service === 'ec2')
    return resource.startsWith('volume/') ? 'EBS' : resource.startsWith('instance/') ? 'EC2' : undefined
  if (service === 'docdb') return 'DocumentDB'
  if (service === 'neptune-db') return 'Neptune'
  return service ? `${service} (${resource.split(/[:/]/)[0]})` : undefined
}

/** The name or id at the end of an ARN: payments for arn:aws:rds:…:db:payments, a bucket's name, a volume's id. */
export function resourceIdOfArn(arn: string): string {
  const rest = arn.split(':').slice(5).join(':')
  return rest.split(/[:/]/).pop() ?? rest
}

/** Keys that name a resource a restore writes to (a subnet group or parameter group sharing the source's name is fine). */
const DESTINATION_KEY = /(identifier|table-?name|bucket-?name|file-?system-?id|volume-?id|instance-?id)$/i

function findKey(metadata: Record<string, string>, key: string): string | undefined {
  return Object.keys(metadata).find((k) => k.toLowerCase() === key.toLowerCase())
}

/**
 * What is wrong with a datastore's restoreMetadata overrides, before anything runs: they may not
 * set a key the drill owns (the new resource's name, newFileSystem, NewBucket), nor name the source
 * resource anywhere; the source itself may not be a drill copy; a resource type whose restore
 * retailops cannot keep apart from the source is refused.
 */
export function restoreOverrideProblems(overrides: Record<string, string>, resourceArn: string | undefined): string[] {
  const problems: string[] = []
  for (const key of Object.keys(overrides)) {
    const owned = DRILL_OWNED_KEYS.find((k) => k.toLowerCase() === key.toLowerCase())
    if (owned) {
      const why = TRUE_KEYS.has(owned)
        ? 'to "true", so the restore creates a new resource instead of writing into an existing one'
        : 'to its retailops-drill-<id>-<datastore> name, so a restore never lands on an existing resource'
      problems.push(
        `awsBackup.restoreMetadata.${key} is set (to "${overrides[key]}"), but the drill sets ${owned} itself (${why}); remove the key`,
      )
    }
  }
  if (resourceArn) {
    const id = resourceIdOfArn(resourceArn)
    for (const [key, value] of Object.entries(overrides)) {
      if (
        value === resourceArn ||
        (value === id &&
          DESTINATION_KEY.test(key) &&
          !DRILL_OWNED_KEYS.some((k) => k.toLowerCase() === key.toLowerCase()))
      ) {
        problems.push(
          `awsBackup.restoreMetadata.${key} names the source resource (${value}); a drill never restores onto or into its source: remove the key or name something that is not the source`,
        )
      }
    }
    if (id.startsWith('retailops-drill-'))
      problems.push(
        `awsBackup.resourceArn ${resourceArn} is itself a drill copy; point it at the resource the drill protects`,
      )
    const type = resourceTypeOfArn(resourceArn)
    if (type && !RESTORE_TARGETS[type])
      problems.push(
        `awsBackup.resourceArn is a ${type} resource, which retailops drills do not support: retailops cannot prove its restore creates a new resource (supported: ${Object.keys(RESTORE_TARGETS).join(', ')})`,
      )
  }
  return problems
}

/**
 * Restore metadata: what AWS returned for the original resource, the datastore's overrides (keys
 * matched case-insensitively), then the drill's own keys: the new resource's name and, for EFS and
 * S3, a new file system or bucket. The drill's keys always win (overrides of them are refused by
 * the plan; checkRestoreMetadata verifies the result before StartRestoreJob).
 */
export function buildRestoreMetadata(
  resourceType: string | undefined,
  original: Record<string, string>,
  overrides: Record<string, string>,
  name: string,
): Record<string, string> {
  const merged: Record<string, string> = {...original}
  const set = (key: string, value: string) => {
    const existing = findKey(merged, key)
    if (existing) delete merged[existing]
    merged[key] = value
  }
  for (const [k, v] of Object.entries(overrides)) set(k, v)
  const target = resourceType ? RESTORE_TARGETS[resourceType] : undefined
  for (const key of target?.nameKeys ?? []) set(key, name)
  for (const key of target?.trueKeys ?? []) set(key, 'true')
  return merged
}

/**
 * The last check before StartRestoreJob (the drill's first write to AWS): the type is supported,
 * every naming key carries the drill's name, every keep-apart key is "true", and nothing the
 * restore writes to names the source resource.
 */
export function checkRestoreMetadata(
  resourceType: string | undefined,
  metadata: Record<string, string>,
  name: string,
  sourceArn: string | undefined,
): string[] {
  const target = resourceType ? RESTORE_TARGETS[resourceType] : undefined
  if (!target)
    return [
      `resource type ${resourceType ?? '(none reported)'} is not supported by retailops drills: retailops cannot prove its restore creates a new resource (supported: ${Object.keys(RESTORE_TARGETS).join(', ')})`,
    ]
  const problems: string[] = []
  const sourceId = sourceArn ? resourceIdOfArn(sourceArn) : undefined
  for (const key of target.nameKeys) {
    const k = findKey(metadata, key)
    const value = k ? metadata[k] : undefined
    if (value !== name)
      problems.push(
        `restore metadata ${key} is ${value === undefined ? 'missing' : `"${value}"`}${value !== undefined && value === sourceId ? ' (the source resource)' : ''}, not the drill's name ${name}`,
      )
  }
  for (const key of target.trueKeys) {
    const k = findKey(metadata, key)
    if (!k || metadata[k].toLowerCase() !== 'true')
      problems.push(
        `restore metadata ${key} is ${k ? `"${metadata[k]}"` : 'missing'}, not "true": the restore would write into an existing resource`,
      )
  }
  return problems
}

export function maskMetadata(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, SENSITIVE.test(k) ? '***' : v]))
}

/**
 * The command that deletes a restored resource, by the ARN's service and resource type; undefined
 * for anything the drill cannot prove it created. A resource with a name must carry the drill's
 * name; one with an AWS-assigned id (EBS, EC2, EFS) must not be the source. A command is never
 * printed for the source, for a name the drill did not choose, or for a type it does not know.
 */
export function cleanupCommand(arn: string, drillName: string, sourceArn?: string): string | undefined {
  if (sourceArn && arn === sourceArn) return undefined
  const [, , service, region, , ...rest] = arn.split(':')
  const resource = rest.join(':')
  const r = region ? ` --region ${region}` : ''
  const named = (id: string) => id === drillName
  if (service === 'rds' && resource.startsWith('db:') && named(resource.slice(3)))
    return `aws rds delete-db-instance --db-instance-identifier ${resource.slice(3)} --skip-final-snapshot --delete-automated-backups${r}`
  if (service === 'rds' && resource.startsWith('cluster:') && named(resource.slice(8)))
    return `aws rds delete-db-cluster --db-cluster-identifier ${resource.slice(8)} --skip-final-snapshot${r} (delete its instances first)`
  if (service === 'dynamodb' && resource.startsWith('table/') && named(resource.slice(6)))
    return `aws dynamodb delete-table --table-name ${resource.slice(6)}${r}`
  if (service === 'ec2' && resource.startsWith('volume/'))
    return `aws ec2 delete-volume --volume-id ${resource.slice(7)}${r}`
  if (service === 'ec2' && resource.startsWith('instance/'))
    return `aws ec2 terminate-instances --instance-ids ${resource.slice(9)}${r}`
  if (service === 'elasticfilesystem' && resource.startsWith('file-system/'))
    return `aws efs delete-file-system --file-system-id ${resource.slice(12)}${r} (delete its mount targets first)`
  if (service === 's3' && named(resource)) return `aws s3 rb s3://${resource} --force`
  return undefined
}

function isThrottle(error: unknown): boolean {
  const e = error as {name?: string; $metadata?: {httpStatusCode?: number}; $retryable?: {throttling?: boolean}}
  return (
    Boolean(e?.$retryable?.throttling) ||
    /Throttl|TooManyRequests|RequestLimitExceeded/i.test(e?.name ?? '') ||
    e?.$metadata?.httpStatusCode === 429
  )
}

export function awsError(error: unknown, doing: string): RetailOpsError {
  if (error instanceof RetailOpsError) return error
  const e = error as {name?: string; message?: string; $metadata?: {httpStatusCode?: number}; code?: string}
  const message = `AWS Backup error while ${doing}: ${e.name ? `${e.name}: ` : ''}${e.message ?? String(error)}`
  if (
    /AccessDenied|UnrecognizedClient|InvalidSignature|ExpiredToken|CredentialsProviderError|NotAuthorized/i.test(
      `${e.name} ${e.message}`,
    ) ||
    e.$metadata?.httpStatusCode === 403
  ) {
    return new PermissionError(message, {
      nextSteps: [
        'Check AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID) and that they allow backup:ListRecoveryPointsByBackupVault, backup:GetRecoveryPointRestoreMetadata, backup:StartRestoreJob, backup:DescribeRestoreJob, backup:PutRestoreValidationResult and iam:PassRole on the restore role.',
      ],
      cause: error,
    })
  }
  if (/ResourceNotFound/.test(e.name ?? ''))
    return new RetailOpsError('NOT_FOUND', message, {
      nextSteps: ['Check datastores[].awsBackup.vaultName, resourceArn and region.'],
      cause: error,
    })
  if (
    isThrottle(error) ||
    /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ServiceUnavailable|TimeoutError/.test(
      `${e.code} ${e.name} ${e.message}`,
    )
  ) {
    return new UnavailableError(message, {
      nextSteps: ['Check the network path to AWS and the region; retry later if AWS throttles.'],
      cause: error,
    })
  }
  return new RetailOpsError(RESTORE_FAILED, message, {cause: error})
}

export function createAwsBackupProvider(options: AwsBackupOptions = {}): DrillProvider {
  const makeClient =
    options.client ??
    (async (region: string | undefined) => {
      const {BackupClient} = await import('@aws-sdk/client-backup')
      return new BackupClient({region, maxAttempts: 5})
    })
  return {
    name: 'aws-backup',

    plan(ds, ctx) {
      const cfg = ds.awsBackup
      const problems: string[] = []
      if (!cfg) problems.push(`${ds.name}: provider aws-backup needs an awsBackup section`)
      if (ds.validation.length > 0) {
        problems.push(
          `${ds.name}: aws-backup datastores take no validation queries (the built-in checks are: a COMPLETED restore job and a created resource)`,
        )
      }
      if (cfg && !regionOf(cfg, ctx.env))
        problems.push(`${ds.name}: no AWS region: set awsBackup.region, AWS_REGION, or a resourceArn`)
      if (cfg)
        problems.push(...restoreOverrideProblems(cfg.restoreMetadata, cfg.resourceArn).map((p) => `${ds.name}: ${p}`))
      const name = drillResourceName(ctx.drillId, ds.name)
      return {
        source: cfg
          ? `vault ${cfg.vaultName}${cfg.resourceArn ? `, resource ${cfg.resourceArn}` : ''}`
          : '(no awsBackup section)',
        target: `new resource ${name} (restore job)`,
        steps: [
          `list the recovery points of vault ${cfg?.vaultName ?? '?'}${cfg?.resourceArn ? ` for ${cfg.resourceArn}` : ''} (all pages) and pick the newest COMPLETED one (RPO = drill start − its creation date)`,
          `GetRecoveryPointRestoreMetadata, with ${Object.keys(cfg?.restoreMetadata ?? {}).length} override(s) and the new name ${name}`,
          `StartRestoreJob with role ${cfg?.iamRoleArn ?? '?'} and an idempotency token; poll DescribeRestoreJob (at most ${cfg?.timeout ?? '4h'})`,
          'check the job COMPLETED with a created resource; PutRestoreValidationResult',
          "report the restored resource's ARN and the exact command that deletes it (manual cleanup; only for a resource carrying the drill's name, never the source)",
        ],
        problems,
        warnings: [],
      }
    },

    async run(ds, _plan, ctx): Promise<ProviderResult> {
      const cfg = ds.awsBackup!
      const scope = ds.name
      const client = await makeClient(regionOf(cfg, ctx.env))
      const {
        paginateListRecoveryPointsByBackupVault,
        GetRecoveryPointRestoreMetadataCommand,
        StartRestoreJobCommand,
        DescribeRestoreJobCommand,
        PutRestoreValidationResultCommand,
      } = await import('@aws-sdk/client-backup')
      const evidence: Record<string, unknown> = {vault: cfg.vaultName, region: regionOf(cfg, ctx.env)}
      const timeoutMs = parseDuration(cfg.timeout)!

      // 1. The newest COMPLETED recovery point, over every page.
      const point = await ctx.steps.run(
        scope,
        'select-point',
        `newest COMPLETED recovery point in ${cfg.vaultName}`,
        async () => {
          const points: RecoveryPointByBackupVault[] = []
          let pages = 0
          try {
            for await (const page of paginateListRecoveryPointsByBackupVault(
              {client, pageSize: 100},
              {BackupVaultName: cfg.vaultName, ByResourceArn: cfg.resourceArn},
            )) {
              throwIfAborted(ctx.signal)
              pages += 1
              points.push(...(page.RecoveryPoints ?? []))
            }
          } catch (error) {
            if ((error as {code?: string}).code === 'ABORT_ERR') throw error
            throw awsError(error, `listing recovery points of ${cfg.vaultName}`)
          }
          evidence.recoveryPointsListed = points.length
          evidence.pages = pages
          const resources = new Set(points.map((p) => p.ResourceArn).filter(Boolean))
          if (!cfg.resourceArn && resources.size > 1)
            ctx.out.warn(
              `${ds.name}: vault ${cfg.vaultName} holds recovery points of ${resources.size} resources; set awsBackup.resourceArn to drill one of them`,
            )
          const newest = newestCompleted(points)
          if (!newest) {
            throw new RetailOpsError(
              RESTORE_FAILED,
              `Vault ${cfg.vaultName} has no COMPLETED recovery point${cfg.resourceArn ? ` for ${cfg.resourceArn}` : ''} (${points.length} listed): there is nothing to restore.`,
            )
          }
          return newest
        },
        (p) => `${p.RecoveryPointArn} of ${p.CreationDate!.toISOString()}`,
      )
      evidence.recoveryPointArn = point.RecoveryPointArn
      evidence.recoveryPointCreated = point.CreationDate!.toISOString()
      if (point.CompletionDate) evidence.recoveryPointCompleted = point.CompletionDate.toISOString()
      if (point.BackupSizeInBytes !== undefined) evidence.backupSizeBytes = point.BackupSizeInBytes
      evidence.resourceType = point.ResourceType
      evidence.sourceResourceArn = point.ResourceArn

      // 2. Restore metadata.
      const name = drillResourceName(ctx.drillId, ds.name)
      let resourceType: string | undefined = point.ResourceType
      const metadata = await ctx.steps.run(scope, 'metadata', 'restore metadata', async () => {
        try {
          const res = await client.send(
            new GetRecoveryPointRestoreMetadataCommand({
              BackupVaultName: cfg.vaultName,
              RecoveryPointArn: point.RecoveryPointArn,
            }),
            {abortSignal: ctx.signal},
          )
          resourceType = point.ResourceType ?? res.ResourceType
          return buildRestoreMetadata(resourceType, res.RestoreMetadata ?? {}, cfg.restoreMetadata, name)
        } catch (error) {
          throw awsError(error, 'reading the restore metadata')
        }
      })
      evidence.restoreMetadata = maskMetadata(metadata)
      // The last check before the first write: the restore must land in a new, drill-named resource.
      const sourceArn = point.ResourceArn ?? cfg.resourceArn
      const refused = [
        ...new Set([
          ...restoreOverrideProblems(cfg.restoreMetadata, sourceArn),
          ...checkRestoreMetadata(resourceType, metadata, name, sourceArn),
        ]),
      ]
      if (refused.length > 0) {
        throw new RetailOpsError('REFUSED', `${ds.name}: refusing to start the restore job: ${refused.join('; ')}.`, {
          nextSteps: [
            'Remove the named keys from datastores[].awsBackup.restoreMetadata (the drill names what it creates), or drill a supported resource type.',
          ],
          details: {problems: refused},
        })
      }

      // 3. Start the job (idempotent) and poll it to a terminal status.
      const token = idempotencyToken(
        ctx.drillId,
        point.ResourceArn ?? cfg.resourceArn ?? cfg.vaultName,
        point.RecoveryPointArn!,
      )
      const job: {id?: string; createdArn?: string; status?: string} = {}
      ctx.cleanup.push({
        kind: 'restored AWS resource',
        resource: name,
        action: 'delete',
        run: async () => {
          if (!job.id) return {status: 'absent', detail: 'no restore job was started'}
          if (job.createdArn) {
            const command = cleanupCommand(job.createdArn, name, point.ResourceArn ?? cfg.resourceArn)
            if (command) return {status: 'manual', detail: `run: ${command}`}
            return {
              status: 'manual',
              detail: `restore job ${job.id} reports ${job.createdArn}, which does not carry the drill's name ${name} (or is the source): no delete command is given; check by hand what the job created before deleting anything`,
            }
          }
          if (job.status && TERMINAL.has(job.status))
            return {status: 'absent', detail: `restore job ${job.id} ${job.status} without creating a resource`}
          return {
            status: 'manual',
            detail: `restore job ${job.id} was still ${job.status ?? 'running'} (restore jobs cannot be stopped): when it completes, see what it created with aws backup describe-restore-job --restore-job-id ${job.id}, and delete that only if it is named ${name}`,
          }
        },
      })
      const restoreStarted = ctx.clock()
      const described = await ctx.steps.run(
        scope,
        'restore',
        'StartRestoreJob and wait',
        async (step) => {
          try {
            const started = await client.send(
              new StartRestoreJobCommand({
                RecoveryPointArn: point.RecoveryPointArn,
                Metadata: metadata,
                IamRoleArn: cfg.iamRoleArn,
                IdempotencyToken: token,
                ResourceType: point.ResourceType,
              }),
              {abortSignal: ctx.signal},
            )
            job.id = started.RestoreJobId
          } catch (error) {
            if ((error as {code?: string}).code === 'ABORT_ERR') throw error
            throw awsError(error, 'starting the restore job')
          }
          evidence.restoreJobId = job.id
          evidence.idempotencyToken = token
          let wait = options.pollMs ?? 15_000
          const maxWait = options.maxPollMs ?? 60_000
          let throttled = 0
          for (;;) {
            throwIfAborted(ctx.signal)
            try {
              const d = await client.send(new DescribeRestoreJobCommand({RestoreJobId: job.id}), {
                abortSignal: ctx.signal,
              })
              job.status = d.Status
              job.createdArn = d.CreatedResourceArn ?? job.createdArn
              step.step.detail = `${d.Status}${d.PercentDone ? ` ${d.PercentDone}` : ''}`
              if (d.Status && TERMINAL.has(d.Status)) return d
              wait = Math.min(maxWait, Math.round(wait * 1.5))
            } catch (error) {
              if ((error as {code?: string}).code === 'ABORT_ERR') throw error
              if (!isThrottle(error)) throw awsError(error, `polling restore job ${job.id}`)
              throttled += 1
              evidence.throttled = throttled
              wait = Math.min(maxWait * 2, wait * 2)
            }
            const left = restoreStarted + timeoutMs - ctx.clock()
            if (left <= 0) {
              throw new RetailOpsError(
                RESTORE_FAILED,
                `Restore job ${job.id} did not finish within ${cfg.timeout} (last status ${job.status ?? 'unknown'}).`,
                {
                  nextSteps: [
                    'Raise datastores[].awsBackup.timeout if restores of this size take longer; the RTO target cannot be met either way.',
                  ],
                },
              )
            }
            await sleep(Math.min(left, wait * (0.8 + Math.random() * 0.4)), ctx.signal)
          }
        },
        (d) => `${d.Status} (job ${job.id})`,
      )
      evidence.restoreJobStatus = described.Status
      if (described.StatusMessage) evidence.restoreJobMessage = described.StatusMessage
      if (described.CreatedResourceArn) evidence.createdResourceArn = described.CreatedResourceArn
      const jobStart = described.CreationDate?.getTime()
      const jobEnd = described.CompletionDate?.getTime()
      evidence.restoreJobDurationMs = jobStart && jobEnd ? jobEnd - jobStart : ctx.clock() - restoreStarted
      evidence.restoreJobDuration = formatDuration(evidence.restoreJobDurationMs as number)
      if (described.Status !== 'COMPLETED') {
        throw new RetailOpsError(
          RESTORE_FAILED,
          `Restore job ${job.id} ended ${described.Status}${described.StatusMessage ? `: ${described.StatusMessage}` : ''}.`,
        )
      }

      // 4. Validation, reported back to AWS Backup (a rejection is a warning).
      const validations: ValidationResult[] = await ctx.steps.run(
        scope,
        'validate',
        'check the restored resource',
        async () => {
          const checks: ValidationResult[] = [
            {
              name: 'restore-job-completed',
              query: `DescribeRestoreJob ${job.id}: Status`,
              value: described.Status ?? null,
              expect: {equals: 'COMPLETED'},
              passed: described.Status === 'COMPLETED',
              message: `job ${described.Status}`,
              durationMs: 0,
            },
            {
              name: 'resource-created',
              query: `DescribeRestoreJob ${job.id}: CreatedResourceArn`,
              value: described.CreatedResourceArn ?? null,
              passed: Boolean(described.CreatedResourceArn),
              message: described.CreatedResourceArn
                ? `created ${described.CreatedResourceArn}`
                : 'the job completed without a CreatedResourceArn',
              durationMs: 0,
            },
          ]
          const passed = checks.every((c) => c.passed)
          try {
            await client.send(
              new PutRestoreValidationResultCommand({
                RestoreJobId: job.id,
                ValidationStatus: passed ? 'SUCCESSFUL' : 'FAILED',
                ValidationStatusMessage: `retailops dr drill ${ctx.drillId}: ${checks.map((c) => `${c.name} ${c.passed ? 'passed' : 'failed'}`).join(', ')}`,
              }),
            )
            evidence.validationReported = true
          } catch (error) {
            evidence.validationReported = false
            ctx.out.warn(
              `${ds.name}: AWS Backup did not accept the validation result (${(error as {name?: string}).name ?? 'error'}: ${(error as Error).message}); it is in this report instead`,
            )
          }
          return checks
        },
        (checks) => `${checks.filter((c) => c.passed).length}/${checks.length} passed`,
      )

      const rpCreated = described.RecoveryPointCreationDate ?? point.CreationDate
      return {
        target: described.CreatedResourceArn ?? name,
        recoveryPoint: rpCreated,
        recoveryPointSource: `recovery point ${point.RecoveryPointArn} creation date`,
        validations,
        evidence,
      }
    },
  }
}

export const awsBackupProvider = createAwsBackupProvider()
