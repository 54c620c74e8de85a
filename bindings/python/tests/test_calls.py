# SPDX-License-Identifier: MIT
"""What a handler sees and can do: argv/env/cwd, binary streams, every
disposition, exceptions, many calls at once. Both transports (conftest)."""

import os
import signal
import subprocess
import threading

import pytest

import socketbridge
from conftest import deadline


def test_a_handler_sees_argv_env_cwd_and_pid(bridge, tmp_path):
    seen = {}

    @bridge.fake("tool")
    def tool(call):
        seen.update(argv=call.argv, cwd=call.cwd, color=call.env.get("COLOR"),
                    pid=call.pid, name=call.name)
        return 3

    r = bridge.run(["sh", "-c", 'tool a "b c"; echo "$?"'], cwd=str(tmp_path),
                   env=dict(os.environ, COLOR="teal"), capture_output=True, timeout=deadline(30))
    assert r.stdout == b"3\n"
    assert seen["argv"] == ["tool", "a", "b c"] and seen["name"] == "tool"
    assert seen["cwd"] == str(tmp_path) and seen["color"] == "teal"
    assert isinstance(seen["pid"], int) and seen["pid"] > 1


def test_argv_that_is_not_utf8_round_trips_as_fsdecode_gives_it(bridge):
    got = []

    @bridge.fake("tool")
    def tool(call):
        got.append(call.argv[1])
        call.stdout.write(os.fsencode(call.argv[1]))

    raw = b"caf\xe9-\xff"
    r = bridge.run([b"sh", b"-c", b'tool "$1"', b"sh", raw], capture_output=True,
                   timeout=deadline(30))
    assert r.returncode == 0, r.stderr
    assert got == [os.fsdecode(raw)] and r.stdout == raw


def test_binary_stdin_and_stdout_are_exact(bridge):
    data = bytes(range(256)) * 12289 + b"\x00\xff"  # ~3 MiB, every byte value

    @bridge.fake("rev")
    def rev(call):
        got = call.stdin.read()
        call.stdout.write(got[::-1])
        return 0 if got == data else 1

    r = bridge.run(["rev"], input=data, capture_output=True, timeout=deadline(60))
    assert r.returncode == 0, r.stderr
    assert r.stdout == data[::-1]
    assert bridge.calls[0].stdin == data


def test_stdin_is_read_as_it_arrives(bridge):
    @bridge.fake("echo-lines")
    def echo_lines(call):
        for line in call.stdin:
            call.stdout.write(b"> " + line)

    r = bridge.run(["sh", "-c", "printf 'a\\nb\\n' | echo-lines"], capture_output=True,
                   timeout=deadline(30))
    assert r.stdout == b"> a\n> b\n"


def test_a_handler_that_raises_fails_the_call_and_the_bridge(transport):
    bridge = socketbridge.Bridge(transport=transport)
    with pytest.raises(socketbridge.HandlerError) as info:
        with bridge:
            @bridge.fake("tool")
            def tool(call):
                raise ValueError("the fake is broken")

            r = bridge.run(["sh", "-c", "tool; echo \"exit $?\""], capture_output=True,
                           timeout=deadline(30))
            assert r.stdout == b"exit 1\n"
            assert b"ValueError: the fake is broken" in r.stderr
            assert b"Traceback" in r.stderr
    assert isinstance(info.value.__cause__, ValueError)
    assert bridge.calls[0].exit == 1


def test_many_calls_are_answered_at_once(bridge):
    n = 40
    barrier = threading.Barrier(n, timeout=deadline(60))

    @bridge.fake("work")
    def work(call):
        barrier.wait()  # every call is open together, or this breaks
        call.stdout.write(("%s\n" % call.argv[1]).encode())
        return int(call.argv[1]) % 7

    script = "for i in $(seq 1 %d); do (work $i; echo \"$i:$?\" >&2) & done; wait" % n
    r = bridge.run(["sh", "-c", script], capture_output=True, timeout=deadline(120))
    assert r.returncode == 0
    assert sorted(r.stdout.decode().split()) == sorted(str(i) for i in range(1, n + 1))
    assert sorted(r.stderr.decode().split()) == sorted("%d:%d" % (i, i % 7)
                                                       for i in range(1, n + 1))
    assert len(bridge.calls) == n


