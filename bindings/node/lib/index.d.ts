// SPDX-License-Identifier: MIT
// Types of the socketbridge package (written by hand; the code is lib/*.js).
import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';

/** An error answer of the supervisor, or the control channel ending. */
export class BridgeError extends Error {
  /** The control channel's error code: 'no_such_call', 'already', 'failed',
   * 'bad_request', ..., or 'closed' when the channel ended. */
  code?: string;
  /** The system's error name with 'failed' ('ENOENT', 'EACCES', ...). */
  errno?: string;
}

/** What Bridge.close() rejects with when a handler threw (cause: the first). */
export class HandlerError extends Error {}

export class SendError extends Error {
  /** `socketbridge send`'s exit status. */
  status?: number | string;
  stderr?: string;
}

/** What exit/kill/respond/delegate/exec/run/close resolve to: a handler may
 * return it (the call is answered). */
export class Finished {
  readonly action: string;
}

export interface ProgramOptions {
  /** Variables set (or replaced) in the call's environment. */
  env?: Record<string, string>;
  /** Names removed from it. */
  unset?: string[];
  cwd?: string;
  /** The program's path, instead of looking argv[0] up on PATH (past the fakes). */
  path?: string;
}

export interface EndInfo {
  /** 'exited', 'exec', 'peer_lost', 'protocol' or 'server'. */
  reason: string | null;
  exit: number | null;
  signal: number | null;
}

