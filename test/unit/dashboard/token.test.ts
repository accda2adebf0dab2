import {describe, expect, it} from 'vitest'

import {cookieValue, hostAllowed, newToken, sessionCookie, tokenMatches} from '../../../src/dashboard/token.js'

describe('dashboard access token', () => {
  it('is 32 random bytes in base64url, new each time', () => {
    const a = newToken()
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(new Set(Array.from({length: 50}, newToken)).size).toBe(50)
  })

  it('matches only the exact token, whatever the length offered', () => {
    const token = newToken()
    expect(tokenMatches(token, token)).toBe(true)
    expect(tokenMatches(token, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBe(false)
    expect(tokenMatches(token, token.slice(0, 10))).toBe(false)
    expect(tokenMatches(token, `${token}x`)).toBe(false)
    expect(tokenMatches(token, '')).toBe(false)
    expect(tokenMatches(token, undefined)).toBe(false)
    expect(tokenMatches(token, null)).toBe(false)
    expect(tokenMatches(token, 'x'.repeat(5000))).toBe(false)
  })

  it('reads its cookie among others', () => {
    expect(cookieValue('a=1; retailops_dashboard=abc-_1; b=2', 'retailops_dashboard')).toBe('abc-_1')
    expect(cookieValue('retailops_dashboard_x=1', 'retailops_dashboard')).toBeUndefined()
    expect(cookieValue(undefined, 'retailops_dashboard')).toBeUndefined()
    expect(sessionCookie('t')).toBe('retailops_dashboard=t; Path=/; HttpOnly; SameSite=Strict')
  })

  it('answers only to the loopback names on its own port', () => {
    expect(hostAllowed('127.0.0.1:8088', 8088)).toBe(true)
    expect(hostAllowed('localhost:8088', 8088)).toBe(true)
    expect(hostAllowed('LOCALHOST:8088', 8088)).toBe(true)
    expect(hostAllowed('127.0.0.1:8089', 8088)).toBe(false)
    expect(hostAllowed('attacker.example:8088', 8088)).toBe(false)
    expect(hostAllowed('127.0.0.1', 8088)).toBe(false)
    expect(hostAllowed(undefined, 8088)).toBe(false)
  })
})
