# SPDX-License-Identifier: MIT
"""Bridge, Call, CallRecord: the Python idioms over the control channel."""

import os
import queue
import signal as _signal
import subprocess
import threading
import traceback

from ._channel import (BridgeError, Channel, env_from_wire, env_to_wire, from_wire,
                       signal_name, to_wire)
from ._send import find_executable

__all__ = ["Bridge", "BridgeError", "Call", "CallRecord", "HandlerError"]


class HandlerError(BridgeError):
    """A fake's handler raised. Raised by ``Bridge.__exit__`` (so a test
    fails) for the first such exception, chained to it; the call itself
    got the traceback on its stderr and exit status 1, as an uncaught
    exception gives a Python program."""


class _Done:
    """What delegate/exec/run/kill return: the call is already finished."""

    __slots__ = ("action",)

    def __init__(self, action):
        self.action = action

    def __repr__(self):
        return "<socketbridge: call finished by %s>" % self.action


class _Stdin:
    """The calling process's stdin, as it arrives (file-like, binary).

    The supervisor holds a call's stdin until it is asked for it: the first
    read opens the call (so a handler that answers ``exec`` or ``run`` leaves
    stdin whole to the program). Past _HIGH bytes unread, the call is paused
    until reads bring it under _LOW."""

    _HIGH = 4 << 20
    _LOW = 1 << 20

    def __init__(self, call):
        self._call = call
        self._opened = False
        self._paused = False
        self._buf = bytearray()
        self.seen = bytearray()  # all that arrived, for the record
        self._eof = False
        self._cond = threading.Condition()

    # Fed by the channel's reader thread.
    def _feed(self, data):
        with self._cond:
            self._buf += data
            self.seen += data
            self._cond.notify_all()
            if len(self._buf) > self._HIGH and not self._paused:
                self._paused = True
                self._call._request("pause", wait=False)

    def _end(self):
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _open(self):
        # Under self._cond.
        if not self._opened:
            self._opened = True
            self._call._request("open", wait=False)

    def _taken(self):
        # Under self._cond.
        if self._paused and len(self._buf) < self._LOW:
            self._paused = False
            self._call._request("resume", wait=False)

    def _take(self, n):
        # Under self._cond: up to n bytes of what has arrived (all: n < 0).
        n = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self._taken()
        return out

    # Reads take what has arrived as they go (rather than wait for all of
    # it in the buffer), so a pause never outlasts a reader that waits.
    def read(self, n=-1):
        """Up to ``n`` bytes, fewer only at EOF (all of them to EOF when
        n < 0); b"" at EOF."""
        n = -1 if n is None else n
        out = bytearray()
        with self._cond:
            self._open()
            while n < 0 or len(out) < n:
                self._cond.wait_for(lambda: self._eof or self._buf)
                if not self._buf:
                    break
                out += self._take(n - len(out) if n >= 0 else -1)
        return bytes(out)

    def read1(self, n=-1):
        """What has arrived (at least one byte unless at EOF), up to n."""
        with self._cond:
            self._open()
            self._cond.wait_for(lambda: self._eof or self._buf)
            return self._take(-1 if n is None else n)

    def readline(self):
        out = bytearray()
        with self._cond:
            self._open()
            while not out.endswith(b"\n"):
                self._cond.wait_for(lambda: self._eof or self._buf)
                if not self._buf:
                    break
                i = self._buf.find(b"\n")
                out += self._take(-1 if i < 0 else i + 1)
        return bytes(out)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readable(self):
        return True