def test_delegate_exec_and_run(bridge):
    @bridge.fake("d")
    def d(call):
        return call.delegate(["tr", "a-z", "A-Z"])

    @bridge.fake("e")
    def e(call):
        return call.exec(["sh", "-c", 'echo "exec $$ $1"', "sh", call.argv[1]])

    @bridge.fake("r")
    def r_(call):
        return call.run(["sh", "-c", "echo run-out; echo run-err >&2; exit 5"], tee=True)

    r = bridge.run(["sh", "-c", "echo hi | d; e x; echo \"pid $$\" >/dev/null; r; echo \"r=$?\""],
                   capture_output=True, timeout=deadline(30))
    out = r.stdout.decode().splitlines()
    assert out[0] == "HI"
    assert out[1].startswith("exec ") and out[1].endswith(" x")
    assert out[2:] == ["run-out", "r=5"]
    assert b"run-err" in r.stderr
    by = {c.name: c for c in bridge.calls}
    assert by["d"].action == "delegate" and by["d"].exit == 0
    assert by["e"].action == "exec" and by["e"].reason == "exec"
    # The exec'd program is the call's own process.
    assert out[1].split()[1] == str(by["e"].pid)
    assert by["r"].exit == 5 and by["r"].stdout == b"run-out\n" and by["r"].stderr == b"run-err\n"


def test_a_delegate_that_cannot_start_leaves_the_call_to_answer(bridge):
    errors = []

    @bridge.fake("caught")
    def caught(call):
        try:
            return call.delegate(["/nonexistent/program"])
        except socketbridge.BridgeError as e:
            errors.append((e.code, e.errno))
            call.stderr.write(b"no such program\n")
            return 127

    @bridge.fake("uncaught")
    def uncaught(call):
        return call.delegate(["/nonexistent/program"])

    r = bridge.run(["sh", "-c", "caught; echo \"caught $?\"; uncaught; echo \"uncaught $?\""],
                   capture_output=True, timeout=deadline(30))
    assert r.stdout == b"caught 127\nuncaught 1\n"
    assert errors == [("failed", "ENOENT")]
    assert b"BridgeError" in r.stderr
    assert [type(e) for e in bridge.errors] == [socketbridge.BridgeError]
    bridge.errors.clear()


def test_a_call_can_die_by_a_signal(bridge):
    @bridge.fake("doomed")
    def doomed(call):
        call.stdout.write(b"last words\n")
        return call.kill(signal.SIGTERM)

    r = bridge.run(["sh", "-c", "doomed; echo \"status $?\""], capture_output=True,
                   timeout=deadline(30))
    assert r.stdout == b"last words\nstatus %d\n" % (128 + signal.SIGTERM)
    assert bridge.calls[0].signal == signal.SIGTERM
    assert bridge.calls[0].returncode == -signal.SIGTERM


def test_a_name_without_a_handler_exits_0_and_is_recorded(bridge):
    bridge.fake("quiet")
    r = bridge.run(["quiet", "x"], capture_output=True, timeout=deadline(30))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert [c.argv for c in bridge.calls] == [["quiet", "x"]]


def test_bridge_env_for_a_process_the_harness_starts(bridge):
    bridge.fake("tool", lambda call: 42)
    r = subprocess.run(["sh", "-c", "tool"], env=bridge.env, timeout=deadline(30))
    assert r.returncode == 42
    assert bridge.wait_idle(deadline(30))
    assert bridge.calls[0].exit == 42


def test_the_stub_under_its_own_name_reaches_the_catch_all(bridge, tmp_path):
    @bridge.fake("*")
    def editor(call):
        with open(call.argv[1], "w") as f:
            f.write("edited\n")

    path = tmp_path / "msg"
    env = dict(os.environ, EDITOR=bridge.stub_path)
    r = bridge.run(["sh", "-c", '"$EDITOR" "$1"', "sh", str(path)], env=env, timeout=deadline(30))
    assert r.returncode == 0
    assert path.read_text() == "edited\n"


def test_run_timeout_kills_the_whole_tree(bridge):
    release = threading.Event()

    @bridge.fake("hang")
    def hang(call):
        release.wait(deadline(60))

    with pytest.raises(subprocess.TimeoutExpired):
        bridge.run(["sh", "-c", "hang; sleep 60"], timeout=1)
    release.set()


