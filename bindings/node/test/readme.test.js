// SPDX-License-Identifier: MIT
// The README's node:test example, verbatim, run by `node --test` as a
// user's test file in a project where the package is installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ms, tempDir } from './helpers.js';

const PKG = dirname(dirname(fileURLToPath(import.meta.url)));
const README = join(PKG, '..', '..', 'README.md');

function readmeBlock(lang, marker) {
  const text = readFileSync(README, 'utf8');
  const blocks = [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))]
    .map((m) => m[1]).filter((b) => b.includes(marker));
  assert.equal(blocks.length, 1, `README: no single ${lang} block holding ${marker}`);
  return blocks[0];
}

it('the README node:test example passes', () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(PKG, join(dir, 'node_modules', 'socketbridge'));
  writeFileSync(join(dir, 'deploy.test.mjs'), readmeBlock('js', '// deploy.test.mjs'));
  writeFileSync(join(dir, 'deploy.sh'),
    '#!/bin/sh\ngit --version >/dev/null || exit 3\ngit push origin main || git push origin main\n');
  chmodSync(join(dir, 'deploy.sh'), 0o755);
  // Without NODE_TEST_CONTEXT: this runner's child would report to it, not print.
  const { NODE_TEST_CONTEXT, ...env } = process.env;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', 'deploy.test.mjs'],
    { cwd: dir, env, encoding: 'utf8', timeout: ms(60000) });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# pass 1/);
});
