// Preloaded into a CLI process by a test (NODE_OPTIONS=--require …): at exit, writes the CommonJS
// modules the process loaded from files (oclif is CommonJS) to the file RETAILOPS_TEST_LOADED_MODULES names.
const {writeFileSync} = require('node:fs')

process.on('exit', () => {
  const file = process.env.RETAILOPS_TEST_LOADED_MODULES
  if (file) writeFileSync(file, Object.keys(require.cache).join('\n'))
})
