import {
  BackupClient,
  DescribeRestoreJobCommand,
  GetRecoveryPointRestoreMetadataCommand,
  ListRecoveryPointsByBackupVaultCommand,
  PutRestoreValidationResultCommand,
  StartRestoreJobCommand,
} from '@aws-sdk/client-backup'
import {existsSync} from 'node:fs'
import path from 'node:path'

import {mockClient} from 'aws-sdk-client-mock'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {
  buildRestoreMetadata,
  checkRestoreMetadata,
  cleanupCommand,
  createAwsBackupProvider,
  idempotencyToken,
  newestCompleted,
  restoreOverrideProblems,
} from '../../../src/dr/providers/aws-backup.js'
import {runDrill} from '../../../src/dr/drill.js'
import {PROVIDERS} from '../../../src/dr/providers/index.js'
import type {DrillContext} from '../../../src/dr/providers/types.js'
import {CleanupStack, StepRecorder} from '../../../src/dr/recorder.js'
import {RecordingOutput} from '../../../src/ui/output.js'
import {CONFIG, environment, project} from './fixtures.js'
import {testContext} from '../../support/context.js'

const backup = mockClient(BackupClient)
const provider = createAwsBackupProvider({pollMs: 2, maxPollMs: 5})
const DRILL = '20260509-120301-7f3a'
const RDS = 'arn:aws:rds:eu-west-1:123456789012:db:payments'
const start = Date.parse('2026-05-09T12:03:01Z')
const point = (n: number, status = 'COMPLETED', ageMin = n) => ({
  RecoveryPointArn: `arn:aws:rds:eu-west-1:123456789012:snapshot:awsbackup:job-${n}`,
  ResourceArn: RDS,
  ResourceType: 'RDS',
  Status: status as 'COMPLETED',
  CreationDate: new Date(start - ageMin * 60_000),
  BackupSizeInBytes: 1024,
})

function context(overrides: Partial<DrillContext> = {}) {
  const p = project()
  const out = new RecordingOutput()
  const ctx: DrillContext = {
    drillId: DRILL,
    project: p,
    environment,
    env: {},
    drillStartMs: start,
    targets: {rto: '15m', rtoMs: 900_000, rpo: '5m', rpoMs: 300_000},
    clock: Date.now,
    signal: new AbortController().signal,
    out,
    steps: new StepRecorder(out),
    cleanup: new CleanupStack(out),
    recordDir: p.dir,
    workDir: p.dir,
    lease: async () => {},
    ...overrides,
  }
  const ds = p.config.datastores.find((d) => d.name === 'payments-rds')!
  return {ctx, ds, out, plan: provider.plan(ds, ctx)}
}

/** The NextToken each list call was made with (the paginator reuses one input object, so calls() cannot tell). */
let tokens: (string | undefined)[] = []

function happyPath() {
  tokens = []
  const pages = [
    {RecoveryPoints: [point(30), point(5, 'PARTIAL', 1)], NextToken: 'page-2'},
    {RecoveryPoints: [point(3), point(90, 'EXPIRED')], NextToken: 'page-3'},
    {RecoveryPoints: [point(60)]},
  ]
  backup.on(ListRecoveryPointsByBackupVaultCommand).callsFake((input: {NextToken?: string}) => {
    tokens.push(input.NextToken)
    return pages[tokens.length - 1]
  })
  backup.on(GetRecoveryPointRestoreMetadataCommand).resolves({
    RestoreMetadata: {DBInstanceIdentifier: 'payments', DBInstanceClass: 'db.t3.micro', MultiAZ: 'true'},
    ResourceType: 'RDS',
  })
  backup.on(StartRestoreJobCommand).resolves({RestoreJobId: 'job-42'})
}

beforeEach(() => backup.reset())
afterEach(() => backup.reset())

