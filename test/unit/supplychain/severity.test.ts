import {describe, expect, it} from 'vitest'

import {atOrAbove, cvssBaseScore, rate, severityOfScore} from '../../../src/supplychain/severity.js'

describe('CVSS base scores of real advisories', () => {
  // Scores as NVD and GitHub publish them for these vectors.
  it.each([
    // CVE-2021-44228 (log4shell)
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10.0],
    // CVE-2020-28498 (elliptic), the OSV schema's own example
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N', 6.8],
    // CVE-2022-24999 (qs prototype pollution)
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', 7.5],
    // CVE-2021-23337 (lodash template command injection)
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H', 7.2],
    // A CVSS 3.0 vector (CVE-2019-10744, lodash defaultsDeep)
    ['CVSS_V3', 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H', 9.1],
    // The OSV schema's CVSS v4 example
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N', 5.1],
    // CVSS v4.0 specification's highest-severity vector
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H', 10.0],
    // CVE-2014-0160 (heartbleed) in CVSS v2
    ['CVSS_V2', 'AV:N/AC:L/Au:N/C:P/I:N/A:N', 5.0],
  ])('%s %s scores %d', (type, vector, score) => {
    expect(cvssBaseScore(type, vector)).toEqual({score})
  })

  it('refuses vectors that are malformed, incomplete or of another version, saying why', () => {
    expect(cvssBaseScore('CVSS_V3', 'CVSS:3.1/AV:N')).toMatchObject({
      problem: expect.stringContaining('lacks base metrics'),
    })
    expect(cvssBaseScore('CVSS_V3', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N')).toMatchObject({
      problem: expect.stringContaining('does not start with CVSS:3.0/ or CVSS:3.1/'),
    })
    expect(cvssBaseScore('CVSS_V4', 'garbage')).toHaveProperty('problem')
  })
})

describe('severity ratings', () => {
  it("maps scores with CVSS's ranges (v2 has no critical)", () => {
    expect([0, 0.1, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10].map((s) => severityOfScore(s))).toEqual([
      'none',
      'low',
      'low',
      'medium',
      'medium',
      'high',
      'high',
      'critical',
      'critical',
    ])
    expect(severityOfScore(10, 2)).toBe('high')
  })

  it('prefers v4 over v3 over v2, falls back past a bad vector, then to the database rating, then unknown', () => {
    const v3 = {type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H'}
    const v4 = {type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N'}
    expect(rate([v3, v4], undefined)).toMatchObject({severity: 'medium', score: 5.1, source: 'CVSS_V4'})
    const broken = {type: 'CVSS_V4', score: 'CVSS:4.0/AV:N'}
    expect(rate([broken, v3], undefined)).toMatchObject({
      severity: 'high',
      score: 7.5,
      source: 'CVSS_V3',
      problems: [expect.stringContaining('CVSS:4.0/AV:N')],
    })
    expect(rate(undefined, {severity: 'MODERATE'})).toMatchObject({severity: 'medium', source: 'database_specific'})
    expect(rate([{type: 'Ubuntu', score: 'high'}], {})).toMatchObject({severity: 'unknown', source: 'none'})
  })

  it('--fail-on counts at-or-above, and unknown as critical unless told otherwise', () => {
    expect(atOrAbove('high', 'high')).toBe(true)
    expect(atOrAbove('critical', 'high')).toBe(true)
    expect(atOrAbove('medium', 'high')).toBe(false)
    expect(atOrAbove('none', 'low')).toBe(false)
    expect(atOrAbove('unknown', 'critical')).toBe(true)
    expect(atOrAbove('unknown', 'high', 'medium')).toBe(false)
  })
})
