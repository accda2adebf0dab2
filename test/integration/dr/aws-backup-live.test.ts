import {existsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {runDrill} from '../../../src/dr/drill.js'
import {drProject} from './helpers.js'
import {testContext} from '../../support/context.js'

// AWS cannot be reached from the sandbox: the provider is unit-tested with aws-sdk-client-mock
// (test/unit/dr/aws-backup.test.ts). This file runs against a real account when credentials are
// present; the full restore also needs an opted-in vault and restore role, because it creates
// (and leaves for manual deletion) a real resource:
//   RETAILOPS_DR_AWS_VAULT, RETAILOPS_DR_AWS_ROLE_ARN, optional RETAILOPS_DR_AWS_RESOURCE_ARN,
//   RETAILOPS_DR_AWS_RESTORE_METADATA (JSON overrides), AWS_REGION.
const env = process.env
// The sandbox env exports its object store's keys as AWS_ACCESS_KEY_ID: those are not an account.
const sandboxKeys = Boolean(env.RETAILOPS_S3_ENDPOINT) && env.AWS_ACCESS_KEY_ID === 'retailops-sandbox'
const credentials = Boolean(
  (env.AWS_ACCESS_KEY_ID && !sandboxKeys) ||
  env.AWS_PROFILE ||
  env.AWS_WEB_IDENTITY_TOKEN_FILE ||
  env.AWS_CONTAINER_CREDENTIALS_FULL_URI ||
  existsSync(path.join(os.homedir(), '.aws', 'credentials')),
)
const vault = env.RETAILOPS_DR_AWS_VAULT
const role = env.RETAILOPS_DR_AWS_ROLE_ARN

describe.runIf(credentials)('aws-backup against a real AWS account', () => {
  it('the credentials reach AWS Backup', async () => {
    const {BackupClient, ListBackupVaultsCommand} = await import('@aws-sdk/client-backup')
    const client = new BackupClient({region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1'})
    const res = await client.send(new ListBackupVaultsCommand({MaxResults: 10}))
    expect(Array.isArray(res.BackupVaultList)).toBe(true)
  })

  it.runIf(Boolean(vault && role))(
    'drills the newest recovery point of the opted-in vault end to end',
    async () => {
      const overrides = env.RETAILOPS_DR_AWS_RESTORE_METADATA
        ? (JSON.parse(env.RETAILOPS_DR_AWS_RESTORE_METADATA) as Record<string, string>)
        : {}
      const p = drProject(`
project: shop
registry: {url: 127.0.0.1:5000}
services: {orders: {tier: tolerant}}
datastores:
  - name: live
    service: orders
    provider: aws-backup
    awsBackup:
      vaultName: ${vault}
      iamRoleArn: ${role}
      ${env.RETAILOPS_DR_AWS_RESOURCE_ARN ? `resourceArn: ${env.RETAILOPS_DR_AWS_RESOURCE_ARN}` : ''}
      ${env.AWS_REGION ? `region: ${env.AWS_REGION}` : ''}
      restoreMetadata: ${JSON.stringify(overrides)}
      timeout: 4h
`)
      const record = await runDrill(
        {
          project: await p.load(),
          environment: {
            name: 'default',
            cluster: 'default',
            namespace: 'default',
            router: 'replicas',
            production: false,
          },
          filters: {},
          recoverability: false,
        },
        testContext(),
      )
      const ds = record.datastores[0]
      expect(ds.evidence.restoreJobId).toBeTruthy()
      expect(ds.rpo.recoveryPoint).toBeTruthy()
      expect(['passed', 'target-missed']).toContain(ds.status)
      expect(record.cleanup[0]).toMatchObject({status: 'manual'})
    },
    4.5 * 3600_000,
  )
})
