// dump reads a WatermelonDB back for the Go tests: every table's rows as
// the server would see them (without WatermelonDB's _status and _changed)
// and how many local changes are still to push, deletes included.
'use strict'

async function dump(database) {
  const tables = {}
  let pending = 0
  for (const coll of Object.values(database.collections.map)) {
    const rows = {}
    for (const rec of await coll.query().fetch()) {
      const { _status, _changed, ...row } = rec._raw
      if (_status !== 'synced') pending++
      rows[rec.id] = row
    }
    pending += (await database.adapter.getDeletedRecords(coll.table)).length
    tables[coll.table] = rows
  }
  return { tables, pending }
}

module.exports = { dump }
