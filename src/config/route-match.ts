/**
 * The request matches and mirror shares canary steps may ask a router for (`header:NAME=VALUE`,
 * `cookie:NAME=VALUE`, `mirror:N%`), checked where they are read (retailops.yaml and --steps) so a
 * rollout never reaches the route with a value the Gateway API, ingress-nginx or HTTP would refuse.
 */

/** A step's header or cookie match: requests that carry it go to the canary before any weight does. */
export type HeaderRouteMatch = {header: string; value: string} | {cookie: string; value: string}

/** RFC 9110 token; also the Gateway API's HTTPHeaderName pattern (max 256 characters). */
const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/
/** RFC 9110 field-value: visible ASCII, spaces and tabs inside, none at either end. */
const FIELD_VALUE = /^[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?$/
/** RFC 6265 cookie-octet: visible ASCII except DQUOTE, comma, semicolon and backslash. */
const COOKIE_VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+$/

const MAX_HEADER_NAME = 256
/** The Gateway API's HTTPHeaderMatch value maxLength. */
const MAX_HEADER_VALUE = 4096

/** Headers a proxy owns or that a header step cannot select on. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'te', 'upgrade'])

/** What is wrong with a header or cookie match, or undefined when a router can write it. */
export function headerRouteProblem(match: HeaderRouteMatch): string | undefined {
  const cookie = 'cookie' in match
  const name = cookie ? match.cookie : match.header
  const what = cookie ? 'cookie' : 'header'
  if (name.length === 0) return `the ${what} name is empty`
  if (name.length > MAX_HEADER_NAME) return `the ${what} name is longer than ${MAX_HEADER_NAME} characters`
  if (!TOKEN.test(name))
    return `${what} name "${printable(name)}" has characters HTTP does not allow in a name (letters, digits and !#$%&'*+-.^_\`|~ only; no spaces, ":" or "=")`
  if (!cookie && name.toLowerCase() === 'cookie') return 'match a cookie with cookie:NAME=VALUE, not a Cookie header'
  if (!cookie && RESERVED.has(name.toLowerCase()))
    return `header ${name} is set by clients and proxies for the connection itself: pick a header of your own (e.g. X-Canary)`
  if (match.value.length === 0) return `the ${what} value is empty`
  if (match.value.length > MAX_HEADER_VALUE) return `the ${what} value is longer than ${MAX_HEADER_VALUE} characters`
  if (cookie && !COOKIE_VALUE.test(match.value))
    return `cookie value "${printable(match.value)}" has characters a cookie value cannot carry (spaces, quotes, commas, semicolons, backslashes or control characters)`
  if (!cookie && !FIELD_VALUE.test(match.value))
    return `header value "${printable(match.value)}" has characters a header value cannot carry (control characters, line breaks, non-ASCII, or spaces at either end)`
  return undefined
}

function printable(text: string): string {
  return JSON.stringify(text).slice(1, -1)
}

/** The step text of a match: `header:X-Canary=staff`, `cookie:canary=always`. */
export function formatHeaderRoute(match: HeaderRouteMatch): string {
  return 'cookie' in match ? `cookie:${match.cookie}=${match.value}` : `header:${match.header}=${match.value}`
}

/** Two matches on the same header (names are case-insensitive) or the same cookie replace each other. */
export function sameHeaderRoute(a: HeaderRouteMatch, b: HeaderRouteMatch): boolean {
  if ('cookie' in a) return 'cookie' in b && a.cookie === b.cookie
  return 'header' in b && a.header.toLowerCase() === b.header.toLowerCase()
}

/** A regular expression matching the whole name=value pair inside a Cookie header (RE2 and PCRE alike). */
export function cookieHeaderPattern(name: string, value: string): string {
  return `(^|;\\s*)${escapeRegex(name)}=${escapeRegex(value)}(;|$)`
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')
}

/** Services whose requests have side effects elsewhere (orders, charges) by name, whatever their tier. */
export const SIDE_EFFECT_SERVICES = new Set(['checkout', 'payments'])

/**
 * Mirroring sends a copy of live requests to the canary: a service that writes, charges or sends
 * would do it twice. Only a service that declares itself safe (`rollout.mirrorSafe: true`) is
 * mirrored; it is never assumed, for any service.
 */
export function mirrorRefusal(
  service: string,
  config: {tier?: string; rollout?: {mirrorSafe?: boolean}} | undefined,
): string | undefined {
  if (config?.rollout?.mirrorSafe === true) return undefined
  const why =
    SIDE_EFFECT_SERVICES.has(service) || config?.tier === 'revenue-critical'
      ? `${service} is ${SIDE_EFFECT_SERVICES.has(service) ? `"${service}"` : 'revenue-critical'}: mirrored requests would place or charge real orders a second time`
      : `${service} has not declared that its requests are safe to repeat`
  return `a mirror step copies live requests to the canary, and ${why}`
}

export const mirrorFix = (service: string) =>
  `Remove the mirror step, or set services.${service}.rollout.mirrorSafe: true in retailops.yaml once the service's requests are safe to receive twice (read-only, or idempotent without side effects elsewhere).`

/**
 * What a router cannot do of the header, cookie and mirror steps in `steps` (index and why):
 * without a router (replicas, blue-green) nothing selects requests; ingress-nginx's canary Ingress
 * has one canary-by-header and one canary-by-cookie (which routes on the value "always" only) and
 * no share-based mirror; the Gateway API does all of it.
 */
export function routingStepProblems(steps: readonly object[], router: string): {index: number; message: string}[] {
  const problems: {index: number; message: string}[] = []
  const seen = {header: -1, cookie: -1}
  steps.forEach((step, index) => {
    const {setHeaderRoute: match, setMirrorRoute: mirror} = step as {
      setHeaderRoute?: HeaderRouteMatch
      setMirrorRoute?: {percent: number}
    }
    if (match) {
      const text = formatHeaderRoute(match)
      if (router === 'replicas')
        problems.push({
          index,
          message: `${text} needs a router that can match requests (gateway or nginx); the replicas router splits by pod count only`,
        })
      if (router === 'nginx') {
        const kind = 'cookie' in match ? 'cookie' : 'header'
        if (seen[kind] >= 0)
          problems.push({
            index,
            message: `ingress-nginx's canary Ingress takes one canary-by-${kind}, and step ${seen[kind] + 1} already sets one (use the gateway router for more)`,
          })
        seen[kind] = index
        if ('cookie' in match && match.value !== 'always')
          problems.push({
            index,
            message: `ingress-nginx routes by cookie only when its value is "always" (canary-by-cookie): use cookie:${match.cookie}=always, a header step, or the gateway router`,
          })
      }
    } else if (mirror && mirror.percent > 0) {
      if (router !== 'gateway')
        problems.push({
          index,
          message: `mirror:${mirror.percent}% needs the gateway router (HTTPRoute RequestMirror); the ${router} router cannot copy a share of traffic`,
        })
    }
  })
  return problems
}
