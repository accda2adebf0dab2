import {describe, expect, it} from 'vitest'

import {nextRuns, parseCron} from '../../../src/kubernetes/cron.js'
import {parseSleepWindow, sleepRbac} from '../../../src/sleep/schedule.js'
import {matchesSaved, patchTo} from '../../../src/sleep/sleep.js'
import {saveTarget, valueAt} from '../../../src/sleep/state.js'

describe('sleep --at', () => {
  it('turns DAYS SLEEP-WAKE into a sleep and a wake cron schedule on the same days', () => {
    expect(parseSleepWindow('Mon-Fri 20:00-07:00')).toMatchObject({sleepCron: '0 20 * * 1-5', wakeCron: '0 7 * * 1-5'})
    expect(parseSleepWindow('daily 22:30-06:15')).toMatchObject({sleepCron: '30 22 * * *', wakeCron: '15 6 * * *'})
    expect(parseSleepWindow('22:30-06:15').days).toBe('*')
    expect(parseSleepWindow('Mon,Wed,Friday 19:00-08:00').days).toBe('1,3,5')
    // A range over the week's end wraps.
    expect(parseSleepWindow('Sat-Sun 00:00-23:59').days).toBe('6-6,0-0')
    expect(parseSleepWindow('Fri-Mon 18:00-09:00').days).toBe('5-6,0-1')
  })

  it('Mon-Fri 20:00-07:00 in Europe/Berlin: asleep weeknights and the whole weekend', () => {
    const w = parseSleepWindow('Mon-Fri 20:00-07:00')
    const from = new Date('2026-12-04T12:00:00Z') // a Friday
    const sleeps = nextRuns(parseCron(w.sleepCron), 'Europe/Berlin', from, 2).map((d) => d.toISOString())
    const wakes = nextRuns(parseCron(w.wakeCron), 'Europe/Berlin', from, 1).map((d) => d.toISOString())
    expect(sleeps).toEqual(['2026-12-04T19:00:00.000Z', '2026-12-07T19:00:00.000Z']) // Fri 20:00, then Mon 20:00 CET
    expect(wakes).toEqual(['2026-12-07T06:00:00.000Z']) // Monday 07:00 CET: nothing wakes it on the weekend
  })

  it.each([
    ['Mon-Fry 20:00-07:00', '"Fry" is not a day'],
    ['Mon-Fri 24:00-07:00', '"24:00" is not a time'],
    ['Mon-Fri 20:00-20:00', 'same minute'],
    ['Mon-Fri 20:00', 'not SLEEP-WAKE'],
    ['Mon-Fri 20:00-07:00 extra', 'expected DAYS SLEEP-WAKE'],
    ['Mon--Fri 20:00-07:00', 'is not a day or a range'],
  ])('refuses %s', (at, message) => {
    expect(() => parseSleepWindow(at)).toThrow(message)
  })

  it("the scheduled jobs' Role may scale Deployments, patch HPAs and ScaledObjects, and write only the sleep state ConfigMap", () => {
    const [account, role, binding] = sleepRbac('staging', 'shop-staging', ['shop-staging']) as unknown as [
      {kind: string},
      {rules: {resources: string[]; verbs: string[]; resourceNames?: string[]}[]},
      {subjects: {name: string; namespace: string}[]},
    ]
    expect(account.kind).toBe('ServiceAccount')
    expect(role.rules).toContainEqual({
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'patch', 'delete'],
      resourceNames: ['retailops-sleep-state'],
    })
    expect(role.rules.flatMap((r) => r.resources).sort()).toEqual(
      ['configmaps', 'configmaps', 'deployments', 'horizontalpodautoscalers', 'scaledobjects'].sort(),
    )
    expect(role.rules.flatMap((r) => r.verbs)).not.toContain('delete-collection')
    expect(binding.subjects).toEqual([{kind: 'ServiceAccount', name: 'retailops-sleep', namespace: 'shop-staging'}])
  })
})

describe('wake patches', () => {
  it('puts back present values and removes absent ones, guarded by the resourceVersion', () => {
    const hpa = {
      kind: 'HorizontalPodAutoscaler' as const,
      name: 'catalog',
      minReplicas: {present: true, value: 2},
      maxReplicas: {present: true, value: 6},
    }
    const current = {metadata: {name: 'catalog', resourceVersion: '7'}, spec: {minReplicas: 1, maxReplicas: 6}}
    expect(patchTo(hpa, current)).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '7'},
      {op: 'add', path: '/spec/minReplicas', value: 2},
    ])
    expect(patchTo(hpa, {metadata: {name: 'catalog'}, spec: {minReplicas: 2, maxReplicas: 6}})).toEqual([])
    const d = {kind: 'Deployment' as const, name: 'cart', replicas: {present: false}}
    expect(patchTo(d, {metadata: {name: 'cart', resourceVersion: '3'}, spec: {replicas: 0}})).toContainEqual({
      op: 'remove',
      path: '/spec/replicas',
    })
    expect(matchesSaved(hpa, {metadata: {name: 'catalog'}, spec: {minReplicas: 2, maxReplicas: 6}})).toBe(true)
    expect(matchesSaved(hpa, {metadata: {name: 'catalog'}, spec: {minReplicas: 2, maxReplicas: 7}})).toBe(false)
  })

  it("a ScaledObject's pause annotation is saved as it was and put back exactly: removed, or the user's own value", () => {
    const key = 'autoscaling.keda.sh/paused-replicas'
    const pointer = '/metadata/annotations/autoscaling.keda.sh~1paused-replicas'
    const unpaused = saveTarget('ScaledObject', 'search', {minReplicaCount: 2}, {other: 'x'})
    expect(unpaused).toEqual({kind: 'ScaledObject', name: 'search', pausedReplicas: {present: false}})
    const asleep = {metadata: {name: 'search', resourceVersion: '9', annotations: {other: 'x', [key]: '0'}}}
    expect(valueAt(asleep, pointer)).toBe('0')
    expect(patchTo(unpaused, asleep)).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '9'},
      {op: 'remove', path: pointer},
    ])
    expect(matchesSaved(unpaused, asleep)).toBe(false)
    expect(matchesSaved(unpaused, {metadata: {name: 'search', annotations: {other: 'x'}}})).toBe(true)
    // A pause the user had set is what wake puts back, even onto an object that lost its annotations.
    const userPaused = saveTarget('ScaledObject', 'search', {}, {[key]: '3'})
    expect(patchTo(userPaused, {metadata: {name: 'search', resourceVersion: '4'}})).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '4'},
      {op: 'add', path: '/metadata/annotations', value: {}},
      {op: 'add', path: pointer, value: '3'},
    ])
  })
})
