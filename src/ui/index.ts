export * from './context.js'
export * from './output.js'
export * from './table.js'
export * from './terminal.js'
