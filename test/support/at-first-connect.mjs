// Preloaded into a CLI process by a test (NODE_OPTIONS=--import …): when the process opens its first
// network connection, writes Node's built-in modules loaded by then (process.moduleLoadList) to the
// file RETAILOPS_TEST_AT_CONNECT names. What a command does before that is the fixed cost a user
// waits for before the network does (issue 18).
import diagnostics from 'node:diagnostics_channel'
import {writeFileSync} from 'node:fs'

let written = false
diagnostics.subscribe('net.client.socket', () => {
  const file = process.env.RETAILOPS_TEST_AT_CONNECT
  if (written || !file) return
  written = true
  writeFileSync(file, process.moduleLoadList.join('\n'))
})
