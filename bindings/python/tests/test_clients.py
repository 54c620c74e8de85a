# SPDX-License-Identifier: MIT
"""Real clients of the fakes: shell scripts, a Python program, socketbridge
send. Every test runs on both transports (conftest.py)."""

import json
import os
import stat
import sys
import textwrap

import socketbridge
from conftest import deadline


def script(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def deploy_tree(root):
    """deploy.sh -> lib/release.sh -> lib/vcs/push.sh, which pushes with one
    retry: the fake git is three levels deep."""
    script(root / "lib" / "vcs" / "push.sh", """
        #!/bin/sh
        # Pushes, retrying once: what real deploy scripts do on a flaky remote.
        cd "$(dirname "$0")/../.." || exit 2
        for attempt in 1 2; do
          if git push origin main; then echo "pushed on attempt $attempt"; exit 0; fi
          echo "push failed (attempt $attempt)" >&2
        done
        exit 1
        """)
    script(root / "lib" / "release.sh", """
        #!/bin/sh
        git --version >/dev/null || exit 3
        exec "$(dirname "$0")/vcs/push.sh"
        """)
    return script(root / "deploy.sh", """
        #!/bin/sh
        set -e
        echo "deploying $DEPLOY_TARGET"
        sh "$(dirname "$0")/lib/release.sh"
        echo done
        """)


def test_fake_git_fails_the_first_push_and_passes_the_second(bridge, tree):
    deploy = deploy_tree(tree)
    pushes = []

    @bridge.fake("git")
    def git(call):
        if call.argv[1:2] != ["push"]:
            return call.exec(["git"] + call.argv[1:])  # the real git
        pushes.append(call)
        if len(pushes) == 1:
            call.stderr.write(b"fatal: the remote end hung up unexpectedly\n")
            return 128
        call.stdout.write(b"To origin\n   abc..def  main -> main\n")
        return 0

    env = dict(os.environ, DEPLOY_TARGET="prod")
    result = bridge.run([deploy], capture_output=True, env=env, timeout=deadline(60))

    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "deploying prod", "To origin", "   abc..def  main -> main", "pushed on attempt 2", "done"]
    assert b"push failed (attempt 1)" in result.stderr
    assert b"fatal: the remote end hung up" in result.stderr
    calls = [c for c in bridge.calls if c.argv[1:2] == ["push"]]
    assert [c.argv for c in calls] == [["git", "push", "origin", "main"]] * 2
    assert [c.exit for c in calls] == [128, 0]
    assert all(c.cwd == str(tree) for c in calls)
    assert all(c.env["DEPLOY_TARGET"] == "prod" for c in calls)
    assert "SOCKETBRIDGE_TOKEN" not in calls[0].env
    version = [c for c in bridge.calls if c.argv[1:] == ["--version"]]
    assert len(version) == 1 and version[0].action == "exec"


CURL_CLIENT = """
import json, subprocess, sys

def fetch(url):
    out = subprocess.run(["curl", "-sf", url], capture_output=True, check=True).stdout
    return json.loads(out)

users = fetch("https://api.example.com/users")
try:
    fetch("https://api.example.com/missing")
except subprocess.CalledProcessError as e:
    print("missing:", e.returncode, e.stderr.decode().strip())
print(",".join(u["name"] for u in users))
"""


def test_a_python_program_runs_a_faked_curl(bridge, tree):
    (tree / "client.py").write_text(CURL_CLIENT)
    fixtures = {"https://api.example.com/users": [{"name": "ada"}, {"name": "alan"}]}

    @bridge.fake("curl")
    def curl(call):
        url = call.argv[-1]
        if url not in fixtures:
            call.stderr.write("curl: (22) The requested URL returned error: 404\n")
            return 22
        call.stdout.write(json.dumps(fixtures[url]).encode())
        return 0

    result = bridge.run([sys.executable, "client.py"], cwd=str(tree), capture_output=True,
                        timeout=deadline(60))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        "missing: 22 curl: (22) The requested URL returned error: 404", "ada,alan"]
    assert [c.argv[1:] for c in bridge.calls] == [
        ["-sf", "https://api.example.com/users"], ["-sf", "https://api.example.com/missing"]]
    assert bridge.calls[0].stdout == json.dumps(fixtures["https://api.example.com/users"]).encode()


def test_socketbridge_send_from_a_shell_in_the_tree(bridge, tree):
    seen = []

    @bridge.on_message
    def answer(message):
        seen.append(message)
        return {"type": "ack", "n": message["n"] + 1}

    sh = script(tree / "notify.sh", """
        #!/bin/sh
        socketbridge send '{"type":"progress","n":41}' || exit 9
        socketbridge send '{"type":"ping"}' || exit 9
        socketbridge send '{"type":"status"}' > status.json || exit 9
        """)
    env = dict(os.environ, PATH=os.path.dirname(bridge.executable) + os.pathsep
               + os.environ["PATH"])
    result = bridge.run([sh], cwd=str(tree), env=env, capture_output=True, timeout=deadline(60))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert json.loads(lines[0]) == {"type": "ack", "n": 42}
    assert json.loads(lines[1]) == {"type": "pong"}
    status = json.loads((tree / "status.json").read_text())
    assert status["type"] == "status" and status["pid"] == bridge._channel.pid
    assert seen == [{"type": "progress", "n": 41}]


def test_send_from_python_in_the_tree_and_errors(bridge, tree):
    (tree / "sender.py").write_text(textwrap.dedent("""
        import socketbridge, sys
        print(socketbridge.send({"type": "hello", "who": "py"})["greeting"])
        try:
            socketbridge.send({"type": "boom"})
        except socketbridge.SendError as e:
            print("error:", e.returncode, "handler_failed" in str(e))
        """))

    @bridge.on_message
    def answer(message):
        if message["type"] == "boom":
            raise RuntimeError("no boom today")
        return {"type": "hi", "greeting": "hello " + message["who"]}

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = bridge.run([sys.executable, "sender.py"], cwd=str(tree), env=env,
                        capture_output=True, timeout=deadline(60))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ["hello py", "error: 1 True"]
    assert [type(e) for e in bridge.errors] == [RuntimeError]
    bridge.errors.clear()


def test_send_without_a_handler_is_an_error(bridge):
    result = bridge.run([bridge.executable, "send", '{"type":"nobody"}'], capture_output=True,
                        timeout=deadline(60))
    assert result.returncode != 0
    assert b"no_handler" in result.stdout + result.stderr


def test_send_outside_a_bridge_says_why(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKETBRIDGE_")}
    env["SOCKETBRIDGE_CLI"] = socketbridge._send.find_executable()
    try:
        socketbridge.send({"type": "ping"}, env=env)
    except socketbridge.SendError as e:
        assert e.returncode != 0 and str(e).startswith("socketbridge")
    else:
        raise AssertionError("send outside any bridge succeeded")
