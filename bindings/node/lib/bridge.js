// SPDX-License-Identifier: MIT
// Bridge: a `socketbridge serve` supervisor and the fakes it answers, the
// same object as the Python package's.
import { spawn } from 'node:child_process';
import { delimiter } from 'node:path';
import { Call, isFinished } from './call.js';
import { BridgeError, Channel, envFromWire, fromWire } from './channel.js';
import { findExecutable } from './send.js';

/** What Bridge.close() rejects with when a handler threw. */
export class HandlerError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'HandlerError';
  }
}

export class Bridge {
  /** Starts a supervisor and resolves to a ready Bridge. */
  static async start(options = {}) {
    const b = new Bridge(options);
    await b.start();
    return b;
  }

  constructor({ executable, transport = 'tcp' } = {}) {
    if (transport !== 'tcp' && transport !== 'unix') {
      throw new TypeError(`transport must be 'tcp' or 'unix', not ${transport}`);
    }
    this.executable = findExecutable(executable);
    this.transport = transport;
    this.calls = []; // finished calls, in the order they finished
    this.errors = []; // what handlers threw
    this._fakes = new Map();
    this._open = new Map();
    this._idle = [];
    this._messageHandler = null;
    this._onCall = null; // the process-proxy server's listener, when any
    this._eventHandler = null;
    this._channel = null;
    this._ticket = null; // the ticket of bridge.env: { id, env }
    this._shimDir = null;
  }

  async start() {
    this._channel = new Channel(this.executable, this.transport, this);
    await this._channel.start();
    const t = await this._channel.request('ticket');
    this._ticket = { id: t.ticket, env: envFromWire(t.env) };
    return this;
  }

