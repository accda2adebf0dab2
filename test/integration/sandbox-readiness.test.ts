// The integration project's globalSetup (test/support/global-setup.ts) relies on sandboxProblems:
// it must find nothing wrong with the loaded sandbox, and name each missing or silent part of a
// half-loaded one, asking the real components.
import {createServer, type AddressInfo} from 'node:net'

import {describe, expect, it} from 'vitest'

import {crdEstablished, sandboxEnv, sandboxProblems} from '../support/sandbox.js'

describe('sandbox readiness', () => {
  it('finds the loaded sandbox complete and answering', async () => {
    expect(await sandboxProblems()).toEqual([])
  })

  it('names every variable a half-loaded environment lacks', async () => {
    const env = {...process.env, RETAILOPS_K6: '', KUBECONFIG: undefined}
    expect(await sandboxProblems(env)).toEqual(['not loaded into this environment: KUBECONFIG, RETAILOPS_K6'])
  })

  it('names each component that does not answer, and only those', async () => {
    // A port nothing listens on: taken from the kernel, then released.
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const closed = `127.0.0.1:${(server.address() as AddressInfo).port}`
    await new Promise((resolve) => server.close(resolve))
    const env = {
      ...process.env,
      RETAILOPS_PROMETHEUS_URL: `http://${closed}`,
      RETAILOPS_REGISTRY: closed,
      RETAILOPS_COSIGN3: '/nonexistent/cosign3',
      RETAILOPS_S3_ENDPOINT: `http://${closed}`,
    }
    const problems = await sandboxProblems(env)
    expect(problems).toHaveLength(5)
    expect(problems).toEqual(
      expect.arrayContaining([
        `registry (${closed}): fetch failed (ECONNREFUSED)`,
        expect.stringMatching(/^base image \(.*\): fetch failed \(ECONNREFUSED\)$/),
        `Prometheus (http://${closed}): fetch failed (ECONNREFUSED)`,
        expect.stringMatching(/^cosign3 \(\/nonexistent\/cosign3\): ENOENT/),
        `object store (http://${closed}, bucket ${process.env.RETAILOPS_S3_BUCKET}): fetch failed (ECONNREFUSED)`,
      ]),
    )
  })

  it('names an object store that refuses the credentials', async () => {
    const env = {...process.env, AWS_SECRET_ACCESS_KEY: 'not-the-sandbox-secret'}
    expect(await sandboxProblems(env)).toEqual([
      `object store (${process.env.RETAILOPS_S3_ENDPOINT}, bucket ${process.env.RETAILOPS_S3_BUCKET}): HeadBucket answered 403`,
      `object store over TLS (${process.env.RETAILOPS_S3_TLS_ENDPOINT}, CA ${process.env.RETAILOPS_S3_CA}): HeadBucket answered 403`,
    ])
  })

  it('names a TLS listener that is down, and one whose certificate the CA does not sign', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const closed = `127.0.0.1:${(server.address() as AddressInfo).port}`
    await new Promise((resolve) => server.close(resolve))
    expect(await sandboxProblems({...process.env, RETAILOPS_S3_TLS_ENDPOINT: `https://${closed}`})).toEqual([
      `object store over TLS (https://${closed}, CA ${process.env.RETAILOPS_S3_CA}): fetch failed (ECONNREFUSED)`,
    ])
    // A CA that did not sign the listener's certificate (the system's bundle): verification fails.
    const foreign = '/etc/ssl/certs/ca-certificates.crt'
    expect(await sandboxProblems({...process.env, RETAILOPS_S3_CA: foreign})).toEqual([
      `object store over TLS (${process.env.RETAILOPS_S3_TLS_ENDPOINT}, CA ${foreign}): fetch failed (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    ])
  })

  it("has KEDA's ScaledObject CRD Established, and names a CRD that is missing with the fix", async () => {
    await expect(crdEstablished(sandboxEnv(), 'scaledobjects.keda.sh')).resolves.toBeUndefined()
    await expect(crdEstablished(sandboxEnv(), 'notthere.keda.sh')).rejects.toThrow(
      'not installed (bash scripts/sandbox.sh up installs it)',
    )
  })
})
