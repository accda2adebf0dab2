import Table from 'cli-table3'

import {makeChalk} from './terminal.js'

export interface Column<T> {
  header: string
  value: (row: T) => string | number | undefined
  align?: 'left' | 'right'
}

/** Renders rows as a borderless table string; callers decide where it goes. */
export function renderTable<T>(rows: T[], columns: Column<T>[]): string {
  const c = makeChalk()
  const table = new Table({
    head: columns.map((col) => c.bold(col.header)),
    colAligns: columns.map((col) => col.align ?? 'left'),
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: {head: [], border: [], 'padding-left': 0, 'padding-right': 0},
  })
  for (const row of rows) table.push(columns.map((col) => String(col.value(row) ?? '')))
  return table.toString()
}
