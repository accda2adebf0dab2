/**
 * DR drill benchmark: how long a postgres restore drill takes, step by step, as the source grows,
 * on the sandbox's PostgreSQL with the real pg_dump and pg_restore. The drill's own time is the
 * floor of any RTO a team can promise for a backup-and-restore datastore.
 *
 *   eval "$(bash scripts/sandbox.sh env)"
 *   npx tsx bench/dr.ts [--rows 10000,100000,1000000] [--rounds 3]
 *
 * Each size: a fresh source database with an orders table (id, customer, total, created_at, an
 * index on created_at), then `rounds` drills (count, checksum compared with the source in the
 * dump's snapshot, newest order as the recovery point). Prints a Markdown table of medians: the
 * whole drill, each step, and the RTO measured; the source is dropped afterwards.
 */
import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import pg from 'pg'

import {loadConfig} from '../src/config/load.js'
import {runDrill} from '../src/dr/drill.js'
import {silentOutput} from '../src/ui/output.js'

const {values} = parseArgs({
  options: {rows: {type: 'string', default: '10000,100000,1000000'}, rounds: {type: 'string', default: '3'}},
})
const base = process.env.RETAILOPS_POSTGRES_URL ?? process.env.DATABASE_URL
if (!base) throw new Error('Load the sandbox environment first: eval "$(bash scripts/sandbox.sh env)"')
const url = (db: string) => Object.assign(new URL(base), {pathname: `/${db}`}).toString()

async function sql(db: string, text: string): Promise<void> {
  const c = new pg.Client({connectionString: url(db)})
  await c.connect()
  try {
    await c.query(text)
  } finally {
    await c.end()
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`

const rows: string[] = [
  '| rows | dump size | drill | backup | create | restore | validate | cleanup | RTO |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
]
for (const n of values.rows.split(',').map(Number)) {
  const db = `bench_dr_${n}`
  await sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
  await sql('postgres', `CREATE DATABASE ${db}`)
  await sql(
    db,
    `CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
     INSERT INTO orders (customer, total, created_at) SELECT 'customer-' || g, (g % 997) + 0.99, now() - make_interval(secs => ${n} - g) FROM generate_series(1, ${n}) g;
     CREATE INDEX ON orders (created_at); ANALYZE orders;`,
  )
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-dr-'))
  writeFileSync(
    path.join(dir, 'retailops.yaml'),
    `project: bench
registry: {url: 127.0.0.1:5000, insecure: true}
services: {orders: {tier: revenue-critical}}
datastores:
  - name: orders-db
    service: orders
    provider: postgres
    postgres: {url: "${url(db)}"}
    validation:
      - {name: count, query: "select count(*) from orders", expect: {equals: ${n}}}
      - {name: checksum, query: "select md5(string_agg(id || ':' || total, ',' order by id)) from orders", expect: {matchesSource: true}}
      - {name: newest, query: "select max(created_at) from orders", recoveryPoint: true}
`,
  )
  const project = await loadConfig(path.join(dir, 'retailops.yaml'))
  const runs: {total: number; steps: Record<string, number>; rto: number; bytes: number}[] = []
  for (let r = 0; r < Number(values.rounds); r++) {
    const record = await runDrill(
      {
        project,
        environment: {name: 'default', cluster: 'default', namespace: 'default', router: 'replicas', production: false},
        filters: {},
        recoverability: false,
      },
      {out: silentOutput},
    )
    if (record.status !== 'passed') throw new Error(`drill ${record.id} ended ${record.status}`)
    const steps = Object.fromEntries(record.steps.map((st) => [st.name, st.durationMs ?? 0]))
    runs.push({
      total: record.durationMs,
      steps,
      rto: record.datastores[0].rto.actualMs!,
      bytes: Number(record.datastores[0].evidence.dumpBytes),
    })
  }
  const m = (pick: (x: (typeof runs)[number]) => number) => s(median(runs.map(pick)))
  rows.push(
    `| ${n.toLocaleString('en')} | ${(runs[0].bytes / 1e6).toFixed(1)} MB | ${m((x) => x.total)} | ${m((x) => x.steps.backup)} | ${m((x) => x.steps['create-target'])} | ${m((x) => x.steps.restore)} | ${m((x) => x.steps.validate)} | ${m((x) => x.steps.cleanup)} | ${m((x) => x.rto)} |`,
  )
  await sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
}
process.stdout.write(`${rows.join('\n')}\n`)