def test_status_counts_calls(bridge):
    bridge.fake("t", lambda call: 0)
    bridge.run(["sh", "-c", "t; t; t"], timeout=deadline(30))
    status = bridge.status()
    assert status["calls"]["served"] >= 3 and status["calls"]["open"] == 0
    assert status["pid"] == bridge._channel.pid


def test_a_bad_executable_is_a_clear_error(tmp_path):
    with pytest.raises((FileNotFoundError, socketbridge.BridgeError)):
        socketbridge.Bridge(executable=str(tmp_path / "nope")).start()


def test_a_large_stdin_read_whole_or_in_big_pieces(bridge):
    # More than the package buffers before it pauses the call (4 MiB): a
    # reader that waits for it all, or for pieces bigger than that, must
    # still get it.
    data = os.urandom(1 << 20) * 12

    @bridge.fake("whole")
    def whole(call):
        call.stdout.write(b"%d\n" % len(call.stdin.read()))

    @bridge.fake("pieces")
    def pieces(call):
        sizes = []
        while True:
            piece = call.stdin.read(6 << 20)
            if not piece:
                break
            sizes.append(len(piece))
        call.stdout.write(b"%r\n" % sizes)

    r = bridge.run(["sh", "-c", "whole <data; pieces <data"], cwd=_write(data),
                   capture_output=True, timeout=deadline(120))
    assert r.stdout == b"%d\n[6291456, 6291456]\n" % len(data), r.stderr


def test_a_large_stdout_arrives_whole(bridge):
    # 48 MiB in 1 MiB writes: more than serve holds for a call before it asks
    # the package to pause its writes.
    chunk = bytes(range(256)) * 4096

    @bridge.fake("gen")
    def gen(call):
        for _ in range(48):
            call.stdout.write(chunk)

    r = bridge.run(["sh", "-c", "gen | cksum"], capture_output=True, timeout=deadline(120))
    want = subprocess.run(["cksum"], input=chunk * 48, capture_output=True).stdout
    assert r.stdout == want


def _write(data):
    import tempfile
    d = tempfile.mkdtemp(prefix="sb-py-")
    with open(os.path.join(d, "data"), "wb") as f:
        f.write(data)
    return d


def test_a_supervisor_that_dies_fails_the_bridge(transport):
    bridge = socketbridge.Bridge(transport=transport).start()
    bridge.fake("tool", lambda call: 0)
    os.kill(bridge._channel.pid, signal.SIGKILL)
    with pytest.raises(socketbridge.BridgeError) as info:
        bridge.close()
    assert info.value.code == "serve"
    # Nothing to ask any more: a clear error, not a hang.
    with pytest.raises(socketbridge.BridgeError):
        bridge.status()


def test_no_token_in_what_the_package_shows(bridge, tmp_path):
    # The tokens of this bridge's tickets reach the processes and nothing
    # else: not the calls, their records, a handler's traceback, the status,
    # the events.
    events = []
    bridge.on_event(events.append)

    @bridge.fake("tool")
    def tool(call):
        if call.argv[1:] == ["boom"]:
            raise RuntimeError("env has %d entries" % len(call.env))
        call.stdout.write(repr(call.env).encode())

    r = bridge.run(["sh", "-c", 'tool; tool boom; printf %s "$SOCKETBRIDGE_TOKEN" >tok'],
                   cwd=str(tmp_path), capture_output=True, timeout=deadline(30))
    tokens = {bridge.env["SOCKETBRIDGE_TOKEN"], (tmp_path / "tok").read_text()}
    assert len(tokens) == 2 and all(len(t) >= 32 for t in tokens)  # bridge.env's, the run's
    shown = (repr(bridge.calls) + repr([vars_of(c) for c in bridge.calls])
             + repr(bridge.errors) + repr(bridge.status()) + repr(events)
             + r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
    for token in tokens:
        assert token not in shown
    assert all("SOCKETBRIDGE_TOKEN" not in c.env for c in bridge.calls)
    assert events, "no event came"
    bridge.errors.clear()


def vars_of(record):
    return {k: getattr(record, k) for k in record.__slots__}
