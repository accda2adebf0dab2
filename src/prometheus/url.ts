/**
 * The URL of a Prometheus HTTP API path under a configured base URL. The base may carry a path
 * prefix (Prometheus behind a proxy at https://host/prometheus, or started with
 * --web.route-prefix): `new URL('/api/v1/query', base)` would drop it, so the path is appended to
 * the base's own path instead. Query strings and fragments of the base are not part of it.
 */
export function prometheusApiUrl(base: string, path: string): URL {
  const url = new URL(base)
  url.search = ''
  url.hash = ''
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
  return url
}