  /** Stops the supervisor (open calls are cut off: their processes exit
   * 125) and waits for it. Rejects with a BridgeError when serve did not
   * exit 0, and with a HandlerError when a handler threw (and errors was
   * not emptied), as a test should fail then. */
  async close() {
    const status = this._channel ? await this._channel.close() : 0;
    if (status !== 0) {
      throw new BridgeError(`socketbridge serve exited ${status} (see its stderr)`, 'serve');
    }
    if (this.errors.length) {
      const first = this.errors[0];
      throw new HandlerError(`a handler threw ${first?.name ?? ''}: ${first?.message ?? first} (${this.errors.length} in all)`,
        { cause: first });
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.close();
  }

  /** Makes name a shim first on PATH for all this bridge runs; handler(call)
   * answers each call (none: exit 0, no output). Name '*' (no shim)
   * answers the calls no other fake takes (the stub run as GIT_EDITOR...). */
  async fake(name, handler = null) {
    if (!name || name.includes('/')) throw new TypeError(`fake: ${name} is not a command name`);
    if (name !== '*') {
      const answer = await this._channel.request('shim', { names: [name] });
      this._shimDir = fromWire(answer.dir);
    }
    this._fakes.set(name, handler);
    return handler;
  }

  /** Shims names routed to the real program: the supervisor execs it
   * without asking the harness (the call is in events only). */
  async leave(...names) {
    const answer = await this._channel.request('shim', { names, route: 'exec' });
    this._shimDir = fromWire(answer.dir);
  }

  /** handler(event) gets each event (the objects `socketbridge run
   * --events` writes). */
  async onEvent(handler) {
    this._eventHandler = handler;
    await this._channel.request('events', { enable: true });
  }

  /** handler(message) answers each side-band message whose type is not the
   * supervisor's own (ping, status); what it returns (or resolves to) is
   * the reply. */
  async onMessage(handler) {
    this._messageHandler = handler;
    await this._channel.request('messages', { enable: true });
  }

  /** The variables for a process the harness starts itself: this process's,
   * the bridge's, and the fakes first on PATH. */
  get env() {
    return this._withTicket(this._ticket.env, process.env);
  }

  /** The variables of a ticket, over base, with the fakes first on PATH. */
  _withTicket(ticket, base) {
    const env = { ...base, ...ticket, SOCKETBRIDGE_CLI: this.executable };
    if (this._shimDir !== null) {
      env.PATH = `${this._shimDir}${delimiter}${base.PATH ?? '/usr/bin:/bin'}`;
      env.SOCKETBRIDGE_SHIMS = this._shimDir;
    }
    return env;
  }

  /** A fresh ticket: resolves to { ticket, env } (env: base with the
   * bridge's variables); free it with freeTicket(ticket). */
  async ticket(base = process.env) {
    const t = await this._channel.request('ticket');
    return { ticket: t.ticket, env: this._withTicket(envFromWire(t.env), base) };
  }

  freeTicket(ticket) {
    return this._channel.request('ticket_free', { ticket }, { wait: false });
  }

  /** The supervisor's status object (as a side-band `status`). */
  async status() {
    return (await this._channel.request('status')).status;
  }

  get stubPath() {
    return this._channel.stubPath;
  }

  /** Resolves once no call is open. */
  whenIdle() {
    if (this._open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this._idle.push(resolve));
  }

  /** Runs args with the fakes on its PATH, in a process group of its own
   * (killed whole on timeout). Resolves to { args, status, signal, stdout,
   * stderr } (Buffers when captureOutput, else null) once its calls are
   * all finished. */
  async run(args, { captureOutput = false, timeout, env, cwd, input } = {}) {
    const { ticket, env: full } = await this.ticket(env ?? process.env);
    const child = spawn(args[0], args.slice(1), {
      env: full,
      cwd,
      detached: true, // a process group to kill whole
      stdio: [input !== undefined ? 'pipe' : 'inherit', captureOutput ? 'pipe' : 'inherit',
        captureOutput ? 'pipe' : 'inherit'],
    });
    const out = [];
    const err = [];
    child.stdout?.on('data', (d) => out.push(d));
    child.stderr?.on('data', (d) => err.push(d));
    if (input !== undefined) child.stdin.end(input);
    let timer;
    let timedOut = false;
    if (timeout) {
      timer = setTimeout(() => {
        timedOut = true;
        try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      }, timeout);
    }
    let status;
    let signal;
    try {
      [status, signal] = await new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, sig) => resolve([code, sig]));
      });
    } finally {
      clearTimeout(timer);
      this.freeTicket(ticket);
    }
    await this.whenIdle();
    const result = {
      args, status, signal,
      stdout: captureOutput ? Buffer.concat(out) : null,
      stderr: captureOutput ? Buffer.concat(err) : null,
    };
    if (timedOut) {
      const e = new Error(`socketbridge run: ${args[0]} timed out after ${timeout} ms`);
      e.code = 'ETIMEDOUT';
      Object.assign(e, result);
      throw e;
    }
    return result;
  }

  // ---- from the channel ----------------------------------------------------

  _callArrived(info) {
    const call = new Call(this._channel, info);
    this._open.set(call.id, call);
    if (this._onCall) {
      this._onCall(call);
      return;
    }
    const handler = this._fakes.has(call.name) ? this._fakes.get(call.name)
      : this._fakes.has('*') ? this._fakes.get('*') : unfaked;
    this._handle(call, handler);
  }

  _stdin(id, data) {
    this._open.get(id)?._feed(data);
  }

  _output(id, fd, data) {
    this._open.get(id)?.relayed[fd].push(Buffer.from(data));
  }

  _programExit(id, info) {
    const call = this._open.get(id);
    if (call) call.programExit = info;
  }

  _callEnded(id, info) {
    const call = this._open.get(id);
    if (!call) return;
    this._open.delete(id);
    call._end(info);
    const out = call.done === 'run' || call.done === 'delegate' ? call.relayed : call.written;
    this.calls.push({
      id: call.id, argv: call.argv, cwd: call.cwd, env: call.env, pid: call.pid,
      action: call.done, reason: info.reason, exit: info.exit, signal: info.signal,
      stdin: Buffer.concat(call.stdinSeen),
      stdout: Buffer.concat(out[1]),
      stderr: Buffer.concat(out[2]),
    });
    if (this._open.size === 0) this._idle.splice(0).forEach((resolve) => resolve());
  }

  _event(event) {
    try {
      this._eventHandler?.(event);
    } catch (e) {
      this.errors.push(e);
    }
  }

  _channelEnded() {
    for (const call of this._open.values()) call._feed(Buffer.alloc(0));
    this._idle.splice(0).forEach((resolve) => resolve());
  }

  async _message(message) {
    if (!this._messageHandler) return { type: 'error', error: 'no_handler', message: 'no onMessage handler' };
    return await this._messageHandler(message);
  }

  async _handle(call, handler) {
    try {
      const result = handler ? await handler(call) : undefined;
      if (isFinished(result) || call.done) return;
      await call.exit(result ?? 0);
    } catch (e) {
      if (e instanceof BridgeError && (e.code === 'no_such_call' || e.code === 'closed')) return;
      this.errors.push(e);
      if (call.done || call.ended) return;
      call.stderr.write(`${e?.stack ?? e}\n`);
      await call.exit(1).catch(() => {});
    }
  }
}

function unfaked(call) {
  call.stderr.write(`socketbridge: no fake for '${call.name}'\n`);
  return 127;
}