class _Output:
    """The calling process's stdout or stderr (file-like, binary; str is
    written as UTF-8). Each write goes to the process as it is made."""

    def __init__(self, call, fd):
        self._call = call
        self._fd = fd
        self.written = bytearray()  # what this handler wrote, for the record

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        if data:
            self._call._check_open()
            self.written += data
            self._call._bridge._channel.write(self._call.id, self._fd, data)
        return len(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def close(self):
        """Ends the stream: the process's fd gets EOF (the call goes on)."""
        self._call._check_open()
        self._call._bridge._channel.write(self._call.id, self._fd, b"")

    def writable(self):
        return True


class Call:
    """One run of a faked name, somewhere in the tree, waiting for its
    answer. Attributes: ``id``, ``argv`` (list of str; bytes that are not
    UTF-8 as os.fsdecode gives them), ``env`` (dict), ``cwd``, ``pid``,
    ``ppid``, ``tty`` (dict of stdin/stdout/stderr booleans), ``exe``;
    ``stdin`` (read it), ``stdout`` and ``stderr`` (write them).

    The handler finishes the call by returning an exit code (None: 0), or
    with one of ``exit``, ``kill``, ``delegate``, ``exec``, ``run``.
    """

    def __init__(self, bridge, info):
        self._bridge = bridge
        self.id = info["id"]
        self.argv = info["argv"]
        self.env = info["env"]
        self.cwd = info["cwd"]
        self.pid = info.get("pid")
        self.ppid = info.get("ppid")
        self.tty = info.get("tty", {})
        self.exe = info.get("exe")
        self.stdin = _Stdin(self)
        self.output = {1: bytearray(), 2: bytearray()}  # a run/delegate's, as relayed
        self.program_exit = None
        self.stdout = _Output(self, 1)
        self.stderr = _Output(self, 2)
        self._done = None  # the action that finished the call
        self._ended = None  # how it ended, once call_end came
        self._lock = threading.Lock()

    @property
    def name(self):
        """The basename of argv[0]: the name that was run."""
        return os.path.basename(self.argv[0]) if self.argv else ""

    def __repr__(self):
        return "<socketbridge.Call %s %r pid=%s>" % (self.id, self.argv, self.pid)

    def _check_open(self):
        if self._done is not None:
            raise BridgeError("call %s is already finished (%s)" % (self.id, self._done), "already")
        if self._ended is not None:
            raise BridgeError("call %s has ended (%s)" % (self.id, self._ended["reason"]),
                              "no_such_call")

    def _request(self, type_, wait=True, **members):
        return self._bridge._channel.request(type_, wait=wait, call=self.id, **members)

    def _finish(self, action, type_, wait=True, **members):
        with self._lock:
            self._check_open()
            self._done = action
        try:
            self._request(type_, wait=wait, **members)
        except BridgeError as e:
            if e.code in ("failed", "bad_request"):
                self._done = None  # refused, the call untouched: answer it otherwise
            raise
        return _Done(action)

    def exit(self, code=0):
        """The process exits with ``code`` (0..255) after what was written."""
        return self._finish("exit", "exit", code=int(code))

    def _exit_returned(self, code):
        # The handler's return value: nobody to tell of an error (the call
        # went away), so no need to wait for the answer.
        return self._finish("exit", "exit", wait=False, code=int(code))

    def kill(self, sig):
        """The process dies by signal ``sig`` (a number, signal.Signals, or
        a name such as "TERM") after what was written."""
        return self._finish("exit", "exit", signal=signal_name(sig))

    def respond(self, stdout=b"", stderr=b"", code=0, signal=None, delay_ms=0):
        """Canned output, then the end (after ``delay_ms``), in one
        message: the rules file's ``respond``."""
        m = {"stdout": to_wire(stdout), "stderr": to_wire(stderr), "delay_ms": int(delay_ms)}
        if signal is not None:
            m["signal"] = signal_name(signal)
        else:
            m["code"] = int(code)
        return self._finish("respond", "respond", **m)

    def delegate(self, argv, env=None, cwd=None, unset=None, path=None):
        """The supervisor runs ``argv`` and splices it to the call (its
        stdin, stdout, stderr and exit status become the call's). ``env``
        sets variables of the call's environment, ``unset`` removes some."""
        return self._finish("delegate", "delegate", **_program(argv, env, cwd, unset, path))

    def exec(self, argv, env=None, cwd=None, unset=None, path=None):
        """The calling process becomes ``argv`` (execve in place; a name
        without a slash is searched on PATH past the fakes)."""
        return self._finish("exec", "exec", **_program(argv, env, cwd, unset, path))

    def run(self, argv, tee=False, env=None, cwd=None, unset=None, path=None):
        """The calling process runs ``argv`` as its child and exits as it
        did; its output is relayed here (in the record), and with ``tee``
        to the process's own stdout and stderr too."""
        return self._finish("run", "run", tee=bool(tee), **_program(argv, env, cwd, unset, path))

    def close(self):
        """Drops the call: the process exits 125."""
        return self._finish("close", "close")


def _program(argv, env, cwd, unset, path):
    if isinstance(argv, (str, bytes)) or not argv:
        raise TypeError("argv must be a non-empty list of arguments, not %r" % (argv,))
    m = {"argv": [to_wire(a) for a in argv]}
    if env:
        m["env"] = env_to_wire(env)
    if cwd is not None:
        m["cwd"] = to_wire(cwd)
    if unset:
        m["unset"] = list(unset)
    if path is not None:
        m["path"] = to_wire(path)
    return m


class _Workers:
    """Threads for handlers: an idle one takes the next call, else a new one
    starts (handlers block, on stdin or on each other: a fixed pool could
    deadlock). Threads that finished a call wait for the next."""

    def __init__(self):
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def submit(self, fn, *args):
        with self._lock:
            start = self._idle == 0
            if start:
                self._threads += 1
            else:
                self._idle -= 1
        self._queue.put((fn, args))
        if start:
            threading.Thread(target=self._work, name="socketbridge handler", daemon=True).start()

    def stop(self):
        """Each thread ends once its handler returned."""
        with self._lock:
            n, self._threads = self._threads, 0
        for _ in range(n):
            self._queue.put(None)

    def _work(self):
        while True:
            job = self._queue.get()
            if job is None:
                return
            job[0](*job[1])
            with self._lock:
                self._idle += 1


def _unfaked(call):
    """A call of a name with no fake (the stub run under another name)."""
    call.stderr.write("socketbridge: no fake for %r\n" % call.name)
    return 127


def _kill_group(p):
    try:
        os.killpg(p.pid, _signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class CallRecord:
    """A finished call: ``argv``, ``cwd``, ``env``, ``pid``; ``action``
    (exit, respond, delegate, exec, run, close, or None when the process
    went away first); ``reason`` (how the supervisor saw it end: exited,
    exec, peer_lost, protocol, server); ``exit`` (code, or None), ``signal``
    (number, or None); ``stdin``, ``stdout``, ``stderr`` (bytes: what
    reached the handler and what it wrote, or for run and delegate what the
    program wrote)."""

    __slots__ = ("id", "argv", "cwd", "env", "pid", "action", "reason", "exit", "signal",
                 "stdin", "stdout", "stderr")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def returncode(self):
        """As subprocess gives it: the exit code, or -N for signal N."""
        if self.signal:
            return -self.signal
        return self.exit

    @property
    def name(self):
        return os.path.basename(self.argv[0]) if self.argv else ""

    def __repr__(self):
        how = "signal %s" % self.signal if self.signal else "exit %s" % self.exit
        return "<CallRecord %r %s>" % (self.argv, how)


class Bridge:
    """A ``socketbridge serve`` supervisor and the fakes it answers.

    ``executable``: the ``socketbridge`` command (default: $SOCKETBRIDGE_CLI,
    then PATH). ``transport``: "tcp" (127.0.0.1, a random port) or "unix".
    Use it as a context manager, or call ``start()`` and ``close()``.
    """

    def __init__(self, executable=None, transport="tcp"):
        if transport not in ("tcp", "unix"):
            raise ValueError("transport must be 'tcp' or 'unix', not %r" % (transport,))
        self.executable = find_executable(executable)
        self.transport = transport
        self._fakes = {}  # name -> handler or None
        self._message_handler = None
        self._event_handler = None
        self._calls = []
        self._open = {}  # id -> Call
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.errors = []  # exceptions handlers raised (clear it to accept them)
        self._channel = None
        self._closed = False
        self._workers = _Workers()
        self._ticket = None  # the ticket of bridge.env
        self._shim_dir = None

    # ---- lifecycle -------------------------------------------------------

    def start(self):
        self._channel = Channel(self.executable, self.transport, self)
        self._channel.start()
        return self

    def close(self, timeout=10):
        """Stops the supervisor (open calls are cut off: their processes
        exit 125) and waits for it. Raises BridgeError when it did not end
        well (its exit status was not 0: its own error is on stderr)."""
        if self._channel is None or self._closed:
            return
        self._closed = True
        status = self._channel.close(timeout)
        self._workers.stop()
        if status != 0:
            raise BridgeError("socketbridge serve %s (its own error is on stderr)" % (
                "did not end within %ss" % timeout if status is None else
                "exited %d" % status), "serve")

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except BridgeError:
            if exc_type is None:
                raise
        if exc_type is None and self.errors:
            first = self.errors[0]
            raise HandlerError("a handler raised %s: %s (%d in all)"
                               % (type(first).__name__, first, len(self.errors))) from first
        return False

    # ---- what the harness configures ----------------------------------------

    def fake(self, name, handler=None):
        """Make ``name`` a shim first on PATH for everything this bridge
        runs; ``handler(call)`` answers each call. Without a handler the
        calls exit 0 with no output until one is set: the return value is a
        decorator that sets it, so ``@bridge.fake("git")`` works.

        ``name`` "*" (no shim) answers the calls no other fake takes (the
        stub run under its own name, say as GIT_EDITOR)."""
        if name != "*":
            answer = self._channel.request("shim", names=[name])
            self._shim_dir = from_wire(answer["dir"])
        self._fakes[name] = handler

        def decorate(fn):
            self._fakes[name] = fn
            return fn

        return handler if handler is not None else decorate

    def leave(self, *names):
        """Shims ``names`` routed to the real program: the supervisor execs
        it without asking the harness (the call is in events only)."""
        answer = self._channel.request("shim", names=list(names), route="exec")
        self._shim_dir = from_wire(answer["dir"])

    def on_message(self, handler):
        """``handler(message)`` answers each side-band message whose type
        is not the supervisor's own (ping, status): its return value (a
        dict) is the reply. Usable as a decorator."""
        self._message_handler = handler
        self._channel.request("messages", enable=True)
        return handler

    def on_event(self, handler):
        """``handler(event)`` gets each event (the dicts `socketbridge run
        --events` writes), on the channel's thread: keep it short."""
        self._event_handler = handler
        self._channel.request("events", enable=True)
        return handler

    # ---- what the harness reads ---------------------------------------------

    def ticket_env(self, base=None):
        """A fresh ticket: ``base`` (default os.environ) with the bridge's
        variables and the fakes first on PATH. Returns (ticket id, env)."""
        answer = self._channel.request("ticket")
        return answer["ticket"], self._with_ticket(env_from_wire(answer["env"]), base)

    def _with_ticket(self, ticket, base):
        env = dict(os.environ if base is None else base)
        env.update(ticket)
        env["SOCKETBRIDGE_CLI"] = self.executable
        if self._shim_dir is not None:
            path = (base if base is not None else os.environ).get("PATH", os.defpath)
            env["PATH"] = self._shim_dir + os.pathsep + path
            env["SOCKETBRIDGE_SHIMS"] = self._shim_dir
        return env

    @property
    def env(self):
        """The environment a process the harness starts itself needs: this
        process's, with the bridge's variables and the fakes first on PATH
        (a fresh dict each time, of one ticket kept for the bridge's life)."""
        if self._ticket is None:
            self._ticket = env_from_wire(self._channel.request("ticket")["env"])
        return self._with_ticket(self._ticket, None)

    @property
    def calls(self):
        """The finished calls, in the order they finished (a copy)."""
        with self._lock:
            return list(self._calls)

    def status(self):
        """The supervisor's status object (as a side-band ``status``)."""
        return self._channel.request("status")["status"]

    @property
    def stub_path(self):
        """The stub's absolute path (for GIT_EDITOR and the like)."""
        return self._channel.stub_path

    @property
    def address(self):
        """The bridge: ("tcp", host, port) or ("unix", path)."""
        r = self._channel.ready
        if r.get("transport") == "unix":
            return ("unix", from_wire(r["socket"]))
        return ("tcp", r["host"], r["port"])

    def wait_idle(self, timeout=None):
        """Waits until no call is open; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._open, timeout)

    # ---- running ------------------------------------------------------------

    def run(self, args, capture_output=False, timeout=None, env=None, cwd=None,
            input=None, check=False, text=False, stdout=None, stderr=None):
        """Runs ``args`` with the fakes on its PATH, as subprocess.run does
        (same arguments, same CompletedProcess, TimeoutExpired and
        CalledProcessError), with a ticket of its own and in a session of
        its own: on timeout its whole process group is killed. Returns once
        no call of the bridge is open."""
        ticket, full = self.ticket_env(env)
        if capture_output:
            stdout = stderr = subprocess.PIPE
        try:
            with subprocess.Popen(args, env=full, cwd=cwd, start_new_session=True,
                                  stdin=subprocess.PIPE if input is not None else None,
                                  stdout=stdout, stderr=stderr, text=text) as p:
                try:
                    out, err = p.communicate(input, timeout=timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(p)
                    out, err = p.communicate()
                    raise subprocess.TimeoutExpired(args, timeout, out, err)
                except BaseException:
                    _kill_group(p)
                    raise
            # Calls of the tree that outlive its root still finish.
            self.wait_idle(timeout=30)
        finally:
            try:
                self._channel.request("ticket_free", wait=False, ticket=ticket)
            except BridgeError:
                pass
        cp = subprocess.CompletedProcess(args, p.returncode, out, err)
        if check:
            cp.check_returncode()
        return cp

    # ---- from the channel's reader thread ----------------------------------

    def _on_call(self, info):
        call = Call(self, info)
        with self._lock:
            self._open[call.id] = call
        handler = self._fakes.get(call.name, self._fakes.get("*", _unfaked))
        self._workers.submit(self._handle, call, handler)

    def _on_stdin(self, call_id, data):
        call = self._open.get(call_id)
        if call is not None:
            if data:
                call.stdin._feed(data)
            else:
                call.stdin._end()

    def _on_output(self, call_id, fd, data):
        call = self._open.get(call_id)
        if call is not None:
            call.output[fd] += data

    def _on_program_exit(self, call_id, info):
        call = self._open.get(call_id)
        if call is not None:
            call.program_exit = info

    def _on_call_end(self, call_id, info):
        with self._lock:
            call = self._open.pop(call_id, None)
        if call is None:
            return
        call._ended = info
        call.stdin._end()
        relayed = call._done in ("run", "delegate")
        record = CallRecord(
            id=call.id, argv=call.argv, cwd=call.cwd, env=call.env, pid=call.pid,
            action=call._done, reason=info["reason"], exit=info["exit"],
            signal=info["signal"], stdin=bytes(call.stdin.seen),
            stdout=bytes(call.output[1] if relayed else call.stdout.written),
            stderr=bytes(call.output[2] if relayed else call.stderr.written))
        with self._lock:
            self._calls.append(record)
            self._idle.notify_all()

    def _on_channel_end(self, reason):
        with self._lock:
            calls = list(self._open.values())
        for call in calls:
            call.stdin._end()

    def _on_message(self, body):
        if self._message_handler is None:
            return {"type": "error", "error": "no_handler", "message": "no on_message handler"}
        return self._message_handler(body)

    def _on_event(self, event):
        if self._event_handler is not None:
            try:
                self._event_handler(event)
            except Exception as e:
                self.errors.append(e)

    # ---- per call, on its own thread --------------------------------------

    def _handle(self, call, handler):
        try:
            result = handler(call) if handler is not None else None
            if isinstance(result, _Done) or call._done is not None:
                return
            call._exit_returned(0 if result is None else result)
        except BaseException as e:  # the call must end whatever the handler did
            if isinstance(e, BridgeError) and e.code in ("no_such_call", "closed"):
                return  # the process went away, or the bridge is closing
            self.errors.append(e)
            if call._done is not None:
                return
            try:
                call.stderr.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
                call.exit(1)
            except BridgeError:
                pass  # the call went away meanwhile
