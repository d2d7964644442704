// A WatermelonDB device whose app is upgraded while it holds data, for the
// Go test of migration syncs (app/watermelondb_test.go). Version 1 of its
// app schema is the served one without the table price_lists and without
// the column customers.price_list_id (an app built before the server served
// them); version 2 adds both with WatermelonDB migrations, and a table of
// the app's own, drafts. Both versions sync with migrationsEnabledAtVersion
// 1. The data lives in a LokiJS memory adapter that survives the upgrade,
// as a phone's database survives an app update.
// Commands, one JSON line each:
//   {"cmd":"sync"}                     -> {"rejected":[...]}
//   {"cmd":"upgrade"}                  -> {}: reopen the database as version 2
//   {"cmd":"create","table","id","fields"} -> {}
//   {"cmd":"dump"} -> {"tables":{table:{id:row}},"pending":n,"version":v,"migrations":[every migration pulled with]}
// Usage: node migrating.js BASE_URL TOKEN DEVICE_ID
'use strict'
process.env.NODE_ENV = process.env.NODE_ENV || 'test'
console.log = console.info = console.warn = console.error
const { Database, Model } = require('@nozbe/watermelondb')
const { appSchema, tableSchema } = require('@nozbe/watermelondb/Schema')
const { schemaMigrations, createTable, addColumns } = require('@nozbe/watermelondb/Schema/migrations')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { LokiMemoryAdapter } = require('lokijs')
const { serveCommands } = require('../lines')
const { sync } = require('./app')
const { dump } = require('./dump')

const drafts = { name: 'drafts', columns: [{ name: 'text', type: 'string', isOptional: true }] }

async function main() {
  const [base, token, deviceId] = process.argv.slice(2)
  // The migrations each pull carried, as the server saw them.
  const migrations = []
  const realFetch = globalThis.fetch
  globalThis.fetch = (url, init) => {
    const m = new URL(url).searchParams.get('migration')
    if (m) migrations.push(JSON.parse(m))
    return realFetch(url, init)
  }
  const res = await realFetch(`${base}/v1/adapters/watermelondb/schema`)
  if (!res.ok) throw new Error(`schema: ${res.status} ${await res.text()}`)
  const served = await res.json()
  const priceLists = served.tables.find((t) => t.name === 'price_lists')
  const priceListColumn = served.tables.find((t) => t.name === 'customers').columns.find((c) => c.name === 'price_list_id')
  const v1Tables = served.tables.filter((t) => t !== priceLists)
    .map((t) => t.name === 'customers' ? { ...t, columns: t.columns.filter((c) => c !== priceListColumn) } : t)
  const versions = {
    1: { tables: v1Tables, migrations: schemaMigrations({ migrations: [] }) },
    2: {
      tables: [...served.tables, drafts],
      migrations: schemaMigrations({
        migrations: [{
          toVersion: 2,
          steps: [createTable(priceLists), createTable(drafts), addColumns({ table: 'customers', columns: [priceListColumn] })],
        }],
      }),
    },
  }
  const memory = new LokiMemoryAdapter()
  const open = (version) => {
    const v = versions[version]
    const schema = appSchema({ version, tables: v.tables.map((t) => tableSchema(t)) })
    const adapter = new LokiJSAdapter({
      schema, migrations: v.migrations, dbName: 'device', useWebWorker: false, useIncrementalIndexedDB: false,
      _testLokiAdapter: memory, extraLokiOptions: { autosave: false },
    })
    return new Database({ adapter, modelClasses: v.tables.map((t) => class extends Model { static table = t.name }) })
  }
  let version = 1
  let database = open(version)
  const conf = { base, token, deviceId, migrationsEnabledAtVersion: 1, localTables: ['drafts'] }
  const run = {
    sync: async () => ({ rejected: await sync(database, conf) }),
    upgrade: async () => {
      // What the app held is written to the memory adapter, and version 2
      // opens it: WatermelonDB runs the migrations.
      await database.adapter.unsafeExecute({ loki: (loki) => loki.saveDatabase() })
      version = 2
      database = open(version)
      await database.get('drafts').query().fetch() // the adapter is set up (and migrated)
      return {}
    },
    create: async (c) => {
      await database.write(() => database.get(c.table).create((r) => {
        r._raw.id = c.id
        for (const [k, v] of Object.entries(c.fields)) r._setRaw(k, v)
      }))
      return {}
    },
    dump: async () => ({ ...(await dump(database)), version, migrations: migrations.splice(0) }),
  }
  await serveCommands(run)
}

main().catch((e) => { console.error(e); process.exit(1) })
