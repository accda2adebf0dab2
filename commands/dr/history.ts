import {Args, Flags} from '@oclif/core'

import {listDrills, loadDrill, type DrillSummary} from '../../src/dr/history.js'
import {renderDrillSummary, renderHistory} from '../../src/dr/render.js'
import type {DrillRecord} from '../../src/dr/types.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class DrHistory extends RetailOpsCommand<typeof DrHistory> {
  static override summary = 'List past restore drills, or show one.'
  static override description = 'Reads the drill records kept in .retailops/drills/ next to retailops.yaml, newest first. With a drill id, shows that drill (--json: its whole record).'
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --datastore orders-db --limit 5',
    '<%= config.bin %> <%= command.id %> 20260509-120301-7f3a --json',
  ]
  static override args = {id: Args.string({description: 'A drill id: show that drill.'})}
  static override flags = {
    limit: Flags.integer({description: 'At most this many drills.', default: 20, min: 1}),
    service: Flags.string({description: 'Only drills that covered this service.'}),
    datastore: Flags.string({description: 'Only drills that covered this datastore.'}),
    status: Flags.string({description: 'Only drills that ended so.', options: ['passed', 'target-missed', 'validation-failed', 'error', 'interrupted']}),
  }

  async run(): Promise<{drills: DrillSummary[]; unreadable: string[]} | DrillRecord> {
    const project = await this.loadProject()
    if (this.args.id) {
      const record = await loadDrill(project.dir, this.args.id)
      this.log(renderDrillSummary(record))
      return record
    }
    const result = await listDrills(project.dir, {limit: this.flags.limit, service: this.flags.service, datastore: this.flags.datastore, status: this.flags.status})
    for (const file of result.unreadable) this.warnUser(`${file} is not a readable drill record; skipped.`)
    this.log(renderHistory(result.drills))
    return result
  }
}
