// A device for the Go tests: one WatermelonDB (LokiJS in memory) that reads
// one JSON command a line on stdin and answers one JSON line on stdout.
//   {"cmd":"sync"}                                  -> {"rejected":[...]}
//   {"cmd":"create"|"update","table","id","fields"} -> {}
//   {"cmd":"delete","table","id"}                   -> {}
//   {"cmd":"dump"} -> {"tables":{table:{id:row}},"pending":n}
// Usage: node device.js BASE_URL TOKEN DEVICE_ID
'use strict'
process.env.NODE_ENV = process.env.NODE_ENV || 'test'
// stdout carries the replies only: the libraries' logs go to stderr.
console.log = console.info = console.warn = console.error
const { serveCommands } = require('../lines')
const { openDatabase, sync } = require('./app')
const { dump } = require('./dump')

async function main() {
  const [base, token, deviceId] = process.argv.slice(2)
  const database = await openDatabase(base)
  const conf = { base, token, deviceId }
  const run = {
    sync: async () => ({ rejected: await sync(database, conf) }),
    create: async (c) => {
      await database.write(() => database.get(c.table).create((r) => {
        r._raw.id = c.id
        for (const [k, v] of Object.entries(c.fields)) r._setRaw(k, v)
      }))
      return {}
    },
    update: async (c) => {
      const rec = await database.get(c.table).find(c.id)
      await database.write(() => rec.update((r) => { for (const [k, v] of Object.entries(c.fields)) r._setRaw(k, v) }))
      return {}
    },
    delete: async (c) => {
      const rec = await database.get(c.table).find(c.id)
      await database.write(() => rec.markAsDeleted())
      return {}
    },
    dump: () => dump(database),
  }
  await serveCommands(run)
}

main().catch((e) => { console.error(e); process.exit(1) })
