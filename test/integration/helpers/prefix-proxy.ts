import http from 'node:http'
import type {AddressInfo} from 'node:net'

/**
 * A reverse proxy on 127.0.0.1 that serves the real Prometheus only under a path prefix (as one
 * behind https://host/prometheus is) and answers 404 elsewhere, telling the caller of every request it gets.
 */
export interface PrefixProxy {
  /** The proxy's base URL, prefix included. */
  base: string
  close(): Promise<void>
}

export async function startPrefixProxy(
  upstream: string,
  prefix: string,
  onRequest: (req: {method: string; url: string}) => void,
): Promise<PrefixProxy> {
  const forward = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    onRequest({method: req.method ?? '', url: req.url ?? ''})
    if (!req.url?.startsWith(`${prefix}/`)) {
      res.writeHead(404).end('404 page not found')
      return
    }
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const answer = await fetch(`${upstream}${req.url.slice(prefix.length)}`, {
      method: req.method,
      headers: {'content-type': req.headers['content-type'] ?? 'text/plain'},
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    })
    res
      .writeHead(answer.status, {'content-type': answer.headers.get('content-type') ?? 'text/plain'})
      .end(Buffer.from(await answer.arrayBuffer()))
  }
  // A failed forward answers 502 rather than leaving the request hanging and the rejection unhandled.
  const server = http.createServer((req, res) => {
    forward(req, res).catch((error: Error) => res.writeHead(502).end(`prefix proxy: ${error.message}`))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
