/**
 * The dashboard's access token: 32 random bytes, base64url. It comes once in the URL the command
 * prints (`?token=`), and the server then keeps it in an HttpOnly, SameSite=Strict cookie, so the
 * URL a person shares or a browser history keeps after the first page holds no secret.
 */
import {createHash, randomBytes, timingSafeEqual} from 'node:crypto'

export const COOKIE = 'retailops_dashboard'
export const TOKEN_PARAM = 'token'

export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Constant time whatever is offered: both sides are hashed to 32 bytes first, so neither a
 * difference in length nor the position of the first wrong character shows in the timing.
 */
export function tokenMatches(expected: string, offered: string | undefined | null): boolean {
  if (typeof offered !== 'string' || offered.length === 0 || offered.length > 1024) return false
  const a = createHash('sha256').update(expected).digest()
  const b = createHash('sha256').update(offered).digest()
  return timingSafeEqual(a, b)
}

/** The value of one cookie in a Cookie header (none when absent). */
export function cookieValue(header: string | undefined | null, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export function sessionCookie(token: string): string {
  return `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict`
}

/**
 * Only the loopback names the server listens on may be the Host: a page on another origin that
 * resolves its own name to 127.0.0.1 (DNS rebinding) is refused before the token is even asked.
 */
export function hostAllowed(host: string | undefined | null, port: number): boolean {
  if (!host) return false
  return [`127.0.0.1:${port}`, `localhost:${port}`].includes(host.toLowerCase())
}
