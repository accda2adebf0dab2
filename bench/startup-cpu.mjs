// Loaded by bench/startup.mjs into every process it times (`node --import`): writes the process's
// CPU time (user + system, ms, every thread) to the file RETAILOPS_BENCH_CPU names, taken when the
// process opens its first network connection (the end of a command's fixed cost), or at exit
// when it never opens one. CPU time, unlike wall time, does not grow with the machine's load.
import diagnostics from 'node:diagnostics_channel'
import {writeFileSync} from 'node:fs'

const file = process.env.RETAILOPS_BENCH_CPU
let atConnect
const cpuMs = (u) => (u.user + u.system) / 1000
diagnostics.subscribe('net.client.socket', () => {
  atConnect ??= process.cpuUsage()
})
process.on('exit', () => {
  if (file) writeFileSync(file, String(cpuMs(atConnect ?? process.cpuUsage())))
})
