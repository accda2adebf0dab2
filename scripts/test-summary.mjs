// Prints the plain closing line CI reads ("N passed, N failed, N skipped") from vitest's JSON report.
import {readFileSync} from 'node:fs'

const file = process.argv[2] ?? '.vitest-results.json'
let report
try {
  report = JSON.parse(readFileSync(file, 'utf8'))
} catch {
  console.log('0 passed, 1 failed')
  process.exit(0)
}
const skipped = report.numPendingTests + (report.numTodoTests ?? 0)
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`)
