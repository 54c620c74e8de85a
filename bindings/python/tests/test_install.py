# SPDX-License-Identifier: MIT
"""`pip install ./bindings/python` offline, into a fresh virtual environment
that sees Debian's setuptools, wheel and pytest; then pytest finds the plugin
by its entry point and the fixture works there."""

import os
import shutil
import subprocess
import sys
import textwrap

from conftest import deadline

PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIXTURE_TEST = """
def test_the_fixture_from_the_entry_point(bridge):
    bridge.fake("hello", lambda call: call.stdout.write(b"hi from the fake\\n") and 0)
    r = bridge.run(["hello"], capture_output=True)
    assert r.stdout == b"hi from the fake\\n"
"""


def test_pip_installs_offline_and_registers_the_plugin(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=deadline(120))
    py = str(venv / "bin" / "python")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    # A copy of the package: pip builds in place (build/, *.egg-info), and
    # the tree the other tests import from stays as it is.
    pkg = tmp_path / "python"
    shutil.copytree(PKG, str(pkg), ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    r = subprocess.run([py, "-m", "pip", "install", "--no-index", str(pkg)], env=env,
                       capture_output=True, cwd=str(tmp_path), timeout=deadline(300))
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()

    (tmp_path / "t" / "test_fixture.py").parent.mkdir()
    (tmp_path / "t" / "test_fixture.py").write_text(textwrap.dedent(FIXTURE_TEST))
    r = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "t"],
                       env=env, cwd=str(tmp_path), capture_output=True, timeout=deadline(120))
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert "1 passed" in out
    r = subprocess.run([py, "-c", "import socketbridge, sys; print(socketbridge.__file__)"],
                       env=env, cwd=str(tmp_path), capture_output=True, timeout=deadline(60))
    assert r.stdout.decode().startswith(str(venv)), r.stdout
