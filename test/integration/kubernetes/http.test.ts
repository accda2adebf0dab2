// The shared keep-alive client (src/kubernetes/http.ts) against the sandbox's real API server.
// Clients are shared per kubeconfig and context (kubeHttp), so one caller closing it must not cut
// another caller's request in flight: the sockets close once the last request in flight ends.
import {describe, expect, it} from 'vitest'

import {kubeCredentials} from '../../../src/kubernetes/client.js'
import {KubeHttp} from '../../../src/kubernetes/http.js'
import {sandboxEnv} from '../../support/sandbox.js'

const target = () => ({context: sandboxEnv().context, kubeconfig: sandboxEnv().kubeconfig})

/** The sockets the client's keep-alive pool holds open (in use and idle). */
function openSockets(http: KubeHttp): number {
  const agent = (http as unknown as {agent?: {sockets: object; freeSockets: object}}).agent
  if (!agent) return 0
  const count = (pool: object) => Object.values(pool).reduce((n: number, list: unknown[]) => n + list.length, 0)
  return count(agent.sockets) + count(agent.freeSockets)
}

describe('KubeHttp.close', () => {
  it("lets another caller's request in flight finish, then closes the sockets", async () => {
    const http = new KubeHttp(kubeCredentials(target()))
    const events: string[] = []
    // A watch the server ends by itself after 2 s: in flight while close() is called.
    const watch = http.request('GET', '/api/v1/namespaces', {
      query: {watch: 1, timeoutSeconds: 2, fieldSelector: 'metadata.name=default'},
      onData: (chunk) => events.push(chunk.toString()),
    })
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(openSockets(http)).toBe(1)

    http.close()
    // Still answered in full: the server's own end of the watch, not a destroyed socket.
    await expect(watch).resolves.toBeUndefined()
    expect(events.join('')).toContain('"name":"default"')
    expect(openSockets(http)).toBe(0)

    // The client stays usable after close(): the next request opens a socket again.
    const ns = await http.request<{metadata: {name: string}}>('GET', '/api/v1/namespaces/default')
    expect(ns.metadata.name).toBe('default')
    expect(openSockets(http)).toBe(1)
    http.close()
    expect(openSockets(http)).toBe(0)
  })

  it('closes idle sockets at once when nothing is in flight', async () => {
    const http = new KubeHttp(kubeCredentials(target()))
    await Promise.all([
      http.request('GET', '/api/v1/namespaces/default'),
      http.request('GET', '/api/v1/namespaces/kube-system'),
    ])
    expect(openSockets(http)).toBeGreaterThan(0)
    http.close()
    expect(openSockets(http)).toBe(0)
  })
})
