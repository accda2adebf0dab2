import type {LoadedConfig} from '../../../src/config/load.js'
import {parseConfig} from '../../../src/config/parse.js'
import {resolveImages} from '../../../src/deploy/images.js'
import type {ResolvedImage} from '../../../src/deploy/images.js'

export const DIGEST = `sha256:${'a'.repeat(64)}`

export const CONFIG = `
apiVersion: retailops/v1
project: shop
registry: {url: 127.0.0.1:5000, insecure: true}
clusters:
  main: {context: kwok-retailops}
  eu: {context: eu-ctx}
environments:
  production: {cluster: main, namespace: shop, gateway: {name: public, namespace: gateway}}
services:
  catalog: {tier: operational, scaling: {minReplicas: 2, maxReplicas: 4}}
  payments: {tier: revenue-critical, scaling: {minReplicas: 2, maxReplicas: 6}, env: {LOG_LEVEL: info}}
  checkout: {tier: revenue-critical, dependsOn: [payments, catalog], rollout: {strategy: canary, progressDeadline: 30s}}
  recs: {tier: tolerant, scaling: {minReplicas: 1, maxReplicas: 1}, needsServiceAccountToken: true}
tenants:
  - {name: acme, model: shared, quota: {cpu: 4, memory: 8Gi, pods: 40}}
  - {name: globex, model: isolated-database, database: {name: globex_db, urlEnv: GLOBEX_URL}, quota: {cpu: 2, memory: 4Gi, pods: 20}}
  - {name: initech, model: dedicated-namespace, services: [catalog, checkout, payments]}
  - {name: umbrella, model: dedicated-cluster, cluster: eu, namespace: umbrella}
`

export function project(text = CONFIG): LoadedConfig {
  return {file: '/tmp/shop/retailops.yaml', dir: '/tmp/shop', config: parseConfig(text)}
}

export function digestImages(p: LoadedConfig): Record<string, ResolvedImage> {
  const services = Object.keys(p.config.services)
  return resolveImages(
    p.config,
    services,
    Object.fromEntries(
      services.map((s) => [s, {image: `127.0.0.1:5000/shop/${s}@${DIGEST}`, digest: DIGEST, version: '1.4.2'}]),
    ),
  )
}
