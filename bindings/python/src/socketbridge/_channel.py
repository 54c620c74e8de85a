# SPDX-License-Identifier: MIT
"""The control channel of ``socketbridge serve`` (docs/control.md), version 1.

Frames both ways: ``u32 BE length | u8 kind | payload``; kind 1 is a JSON
object, kinds 2..6 are raw bytes after a ``u64 BE`` id. This module only
frames and routes: every decision (tokens, the bridge, dispositions) is the
supervisor's.

Threads: one reader thread reads the channel and routes each frame; it never
waits on the channel itself (a request from it would wait for an answer only
it can read), so handlers run on threads of their own. Writers share one lock.
"""

import base64
import json
import os
import signal as _signal
import struct
import subprocess
import threading

__all__ = ["BridgeError", "Channel", "to_wire", "from_wire", "env_to_wire", "env_from_wire"]

VERSION = 1
KIND_JSON, KIND_STDIN, KIND_STDOUT, KIND_STDERR, KIND_PROC_STDOUT, KIND_PROC_STDERR = 1, 2, 3, 4, 5, 6
MAX_FRAME = 16 * 1024 * 1024
_HEAD = struct.Struct(">IB")
_ID = struct.Struct(">Q")
# A data frame's payload, kept below the frame limit with room for the head.
_CHUNK = 1024 * 1024


class BridgeError(Exception):
    """The supervisor refused a request, or the channel ended. ``code`` is
    the control channel's error code (``no_such_call``, ``failed``...), and
    ``errno`` the system's error name when it gave one."""

    def __init__(self, message, code=None, errno=None):
        super().__init__(message)
        self.code = code
        self.errno = errno


# ---- byte strings (docs/control.md section 3) ------------------------------

