import {newDrillId} from './naming.js'
import {type DrillPlan, planDrill} from './plan.js'
import {PROVIDERS} from './providers/index.js'
import type {DrillOptions} from './drill.js'

/**
 * What `dr plan` shows: the same planning the drill does, and nothing else. A module of its own so
 * that `dr plan` loads the providers' planning and not the drill engine (its records, history,
 * leftovers, measurements and the libraries they run on): issue 18's everyday commands.
 */
export function planOnly(options: Omit<DrillOptions, 'concurrency' | 'clock'>): DrillPlan {
  return planDrill({
    project: options.project,
    environment: options.environment,
    drillId: options.drillId ?? newDrillId(),
    filters: options.filters,
    providers: options.providers ?? PROVIDERS,
    recoverability: options.recoverability,
    env: options.env,
    allowSourceServer: options.allowSourceServer,
  })
}
