// An RxDB device for the Go tests (memory storage, replicateServer live with
// the pull stream), driven one JSON command a line on stdin:
//   {"cmd":"sync"}  reSync every replication and wait until in sync
//   {"cmd":"upsert","collection","id","fields"}  insert, or patch fields
//   {"cmd":"delete","collection","id"}
//   {"cmd":"waitFor","collection","id","field","value"} -> {"ms"}: until the
//      local document has field == value (no sync asked for)
//   {"cmd":"dump"} -> {"collections":{name:{id:doc}},"conflicts":[...],"errors":[...]}
// Usage: node device.js BASE_URL TOKEN DEVICE_ID
'use strict'
// stdout carries the replies only: the libraries' logs go to stderr.
console.log = console.info = console.warn = console.dir = console.error
const { serveCommands } = require('../lines')
const { openDatabase, replicate } = require('./app')

async function main() {
  const [base, token, deviceId] = process.argv.slice(2)
  const conflicts = []
  const errors = []
  const db = await openDatabase(base, deviceId.replace(/[^a-z0-9]/g, ''), (input) => {
    const { _meta, _rev, _attachments, ...master } = input.realMasterState
    conflicts.push({ id: master.id, master })
  })
  const reps = replicate(db, { base, token, deviceId, retryTime: 300 })
  for (const r of reps) r.error$.subscribe((e) => errors.push(String(e && e.message || e)))
  const clean = (doc) => {
    const { _meta, _rev, _attachments, _deleted, ...rest } = doc.toMutableJSON(true)
    return rest
  }
  const run = {
    sync: async () => {
      for (const r of reps) r.reSync()
      await Promise.all(reps.map((r) => r.awaitInSync()))
      return {}
    },
    upsert: async (c) => {
      const coll = db.collections[c.collection]
      const doc = await coll.findOne(c.id).exec()
      if (doc) await doc.incrementalPatch(c.fields)
      else await coll.insert({ id: c.id, ...c.fields })
      return {}
    },
    delete: async (c) => {
      const doc = await db.collections[c.collection].findOne(c.id).exec()
      await doc.remove()
      return {}
    },
    waitFor: async (c) => {
      const start = Date.now()
      const coll = db.collections[c.collection]
      await new Promise((resolve) => {
        const sub = coll.findOne(c.id).$.subscribe((doc) => {
          if (doc && JSON.stringify(doc.get(c.field)) === JSON.stringify(c.value)) {
            resolve()
            setImmediate(() => sub.unsubscribe())
          }
        })
      })
      return { ms: Date.now() - start }
    },
    dump: async () => {
      const collections = {}
      for (const [name, coll] of Object.entries(db.collections)) {
        collections[name] = {}
        for (const doc of await coll.find().exec()) collections[name][doc.primary] = clean(doc)
      }
      return { collections, conflicts: conflicts.splice(0), errors: errors.splice(0) }
    },
  }
  await serveCommands(run)
  await Promise.all(reps.map((r) => r.cancel()))
  await db.destroy()
}

main().catch((e) => { console.error(e); process.exit(1) })
