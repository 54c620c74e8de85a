// SPDX-License-Identifier: MIT
// pp_server.mjs MODE [BYTES] - process-proxy's server for scripts/bench-peers.sh.
// MODE exit: every call exits 0 at once. MODE stream: every call gets BYTES
// of stdout (64 KiB writes, waiting on 'drain'), then exits 0. Prints the
// port on its first line, then serves until killed.
import { createProxyProcessServer } from 'process-proxy'

const [mode, bytesArg] = process.argv.slice(2)
const total = Number(bytesArg ?? 0)
const chunk = Buffer.alloc(65536, 0x61)

async function stream(conn) {
  for (let left = total; left > 0; left -= chunk.length) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left)
    if (!conn.stdout.write(part)) await new Promise((r) => conn.stdout.once('drain', r))
  }
}

const server = createProxyProcessServer(async (conn) => {
  if (mode === 'stream') await stream(conn)
  await conn.exit(0)
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
