// serveCommands answers one JSON command a line on stdin with one JSON line
// on stdout, running run[command.cmd](command); an exception is answered
// {"error": ...}. It resolves when stdin ends. The Go tests drive the
// devices this way (app/jsdevice_test.go).
'use strict'
const readline = require('node:readline')

async function serveCommands(run) {
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (!line.trim()) continue
    let reply
    try {
      const c = JSON.parse(line)
      reply = await run[c.cmd](c)
    } catch (e) {
      reply = { error: String((e && e.stack) || e) }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
}

module.exports = { serveCommands }
