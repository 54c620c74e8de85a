// SPDX-License-Identifier: MIT
// The Bridge with real clients: a three-level shell script, a Python
// program, socketbridge send; binary streams, dispositions, handlers that
// throw, many calls at once. Each on both transports.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Bridge, BridgeError, send } from '../lib/index.js';
import { TRANSPORTS, ms, script, tempDir, withBridge } from './helpers.js';

const PYTHON = process.env.SB_PYTHON ?? '/usr/bin/python3';

function deployTree(root) {
  script(join(root, 'lib/vcs/push.sh'), `
    #!/bin/sh
    cd "$(dirname "$0")/../.." || exit 2
    for attempt in 1 2; do
      if git push origin main; then echo "pushed on attempt $attempt"; exit 0; fi
      echo "push failed (attempt $attempt)" >&2
    done
    exit 1
    `);
  script(join(root, 'lib/release.sh'), `
    #!/bin/sh
    git --version >/dev/null || exit 3
    exec "$(dirname "$0")/vcs/push.sh"
    `);
  return script(join(root, 'deploy.sh'), `
    #!/bin/sh
    set -e
    echo "deploying $DEPLOY_TARGET"
    sh "$(dirname "$0")/lib/release.sh"
    echo done
    `);
}

for (const transport of TRANSPORTS) {
  describe(`Bridge over ${transport}`, () => {
    it('fakes git three levels deep: the first push fails, the second passes', () =>
      withBridge(transport, async (bridge) => {
        const root = tempDir();
        const deploy = deployTree(root);
        let pushes = 0;
        await bridge.fake('git', async (call) => {
          if (call.argv[1] !== 'push') return call.exec(['git', ...call.argv.slice(1)]);
          if (++pushes === 1) {
            call.stderr.write('fatal: the remote end hung up unexpectedly\n');
            return 128;
          }
          call.stdout.write('To origin\n');
          return 0;
        });
        const r = await bridge.run([deploy], {
          captureOutput: true, timeout: ms(60000), env: { ...process.env, DEPLOY_TARGET: 'prod' },
        });
        assert.equal(r.status, 0, r.stderr.toString());
        assert.deepEqual(r.stdout.toString().split('\n'),
          ['deploying prod', 'To origin', 'pushed on attempt 2', 'done', '']);
        assert.match(r.stderr.toString(), /push failed \(attempt 1\)/);
        const push = bridge.calls.filter((c) => c.argv[1] === 'push');
        assert.deepEqual(push.map((c) => c.exit), [128, 0]);
        assert.deepEqual(push.map((c) => c.cwd), [root, root]);
        assert.equal(push[0].env.DEPLOY_TARGET, 'prod');
        assert.equal(push[0].env.SOCKETBRIDGE_TOKEN, undefined);
        assert.equal(bridge.calls.find((c) => c.argv[1] === '--version').action, 'exec');
      }));

    it('answers a Python program that runs a faked curl through subprocess', () =>
      withBridge(transport, async (bridge) => {
        const root = tempDir();
        writeFileSync(join(root, 'client.py'), [
          'import json, subprocess',
          'out = subprocess.run(["curl", "-sf", "https://api.example.com/users"],',
          '                     capture_output=True, check=True).stdout',
          'print(",".join(u["name"] for u in json.loads(out)))',
          'r = subprocess.run(["curl", "-sf", "https://api.example.com/nope"], capture_output=True)',
          'print(r.returncode, r.stderr.decode().strip())', ''].join('\n'));
        await bridge.fake('curl', (call) => {
          if (call.argv.at(-1) !== 'https://api.example.com/users') {
            call.stderr.write('curl: (22) 404\n');
            return 22;
          }
          call.stdout.write(JSON.stringify([{ name: 'ada' }, { name: 'alan' }]));
          return 0;
        });
        const r = await bridge.run([PYTHON, 'client.py'], { cwd: root, captureOutput: true, timeout: ms(60000) });
        assert.equal(r.status, 0, r.stderr.toString());
        assert.equal(r.stdout.toString(), 'ada,alan\n22 curl: (22) 404\n');
        assert.equal(bridge.calls.length, 2);
      }));

    it('answers socketbridge send from a shell in the tree', () =>
      withBridge(transport, async (bridge) => {
        const seen = [];
        await bridge.onMessage(async (m) => {
          seen.push(m);
          return { type: 'ack', n: m.n + 1 };
        });
        const root = tempDir();
        const sh = script(join(root, 'notify.sh'), `
          #!/bin/sh
          "$SOCKETBRIDGE_CLI" send '{"type":"progress","n":41}' || exit 9
          "$SOCKETBRIDGE_CLI" send '{"type":"ping"}' || exit 9
          `);
        const r = await bridge.run([sh], { captureOutput: true, timeout: ms(60000) });
        assert.equal(r.status, 0, r.stderr.toString());
        const lines = r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
        assert.deepEqual(lines, [{ type: 'ack', n: 42 }, { type: 'pong' }]);
        assert.deepEqual(seen, [{ type: 'progress', n: 41 }]);
        // send() itself, with the bridge's env, as a program in the tree would.
        assert.deepEqual(await send({ type: 'progress', n: 1 }, { env: bridge.env }), { type: 'ack', n: 2 });
        const status = await send({ type: 'status' }, { env: bridge.env });
        assert.equal(status.type, 'status');
        assert.ok(status.calls.served >= 0);
      }));

    it('passes binary stdin and stdout through exactly', () =>
      withBridge(transport, async (bridge) => {
        const data = Buffer.concat([randomBytes(3 << 20), Buffer.from([0, 255])]);
        await bridge.fake('rev', async (call) => {
          const got = await call.readStdin();
          call.stdout.write(Buffer.from(got).reverse());
          return got.equals(data) ? 0 : 1;
        });
        const r = await bridge.run(['rev'], { input: data, captureOutput: true, timeout: ms(60000) });
        assert.equal(r.status, 0, r.stderr.toString());
        assert.ok(r.stdout.equals(Buffer.from(data).reverse()));
        assert.ok(bridge.calls[0].stdin.equals(data));
      }));

    it('streams 48 MiB of stdout and 12 MiB of stdin whole', () =>
      withBridge(transport, async (bridge) => {
        // More than serve holds for a call before write_pause, more than a
        // Readable buffers before the package pauses the call.
        const chunk = Buffer.alloc(1 << 20, 'abcdefgh');
        await bridge.fake('gen', async (call) => {
          for (let i = 0; i < 48; i++) {
            if (!call.stdout.write(chunk)) await once(call.stdout, 'drain');
          }
        });
        await bridge.fake('count', async (call) => {
          let n = 0;
          for await (const c of call.stdin) n += c.length;
          call.stdout.write(`${n}\n`);
        });
        const root = tempDir();
        writeFileSync(join(root, 'data'), Buffer.alloc(12 << 20, 'x'));
        const r = await bridge.run(['sh', '-c', 'gen | wc -c; count <data'],
          { cwd: root, captureOutput: true, timeout: ms(120000) });
        assert.equal(r.stdout.toString().replace(/ /g, ''), `${48 << 20}\n${12 << 20}\n`);
      }));

    it('keeps argv bytes that are not UTF-8 exact in argvBytes', () =>
      withBridge(transport, async (bridge) => {
        let got;
        await bridge.fake('tool', (call) => { got = call.argvBytes[1]; });
        const root = tempDir();
        // The shell passes the byte 0xff it reads from a file as an argument.
        writeFileSync(join(root, 'arg'), Buffer.from([0x63, 0xff]));
        const r = await bridge.run(['sh', '-c', 'tool "$(cat arg)"'], { cwd: root, timeout: ms(30000) });
        assert.equal(r.status, 0);
        assert.ok(got.equals(Buffer.from([0x63, 0xff])));
      }));

    it('fails the call of a handler that throws, and keeps the error', () =>
      withBridge(transport, async (bridge) => {
        await bridge.fake('tool', () => { throw new Error('the fake is broken'); });
        const r = await bridge.run(['sh', '-c', 'tool; echo "exit $?"'], { captureOutput: true, timeout: ms(30000) });
        assert.equal(r.stdout.toString(), 'exit 1\n');
        assert.match(r.stderr.toString(), /Error: the fake is broken/);
        assert.equal(bridge.errors.length, 1);
        assert.equal(bridge.calls[0].exit, 1);
        bridge.errors.length = 0;
      }));

    it('rejects close() when a handler threw', async () => {
      const bridge = await Bridge.start({ transport });
      await bridge.fake('tool', () => { throw new TypeError('oops'); });
      await bridge.run(['tool'], { captureOutput: true, timeout: ms(30000) });
      await assert.rejects(bridge.close(), (e) => e.name === 'HandlerError' && e.cause instanceof TypeError);
    });

    it('answers many calls at once', () =>
      withBridge(transport, async (bridge) => {
        const n = 40;
        let arrived = 0;
        let all;
        const together = new Promise((resolve) => { all = resolve; });
        await bridge.fake('work', async (call) => {
          if (++arrived === n) all();
          await together; // every call is open together, or this never resolves
          call.stdout.write(`${call.argv[1]}\n`);
          return Number(call.argv[1]) % 7;
        });
        const r = await bridge.run(['sh', '-c',
          `for i in $(seq 1 ${n}); do (work $i; echo "$i:$?" >&2) & done; wait`],
        { captureOutput: true, timeout: ms(120000) });
        assert.equal(r.status, 0);
        const want = Array.from({ length: n }, (_, i) => i + 1);
        assert.deepEqual(r.stdout.toString().trim().split('\n').map(Number).sort((a, b) => a - b), want);
        assert.deepEqual(r.stderr.toString().trim().split('\n').sort(),
          want.map((i) => `${i}:${i % 7}`).sort());
      }));

    it('delegates, execs, runs and kills', () =>
      withBridge(transport, async (bridge) => {
        await bridge.fake('d', (call) => call.delegate(['tr', 'a-z', 'A-Z']));
        await bridge.fake('r', (call) => call.run(['sh', '-c', 'echo run-out; exit 5'], { tee: true }));
        await bridge.fake('k', (call) => call.kill('TERM'));
        const r = await bridge.run(['sh', '-c', 'echo hi | d; r; echo "r=$?"; k; echo "k=$?"'],
          { captureOutput: true, timeout: ms(30000) });
        assert.equal(r.stdout.toString(), 'HI\nrun-out\nr=5\nk=143\n');
        const by = Object.fromEntries(bridge.calls.map((c) => [c.argv[0], c]));
        assert.equal(by.d.action, 'delegate');
        assert.equal(by.r.stdout.toString(), 'run-out\n');
        assert.equal(by.k.signal, 15);
      }));

    it('leaves a call whose delegate cannot start to the handler', () =>
      withBridge(transport, async (bridge) => {
        let code;
        await bridge.fake('tool', async (call) => {
          try {
            return await call.delegate(['/nonexistent/program']);
          } catch (e) {
            code = `${e.code} ${e.errno}`;
            return 127;
          }
        });
        const r = await bridge.run(['sh', '-c', 'tool; echo "$?"'], { captureOutput: true, timeout: ms(30000) });
        assert.equal(r.stdout.toString(), '127\n');
        assert.equal(code, 'failed ENOENT');
      }));

    it('gives a process the harness starts the bridge through env', () =>
      withBridge(transport, async (bridge) => {
        await bridge.fake('tool', () => 42);
        // Not spawnSync: the handler runs on this event loop.
        const child = spawn('sh', ['-c', 'tool'], { env: bridge.env, stdio: 'inherit' });
        const [code] = await once(child, 'close');
        assert.equal(code, 42);
        await bridge.whenIdle();
        assert.equal(bridge.calls[0].exit, 42);
        const status = await bridge.status();
        assert.equal(status.calls.open, 0);
      }));
  });
}

it('rejects a request about a call that is gone with a BridgeError', () =>
  withBridge('tcp', async (bridge) => {
    await assert.rejects(bridge._channel.request('exit', { call: 999999, code: 0 }),
      (e) => e instanceof BridgeError && e.code === 'no_such_call');
  }));

for (const transport of TRANSPORTS) {
  it(`rejects close() when the supervisor died (${transport})`, async () => {
    const bridge = await Bridge.start({ transport });
    process.kill(bridge._channel.proc.pid, 'SIGKILL');
    await assert.rejects(bridge.close(), (e) => e instanceof BridgeError && e.code === 'serve');
    await assert.rejects(bridge.status(), (e) => e instanceof BridgeError);
  });
}

it('says why when the executable is missing', async () => {
  await assert.rejects(Bridge.start({ executable: join(tempDir(), 'nope') }), /did not start/);
});

it('send outside any bridge fails with the CLI\'s message', async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SOCKETBRIDGE_')));
  await assert.rejects(send({ type: 'ping' }, { env, executable: process.env.SOCKETBRIDGE_CLI }),
    (e) => e.name === 'SendError' && /^socketbridge/.test(e.message));
});
