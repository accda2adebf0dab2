import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {parseConfig} from '../../../src/config/parse.js'
import type {LoadedConfig} from '../../../src/config/load.js'
import type {ResolvedEnvironment} from '../../../src/config/resolve.js'

export const CONFIG = `
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
services:
  orders: {tier: revenue-critical, topics: [order-events], searchIndexes: [orders]}
  catalog: {tier: tolerant, dr: {rto: 2h, rpo: 12h}}
  cart: {tier: operational}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres: {urlEnv: ORDERS_URL}
    validation:
      - {name: order-count, query: "select count(*) from orders", expect: {min: 1}}
      - {name: newest-order, query: "select max(created_at) from orders", recoveryPoint: true}
  - name: catalog-db
    service: catalog
    provider: postgres
  - name: shop-config
    service: cart
    provider: kubernetes
    kubernetes: {namespace: shop}
  - name: payments-rds
    tier: revenue-critical
    provider: aws-backup
    awsBackup: {vaultName: prod-vault, iamRoleArn: "arn:aws:iam::123456789012:role/restore", region: eu-west-1, resourceArn: "arn:aws:rds:eu-west-1:123456789012:db:payments", timeout: 1s}
`

export function project(text = CONFIG): LoadedConfig {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ro-dr-unit-'))
  const file = path.join(dir, 'retailops.yaml')
  writeFileSync(file, text)
  return {file, dir, config: parseConfig(text, file)}
}

export const environment: ResolvedEnvironment = {
  name: 'default',
  cluster: 'default',
  namespace: 'shop',
  router: 'replicas',
  production: false,
}
