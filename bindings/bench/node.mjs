// SPDX-License-Identifier: MIT
// Bench (scripts/bench.sh): the Node package, live, against a rules file's
// answer (live.py has the rules figure), and against process-proxy itself
// (installed from npm by bench.sh, never by the tests) on the same jobs:
// a 300-call loop and a 256 MiB stdout stream. One JSON object per figure.
//
//   node node.mjs PROCESS_PROXY_DIR TRANSPORT CALLS REPS
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as sb from '../node/lib/index.js';

const [ppDir, transport, calls, reps] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const pp = await import(pathToFileURL(join(ppDir, 'node_modules/process-proxy/dist/index.js')));

const LOOP = (n) => `i=0; t0=$(date +%s%N); while [ $i -lt ${n} ]; do tool >/dev/null || exit 1; i=$((i+1)); done; t1=$(date +%s%N); echo $(( (t1 - t0) / ${n} ))`;

async function nodeLive() {
  const bridge = await sb.Bridge.start({ transport });
  await bridge.fake('tool', (call) => {
    call.stdout.write('ok\n');
    return 0;
  });
  const r = await bridge.run(['sh', '-c', LOOP(calls)], { captureOutput: true });
  await bridge.close();
  if (r.status !== 0) throw new Error(`node live: ${r.stderr}`);
  return Number(r.stdout) / 1000;
}

// A server of either package whose listener is onConn; childEnv(port) the
// variables its command needs.
async function serve(mod, onConn, options) {
  const server = mod.createProxyProcessServer(onConn, options);
  const port = await new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
  const env = mod === pp ? { ...process.env, PROCESS_PROXY_PORT: String(port) }
    : { ...process.env, ...server.childEnv() };
  return { server, env, exe: mod.getProxyCommandPath() };
}

async function close(server) {
  await new Promise((resolve) => server.close(() => resolve()));
}

async function loop300(mod) {
  const { server, env, exe } = await serve(mod, (conn) => { conn.exit(0); },
    mod === sb ? { transport } : undefined);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 300; i++) {
    const child = spawn(exe, [String(i)], { env, stdio: 'ignore' });
    const [code] = await once(child, 'close');
    if (code !== 0) throw new Error(`loop: exit ${code}`);
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  if (mod === pp) server.close(); else await close(server);
  return elapsed;
}

const STREAM = 256 << 20;
async function stream(mod) {
  const chunk = Buffer.alloc(64 << 10, 0x61);
  const { server, env, exe } = await serve(mod, async (conn) => {
    for (let sent = 0; sent < STREAM; sent += chunk.length) {
      if (!conn.stdout.write(chunk)) await once(conn.stdout, 'drain');
    }
    await conn.exit(0);
  }, mod === sb ? { transport } : undefined);
  const devnull = openSync('/dev/null', 'w');
  const t0 = process.hrtime.bigint();
  const child = spawn(exe, [], { env, stdio: ['ignore', devnull, 'inherit'] });
  const [code] = await once(child, 'close');
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`stream: exit ${code}`);
  if (mod === pp) server.close(); else await close(server);
  return STREAM / secs / (1 << 20);
}

const figures = {
  [`node live ${transport}`]: ['us/call', []],
  [`300-call loop socketbridge ${transport}`]: ['ms', []],
  ['300-call loop process-proxy tcp']: ['ms', []],
  [`256 MiB stdout socketbridge ${transport}`]: ['MiB/s', []],
  ['256 MiB stdout process-proxy tcp']: ['MiB/s', []],
};
// SB_BENCH_ONLY (a regular expression): only the figures it matches.
const only = new RegExp(process.env.SB_BENCH_ONLY ?? '');
const jobs = [nodeLive, () => loop300(sb), () => loop300(pp), () => stream(sb), () => stream(pp)];
const keys = Object.keys(figures);
for (let r = 0; r < reps; r++) {
  for (let i = 0; i < keys.length; i++) {
    if (only.test(keys[i])) figures[keys[i]][1].push(await jobs[i]());
  }
}
for (const [figure, [unit, values]] of Object.entries(figures)) {
  if (values.length) console.log(JSON.stringify({ figure, unit, reps: values }));
}
