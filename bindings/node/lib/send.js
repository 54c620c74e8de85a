// SPDX-License-Identifier: MIT
// send(): a side-band message from a program in a supervised tree. It runs
// `socketbridge send JSON`: the C client speaks the wire protocol (token,
// framing), this package never does.
import { execFile, execFileSync } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';

/** The socketbridge command: the one given, else $SOCKETBRIDGE_CLI (a
 * Bridge sets it for its tree), else PATH. */
export function findExecutable(executable) {
  const path = executable || process.env.SOCKETBRIDGE_CLI || 'socketbridge';
  return path.includes('/') && !isAbsolute(path) ? resolve(path) : path;
}

export class SendError extends Error {
  constructor(message, status, stderr) {
    super(message);
    this.name = 'SendError';
    this.status = status;
    this.stderr = stderr;
  }
}

export function send(message, { env, timeout, executable } = {}) {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return Promise.reject(new TypeError('socketbridge send: message must be an object'));
  }
  const file = findExecutable(executable ?? env?.SOCKETBRIDGE_CLI);
  return new Promise((resolvePromise, reject) => {
    execFile(file, ['send', JSON.stringify(message)],
      { env: env ?? process.env, timeout: timeout ?? 0, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const line = String(stderr).trim() || err.message;
          reject(new SendError(line, err.code, String(stderr)));
          return;
        }
        try {
          resolvePromise(JSON.parse(stdout));
        } catch {
          reject(new SendError(`socketbridge send: the reply is not JSON: ${stdout.slice(0, 200)}`));
        }
      });
  });
}

let stubPath;
/** The stub's absolute path (what `socketbridge stub-path` prints). */
export function getProxyCommandPath(executable) {
  if (executable) return execFileSync(findExecutable(executable), ['stub-path'], { encoding: 'utf8' }).trim();
  stubPath ??= execFileSync(findExecutable(), ['stub-path'], { encoding: 'utf8' }).trim();
  return stubPath;
}
