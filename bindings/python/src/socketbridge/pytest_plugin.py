# SPDX-License-Identifier: MIT
"""pytest plugin (entry point ``pytest11``): the ``bridge`` fixture.

    def test_push_is_retried(bridge):
        @bridge.fake("git")
        def git(call):
            return 1 if len(bridge.calls) == 0 else 0

        assert bridge.run(["./deploy.sh"]).returncode == 0

Options: ``--socketbridge PATH`` (the executable; default $SOCKETBRIDGE_CLI,
then PATH) and ``--socketbridge-transport tcp|unix``. Parametrize a test
indirectly to run it on both transports:
``@pytest.mark.parametrize("bridge", ["tcp", "unix"], indirect=True)``.
"""

import pytest

from ._bridge import Bridge


def pytest_addoption(parser):
    group = parser.getgroup("socketbridge")
    group.addoption("--socketbridge", dest="socketbridge_executable", default=None,
                    metavar="PATH", help="the socketbridge executable for the bridge fixture")
    group.addoption("--socketbridge-transport", dest="socketbridge_transport",
                    default="tcp", choices=("tcp", "unix"),
                    help="the bridge fixture's transport (default tcp)")


@pytest.fixture
def bridge(request):
    """A started socketbridge.Bridge, closed after the test; a handler
    that raised fails the test."""
    transport = getattr(request, "param", None) or request.config.getoption(
        "socketbridge_transport")
    with Bridge(request.config.getoption("socketbridge_executable"), transport) as b:
        yield b
