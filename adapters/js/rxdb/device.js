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
const { syncDatabase } = require('./app')

async function main() {
  const [base, token, deviceId] = process.argv.slice(2)
  const conflicts = []
  const errors = []
  const state = await syncDatabase({
    base, token, deviceId, retryTime: 300, name: deviceId.replace(/[^a-z0-9]/g, ''),
    onConflict: (input) => {
      const { _meta, _rev, _attachments, ...master } = input.realMasterState
      conflicts.push({ id: master.id, master })
    },
    onOutdated: () => errors.push('outdated app'),
  })
  const watched = new Set()
  const watch = () => {
    for (const r of state.reps) {
      if (watched.has(r)) continue
      watched.add(r)
      // The 426 that starts a device over is expected, not an error.
      r.error$.subscribe((e) => { if (!state.restarting) errors.push(String(e && e.message || e)) })
    }
  }
  watch()
  // db and reps are the current ones: a start over replaces them.
  const current = () => ({ db: state.db, reps: state.reps })
  const clean = (doc) => {
    const { _meta, _rev, _attachments, _deleted, ...rest } = doc.toMutableJSON(true)
    return rest
  }
  const run = {
    sync: async () => {
      // A pull may be told to start over meanwhile: sync the new
      // replications then.
      for (let round = 0; ; round++) {
        await state.settled()
        watch()
        const { reps } = current()
        for (const r of reps) r.reSync()
        const restarted = new Promise((resolve) => {
          const tick = setInterval(() => { if (state.restarting) { clearInterval(tick); resolve('restart') } }, 20)
          Promise.all(reps.map((r) => r.awaitInSync())).then(() => { clearInterval(tick); resolve('ok') })
        })
        if (await restarted === 'ok' && !state.restarting && reps === state.reps) return { restarts: state.restarts }
        if (round > 5) throw new Error('sync: the replication kept starting over')
      }
    },
    upsert: async (c) => {
      const coll = current().db.collections[c.collection]
      const doc = await coll.findOne(c.id).exec()
      if (doc) await doc.incrementalPatch(c.fields)
      else await coll.insert({ id: c.id, ...c.fields })
      return {}
    },
    delete: async (c) => {
      const doc = await current().db.collections[c.collection].findOne(c.id).exec()
      await doc.remove()
      return {}
    },
    waitFor: async (c) => {
      const start = Date.now()
      const coll = current().db.collections[c.collection]
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
      for (const [name, coll] of Object.entries(current().db.collections)) {
        collections[name] = {}
        for (const doc of await coll.find().exec()) collections[name][doc.primary] = clean(doc)
      }
      return { collections, conflicts: conflicts.splice(0), errors: errors.splice(0), restarts: state.restarts }
    },
  }
  await serveCommands(run)
  await Promise.all(state.reps.map((r) => r.cancel()))
  await state.db.destroy()
}

main().catch((e) => { console.error(e); process.exit(1) })
