# SPDX-License-Identifier: MIT
"""The package's own suite: every test that takes ``bridge`` runs on both
transports. The socketbridge executable comes from $SOCKETBRIDGE_CLI (the
test script points it at the gcc build) or PATH."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

try:
    from importlib.metadata import entry_points
    _eps = entry_points()
    _eps = _eps.select(group="pytest11") if hasattr(_eps, "select") else _eps.get("pytest11", [])
    _installed = any(ep.value == "socketbridge.pytest_plugin" for ep in _eps)
except Exception:
    _installed = False
if not _installed:
    pytest_plugins = ["socketbridge.pytest_plugin"]

# Waits in tests are bounded by deadlines scaled like the C suites'.
SCALE = float(os.environ.get("SB_TEST_TIMEOUT_SCALE", "1"))


def deadline(seconds):
    return seconds * SCALE


def pytest_generate_tests(metafunc):
    if "bridge" in metafunc.fixturenames and not any(
            m.name == "parametrize" and "bridge" in str(m.args[0])
            for m in metafunc.definition.iter_markers()):
        metafunc.parametrize("bridge", ["tcp", "unix"], indirect=True)


@pytest.fixture(params=["tcp", "unix"])
def transport(request):
    return request.param


@pytest.fixture
def tree(tmp_path):
    """A directory for the test's scripts and files."""
    return tmp_path