/** One run of a faked name (or of the stub), waiting for its answer. */
export class Call extends EventEmitter {
  readonly id: number;
  /** argv, argv[0] included (bytes not UTF-8 replaced; argvBytes has them exact). */
  readonly argv: string[];
  readonly argvBytes: Buffer[];
  readonly env: Record<string, string>;
  readonly cwd: string | null;
  readonly pid: number;
  readonly ppid: number;
  readonly tty: { stdin?: boolean; stdout?: boolean; stderr?: boolean };
  readonly exe: string | null;
  /** The basename of argv[0]. */
  readonly name: string;
  /** The process's stdin as it arrives (reading it lets it flow). */
  readonly stdin: Readable;
  /** The process's stdout and stderr: each write reaches it in order. */
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** The action that answered it, once answered. */
  readonly done: string | null;
  /** How it ended, once it did. */
  readonly ended: EndInfo | null;
  /** All of stdin, to EOF. */
  readStdin(): Promise<Buffer>;
  /** Exit with code once all written is out. */
  exit(code?: number): Promise<Finished>;
  /** Die by signal (number, 'TERM' or 'SIGTERM'). */
  kill(signal: number | string): Promise<Finished>;
  respond(opts?: { stdout?: string | Buffer; stderr?: string | Buffer; code?: number;
    signal?: number | string; delayMs?: number }): Promise<Finished>;
  /** The supervisor runs argv and splices it to the call. */
  delegate(argv: string[], opts?: ProgramOptions): Promise<Finished>;
  /** The process becomes argv. */
  exec(argv: string[], opts?: ProgramOptions): Promise<Finished>;
  /** The process runs argv and exits as it did; with tee its output goes to its own fds too. */
  run(argv: string[], opts?: ProgramOptions & { tee?: boolean }): Promise<Finished>;
  /** Drop the call: the process exits 125. */
  close(): Promise<Finished>;
  on(event: 'close', listener: (info: EndInfo) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** A finished call, in bridge.calls. */
export interface CallRecord {
  id: number;
  argv: string[];
  cwd: string | null;
  env: Record<string, string>;
  pid: number;
  /** 'exit', 'respond', 'delegate', 'exec', 'run', 'close', or null when the process went away first. */
  action: string | null;
  reason: string | null;
  exit: number | null;
  signal: number | null;
  /** What reached the handler. */
  stdin: Buffer;
  /** What the handler wrote, or for run and delegate what the program wrote. */
  stdout: Buffer;
  stderr: Buffer;
}

/** A handler's answer: an exit code, nothing (0), or a finished call. */
export type Handler = (call: Call) => number | void | Finished | Promise<number | void | Finished>;

export interface RunResult {
  args: string[];
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer | null;
  stderr: Buffer | null;
}

export interface BridgeOptions {
  /** The socketbridge command (default: $SOCKETBRIDGE_CLI, then PATH). */
  executable?: string;
  /** 'tcp' (127.0.0.1, a random port; the default) or 'unix'. */
  transport?: 'tcp' | 'unix';
}

/** A `socketbridge serve` supervisor and the fakes it answers. */
export class Bridge {
  static start(options?: BridgeOptions): Promise<Bridge>;
  constructor(options?: BridgeOptions);
  readonly executable: string;
  readonly transport: 'tcp' | 'unix';
  /** Finished calls, in the order they finished. */
  readonly calls: CallRecord[];
  /** What handlers threw. */
  readonly errors: unknown[];
  /** For a process the harness starts itself: this process's env, the
   * bridge's variables, the fakes first on PATH. */
  readonly env: Record<string, string>;
  /** The stub's absolute path. */
  readonly stubPath: string;
  start(): Promise<this>;
  /** Stops the supervisor (open calls exit 125); rejects with a
   * HandlerError when a handler threw and errors was not emptied. */
  close(): Promise<void>;
  /** Makes name a shim first on PATH; handler answers each call ('*': calls no other fake takes). */
  fake(name: string, handler?: Handler | null): Promise<Handler | null>;
  /** Shims names run for real by the supervisor, without asking. */
  leave(...names: string[]): Promise<void>;
  /** Answers side-band messages (types other than ping and status). */
  onMessage(handler: (message: Record<string, unknown>) => unknown): Promise<void>;
  onEvent(handler: (event: Record<string, unknown>) => void): Promise<void>;
  /** A fresh ticket and the env built on base with it. */
  ticket(base?: Record<string, string | undefined>): Promise<{ ticket: number; env: Record<string, string> }>;
  freeTicket(ticket: number): Promise<null>;
  status(): Promise<Record<string, unknown>>;
  /** Resolves once no call is open. */
  whenIdle(): Promise<void>;
  /** Runs args with the fakes on PATH, in a process group of its own (killed whole on timeout, ms). */
  run(args: string[], opts?: { captureOutput?: boolean; timeout?: number;
    env?: Record<string, string | undefined>; cwd?: string; input?: string | Buffer }): Promise<RunResult>;
}

// ---- process-proxy's API --------------------------------------------------

/** One process that ran the stub, as process-proxy presents it. */
export class ProcessProxyConnection extends EventEmitter {
  readonly call: Call;
  /** end(): done with stdin (the call stops reading the process's). */
  readonly stdin: Readable & { end(): void };
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly closed: boolean;
  /** argv, argv[0] included. */
  getArgs(): Promise<string[]>;
  getEnv(): Promise<Record<string, string>>;
  getCwd(): Promise<string>;
  /** Whether stdin may still bring data (not at EOF). */
  isStdinConnected(): Promise<boolean>;
  exit(code: number): Promise<void>;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface ProxyProcessServerOptions extends BridgeOptions {
  /** process-proxy's token check. Accepted and never called: the supervisor
   * checks each process's token itself (a per-ticket 256-bit token, in
   * childEnv()) before a connection is made. */
  validateConnection?: (token: string) => Promise<boolean>;
  /** process-proxy's handshake timeout: accepted, unused (the supervisor's
   * own bounds apply). */
  handshakeTimeout?: number;
}

export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

export class ProxyProcessServer extends EventEmitter {
  /** Starts the supervisor; port and host are accepted for process-proxy's
   * sake (the bridge is loopback on a port the kernel picks). */
  listen(port?: number, host?: string, callback?: () => void): this;
  listen(callback?: () => void): this;
  /** The bridge's address (a socket path with the unix transport), or null before listening. */
  address(): AddressInfo | string | null;
  /** The variables a child needs to reach this server: spread them into its env. */
  childEnv(): Record<string, string>;
  close(callback?: () => void): this;
  listening(): boolean;
  on(event: 'connection', listener: (connection: ProcessProxyConnection) => void): this;
  on(event: 'listening' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export function createProxyProcessServer(
  listener: (connection: ProcessProxyConnection) => void,
  options?: ProxyProcessServerOptions,
): ProxyProcessServer;

/** The stub's absolute path (`socketbridge stub-path`). */
export function getProxyCommandPath(executable?: string): string;

/** Sends a side-band message to the supervisor of this process tree (runs
 * `socketbridge send`); resolves to its reply. */
export function send(message: Record<string, unknown>, opts?: {
  env?: Record<string, string | undefined>; timeout?: number; executable?: string }): Promise<Record<string, unknown>>;
