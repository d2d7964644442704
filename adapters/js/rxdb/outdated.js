// An app of an older schema version against the server: replicateServer
// must be told it is outdated (outdatedClient$) and stop. Prints
// {"outdated": true} when it was. Usage: node outdated.js BASE_URL TOKEN
'use strict'
console.log = console.info = console.warn = console.dir = console.error
const { replicateServer } = require('rxdb-server/plugins/replication-server')
const { openDatabase } = require('./app')

async function main() {
  const [base, token] = process.argv.slice(2)
  const db = await openDatabase(base, 'outdated', () => {})
  const rep = replicateServer({
    collection: db.collections.customers,
    replicationIdentifier: 'outdated',
    url: `${base}/v1/adapters/rxdb/customers/0`, // a schema version the server does not speak
    headers: { Authorization: `Bearer ${token}`, 'X-Device-Id': 'old-app' },
    live: true,
    waitForLeadership: false,
    pull: { batchSize: 10 },
  })
  rep.error$.subscribe(() => {})
  await new Promise((resolve) => rep.outdatedClient$.subscribe(resolve))
  process.stdout.write(JSON.stringify({ outdated: true }) + '\n')
  await db.destroy()
  process.exit(0)
}

main().catch((e) => { console.error(e); process.exit(1) })
