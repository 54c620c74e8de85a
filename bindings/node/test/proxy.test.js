// SPDX-License-Identifier: MIT
// process-proxy's README examples (test/process-proxy/*.ts), unchanged but
// for the import ('socketbridge') and the child's env (...server.childEnv()),
// run as their users would run them: each is a module in a directory where
// the package is installed as node_modules/socketbridge. They are
// TypeScript; Node 18/20 cannot run TypeScript, so their three type-only
// constructs are erased first (what tsx does, nothing else). Snippets that
// assume a `server` get a prologue making one; an epilogue drives each
// example to its end and prints what the test checks.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createProxyProcessServer } from '../lib/index.js';
import { TRANSPORTS, ms, tempDir } from './helpers.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PKG = dirname(HERE);

function stripTypes(ts) {
  const js = ts.replace(/^import \{ AddressInfo \} from 'net'\n/m, '')
    .replace(/new Promise<number>/g, 'new Promise')
    .replace(/\(server\.address\(\) as AddressInfo\)/g, '(server.address())');
  assert.doesNotMatch(js, /AddressInfo|<number>/);
  return js;
}

const PROLOGUE = `
import { createProxyProcessServer, getProxyCommandPath } from 'socketbridge'
import { spawn } from 'child_process'
const server = createProxyProcessServer(() => {})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
`;

// Starts a child of the stub, waits for the example's connection, lets fn
// drive it, closes the server, reports the child's exit status on stderr.
const drive = (spawnChild, fn) => `
;{
  const { once } = await import('node:events')
  const child = ${spawnChild}
  const [conn] = await once(server, 'connection')
  let childOut = ''
  child.stdout.on('data', (d) => { childOut += d })
  const childExit = new Promise((resolve) => child.on('close', (code) => resolve(code)))
  ${fn}
  process.stderr.write('child exit ' + (await childExit) + '\\n')
  process.stderr.write('child stdout ' + JSON.stringify(childOut) + '\\n')
  await new Promise((resolve) => server.close(resolve))
}
`;

function runExample(name, { transport, prologue = '', epilogue, stdin = '' }) {
  const dir = tempDir();
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(PKG, join(dir, 'node_modules', 'socketbridge'));
  const ts = readFileSync(join(HERE, 'process-proxy', `${name}.ts`), 'utf8');
  // The transport: an option of createProxyProcessServer the examples do not
  // pass; SOCKETBRIDGE_TRANSPORT picks it for them.
  writeFileSync(join(dir, `${name}.mjs`), prologue + stripTypes(ts) + epilogue);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [`${name}.mjs`], {
      cwd: dir, env: { ...process.env, SOCKETBRIDGE_TRANSPORT: transport },
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${name}: no end in time\n${out}\n${err}`)); }, ms(30000));
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
    p.stdin.end(stdin);
  });
}

for (const transport of TRANSPORTS) {
  describe(`process-proxy's README examples over ${transport}`, () => {
    it('Basic Example', async () => {
      const r = await runExample('basic', {
        transport,
        epilogue: `
;{
  const { once } = await import('node:events')
  const [conn] = await once(server, 'connection')
  let childOut = ''
  child.stdout.on('data', (d) => { childOut += d })
  const exited = new Promise((resolve) => child.on('close', resolve))
  child.stdin.end('typed\\n')
  await once(conn.stdin, 'end')
  while (!childOut.includes('Hello')) await once(child.stdout, 'data')
  await conn.exit(0)
  process.stderr.write('child exit ' + (await exited) + '\\n')
  process.stderr.write('child stdout ' + JSON.stringify(childOut) + '\\n')
  await new Promise((resolve) => server.close(resolve))
}
`,
      });
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^Native process connected!$/m);
      assert.match(r.out, /Arguments: \[[^\]]*'arg1',\s*'arg2'\s*\]/);
      assert.match(r.out, /Working Directory: \//);
      assert.match(r.out, /Received from stdin: typed/);
      assert.match(r.out, /^Process disconnected$/m);
      assert.match(r.err, /child exit 0/);
      assert.match(r.err, /child stdout "Hello from ProcessProxy!\\n"/);
    });

    it('Proxying stdin/stdout/stderr', async () => {
      const r = await runExample('proxying', {
        transport,
        stdin: 'from-parent\n',
        prologue: PROLOGUE,
        epilogue: drive(`spawn(getProxyCommandPath(), [], { env: { ...process.env, ...server.childEnv() } })`, `
          child.stdin.end('from-child\\n')
          await once(conn.stdin, 'end')
          // Our stdin ended (the pipe then ends connection.stdout): maybe already.
          if (!conn.stdout.writableFinished) await once(conn.stdout, 'finish')
          await conn.exit(0)`),
      });
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, 'from-child\n');
      assert.match(r.err, /child exit 0/);
      assert.match(r.err, /child stdout "from-parent\\n"/);
    });

    it('Controlling the Process', async () => {
      const r = await runExample('controlling', {
        transport,
        prologue: PROLOGUE,
        epilogue: drive(`spawn(getProxyCommandPath(), ['x'], { env: { ...process.env, ...server.childEnv() } })`, ''),
      });
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /child exit 0/);
    });

    it('Closing Streams', async () => {
      const r = await runExample('closing', {
        transport,
        prologue: PROLOGUE,
        epilogue: drive(`spawn(getProxyCommandPath(), [], { env: { ...process.env, ...server.childEnv() } })`, `
          process.stderr.write('stdin destroyed ' + conn.stdin.destroyed + '\\n')
          await conn.exit(3)`),
      });
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /stdin destroyed true/);
      assert.match(r.err, /child exit 3/);
    });

    it('Using Token Authentication (the supervisor checks the token)', async () => {
      const r = await runExample('token', {
        transport,
        epilogue: `
;{
  const { once } = await import('node:events')
  const [conn] = await once(server, 'connection')
  const exited = new Promise((resolve) => child.on('close', resolve))
  await conn.exit(7)
  process.stderr.write('child exit ' + (await exited) + '\\n')
  server.close()
}
`,
      });
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Authenticated connection established/);
      assert.match(r.err, /child exit 7/);
    });
  });
}

it('address() and childEnv() describe the bridge', async () => {
  const server = createProxyProcessServer(() => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const a = server.address();
    assert.equal(a.address, '127.0.0.1');
    assert.ok(a.port > 0);
    const env = server.childEnv();
    assert.equal(env.SOCKETBRIDGE_PORT, String(a.port));
    assert.ok(env.SOCKETBRIDGE_TOKEN.length >= 32);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
