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

module.exports = { openDatabase, replicate, SCHEMA_VERSION }
