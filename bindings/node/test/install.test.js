// SPDX-License-Identifier: MIT
// `npm install ./bindings/node` offline into a fresh project, then the
// package is imported by its name, ESM, with its types where TypeScript
// looks for them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ms, tempDir } from './helpers.js';

const PKG = dirname(dirname(fileURLToPath(import.meta.url)));

it('installs offline with npm and imports by name', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', PKG],
    { cwd: dir, stdio: 'pipe', timeout: ms(120000), env: { ...process.env, npm_config_update_notifier: 'false' } });
  const installed = JSON.parse(readFileSync(join(dir, 'node_modules/socketbridge/package.json'), 'utf8'));
  assert.equal(installed.name, 'socketbridge');
  assert.deepEqual(installed.dependencies ?? {}, {});
  assert.ok(existsSync(join(dir, 'node_modules/socketbridge', installed.types)));
  writeFileSync(join(dir, 'use.mjs'), `
    import { Bridge, createProxyProcessServer, getProxyCommandPath, send } from 'socketbridge'
    const b = await Bridge.start()
    await b.fake('hi', (call) => { call.stdout.write('hi ' + call.argv[1]) })
    const r = await b.run(['hi', 'there'], { captureOutput: true })
    await b.close()
    console.log(r.stdout.toString(), typeof createProxyProcessServer, typeof send, getProxyCommandPath().startsWith('/'))
  `);
  const out = execFileSync(process.execPath, ['use.mjs'], { cwd: dir, encoding: 'utf8', timeout: ms(60000) });
  assert.equal(out, 'hi there function function true\n');
});