describe('aws-backup provider (aws-sdk-client-mock)', () => {
  it('reads every page, restores the newest COMPLETED point under a drill name, and reports the validation', async () => {
    happyPath()
    backup
      .on(DescribeRestoreJobCommand)
      .resolvesOnce({RestoreJobId: 'job-42', Status: 'PENDING'})
      .resolvesOnce({RestoreJobId: 'job-42', Status: 'RUNNING', PercentDone: '40%'})
      .resolves({
        RestoreJobId: 'job-42',
        Status: 'COMPLETED',
        CreatedResourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:retailops-drill-20260509-120301-7f3a-payments-rds',
        CreationDate: new Date(start),
        CompletionDate: new Date(start + 25 * 60_000),
        RecoveryPointCreationDate: new Date(start - 3 * 60_000),
      })
    backup.on(PutRestoreValidationResultCommand).resolves({})
    const {ctx, ds, plan} = context()
    const result = await provider.run(ds, plan, ctx)

    expect(tokens).toEqual([undefined, 'page-2', 'page-3'])
    expect(backup.commandCalls(ListRecoveryPointsByBackupVaultCommand)[0].args[0].input).toMatchObject({
      BackupVaultName: 'prod-vault',
      ByResourceArn: RDS,
    })
    const startInput = backup.commandCalls(StartRestoreJobCommand)[0].args[0].input
    expect(startInput).toMatchObject({
      RecoveryPointArn: point(3).RecoveryPointArn,
      IamRoleArn: 'arn:aws:iam::123456789012:role/restore',
      ResourceType: 'RDS',
      IdempotencyToken: idempotencyToken(DRILL, RDS, point(3).RecoveryPointArn),
      Metadata: {
        DBInstanceIdentifier: 'retailops-drill-20260509-120301-7f3a-payments-rds',
        DBInstanceClass: 'db.t3.micro',
        MultiAZ: 'true',
      },
    })
    expect(backup.commandCalls(DescribeRestoreJobCommand)).toHaveLength(3)
    expect(backup.commandCalls(PutRestoreValidationResultCommand)[0].args[0].input).toMatchObject({
      RestoreJobId: 'job-42',
      ValidationStatus: 'SUCCESSFUL',
    })
    expect(result.recoveryPoint?.toISOString()).toBe(new Date(start - 3 * 60_000).toISOString())
    expect(result.validations.every((v) => v.passed)).toBe(true)
    expect(result.evidence).toMatchObject({
      restoreJobId: 'job-42',
      restoreJobDurationMs: 25 * 60_000,
      recoveryPointsListed: 5,
      pages: 3,
      validationReported: true,
    })

    const cleanup = await ctx.cleanup.runAll()
    expect(cleanup).toMatchObject([
      {
        status: 'manual',
        detail:
          'run: aws rds delete-db-instance --db-instance-identifier retailops-drill-20260509-120301-7f3a-payments-rds --skip-final-snapshot --delete-automated-backups --region eu-west-1',
      },
    ])
  })

  it('treats a FAILED job as a failed restore and still cleans up', async () => {
    happyPath()
    backup
      .on(DescribeRestoreJobCommand)
      .resolves({RestoreJobId: 'job-42', Status: 'FAILED', StatusMessage: 'subnet group not found'})
    const {ctx, ds, plan} = context()
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({
      exit: 'DR_VALIDATION_FAILED',
      message: 'Restore job job-42 ended FAILED: subnet group not found.',
    })
    expect(await ctx.cleanup.runAll()).toMatchObject([
      {status: 'absent', detail: 'restore job job-42 FAILED without creating a resource'},
    ])
  })

  it('treats an ABORTED job the same way', async () => {
    happyPath()
    backup.on(DescribeRestoreJobCommand).resolves({RestoreJobId: 'job-42', Status: 'ABORTED'})
    const {ctx, ds, plan} = context()
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({
      exit: 'DR_VALIDATION_FAILED',
      message: expect.stringMatching(/ended ABORTED/),
    })
  })

  it('gives up at the timeout and leaves a manual cleanup step for the running job', async () => {
    happyPath()
    backup.on(DescribeRestoreJobCommand).resolves({RestoreJobId: 'job-42', Status: 'RUNNING'})
    const {ctx, ds, plan} = context()
    const t0 = Date.now()
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({
      exit: 'DR_VALIDATION_FAILED',
      message: expect.stringMatching(/did not finish within 1s \(last status RUNNING\)/),
    })
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(await ctx.cleanup.runAll()).toMatchObject([
      {status: 'manual', detail: expect.stringMatching(/restore job job-42 was still RUNNING/)},
    ])
  })

  it('backs off on throttling and carries on polling', async () => {
    happyPath()
    // What the SDK throws once its own retries are spent: AWS's ThrottlingException error code.
    const throttle = Object.assign(new Error('Rate exceeded'), {
      name: 'ThrottlingException',
      $fault: 'client',
      $metadata: {httpStatusCode: 400},
    })
    backup
      .on(DescribeRestoreJobCommand)
      .rejectsOnce(throttle)
      .rejectsOnce(throttle)
      .resolves({RestoreJobId: 'job-42', Status: 'COMPLETED', CreatedResourceArn: 'arn:aws:rds:eu-west-1:1:db:x'})
    backup.on(PutRestoreValidationResultCommand).resolves({})
    const {ctx, ds, plan} = context()
    const result = await provider.run(ds, plan, ctx)
    expect(result.evidence.throttled).toBe(2)
    expect(backup.commandCalls(DescribeRestoreJobCommand)).toHaveLength(3)
  })

  it('warns, and does not fail, when AWS rejects the validation result', async () => {
    happyPath()
    backup
      .on(DescribeRestoreJobCommand)
      .resolves({RestoreJobId: 'job-42', Status: 'COMPLETED', CreatedResourceArn: 'arn:aws:rds:eu-west-1:1:db:x'})
    backup
      .on(PutRestoreValidationResultCommand)
      .rejects(
        Object.assign(new Error('on-demand restore jobs cannot be validated'), {name: 'InvalidRequestException'}),
      )
    const {ctx, ds, plan, out} = context()
    const result = await provider.run(ds, plan, ctx)
    expect(result.validations.every((v) => v.passed)).toBe(true)
    expect(result.evidence.validationReported).toBe(false)
    expect(out.warnings.join('\n')).toMatch(/did not accept the validation result \(InvalidRequestException/)
  })

  it('fails when the vault holds no COMPLETED point', async () => {
    backup
      .on(ListRecoveryPointsByBackupVaultCommand)
      .resolves({RecoveryPoints: [point(1, 'PARTIAL'), point(2, 'EXPIRED')]})
    const {ctx, ds, plan} = context()
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({
      exit: 'DR_VALIDATION_FAILED',
      message: expect.stringMatching(/no COMPLETED recovery point .*\(2 listed\)/),
    })
    expect(backup.commandCalls(StartRestoreJobCommand)).toHaveLength(0)
  })

  it('maps refused credentials to PERMISSION', async () => {
    backup
      .on(ListRecoveryPointsByBackupVaultCommand)
      .rejects(
        Object.assign(new Error('not authorized'), {name: 'AccessDeniedException', $metadata: {httpStatusCode: 403}}),
      )
    const {ctx, ds, plan} = context()
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({exit: 'PERMISSION'})
  })

  it('stops polling at once when interrupted', async () => {
    happyPath()
    const controller = new AbortController()
    backup.on(DescribeRestoreJobCommand).callsFake(async () => {
      controller.abort()
      return {RestoreJobId: 'job-42', Status: 'RUNNING'}
    })
    const {ctx, ds, plan} = context({signal: controller.signal})
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({code: 'ABORT_ERR'})
    expect(await ctx.cleanup.runAll()).toMatchObject([{status: 'manual'}])
  })
})

describe('aws-backup drills never touch the source (aws-sdk-client-mock)', () => {
  const S3_SOURCE = 'arn:aws:s3:::prod-orders'
  const s3Config = (metadata: string) =>
    CONFIG.replace(
      /awsBackup: \{vaultName: prod-vault.*\}\n/,
      `awsBackup: {vaultName: prod-vault, iamRoleArn: "arn:aws:iam::123456789012:role/restore", region: eu-west-1, resourceArn: "${S3_SOURCE}", timeout: 1s, restoreMetadata: ${metadata}}\n`,
    )

  it('refuses, before any AWS call or file, restoreMetadata that names the source or drops the drill naming (exit CONFIG)', async () => {
    const p = project(s3Config('{DestinationBucketName: prod-orders, NewBucket: "false"}'))
    const drills = path.join(p.dir, 'drills')
    const error = await runDrill(
      {
        project: p,
        environment,
        filters: {datastores: ['payments-rds']},
        recoverability: false,
        leftovers: false,
        drillsDir: drills,
        providers: {...PROVIDERS, 'aws-backup': provider},
        env: {},
      },
      testContext(),
    ).catch((e: unknown) => e)
    expect(error).toMatchObject({exit: 'CONFIG'})
    const message = (error as Error).message
    expect(message).toContain(
      'payments-rds: awsBackup.restoreMetadata.DestinationBucketName is set (to "prod-orders"), but the drill sets DestinationBucketName itself',
    )
    expect(message).toContain('payments-rds: awsBackup.restoreMetadata.NewBucket is set (to "false")')
    expect(backup.calls()).toHaveLength(0)
    expect(existsSync(drills)).toBe(false)
  })

  it("restores an S3 backup into a new drill bucket even when AWS's metadata names the source bucket", async () => {
    const p = project(s3Config('{Encrypted: "true"}'))
    const ds = p.config.datastores.find((d) => d.name === 'payments-rds')!
    backup
      .on(ListRecoveryPointsByBackupVaultCommand)
      .resolves({RecoveryPoints: [{...point(3), ResourceArn: S3_SOURCE, ResourceType: 'S3'}]})
    backup.on(GetRecoveryPointRestoreMetadataCommand).resolves({
      RestoreMetadata: {DestinationBucketName: 'prod-orders', NewBucket: 'false', Encrypted: 'false'},
      ResourceType: 'S3',
    })
    backup.on(StartRestoreJobCommand).resolves({RestoreJobId: 'job-s3'})
    backup.on(DescribeRestoreJobCommand).resolves({
      RestoreJobId: 'job-s3',
      Status: 'COMPLETED',
      CreatedResourceArn: `arn:aws:s3:::retailops-drill-${DRILL}-payments-rds`,
    })
    backup.on(PutRestoreValidationResultCommand).resolves({})
    const {ctx} = context({project: p})
    await provider.run(ds, provider.plan(ds, ctx), ctx)
    expect(backup.commandCalls(StartRestoreJobCommand)[0].args[0].input.Metadata).toEqual({
      DestinationBucketName: `retailops-drill-${DRILL}-payments-rds`,
      NewBucket: 'true',
      Encrypted: 'true',
    })
    expect(await ctx.cleanup.runAll()).toMatchObject([
      {status: 'manual', detail: `run: aws s3 rb s3://retailops-drill-${DRILL}-payments-rds --force`},
    ])
  })

  it('refuses at run time (exit REFUSED, no StartRestoreJob) a recovery point of a type it cannot keep apart from the source', async () => {
    backup.on(ListRecoveryPointsByBackupVaultCommand).resolves({RecoveryPoints: [{...point(3), ResourceType: 'FSx'}]})
    backup
      .on(GetRecoveryPointRestoreMetadataCommand)
      .resolves({RestoreMetadata: {FileSystemId: 'fs-1'}, ResourceType: 'FSx'})
    const {ctx, ds, plan} = context()
    await expect(provider.run(ds, plan, ctx)).rejects.toMatchObject({
      exit: 'REFUSED',
      message: expect.stringMatching(/refusing to start the restore job: resource type FSx is not supported/),
    })
    expect(backup.commandCalls(StartRestoreJobCommand)).toHaveLength(0)
    // Nothing was started, so there is nothing to clean up (and no command to print).
    expect(await ctx.cleanup.runAll()).toEqual([])
  })

  it("prints no delete command when the job reports the source, or a resource without the drill's name, as created", async () => {
    for (const created of [RDS, 'arn:aws:rds:eu-west-1:123456789012:db:payments-replica']) {
      backup.reset()
      happyPath()
      backup
        .on(DescribeRestoreJobCommand)
        .resolves({RestoreJobId: 'job-42', Status: 'COMPLETED', CreatedResourceArn: created})
      backup.on(PutRestoreValidationResultCommand).resolves({})
      const {ctx, ds, plan} = context()
      await provider.run(ds, plan, ctx)
      const [action] = await ctx.cleanup.runAll()
      expect(action).toMatchObject({status: 'manual', detail: expect.stringMatching(/no delete command is given/)})
      expect(action.detail).not.toMatch(/aws rds delete|run:/)
    }
  })
})

describe('aws-backup helpers', () => {
  it('picks the newest COMPLETED point', () => {
    expect(newestCompleted([point(10), point(2, 'PARTIAL'), point(5), point(1, 'CREATING')])?.RecoveryPointArn).toBe(
      point(5).RecoveryPointArn,
    )
    expect(newestCompleted([])).toBeUndefined()
  })
  it("merges restore metadata: overrides matched case-insensitively, the drill's own keys always win", () => {
    expect(
      buildRestoreMetadata(
        'DynamoDB',
        {targetTableName: 'carts', encryptionType: 'Default'},
        {EncryptionType: 'KMS'},
        'drill-x',
      ),
    ).toEqual({targetTableName: 'drill-x', EncryptionType: 'KMS'})
    expect(buildRestoreMetadata('RDS', {DBInstanceIdentifier: 'p'}, {dbinstanceidentifier: 'mine'}, 'drill-x')).toEqual(
      {DBInstanceIdentifier: 'drill-x'},
    )
    expect(
      buildRestoreMetadata('S3', {DestinationBucketName: 'prod-orders', NewBucket: 'false'}, {}, 'drill-x'),
    ).toEqual({DestinationBucketName: 'drill-x', NewBucket: 'true'})
    expect(buildRestoreMetadata('EFS', {'file-system-id': 'fs-1', newFileSystem: 'false'}, {}, 'drill-x')).toEqual({
      'file-system-id': 'fs-1',
      newFileSystem: 'true',
      CreationToken: 'drill-x',
    })
  })
  it('refuses overrides that name the restored resource, keep it out of a new resource, or name the source', () => {
    expect(restoreOverrideProblems({DBInstanceClass: 'db.t3.micro', DBSubnetGroupName: 'payments'}, RDS)).toEqual([])
    expect(restoreOverrideProblems({dbinstanceidentifier: 'payments'}, RDS)).toEqual([
      expect.stringMatching(
        /^awsBackup\.restoreMetadata\.dbinstanceidentifier is set \(to "payments"\), but the drill sets DBInstanceIdentifier itself .*remove the key$/,
      ),
    ])
    expect(restoreOverrideProblems({NewBucket: 'false'}, 'arn:aws:s3:::prod-orders')).toEqual([
      expect.stringMatching(/NewBucket itself \(to "true", so the restore creates a new resource/),
    ])
    expect(restoreOverrideProblems({SourceDBInstanceIdentifier: 'payments'}, RDS)).toEqual([
      expect.stringMatching(/SourceDBInstanceIdentifier names the source resource \(payments\)/),
    ])
    expect(restoreOverrideProblems({Anything: RDS}, RDS)).toEqual([expect.stringMatching(/names the source resource/)])
    expect(restoreOverrideProblems({}, 'arn:aws:fsx:eu-west-1:1:file-system/fs-1')).toEqual([
      expect.stringMatching(/a fsx \(file-system\) resource, which retailops drills do not support/),
    ])
    expect(restoreOverrideProblems({}, 'arn:aws:rds:eu-west-1:1:db:retailops-drill-20260101-000000-abcd-x')).toEqual([
      expect.stringMatching(/is itself a drill copy/),
    ])
  })
  it('checks the final metadata: drill name, new resource, supported type', () => {
    expect(checkRestoreMetadata('RDS', {DBInstanceIdentifier: 'drill-x'}, 'drill-x', RDS)).toEqual([])
    expect(checkRestoreMetadata('RDS', {DBInstanceIdentifier: 'payments'}, 'drill-x', RDS)).toEqual([
      'restore metadata DBInstanceIdentifier is "payments" (the source resource), not the drill\'s name drill-x',
    ])
    expect(
      checkRestoreMetadata('S3', {DestinationBucketName: 'drill-x', NewBucket: 'FALSE'}, 'drill-x', undefined),
    ).toEqual([expect.stringMatching(/NewBucket is "FALSE", not "true"/)])
    expect(checkRestoreMetadata('FSx', {}, 'drill-x', undefined)).toEqual([
      expect.stringMatching(/resource type FSx is not supported/),
    ])
    expect(checkRestoreMetadata('EBS', {availabilityZone: 'eu-west-1a'}, 'drill-x', undefined)).toEqual([])
  })
  it('gives a cleanup command only for what the drill created: its name, never the source', () => {
    expect(cleanupCommand('arn:aws:dynamodb:eu-west-1:1:table/drill-x', 'drill-x')).toBe(
      'aws dynamodb delete-table --table-name drill-x --region eu-west-1',
    )
    expect(cleanupCommand('arn:aws:dynamodb:eu-west-1:1:table/carts', 'drill-x')).toBeUndefined()
    expect(cleanupCommand('arn:aws:ec2:eu-west-1:1:volume/vol-1', 'drill-x')).toBe(
      'aws ec2 delete-volume --volume-id vol-1 --region eu-west-1',
    )
    expect(
      cleanupCommand('arn:aws:ec2:eu-west-1:1:volume/vol-1', 'drill-x', 'arn:aws:ec2:eu-west-1:1:volume/vol-1'),
    ).toBeUndefined()
    expect(cleanupCommand('arn:aws:s3:::drill-x', 'drill-x')).toBe('aws s3 rb s3://drill-x --force')
    expect(cleanupCommand('arn:aws:s3:::prod-orders', 'drill-x')).toBeUndefined()
    expect(cleanupCommand('arn:aws:rds:eu-west-1:1:db:payments', 'drill-x')).toBeUndefined()
    expect(cleanupCommand('arn:aws:fsx:eu-west-1:1:file-system/fs-1', 'drill-x')).toBeUndefined()
  })
})
