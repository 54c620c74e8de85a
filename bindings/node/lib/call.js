// SPDX-License-Identifier: MIT
// Call: one run of the stub somewhere in the tree, waiting for its answer.
import { EventEmitter } from 'node:events';
import { envToWire, signalName, toWire } from './channel.js';
import { basename } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

const FINISHED = Symbol('finished');

/** The value delegate/exec/run/kill/exit resolve to: the call is answered. */
export class Finished {
  constructor(action) {
    this.action = action;
    this[FINISHED] = true;
  }
}
export const isFinished = (v) => v instanceof Finished;

export class Call extends EventEmitter {
  /** @param channel the control channel; info the call as it announced it */
  constructor(channel, info) {
    super();
    this._channel = channel;
    this.id = info.id;
    this.argv = info.argv;
    this.argvBytes = info.argvBytes; // exact, when argv had bytes not UTF-8
    this.env = info.env;
    this.cwd = info.cwd;
    this.pid = info.pid;
    this.ppid = info.ppid;
    this.tty = info.tty ?? {};
    this.exe = info.exe;
    this.done = null; // the action that answered the call
    this.ended = null; // how it ended, once call_end came
    this.stdinSeen = [];
    this.stdinEnded = false;
    this.written = { 1: [], 2: [] };
    this.relayed = { 1: [], 2: [] }; // a run/delegate program's output
    this.programExit = null;
    this._opened = false;
    this._paused = false;
    this._answered = false; // the answer went out: no more writes
    // The supervisor holds the call's stdin until asked: reading opens it,
    // so a call answered exec or run leaves stdin whole to the program.
    this.stdin = new Readable({
      read: () => {
        if (!this._opened) this._request('open');
        else if (this._paused) {
          this._paused = false;
          this._request('resume');
        }
      },
      // Done with stdin: stop reading the process's (what comes is dropped).
      destroy: (err, cb) => {
        if (this._opened && !this._paused && !this.ended) {
          this._paused = true;
          this._request('pause');
        }
        cb(err);
      },
    });
    this.stdout = this._output(1);
    this.stderr = this._output(2);
  }

  get name() {
    return this.argv.length ? basename(this.argv[0]) : '';
  }

  _request(type, members = {}, wait = false) {
    if (type === 'open') this._opened = true;
    return this._channel.request(type, { call: this.id, ...members }, { wait });
  }

  _output(fd) {
    return new Writable({
      write: (chunk, _enc, cb) => {
        if (this._answered || this.ended) {
          cb(new Error(`socketbridge: call ${this.id} is already finished`));
          return;
        }
        this.written[fd].push(chunk);
        this._opened = true; // a write opens the call
        this._channel.write(this.id, fd, chunk, cb);
      },
      // end(): the process's fd gets EOF (the call goes on).
      final: (cb) => {
        if (this._answered || this.ended) cb();
        else this._channel.write(this.id, fd, Buffer.alloc(0), cb);
      },
    });
  }

  // From the channel.
  _feed(data) {
    if (data.length === 0) {
      if (!this.stdinEnded) {
        this.stdinEnded = true;
        if (!this.stdin.destroyed) this.stdin.push(null);
      }
      return;
    }
    this.stdinSeen.push(data);
    if (this.stdin.destroyed) return;
    if (!this.stdin.push(data) && !this._paused && !this.ended) {
      this._paused = true;
      this._request('pause');
    }
  }

  _end(info) {
    this.ended = info;
    this._feed(Buffer.alloc(0));
    this.stdout.destroy();
    this.stderr.destroy();
    this.emit('close', info);
  }

  /** Everything the process sends on its stdin, to EOF. */
  async readStdin() {
    const chunks = [];
    for await (const c of this.stdin) chunks.push(c);
    return Buffer.concat(chunks);
  }

  // What was written goes before the end. A Writable holds chunks back
  // only while serve's pipe is full: then end it and wait until it handed
  // every chunk to the channel.
  async _flush() {
    for (const fd of [1, 2]) {
      const s = fd === 1 ? this.stdout : this.stderr;
      if (s.destroyed || s.writableLength === 0) continue;
      if (!s.writableEnded) s.end();
      if (!s.writableFinished) await finished(s).catch(() => {});
    }
  }

  async _finish(action, type, members) {
    if (this.done) throw new Error(`socketbridge: call ${this.id} is already finished (${this.done})`);
    if (this.ended) throw new Error(`socketbridge: call ${this.id} has ended (${this.ended.reason})`);
    this.done = action;
    await this._flush();
    this._answered = true;
    try {
      await this._request(type, members, true);
    } catch (e) {
      if (e.code === 'failed' || e.code === 'bad_request') {
        this.done = null; // refused, the call untouched: answer it otherwise
        this._answered = false;
      }
      throw e;
    }
    return new Finished(action);
  }

  /** The process exits with code (0..255) after all that was written. */
  exit(code = 0) {
    return this._finish('exit', 'exit', { code: code | 0 });
  }

  /** The process dies by signal sig (a number, or a name: 'TERM', 'SIGTERM'). */
  kill(sig) {
    return this._finish('exit', 'exit', { signal: signalName(sig) });
  }

  /** Canned output then the end, in one message (the rules file's respond). */
  respond({ stdout = '', stderr = '', code = 0, signal, delayMs = 0 } = {}) {
    const m = { stdout: toWire(stdout), stderr: toWire(stderr), delay_ms: delayMs };
    if (signal !== undefined) m.signal = signalName(signal);
    else m.code = code;
    return this._finish('respond', 'respond', m);
  }

  /** The supervisor runs argv and splices it to the call. */
  delegate(argv, opts = {}) {
    return this._finish('delegate', 'delegate', program(argv, opts));
  }

  /** The process becomes argv (execve in place; a bare name is searched on
   * PATH past the fakes). */
  exec(argv, opts = {}) {
    return this._finish('exec', 'exec', program(argv, opts));
  }

  /** The process runs argv as its child and exits as it did; its output is
   * relayed here (into the record), and with tee to its own fds too. */
  run(argv, opts = {}) {
    return this._finish('run', 'run', { ...program(argv, opts), tee: !!opts.tee });
  }

  /** Drops the call: the process exits 125. */
  close() {
    return this._finish('close', 'close', {});
  }
}

function program(argv, { env, cwd, unset, path } = {}) {
  if (!Array.isArray(argv) || argv.length === 0) throw new TypeError('argv must be a non-empty array');
  const m = { argv: argv.map(toWire) };
  if (env) m.env = envToWire(env);
  if (cwd !== undefined) m.cwd = toWire(cwd);
  if (unset) m.unset = unset;
  if (path !== undefined) m.path = toWire(path);
  return m;
}
