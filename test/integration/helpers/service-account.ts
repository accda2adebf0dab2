// What the jobs retailops schedules in the cluster (pre-warms, drills) are allowed to do, checked
// the way the cluster checks their pods: Pod Security admission of their pod specs, and the
// ServiceAccount's own token (a TokenRequest, what the pod gets) asking the real API server.
import {mkdir, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {expect} from 'vitest'
import {stringify} from 'yaml'

import {kubeClients} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {sandboxEnv} from '../../support/sandbox.js'

/** The context name the kubeconfig written by serviceAccountClient uses (as a pod's in-cluster config). */
export const SERVICE_ACCOUNT_CONTEXT = 'inClusterContext'

/**
 * A client acting as a ServiceAccount with a fresh token, as its pod would; the kubeconfig is
 * written to `file` (mode 0600) for a CLI run as that ServiceAccount.
 */
export async function serviceAccountClient(
  http: KubeHttp,
  namespace: string,
  serviceAccount: string,
  file: string,
): Promise<{http: KubeHttp; kubeconfig: string}> {
  const token = await http.request<{status: {token: string}}>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    {body: {apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {expirationSeconds: 900}}},
  )
  const cluster = kubeClients({context: sandboxEnv().context}).kc.getCurrentCluster()!
  await mkdir(path.dirname(file), {recursive: true})
  await writeFile(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'in-cluster',
          cluster: {
            server: cluster.server,
            ...(cluster.caData
              ? {'certificate-authority-data': cluster.caData}
              : {'certificate-authority': cluster.caFile}),
          },
        },
      ],
      users: [{name: 'sa', user: {token: token.status.token}}],
      contexts: [{name: SERVICE_ACCOUNT_CONTEXT, context: {cluster: 'in-cluster', user: 'sa'}}],
      'current-context': SERVICE_ACCOUNT_CONTEXT,
    }),
    {mode: 0o600},
  )
  return {
    http: new KubeHttp(kubeClients({kubeconfig: file, context: SERVICE_ACCOUNT_CONTEXT}).kc),
    kubeconfig: file,
  }
}

/** The HTTP status a request ends with: 200 when it succeeds, the API's status code (403: refused) otherwise. */
export function statusOf(request: Promise<unknown>): Promise<number> {
  return request.then(
    () => 200,
    (e: {statusCode?: number}) => e.statusCode ?? 0,
  )
}

/** Creates a pod with this spec: Pod Security admission answers. */
export function createPod(http: KubeHttp, namespace: string, name: string, spec: unknown): Promise<unknown> {
  return http.request('POST', `/api/v1/namespaces/${namespace}/pods`, {
    body: {apiVersion: 'v1', kind: 'Pod', metadata: {name}, spec},
  })
}

/**
 * Pod Security `restricted` (the namespace's admission) admits every pod spec of `admitted` (name →
 * spec: the pods are created and read back; the caller deletes them) and rejects `violating`,
 * naming PodSecurity.
 */
export async function expectRestrictedAdmission(
  http: KubeHttp,
  namespace: string,
  admitted: Record<string, unknown>,
  violating: unknown,
): Promise<void> {
  for (const [name, spec] of Object.entries(admitted)) await createPod(http, namespace, name, spec)
  const pods = await http.request<{items: {metadata: {name: string}}[]}>('GET', `/api/v1/namespaces/${namespace}/pods`)
  expect(
    pods.items
      .map((p) => p.metadata.name)
      .filter((n) => n in admitted)
      .sort(),
  ).toEqual(Object.keys(admitted).sort())
  await expect(createPod(http, namespace, 'violates-admission', violating)).rejects.toMatchObject({
    message: expect.stringContaining('PodSecurity'),
  })
}
