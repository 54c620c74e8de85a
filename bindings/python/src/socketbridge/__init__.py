# SPDX-License-Identifier: MIT
"""socketbridge: fake, watch and answer any process in a tree, live, from Python.

A thin client of the control channel of the ``socketbridge`` executable
(``socketbridge serve``, docs/control.md): the C supervisor keeps every
security decision (tokens, framing, hostile peers); this package turns its
calls into Python objects and your answers into its messages.

    import socketbridge

    with socketbridge.Bridge() as bridge:
        pushes = []

        @bridge.fake("git")
        def git(call):
            if call.argv[1:2] == ["push"]:
                pushes.append(call.argv)
                if len(pushes) == 1:
                    call.stderr.write(b"fatal: the remote hung up\\n")
                    return 128
            return call.exec(["git"] + call.argv[1:])

        result = bridge.run(["./deploy.sh"], capture_output=True)

The pytest plugin (``pytest11`` entry point) gives the same object as the
fixture ``bridge``.
"""

from ._bridge import Bridge, BridgeError, Call, CallRecord, HandlerError
from ._send import SendError, send

__version__ = "0.1.0"

__all__ = [
    "Bridge",
    "BridgeError",
    "Call",
    "CallRecord",
    "HandlerError",
    "SendError",
    "send",
    "__version__",
]
