// SPDX-License-Identifier: MIT
// The control channel of `socketbridge serve` (docs/control.md), version 1.
// Frames both ways: u32 BE length | u8 kind | payload; kind 1 is a JSON
// object, kinds 2..6 raw bytes after a u64 BE id. This module only frames
// and routes: every decision (tokens, the bridge, dispositions) is the
// supervisor's.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export const VERSION = 1;
const KIND = { json: 1, stdin: 2, stdout: 3, stderr: 4, procStdout: 5, procStderr: 6 };
const MAX_FRAME = 16 * 1024 * 1024;
const CHUNK = 1024 * 1024; // a data frame's bytes at most, well under the limit

export class BridgeError extends Error {
  constructor(message, code, errno) {
    super(message);
    this.name = 'BridgeError';
    this.code = code;
    this.errno = errno;
  }
}

// ---- byte strings (section 3) ----------------------------------------------

/** A wire byte string -> string (bytes that are not UTF-8: decoded with
 * replacement characters; fromWireBytes has them exact). */
export const fromWire = (v) => (v === null || v === undefined ? v
  : typeof v === 'string' ? v : Buffer.from(v.base64, 'base64').toString());
export const fromWireBytes = (v) => (v === null || v === undefined ? v
  : typeof v === 'string' ? Buffer.from(v) : Buffer.from(v.base64, 'base64'));

/** string or Buffer -> a JSON string, or {base64} when not UTF-8. */
export function toWire(v) {
  if (typeof v === 'string') return v;
  const b = Buffer.from(v);
  const s = b.toString();
  return Buffer.from(s).equals(b) ? s : { base64: b.toString('base64') };
}

export function envFromWire(entries = []) {
  const env = {};
  for (const e of entries) {
    const s = fromWire(e);
    const i = s.indexOf('=');
    if (i > 0) env[s.slice(0, i)] = s.slice(i + 1);
  }
  return env;
}

export const envToWire = (env) => Object.entries(env).map(([k, v]) => toWire(`${k}=${v}`));

export function signalNumber(v) {
  if (v === null || v === undefined || typeof v === 'number') return v ?? null;
  return constants.signals[`SIG${v}`] ?? null;
}

export function signalName(v) {
  if (typeof v === 'string') return v.startsWith('SIG') ? v.slice(3) : v;
  const name = Object.keys(constants.signals).find((k) => constants.signals[k] === v);
  if (!name) throw new TypeError(`unknown signal ${v}`);
  return name.slice(3);
}

/** One `socketbridge serve` and its channel (the process's stdio). The sink
 * gets: _callArrived(info), _stdin(id, buf) (empty: the end), _output(id, fd,
 * buf), _programExit(id, info), _callEnded(id, info), _message(body) ->
 * Promise<reply>, _event(ev), _channelEnded(reason). */
export class Channel {
  constructor(executable, transport, sink) {
    this.executable = executable;
    this.transport = transport;
    this.sink = sink;
    this.proc = null;
    this.ready = null;
    this.errors = []; // error messages about no request
    this.closed = false;
    this.endReason = null;
    this._nextId = 0;
    this._pending = new Map(); // request id -> { resolve, reject } or null
    this._paused = new Map(); // call id -> [resume callbacks] while write_pause
    this._chunks = [];
    this._have = 0;
  }

