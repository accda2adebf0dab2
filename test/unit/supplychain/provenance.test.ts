import {describe, expect, it} from 'vitest'

import {
  ciBuilder,
  generateProvenance,
  RETAILOPS_BUILD_TYPE,
  RETAILOPS_LOCAL_BUILDER,
  sourceUri,
} from '../../../src/supplychain/provenance.js'

const BASE = `sha256:${'c'.repeat(64)}`
const COMMIT = 'a'.repeat(40)

function input(env: NodeJS.ProcessEnv) {
  return {
    service: 'checkout',
    repository: '127.0.0.1:5000/shop/checkout',
    tag: '3-aaaaaaa',
    context: 'services',
    dockerfile: 'checkout/Dockerfile',
    buildArgs: {BASE_IMAGE: '127.0.0.1:5000/retailops/node-base:24'},
    platform: 'linux/amd64',
    builder: 'classic' as const,
    buildHash: 'f'.repeat(64),
    imageId: `sha256:${'b'.repeat(64)}`,
    bases: [{ref: '127.0.0.1:5000/retailops/node-base:24', digest: BASE, source: 'registry' as const}],
    source: {commit: COMMIT, remote: 'https://git.example.test/shop/retail.git', ref: 'refs/heads/main'},
    dirty: false,
    lockfile: {name: 'services/package-lock.json', sha256: 'd'.repeat(64)},
    startedOn: new Date('2026-12-06T10:00:00Z'),
    finishedOn: new Date('2026-12-06T10:00:42Z'),
    env,
  }
}

describe('SLSA provenance v1 predicate', () => {
  it('records the build definition: parameters, source commit, base image digest and lockfile as resolved dependencies', async () => {
    const p = await generateProvenance(input({}))
    expect(p.buildDefinition.buildType).toBe(RETAILOPS_BUILD_TYPE)
    expect(p.buildDefinition.externalParameters).toEqual({
      service: 'checkout',
      repository: '127.0.0.1:5000/shop/checkout',
      context: 'services',
      dockerfile: 'checkout/Dockerfile',
      buildArgs: {BASE_IMAGE: '127.0.0.1:5000/retailops/node-base:24'},
      platform: 'linux/amd64',
      source: {
        uri: 'git+https://git.example.test/shop/retail.git',
        digest: {gitCommit: COMMIT},
        ref: 'refs/heads/main',
      },
    })
    expect(p.buildDefinition.internalParameters).toMatchObject({
      builder: 'classic',
      imageId: `sha256:${'b'.repeat(64)}`,
    })
    expect(p.buildDefinition.resolvedDependencies).toEqual([
      {
        uri: 'git+https://git.example.test/shop/retail.git',
        digest: {gitCommit: COMMIT},
        annotations: {ref: 'refs/heads/main'},
      },
      {
        uri: 'oci://127.0.0.1:5000/retailops/node-base:24',
        name: '127.0.0.1:5000/retailops/node-base:24',
        digest: {sha256: 'c'.repeat(64)},
        annotations: {role: 'base-image', resolvedFrom: 'registry'},
      },
      {uri: 'file:services/package-lock.json', name: 'package-lock.json', digest: {sha256: 'd'.repeat(64)}},
    ])
    expect(p.runDetails.metadata).toMatchObject({
      startedOn: '2026-12-06T10:00:00.000Z',
      finishedOn: '2026-12-06T10:00:42.000Z',
    })
    expect(p.runDetails.builder.id).toMatch(new RegExp(`^${RETAILOPS_LOCAL_BUILDER}@v\\d+\\.\\d+\\.\\d+`))
    expect(p.runDetails.metadata.invocationId).toMatch(/^urn:uuid:[0-9a-f-]{36}$/)
  })

  it('names the CI as the builder: GitHub Actions (workflow ref, run attempt) and GitLab CI (runner, job URL)', () => {
    const gh = ciBuilder(
      {
        GITHUB_ACTIONS: 'true',
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_REPOSITORY: 'shop/retail',
        GITHUB_RUN_ID: '42',
        GITHUB_RUN_ATTEMPT: '2',
        GITHUB_WORKFLOW_REF: 'shop/retail/.github/workflows/ci.yml@refs/heads/main',
      },
      '1.2.3',
    )
    expect(gh).toEqual({
      id: 'https://github.com/shop/retail/.github/workflows/ci.yml@refs/heads/main',
      invocationId: 'https://github.com/shop/retail/actions/runs/42/attempts/2',
      version: {retailops: '1.2.3'},
    })
    const gl = ciBuilder(
      {
        GITLAB_CI: 'true',
        CI_SERVER_URL: 'https://gitlab.example.test',
        CI_PROJECT_PATH: 'shop/retail',
        CI_RUNNER_ID: '7',
        CI_JOB_URL: 'https://gitlab.example.test/shop/retail/-/jobs/99',
      },
      '1.2.3',
    )
    expect(gl).toEqual({
      id: 'https://gitlab.example.test/shop/retail/-/runners/7',
      invocationId: 'https://gitlab.example.test/shop/retail/-/jobs/99',
      version: {retailops: '1.2.3'},
    })
    expect(
      sourceUri({commit: COMMIT, remote: 'git@x:y.git'}, {GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'shop/retail'}),
    ).toBe('git+https://github.com/shop/retail')
  })
})
