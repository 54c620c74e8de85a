// SPDX-License-Identifier: MIT
// Shared by the node:test files: deadlines scaled like the C suites', temp
// directories, scripts.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Bridge } from '../lib/index.js';

export const SCALE = Number(process.env.SB_TEST_TIMEOUT_SCALE ?? 1) || 1;
/** A deadline in ms, scaled. */
export const ms = (n) => n * SCALE;
export const TRANSPORTS = ['tcp', 'unix'];

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'sb-node-'));
}

export function script(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text.replace(/^\n/, '').replace(/^ {4}/gm, ''));
  chmodSync(path, 0o755);
  return path;
}

/** Runs fn with a started Bridge and closes it, whatever happens. */
export async function withBridge(transport, fn) {
  const bridge = await Bridge.start({ transport });
  try {
    return await fn(bridge);
  } finally {
    await bridge.close();
  }
}
