import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {applyObjects} from '../../../src/kubernetes/apply.js'
import {kubeHttp} from '../../../src/kubernetes/client.js'
import {objectKey, type KubeObject} from '../../../src/kubernetes/resources.js'
import {deleteObject} from '../../../src/kubernetes/objects.js'
import {randomName} from '../../support/names.js'
import {CONTEXT} from './helpers.js'

/**
 * created / configured / unchanged, as a deploy reports them, against the sandbox's API server. The Apply entry in
 * managedFields keeps a one-second time and lists fields, not values: changes applied within one second must still
 * count as configured.
 */
describe('apply actions (sandbox)', () => {
  const http = kubeHttp({context: CONTEXT})
  const namespace = randomName('apply-actions')
  const configMap = (value: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {name: 'settings', namespace},
    data: {value},
  })
  const apply = async (value: string) => {
    const live = await http.request<KubeObject>('GET', `/api/v1/namespaces/${namespace}/configmaps/settings`).then(
      (o) => new Map([[objectKey(o), o]]),
      () => new Map<string, KubeObject>(),
    )
    const report = await applyObjects(http, [configMap(value)], {fieldManager: 'retailops-test', live})
    expect(report.failed).toEqual([])
    return report.applied[0].action
  }

  beforeAll(async () => {
    await http.request('POST', '/api/v1/namespaces', {
      body: {apiVersion: 'v1', kind: 'Namespace', metadata: {name: namespace}},
    })
  })
  afterAll(async () => {
    await deleteObject(http, `/api/v1/namespaces/${namespace}`)
  })

  it('counts each change as configured however fast they follow each other, and a repeat as unchanged', async () => {
    expect(await apply('a')).toBe('created')
    const actions: string[] = []
    for (const value of ['b', 'c', 'd', 'e', 'f']) actions.push(await apply(value), await apply(value))
    expect(actions).toEqual(Array.from({length: 5}, () => ['configured', 'unchanged']).flat())
    const read = await http.request<KubeObject & {data: {value: string}}>(
      'GET',
      `/api/v1/namespaces/${namespace}/configmaps/settings`,
    )
    expect(read.data.value).toBe('f')
  })
})
