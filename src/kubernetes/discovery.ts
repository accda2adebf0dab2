/**
 * Which optional APIs a cluster serves (CRDs a cluster may not have: KEDA's, Gateway API's), from
 * the API server's discovery documents. Its own module, light on imports: `dr plan` and other
 * everyday commands reach it without the apply machinery.
 */
import {isNotFound} from './client.js'
import type {KubeHttp} from './http.js'

/**
 * True when the cluster serves `plural` in `apiVersion` (a CRD's kind is installed): the group
 * version's discovery document lists it. A group the cluster does not know is a 404, not an error.
 */
export async function servesResource(
  http: KubeHttp,
  apiVersion: string,
  plural: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
  try {
    const list = await http.request<{resources?: {name: string}[]}>('GET', path, {signal})
    return (list.resources ?? []).some((r) => r.name === plural)
  } catch (error) {
    if (isNotFound(error)) return false
    throw error
  }
}
