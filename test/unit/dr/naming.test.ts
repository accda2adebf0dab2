import {describe, expect, it} from 'vitest'

import {
  drillNamespaceName,
  drillResourceName,
  isDrillDatabase,
  isDrillId,
  isDrillNamespace,
  newDrillId,
  scratchDatabaseName,
} from '../../../src/dr/naming.js'

describe('drill names', () => {
  const id = newDrillId(new Date('2026-05-09T12:03:01.123Z'), '7f3a')
  it('ids are sortable UTC times with a random suffix', () => {
    expect(id).toBe('20260509-120301-7f3a')
    expect(isDrillId(id)).toBe(true)
    expect(isDrillId('../etc')).toBe(false)
    expect(isDrillId(newDrillId())).toBe(true)
  })
  it("scratch databases carry the prefix and fit PostgreSQL's 63 bytes", () => {
    expect(scratchDatabaseName(id, 'orders-db')).toBe('retailops_drill_20260509_120301_7f3a_orders_db')
    const long = scratchDatabaseName(id, 'a-very-long-datastore-name-that-goes-on-and-on')
    expect(long.length).toBeLessThanOrEqual(63)
    expect(isDrillDatabase(long)).toBe(true)
    expect(long).not.toBe(scratchDatabaseName(id, 'a-very-long-datastore-name-that-goes-on-and-on-2'))
  })
  it('namespaces and cloud resources are DNS labels with the prefix', () => {
    const ns = drillNamespaceName(id, 'shop-config-with-a-long-name-indeed')
    expect(ns.length).toBeLessThanOrEqual(63)
    expect(ns).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    expect(isDrillNamespace(ns)).toBe(true)
    expect(isDrillNamespace('shop')).toBe(false)
    expect(drillResourceName(id, 'payments-rds')).toBe('retailops-drill-20260509-120301-7f3a-payments-rds')
  })
})
