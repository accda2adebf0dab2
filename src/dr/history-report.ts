import {writeFile} from 'node:fs/promises'

import type {DatastoreTrend} from './history.js'
import {renderHistoryHtml} from './report.js'

/** Writes `dr history --html`: each datastore's RTO and RPO over the drills listed. */
export async function writeHistoryReport(file: string, trends: DatastoreTrend[], project: string): Promise<void> {
  await writeFile(file, renderHistoryHtml(trends, project))
}
