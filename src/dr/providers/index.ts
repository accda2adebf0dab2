import type {DatastoreConfig} from '../../config/schema.js'
import {awsBackupProvider} from './aws-backup.js'
import {kubernetesProvider} from './kubernetes.js'
import {postgresProvider} from './postgres.js'
import type {DrillProvider} from './types.js'

export type {DrillProvider, ProviderPlan, ProviderResult, DrillContext, PlanContext} from './types.js'

export const PROVIDERS: Record<DatastoreConfig['provider'], DrillProvider> = {
  postgres: postgresProvider,
  'aws-backup': awsBackupProvider,
  kubernetes: kubernetesProvider,
}
