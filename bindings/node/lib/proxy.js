// SPDX-License-Identifier: MIT
// process-proxy's API over a Bridge: its users switch by changing the import
// and spreading server.childEnv() into the child's environment.
import { EventEmitter } from 'node:events';
import { Bridge } from './bridge.js';

/** One process that ran the stub, as process-proxy presents it. */
export class ProcessProxyConnection extends EventEmitter {
  constructor(call) {
    super();
    this.call = call;
    this.stdin = call.stdin;
    this.stdout = call.stdout;
    this.stderr = call.stderr;
    // process-proxy's stdin has an end(): close it (stop reading it).
    this.stdin.end = () => this.stdin.destroy();
    call.on('close', () => this.emit('close'));
  }

  get closed() {
    return this.call.ended;
  }

  /** argv, argv[0] included. */
  getArgs() { return Promise.resolve([...this.call.argv]); }
  getEnv() { return Promise.resolve({ ...this.call.env }); }
  getCwd() { return Promise.resolve(this.call.cwd); }

  /** Whether stdin may still bring data (it has not reached EOF). */
  isStdinConnected() {
    return Promise.resolve(!this.call.stdinEnded);
  }

  /** The process exits with code once what was written is sent. */
  async exit(code) {
    if (this.call.ended) throw new Error('Connection already closed');
    await this.call.exit(code);
  }
}

/** A server as process-proxy's createProxyProcessServer returns: listen(),
 * address(), close(), and a 'connection' event per process (the listener is
 * one). Also childEnv(): the variables a child needs to reach it. */
export class ProxyProcessServer extends EventEmitter {
  constructor(listener, options = {}) {
    super();
    this._options = options;
    this._bridge = null;
    this._address = null;
    if (listener) this.on('connection', listener);
  }

  listening() {
    return this._bridge !== null && this._address !== null;
  }

  /** listen([port[, host]][, cb]): starts the supervisor. The bridge's port
   * is the supervisor's choice (port 0, a random one, is what process-proxy
   * users pass); host is loopback. */
  listen(...args) {
    const cb = typeof args.at(-1) === 'function' ? args.pop() : null;
    if (cb) this.once('listening', cb);
    const bridge = new Bridge({
      executable: this._options.executable,
      transport: this._options.transport ?? process.env.SOCKETBRIDGE_TRANSPORT ?? 'tcp',
    });
    bridge._onCall = (call) => this.emit('connection', new ProcessProxyConnection(call));
    bridge.start().then(() => {
      this._bridge = bridge;
      this._address = bridge._channel.address;
      this.emit('listening');
    }, (err) => this.emit('error', err));
    return this;
  }

  /** { port, family, address } for tcp; the socket path for unix. */
  address() {
    return this._address;
  }

  /** The variables a child needs to reach this server (spread them into
   * its env). */
  childEnv() {
    if (!this._bridge) throw new Error('socketbridge: childEnv() before listen() has called back');
    return { ...this._bridge._ticket.env, SOCKETBRIDGE_CLI: this._bridge.executable };
  }

  close(cb) {
    if (cb) this.once('close', cb);
    const bridge = this._bridge;
    this._bridge = null;
    (bridge ? bridge.close() : Promise.resolve()).then(() => this.emit('close'),
      (err) => this.emit('error', err));
    return this;
  }
}

export function createProxyProcessServer(listener, options) {
  return new ProxyProcessServer(listener, options);
}
