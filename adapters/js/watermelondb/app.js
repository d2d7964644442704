// The app side of fieldsync's WatermelonDB adapter, as docs/integrate.md
// shows it to app developers: the app schema from the server, the stock
// synchronize() with a pullChanges/pushChanges of a few lines, and taking
// the server's row for what the server refused.
'use strict'
const { Database, Model } = require('@nozbe/watermelondb')
const { appSchema, tableSchema } = require('@nozbe/watermelondb/Schema')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
const { sanitizedRaw } = require('@nozbe/watermelondb/RawRecord')

// openDatabase builds an in-memory WatermelonDB on the app schema that
// GET /v1/adapters/watermelondb/schema serves.
async function openDatabase(base) {
  const res = await fetch(`${base}/v1/adapters/watermelondb/schema`)
  if (!res.ok) throw new Error(`schema: ${res.status} ${await res.text()}`)
  const served = await res.json()
  const schema = appSchema({ version: served.version, tables: served.tables.map((t) => tableSchema(t)) })
  const modelClasses = served.tables.map((t) => class extends Model { static table = t.name })
  const adapter = new LokiJSAdapter({ schema, useWebWorker: false, useIncrementalIndexedDB: false, extraLokiOptions: { autosave: false } })
  return new Database({ adapter, modelClasses })
}

// sync runs synchronize() until the server has no more pages and returns
// what the server refused (code, message, pointer, the server's row).
// migrationsEnabledAtVersion is the app schema version from which the app
// has WatermelonDB migrations (omitted: no migration syncs): an upgraded app
// then tells the server what its migrations added, and the server sends
// those tables and columns (docs/integrate.md, "migration syncs").
// localTables are the app's own tables, which the server does not serve:
// pushChanges leaves them out (the server refuses a table it does not know).
async function sync(database, { base, token, deviceId, migrationsEnabledAtVersion, localTables = [] }) {
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }
  const url = `${base}/v1/adapters/watermelondb/sync`
  const rejected = []
  let more = true
  while (more) {
    await synchronize({
      database,
      migrationsEnabledAtVersion,
      sendCreatedAsUpdated: true,
      // A record with local changes keeps the version they were made on, so
      // the server can tell a same-field conflict from an edit of the
      // pulled value (WatermelonDB would take the remote fs_version).
      conflictResolver: (table, local, remote, resolved) =>
        local._changed ? { ...resolved, fs_version: local.fs_version } : resolved,
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
        const q = new URLSearchParams({ last_pulled_at: `${lastPulledAt ?? ''}`, schema_version: `${schemaVersion}`, migration: migration ? JSON.stringify(migration) : '' })
        const res = await fetch(`${url}?${q}`, { headers })
        if (!res.ok) throw new Error(`pull: ${res.status} ${await res.text()}`)
        const body = await res.json()
        more = body.has_more
        return body
      },
      pushChanges: async ({ changes: all, lastPulledAt }) => {
        // A copy: WatermelonDB marks what it fetched synced, local tables too.
        const changes = Object.fromEntries(Object.entries(all).filter(([t]) => !localTables.includes(t)))
        const res = await fetch(`${url}?device_id=${encodeURIComponent(deviceId)}`, { method: 'POST', headers, body: JSON.stringify({ changes, lastPulledAt }) })
        if (!res.ok) throw new Error(`push: ${res.status} ${await res.text()}`)
        const body = await res.json()
        rejected.push(...body.rejected)
        return { experimentalRejectedIds: body.experimentalRejectedIds }
      },
    })
  }
  await takeServerRows(database, rejected)
  return rejected
}

// takeServerRows discards the device's refused changes: each record becomes
// the server's row (or goes, when the server has none for the caller).
async function takeServerRows(database, rejected) {
  if (rejected.length === 0) return
  await database.write(async () => {
    const ops = []
    for (const r of rejected) {
      const coll = database.get(r.table)
      const rec = await coll.find(r.id).catch(() => null)
      if (!rec) await database.adapter.destroyDeletedRecords(r.table, [r.id]) // a refused local delete
      if (r.record) {
        const raw = sanitizedRaw({ ...r.record, _status: 'synced', _changed: '' }, coll.schema)
        ops.push(rec ? rec.prepareUpdate(() => { rec._raw = raw }) : coll.prepareCreateFromDirtyRaw(raw))
      } else if (rec) {
        ops.push(rec.prepareDestroyPermanently())
      }
    }
    await database.batch(ops)
  })
}

module.exports = { openDatabase, sync, takeServerRows }
