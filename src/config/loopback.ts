import {isIP} from 'node:net'

/**
 * The host of an address as people write it: "host", "host:port", "[v6]:port", a bare IPv6
 * address, or a URL ("http://user@host:port/path"); lower-cased, without a trailing dot.
 */
export function hostOf(address: string): string {
  let s = address.trim()
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s)
  if (scheme) s = s.slice(scheme[0].length)
  s = s.split(/[/?#]/)[0]
  s = s.slice(s.lastIndexOf('@') + 1)
  if (s.startsWith('[')) {
    const end = s.indexOf(']')
    s = s.slice(1, end < 0 ? undefined : end)
  } else if (s.split(':').length === 2) {
    s = s.slice(0, s.indexOf(':'))
  }
  return s.toLowerCase().replace(/\.$/, '')
}

/**
 * Whether an address names this machine: `localhost`, an IPv4 address in 127.0.0.0/8, `::1`, or
 * an IPv4-mapped loopback (`::ffff:127.0.0.1`). Parsed, never prefix-matched: `127.example.com`
 * and `localhost.example.com` are ordinary (remote) names.
 */
export function isLoopbackHost(address: string): boolean {
  const host = hostOf(address)
  if (host === 'localhost') return true
  const family = isIP(host)
  if (family === 4) return host.split('.')[0] === '127'
  if (family === 6) {
    const canonical = new URL(`http://[${host}]/`).hostname.slice(1, -1)
    if (canonical === '::1') return true
    const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(canonical)
    return mapped !== null && Number.parseInt(mapped[1], 16) >> 8 === 127
  }
  return false
}
