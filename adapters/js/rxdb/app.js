// The app side of fieldsync's RxDB adapter, as docs/integrate.md shows it:
// the RxJsonSchemas from the server, and replicateServer of rxdb-server for
// every collection with a bearer token and the device id as headers.
'use strict'
const { createRxDatabase, defaultConflictHandler } = require('rxdb')
const { getRxStorageMemory } = require('rxdb/plugins/storage-memory')
const { replicateServer } = require('rxdb-server/plugins/replication-server')

// SCHEMA_VERSION is the version in the endpoints' path; a server on another
// answers 426 and replicateServer emits outdatedClient$.
const SCHEMA_VERSION = 1

// openDatabase creates an in-memory RxDB with one collection per synced
// collection. onConflict sees every conflict (refusals included) before
// RxDB's stock handler resolves it (the server's state wins).
async function openDatabase(base, name, onConflict) {
  const res = await fetch(`${base}/v1/adapters/rxdb/schemas`)
  if (!res.ok) throw new Error(`schemas: ${res.status} ${await res.text()}`)
  const schemas = await res.json()
  const db = await createRxDatabase({ name, storage: getRxStorageMemory(), multiInstance: false })
  const conflictHandler = async (input, context) => {
    const out = await defaultConflictHandler(input, context)
    if (!out.isEqual) onConflict(input)
    return out
  }
  const cols = {}
  for (const [coll, schema] of Object.entries(schemas)) cols[coll] = { schema, conflictHandler }
  await db.addCollections(cols)
  return db
}

// replicate starts replicateServer for every collection.
function replicate(db, { base, token, deviceId, retryTime = 1000 }) {
  return Object.values(db.collections).map((collection) => replicateServer({
    collection,
    replicationIdentifier: `fieldsync-${collection.name}`,
    url: `${base}/v1/adapters/rxdb/${collection.name}/${SCHEMA_VERSION}`,
    headers: { Authorization: `Bearer ${token}`, 'X-Device-Id': deviceId },
    live: true,
    retryTime,
    waitForLeadership: false,
    pull: { batchSize: 100 },
    push: { batchSize: 100 },
  }))
}

// syncDatabase opens the database and replicates it, and handles
// outdatedClient$ (a 426) as docs/integrate.md says: when the server's
// schema version (X-Fieldsync-Rxdb-Version on the schemas endpoint) is the
// app's own, what the user may see changed (a team, a role): the app drops
// its collections and replicates again from the start, so it keeps only
// what it may still see. Otherwise the app is outdated (onOutdated).
// state.db and state.reps are the current ones; state.restarts counts the
// starts over; state.settled() waits for one in progress.
async function syncDatabase({ base, name, token, deviceId, retryTime, onConflict, onOutdated }) {
  const state = { db: null, reps: [], restarts: 0, restarting: null }
  const start = async () => {
    state.db = await openDatabase(base, name, onConflict)
    state.reps = replicate(state.db, { base, token, deviceId, retryTime })
    for (const r of state.reps) {
      r.outdatedClient$.subscribe(() => {
        if (!state.restarting) state.restarting = restart().finally(() => { state.restarting = null })
      })
    }
  }
  const restart = async () => {
    const res = await fetch(`${base}/v1/adapters/rxdb/schemas`)
    if (res.headers.get('x-fieldsync-rxdb-version') !== String(SCHEMA_VERSION)) {
      if (onOutdated) onOutdated()
      return
    }
    const old = state
    await Promise.all(old.reps.map((r) => r.cancel()))
    await old.db.remove()
    state.restarts++
    await start()
  }
  state.settled = async () => {
    while (state.restarting) await state.restarting
  }
  await start()
  return state
}

module.exports = { openDatabase, replicate, syncDatabase, SCHEMA_VERSION }
