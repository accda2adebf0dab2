// Regenerates the bundled services' image files (services/<name>/Dockerfile and
// Dockerfile.dockerignore) from templates/service/ with the renderer `retailops service add`
// uses, so the six cannot drift apart: edit the templates, not the generated files. CI fails
// when they drift.
import {writeFileSync} from 'node:fs'

const {BUNDLED_JOBS, BUNDLED_SERVICES, DEFAULT_SERVICE_PORT} = await import('../dist/src/scaffold/defaults.js')
const {jobImageFiles, serviceImageFiles} = await import('../dist/src/scaffold/service-add.js')

for (const {name} of BUNDLED_SERVICES) {
  for (const [file, text] of Object.entries(await serviceImageFiles(name, DEFAULT_SERVICE_PORT)))
    writeFileSync(`services/${name}/${file}`, text)
}
for (const {name} of BUNDLED_JOBS) {
  for (const [file, text] of Object.entries(await jobImageFiles(name))) writeFileSync(`services/${name}/${file}`, text)
}