  start() {
    this.proc = spawn(this.executable, ['serve', '--transport', this.transport],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdin.on('error', () => {}); // the exit reports it
    this.proc.stdin.setMaxListeners(0); // a 'drain' waiter per call writing
    this.proc.stdout.on('data', (d) => this._onData(d));
    this._exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        this._ended(this.endReason ?? `socketbridge serve exited (${code ?? signal})`);
        resolve(code ?? signal);
      });
    });
    return new Promise((resolve, reject) => {
      this._readyWaiter = { resolve, reject };
      this.proc.on('error', (e) => {
        this._readyWaiter = null;
        reject(new BridgeError(`socketbridge serve did not start (${this.executable}): ${e.message}`,
          'closed'));
      });
    });
  }

  /** Resolves to serve's exit status (0: all went well) or signal. */
  async close() {
    if (!this.proc) return 0;
    if (!this.closed) {
      this.closed = true;
      this.proc.stdin.end(); // EOF: serve closes every call and exits
    }
    return this._exited;
  }

  get address() {
    const r = this.ready;
    return r.transport === 'unix' ? fromWire(r.socket)
      : { address: r.host, family: r.host.includes(':') ? 'IPv6' : 'IPv4', port: r.port };
  }

  get stubPath() {
    return fromWire(this.ready.stub);
  }

  // ---- writing ----------------------------------------------------------------

  // cb runs at once while the pipe to serve takes more (so a call's
  // Writable holds nothing back and its end follows its data at once),
  // else once the pipe drained: the backpressure of serve's stdin.
  // head and body go out in one writev (corked), the body never copied.
  _frame(kind, head, body, cb) {
    if (this.closed) {
      cb?.(new BridgeError('the control channel is closed', 'closed'));
      return;
    }
    head.writeUInt32BE(head.length - 4 + body.length, 0);
    head.writeUInt8(kind, 4);
    const pipe = this.proc.stdin;
    pipe.cork();
    pipe.write(head);
    const more = pipe.write(body);
    pipe.uncork();
    if (more || !cb) cb?.();
    else pipe.once('drain', () => cb());
  }

  /** Sends a request; resolves to its `ok` answer, rejects with a
   * BridgeError. With { wait: false } nobody waits (an error is kept in
   * errors). */
  request(type, members = {}, { wait = true } = {}) {
    const id = ++this._nextId;
    const payload = Buffer.from(JSON.stringify({ ...members, type, id }));
    if (!wait) {
      this._pending.set(id, null);
      this._frame(KIND.json, Buffer.alloc(5), payload);
      return Promise.resolve(null);
    }
    return new Promise((resolve, reject) => {
      if (this.closed || this.endReason) {
        reject(new BridgeError(`${type}: the control channel is closed`, 'closed'));
        return;
      }
      this._pending.set(id, { type, resolve, reject });
      this._frame(KIND.json, Buffer.alloc(5), payload);
    });
  }

  /** Bytes for a call's stdout (1) or stderr (2); an empty buffer ends the
   * stream. cb runs once they are handed to serve (later while the
   * supervisor asked for a pause). */
  write(call, fd, data, cb) {
    const queue = this._paused.get(call);
    if (queue) {
      queue.push(() => this.write(call, fd, data, cb));
      return;
    }
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const kind = fd === 1 ? KIND.stdout : KIND.stderr;
    let off = 0;
    do {
      const part = buf.subarray(off, off + CHUNK);
      off += part.length;
      const head = Buffer.alloc(13);
      head.writeBigUInt64BE(BigInt(call), 5);
      this._frame(kind, head, part, off >= buf.length ? cb : undefined);
    } while (off < buf.length);
  }

  // ---- reading ------------------------------------------------------------------

  _onData(d) {
    this._chunks.push(d);
    this._have += d.length;
    for (;;) {
      if (this._have < 5) return;
      if (this._chunks[0].length < 5) this._chunks = [Buffer.concat(this._chunks)];
      const len = this._chunks[0].readUInt32BE(0);
      if (len < 1 || len > MAX_FRAME) {
        this.endReason = `bad frame length ${len} from serve`;
        this.proc.kill('SIGKILL');
        return;
      }
      if (this._have < 4 + len) return;
      const all = this._chunks.length === 1 ? this._chunks[0] : Buffer.concat(this._chunks);
      const frame = all.subarray(4, 4 + len);
      const rest = all.subarray(4 + len);
      this._chunks = rest.length ? [rest] : [];
      this._have = rest.length;
      this._onFrame(frame[0], frame.subarray(1));
    }
  }

  _onFrame(kind, payload) {
    if (kind === KIND.json) {
      this._onJson(JSON.parse(payload.toString()));
      return;
    }
    if (payload.length < 8) return;
    const id = Number(payload.readBigUInt64BE(0));
    const bytes = payload.subarray(8);
    if (kind === KIND.stdin) this.sink._stdin(id, bytes);
    else if (kind === KIND.stdout || kind === KIND.stderr) {
      this.sink._output(id, kind === KIND.stdout ? 1 : 2, bytes);
    }
    // procs' output: this package starts its commands itself.
  }

  _onJson(m) {
    switch (m.type) {
      case 'ok':
      case 'error': {
        const p = m.id !== null && m.id !== undefined ? this._pending.get(m.id) : undefined;
        if (p !== undefined) this._pending.delete(m.id);
        if (p) {
          if (m.type === 'ok') p.resolve(m);
          else p.reject(new BridgeError(`${p.type}: ${m.message ?? m.error}`, m.error, m.errno));
        } else if (m.type === 'error') {
          this.errors.push(m);
        }
        break;
      }
      case 'ready':
        this.ready = m;
        if (this._readyWaiter) {
          const w = this._readyWaiter;
          this._readyWaiter = null;
          if (m.version !== VERSION) {
            w.reject(new BridgeError(`socketbridge serve speaks control channel version ${m.version}, not ${VERSION}`));
            this.close();
          } else {
            w.resolve();
          }
        }
        break;
      case 'call':
        this.sink._callArrived(callInfo(m));
        break;
      case 'call_end':
        this._resumeWrites(m.call);
        this.sink._callEnded(m.call, endInfo(m));
        break;
      case 'program_exit':
        this.sink._programExit(m.call, endInfo(m));
        break;
      case 'write_pause':
        if (!this._paused.has(m.call)) this._paused.set(m.call, []);
        break;
      case 'write_resume':
        this._resumeWrites(m.call);
        break;
      case 'message':
        this._answerMessage(m);
        break;
      case 'event':
        this.sink._event(m.event);
        break;
      default: // proc_end, and types of later versions
    }
  }

  // The writes held for call go out (for a call that ended, serve drops
  // them; their callbacks still run).
  _resumeWrites(call) {
    const queue = this._paused.get(call);
    this._paused.delete(call);
    queue?.forEach((w) => w());
  }

  async _answerMessage(m) {
    let body;
    try {
      body = await this.sink._message(m.body);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        body = { type: 'error', error: 'bad_reply', message: `the handler returned ${typeof body}, not an object` };
      }
    } catch (e) {
      this.sink.errors.push(e);
      body = { type: 'error', error: 'handler_failed', message: String(e?.message ?? e) };
    }
    if (!this.closed) this.request('reply', { message: m.message, body }, { wait: false });
  }

  _ended(reason) {
    this.endReason ??= reason;
    this.closed = true;
    if (this._readyWaiter) {
      this._readyWaiter.reject(new BridgeError(`socketbridge serve did not start (${this.executable}): ${reason}`, 'closed'));
      this._readyWaiter = null;
    }
    for (const [, p] of this._pending) {
      p?.reject(new BridgeError(`${p.type}: the control channel ended (${reason})`, 'closed'));
    }
    this._pending.clear();
    for (const call of [...this._paused.keys()]) this._resumeWrites(call);
    this.sink._channelEnded(reason);
  }
}

function callInfo(m) {
  return {
    id: m.call,
    argv: (m.argv ?? []).map(fromWire),
    argvBytes: (m.argv ?? []).map(fromWireBytes),
    env: envFromWire(m.env),
    cwd: fromWire(m.cwd) ?? null,
    exe: fromWire(m.exe) ?? null,
    pid: m.pid,
    ppid: m.ppid,
    tty: m.tty ?? {},
    ticket: m.ticket ?? null,
  };
}

function endInfo(m) {
  return { reason: m.reason ?? null, exit: m.code ?? null, signal: signalNumber(m.signal) };
}

