// Route templates like /products/:id, matched segment by segment. The template, not the raw
// path, is what metrics and logs carry, so label cardinality stays bounded.

export interface RouteMatch<T> {
  value: T
  template: string
  params: Record<string, string>
}

export type MatchResult<T> =
  | {kind: 'found'; match: RouteMatch<T>}
  | {kind: 'method_not_allowed'; template: string; allow: string[]}
  | {kind: 'not_found'}

interface Compiled<T> {
  method: string
  template: string
  segments: string[]
  value: T
}

function split(path: string): string[] {
  return path.split('/').filter((segment) => segment !== '')
}

export class Router<T> {
  #routes: Compiled<T>[] = []

  add(method: string, template: string, value: T): this {
    if (!template.startsWith('/')) throw new Error(`route template must start with "/": ${template}`)
    const segments = split(template)
    for (const segment of segments) {
      if (segment === ':') throw new Error(`route template has an unnamed parameter: ${template}`)
    }
    const clash = this.#routes.find((route) => route.method === method.toUpperCase() && route.template === template)
    if (clash) throw new Error(`route defined twice: ${method} ${template}`)
    this.#routes.push({method: method.toUpperCase(), template, segments, value})
    return this
  }

  match(method: string, path: string): MatchResult<T> {
    const parts = split(path)
    const allow: string[] = []
    let template: string | undefined
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, parts)
      if (!params) continue
      if (route.method === method.toUpperCase()) {
        return {kind: 'found', match: {value: route.value, template: route.template, params}}
      }
      template ??= route.template
      allow.push(route.method)
    }
    if (template !== undefined) return {kind: 'method_not_allowed', template, allow}
    return {kind: 'not_found'}
  }
}

function matchSegments(segments: string[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]
    const part = parts[i]
    if (segment.startsWith(':')) {
      let decoded: string
      try {
        decoded = decodeURIComponent(part)
      } catch {
        return undefined
      }
      params[segment.slice(1)] = decoded
    } else if (segment !== part) {
      return undefined
    }
  }
  return params
}
