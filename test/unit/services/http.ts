// HTTP and Prometheus-text helpers shared by the services unit and integration tests.

export async function json(
  url: string,
  init: {method?: string; body?: unknown; headers?: Record<string, string>} = {},
): Promise<{status: number; body: any; headers: Headers}> {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {'content-type': 'application/json', ...init.headers},
    body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = text === '' ? undefined : JSON.parse(text)
  } catch {
    // not JSON (e.g. /metrics)
  }
  return {status: response.status, body, headers: response.headers}
}

/** The value of the first series of `name` carrying all `labels`, or undefined when there is none. */
export function sample(metricsText: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const open = line.indexOf('{')
    const labelText = open >= 0 && open < line.indexOf(' ') ? line.slice(open + 1, line.lastIndexOf('}')) : ''
    const found = Object.fromEntries([...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
      return Number(line.slice(line.lastIndexOf(' ') + 1))
    }
  }
  return undefined
}
