/**
 * OSV database benchmark: how long `retailops scan` takes to read and validate an OSV npm zip the
 * size OSV publishes, the first time (writing its index) and later (reading the index) (npm/all.zip holds a couple of hundred thousand records, most of them
 * malicious-package reports), and how much memory it holds, against the baseline of reading the
 * same zip's entries without parsing them (yauzl alone: the floor for any reader of that zip).
 *
 *   npx tsx bench/osv.ts [--records 200000]
 *
 * The zip is generated here (no network): records shaped like GHSA and MAL records (aliases,
 * CVSS vector, ranges, references, a paragraph of details), one package each.
 */
import {createWriteStream} from 'node:fs'
import {mkdtemp, rm, stat} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {parseArgs} from 'node:util'
import {promisify} from 'node:util'

import {execa} from 'execa'
import yauzl from 'yauzl'
import yazl from 'yazl'

import {matchVulnerabilities} from '../src/supplychain/match.js'
import {loadOsvDatabase} from '../src/supplychain/osv.js'

const {values} = parseArgs({options: {records: {type: 'string', default: '200000'}, measure: {type: 'string'}}})
const count = Number(values.records)

const details =
  'Affected versions of this package are vulnerable to Prototype Pollution via the merge function, which does not restrict the keys it copies. An attacker who controls the merged object can add or modify properties of Object.prototype, which may lead to denial of service or remote code execution in applications that rely on those properties.'
function record(i: number) {
  const malicious = i % 3 !== 0
  const id = malicious ? `MAL-2026-${i}` : `GHSA-${i.toString(36).padStart(4, 'x')}-bench-${i % 997}`
  return {
    schema_version: '1.6.0',
    id,
    modified: new Date(Date.now() - (i % 1000) * 60_000).toISOString(),
    published: '2026-01-01T00:00:00Z',
    aliases: malicious ? [] : [`CVE-2026-${10000 + i}`],
    summary: malicious ? `Malicious code in pkg-${i} (npm)` : `Prototype pollution in pkg-${i}`,
    details: malicious ? `The package pkg-${i} was found to contain malicious code.` : details,
    ...(malicious ? {} : {severity: [{type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'}]}),
    affected: [
      {
        package: {ecosystem: 'npm', name: `pkg-${i}`, purl: `pkg:npm/pkg-${i}`},
        ...(malicious
          ? {versions: ['1.0.0', '1.0.1', '1.0.2']}
          : {ranges: [{type: 'ECOSYSTEM', events: [{introduced: '0'}, {fixed: '4.17.21'}]}]}),
        database_specific: {source: 'https://example.invalid/advisory.json'},
      },
    ],
    references: [
      {type: 'ADVISORY', url: `https://nvd.nist.gov/vuln/detail/CVE-2026-${10000 + i}`},
      {type: 'PACKAGE', url: `https://www.npmjs.com/package/pkg-${i}`},
    ],
    database_specific: malicious
      ? {'malicious-packages-origins': [{source: 'ghsa-malware'}]}
      : {severity: 'HIGH', cwe_ids: ['CWE-1321']},
  }
}

if (!values.measure) {
  // Generated, then measured in a process of its own, so the generator's buffers are not counted.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-osv-'))
  const zipFile = path.join(dir, 'all.zip')
  const zip = new yazl.ZipFile()
  for (let i = 0; i < count; i++) {
    const r = record(i)
    // A stream per entry: yazl deflates them one at a time as it writes (addBuffer would start
    // every deflate at once, a zlib context each).
    zip.addReadStream(Readable.from([Buffer.from(JSON.stringify(r, null, 2))]), `${r.id}.json`)
  }
  zip.end()
  await pipeline(zip.outputStream, createWriteStream(zipFile))
  try {
    await execa(
      process.execPath,
      [...process.execArgv, import.meta.filename, '--measure', zipFile, '--records', String(count)],
      {
        stdio: 'inherit',
      },
    )
  } finally {
    await rm(dir, {recursive: true, force: true})
  }
  process.exit(0)
}
const zipFile = values.measure
const size = (await stat(zipFile)).size

// Baseline: every entry read through yauzl's own inflate stream (a reader's obvious way) and dropped, nothing parsed.
async function rawRead(): Promise<number> {
  const open = promisify<string, yauzl.Options, yauzl.ZipFile>(yauzl.open)
  const z = await open(zipFile, {lazyEntries: true, autoClose: true})
  let bytes = 0
  await new Promise<void>((resolve, reject) => {
    z.on('error', reject)
    z.on('end', resolve)
    z.on('entry', (entry: yauzl.Entry) =>
      z.openReadStream(entry, (error, stream) => {
        if (error) return reject(error)
        stream.on('data', (c: Buffer) => (bytes += c.length))
        stream.on('end', () => z.readEntry())
      }),
    )
    z.readEntry()
  })
  return bytes
}

let peak = process.memoryUsage().rss
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50)
const rssBefore = process.memoryUsage().rss

let t = performance.now()
const bytes = await rawRead()
const raw = performance.now() - t

t = performance.now()
// As scan asks for it: every record validated, the SBOM's packages indexed.
const packages = ['pkg-3', 'pkg-4', 'prom-client', 'tdigest', 'bintrees', '@opentelemetry/api']
const db = await loadOsvDatabase(zipFile, {packages})
const load = performance.now() - t
// The CLI's way: the first load of the zip also writes its index; the next ones read the packages' shards from it.
const indexRoot = await mkdtemp(path.join(os.tmpdir(), 'bench-osv-index-'))
t = performance.now()
await loadOsvDatabase(zipFile, {packages, indexRoot})
const indexing = performance.now() - t
const warm: number[] = []
for (let i = 0; i < 5; i++) {
  t = performance.now()
  const again = await loadOsvDatabase(zipFile, {packages, indexRoot})
  warm.push(performance.now() - t)
  if (again.npm.size !== db.npm.size) throw new Error('the index gave other records than the zip')
}
const warmMedian = warm.sort((a, b) => a - b)[2]
await rm(indexRoot, {recursive: true, force: true})
t = performance.now()
const findings = matchVulnerabilities(
  {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    components: ['pkg:npm/pkg-3@4.17.20', 'pkg:npm/pkg-4@1.0.1', 'pkg:npm/prom-client@15.1.3'].map((purl) => ({purl})),
  },
  db,
)
const match = performance.now() - t
clearInterval(sampler)
peak = Math.max(peak, process.memoryUsage().rss)

console.log(
  `OSV npm zip: ${count} records, ${(size / 1e6).toFixed(1)} MB zipped, ${(bytes / 1e6).toFixed(1)} MB of JSON`,
)
console.log(`baseline (yauzl streams, not parsed):   ${(raw / 1000).toFixed(2)} s`)
console.log(
  `loadOsvDatabase (parse + validate all): ${(load / 1000).toFixed(2)} s  (${(load / raw).toFixed(2)}× the baseline)`,
)
console.log(
  `first load, writing the index:         ${(indexing / 1000).toFixed(2)} s  (${(indexing / raw).toFixed(2)}× the baseline)`,
)
console.log(
  `later loads, from the index (median 5): ${(warmMedian / 1000).toFixed(3)} s  (${(warmMedian / raw).toFixed(4)}× the baseline)`,
)
console.log(`matchVulnerabilities (3 packages):      ${match.toFixed(2)} ms, ${findings.length} findings`)
console.log(
  `peak RSS: ${(peak / 1e6).toFixed(0)} MB (${((peak - rssBefore) / 1e6).toFixed(0)} MB above the start; the zip is ${(size / 1e6).toFixed(0)} MB)`,
)