def to_wire(value):
    """str (os.fsencode'd) or bytes -> a JSON string, or {"base64"} when
    the bytes are not UTF-8."""
    raw = os.fsencode(value) if isinstance(value, str) else bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def from_wire(value):
    """A wire byte string -> str, bytes that are not UTF-8 as os.fsdecode
    gives them (so os.fsencode returns the exact bytes)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return os.fsdecode(base64.b64decode(value["base64"]))
    return value


def env_from_wire(entries):
    env = {}
    for entry in entries or ():
        name, _, val = from_wire(entry).partition("=")
        env[name] = val
    return env


def env_to_wire(env):
    return [to_wire(os.fsencode(k) + b"=" + os.fsencode(v)) for k, v in env.items()]


def signal_number(value):
    """A signal as the channel names it ("TERM", or a number) -> int."""
    if value is None or isinstance(value, int):
        return value
    return int(_signal.Signals["SIG" + value])


def signal_name(value):
    if isinstance(value, str):
        return value[3:] if value.startswith("SIG") else value
    return _signal.Signals(int(value)).name[3:]


class _Pending:
    __slots__ = ("event", "reply")

    def __init__(self):
        self.event = threading.Event()
        self.reply = None


class Channel:
    """One ``socketbridge serve`` and its channel (the process's stdio).

    ``sink`` receives what the supervisor reports: ``_on_call(info)``,
    ``_on_stdin(call, bytes)`` (b"" is the end), ``_on_output(call, fd,
    bytes)``, ``_on_program_exit(call, info)``, ``_on_call_end(call, info)``,
    ``_on_message(body) -> reply`` (on a thread of its own), ``_on_event``.
    """

    def __init__(self, executable, transport, sink):
        self.executable = executable
        self.transport = transport
        self._sink = sink
        self._proc = None
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._pending = {}  # request id -> _Pending (None: nobody waits)
        self._next_id = 0
        self._ready = threading.Event()
        self._closed = False
        self._reader = None
        self._paused = {}  # call id -> Condition-guarded flag (write_pause)
        self._pause_cond = threading.Condition()
        self.ready = None  # the `ready` message
        self.errors = []  # error messages about no request (id null)
        self.end_reason = None

    # ---- lifecycle ----------------------------------------------------------

    def start(self, timeout=30):
        self._proc = subprocess.Popen(
            [self.executable, "serve", "--transport", self.transport],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self._reader = threading.Thread(target=self._read_loop, name="socketbridge channel",
                                        daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout) or self.ready is None:
            self.close(5)
            raise BridgeError("socketbridge serve did not start (%s): %s"
                              % (self.executable, self.end_reason or "no ready message"))
        if self.ready.get("version") != VERSION:
            self.close(5)
            raise BridgeError("socketbridge serve speaks control channel version %r, not %d"
                              % (self.ready.get("version"), VERSION))

    def close(self, timeout=10):
        """EOF on the channel: serve closes every call and exits. Returns
        its exit status (0 when all went well; None when it had to be
        killed after ``timeout``)."""
        if self._proc is None:
            return None
        with self._wlock:
            self._closed = True
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            status = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            status = None
        if self._reader is not None:
            self._reader.join(timeout)
        self._proc.stdout.close()
        return status

    @property
    def stub_path(self):
        return from_wire(self.ready.get("stub"))

    @property
    def pid(self):
        return self._proc.pid

    # ---- writing ------------------------------------------------------------

    def _write(self, frame):
        with self._wlock:
            if self._closed:
                raise BridgeError("the control channel is closed", "closed")
            fd = self._proc.stdin.fileno()
            view = memoryview(frame)
            try:
                while view:
                    view = view[os.write(fd, view):]
            except (BrokenPipeError, OSError) as e:
                raise BridgeError("the control channel broke: %s" % e, "closed") from e

    def request(self, type_, wait=True, **members):
        """Sends a request; returns its `ok` answer (a dict) or raises
        BridgeError with its error. With wait=False, returns at once and an
        error answer is only kept in ``errors``."""
        with self._plock:
            self._next_id += 1
            rid = self._next_id
            pending = _Pending() if wait else None
            self._pending[rid] = pending
        members.update(type=type_, id=rid)
        payload = json.dumps(members, separators=(",", ":")).encode()
        try:
            self._write(_HEAD.pack(len(payload) + 1, KIND_JSON) + payload)
        except BridgeError:
            with self._plock:
                self._pending.pop(rid, None)
            raise
        if not wait:
            return None
        pending.event.wait()
        reply = pending.reply
        if reply is None:
            raise BridgeError("the control channel ended before the answer to %s"
                              % type_, "closed")
        if reply.get("type") == "error":
            raise BridgeError("%s: %s" % (type_, reply.get("message") or reply.get("error")),
                              reply.get("error"), reply.get("errno"))
        return reply

    def write(self, call, fd, data):
        """Bytes for the call's stdout (1) or stderr (2), in frames of at
        most 1 MiB; b"" ends the stream. Waits while the supervisor asked
        for a pause (write_pause)."""
        kind = KIND_STDOUT if fd == 1 else KIND_STDERR
        data = memoryview(bytes(data))
        while True:
            with self._pause_cond:
                self._pause_cond.wait_for(lambda: not self._paused.get(call))
            chunk = data[:_CHUNK]
            self._write(_HEAD.pack(len(chunk) + 9, kind) + _ID.pack(call) + bytes(chunk))
            data = data[_CHUNK:]
            if not data:
                return

    # ---- reading (the reader thread) ---------------------------------------

    def _read_exact(self, n):
        buf = self._proc.stdout.read(n)
        if buf is None or len(buf) < n:
            raise EOFError
        return buf

    def _read_loop(self):
        try:
            while True:
                length, kind = _HEAD.unpack(self._read_exact(5))
                if length < 1 or length > MAX_FRAME:
                    raise BridgeError("bad frame length %d from serve" % length)
                payload = self._read_exact(length - 1) if length > 1 else b""
                if kind == KIND_JSON:
                    self._on_json(json.loads(payload))
                elif KIND_STDIN <= kind <= KIND_PROC_STDERR and len(payload) >= 8:
                    (ident,) = _ID.unpack_from(payload)
                    self._on_data(kind, ident, payload[8:])
                # Other kinds: a later version's; ignored.
        except EOFError:
            self.end_reason = "serve closed the channel (exit status %s)" % self._proc.poll()
        except Exception as e:  # a broken channel ends the bridge, loudly
            self.end_reason = "%s: %s" % (type(e).__name__, e)
        finally:
            self._ended()

    def _ended(self):
        self._ready.set()
        with self._plock:
            pending, self._pending = self._pending, {}
        for p in pending.values():
            if p is not None:
                p.event.set()
        with self._pause_cond:
            self._paused.clear()
            self._pause_cond.notify_all()
        self._sink._on_channel_end(self.end_reason)

    def _on_data(self, kind, ident, data):
        if kind == KIND_STDIN:
            self._sink._on_stdin(ident, data)
        elif kind in (KIND_STDOUT, KIND_STDERR):
            self._sink._on_output(ident, 1 if kind == KIND_STDOUT else 2, data)
        # Procs' output: this package starts its commands itself.

    def _on_json(self, msg):
        t = msg.get("type")
        if t in ("ok", "error") and msg.get("id") is not None:
            with self._plock:
                pending = self._pending.pop(msg["id"], None)
            if pending is not None:
                pending.reply = msg
                pending.event.set()
            elif t == "error":
                self.errors.append(msg)
        elif t == "error":
            self.errors.append(msg)
        elif t == "ready":
            self.ready = msg
            self._ready.set()
        elif t == "call":
            self._sink._on_call(_call_info(msg))
        elif t == "call_end":
            self._forget(msg["call"])
            self._sink._on_call_end(msg["call"], _end_info(msg))
        elif t == "program_exit":
            self._sink._on_program_exit(msg["call"], _end_info(msg))
        elif t in ("write_pause", "write_resume"):
            with self._pause_cond:
                self._paused[msg["call"]] = t == "write_pause"
                self._pause_cond.notify_all()
        elif t == "message":
            threading.Thread(target=self._answer_message, args=(msg,), daemon=True,
                             name="socketbridge message %s" % msg.get("message")).start()
        elif t == "event":
            self._sink._on_event(msg.get("event"))
        # proc_end and types of later versions: ignored.

    def _forget(self, call):
        with self._pause_cond:
            if self._paused.pop(call, None):
                self._pause_cond.notify_all()

    def _answer_message(self, msg):
        try:
            body = self._sink._on_message(msg.get("body"))
            if not isinstance(body, dict):
                body = {"type": "error", "error": "bad_reply",
                        "message": "the handler returned %s, not a dict" % type(body).__name__}
        except Exception as e:
            body = {"type": "error", "error": "handler_failed",
                    "message": "%s: %s" % (type(e).__name__, e)}
            self._sink.errors.append(e)
        try:
            self.request("reply", wait=False, message=msg["message"], body=body)
        except BridgeError:
            pass  # the bridge is closing: the sender gets the supervisor's error


def _call_info(msg):
    return {
        "id": msg["call"],
        "argv": [from_wire(a) for a in msg.get("argv", [])],
        "env": env_from_wire(msg.get("env")),
        "cwd": from_wire(msg.get("cwd")),
        "exe": from_wire(msg.get("exe")),
        "pid": msg.get("pid"),
        "ppid": msg.get("ppid"),
        "tty": msg.get("tty") or {},
        "ticket": msg.get("ticket"),
    }


def _end_info(msg):
    return {"reason": msg.get("reason"), "exit": msg.get("code"),
            "signal": signal_number(msg.get("signal"))}
