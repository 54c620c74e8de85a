# SPDX-License-Identifier: MIT
"""send(): a side-band message from a program in a supervised tree.

It runs ``socketbridge send JSON``: the C client speaks the wire protocol
(token, framing), so this package never does.
"""

import json
import os
import shutil
import subprocess

__all__ = ["SendError", "send", "find_executable"]


class SendError(Exception):
    """`socketbridge send` failed: no bridge in the environment, refused,
    an error reply. ``returncode`` and ``stderr`` say how."""

    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def find_executable(executable=None):
    """The ``socketbridge`` command: ``executable`` when given, else
    ``$SOCKETBRIDGE_CLI`` (set by a Bridge for its tree), else PATH."""
    path = executable or os.environ.get("SOCKETBRIDGE_CLI") or shutil.which("socketbridge")
    if not path:
        raise FileNotFoundError(
            "socketbridge: the socketbridge executable is neither given, nor in "
            "$SOCKETBRIDGE_CLI, nor on PATH")
    return os.path.abspath(path) if os.sep in path else path


def send(message, *, env=None, timeout=None, executable=None):
    """Send ``message`` (a dict with a ``"type"``) to the supervisor of this
    process tree and return its reply (a dict).

    ``env`` defaults to this process's environment, which must hold the
    bridge's variables (a program started by ``Bridge.run`` or with
    ``Bridge.env`` has them). Raises SendError when the message could not be
    delivered or the reply is an error; TypeError when ``message`` is not a
    dict.
    """
    if not isinstance(message, dict):
        raise TypeError("socketbridge.send: message must be a dict, not %s"
                        % type(message).__name__)
    cmd = [find_executable(executable), "send", json.dumps(message)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SendError("socketbridge send: no reply in %ss" % timeout) from e
    err = os.fsdecode(proc.stderr).strip()
    if proc.returncode != 0:
        raise SendError(err or "socketbridge send exited %d" % proc.returncode,
                        proc.returncode, err)
    try:
        return json.loads(proc.stdout)
    except ValueError as e:
        raise SendError("socketbridge send: the reply is not JSON: %r" % proc.stdout[:200]) from e
