# SPDX-License-Identifier: MIT
"""The README's pytest example, verbatim, run by pytest as a user's test
file next to a deploy.sh that retries its push once."""

import os
import re
import stat
import subprocess
import sys

import conftest
from conftest import SRC, deadline

README = os.path.join(os.path.dirname(os.path.dirname(SRC)), "..", "README.md")

DEPLOY = """#!/bin/sh
git --version >/dev/null || exit 3
git push origin main || git push origin main
"""


def readme_block(lang, marker):
    with open(README) as f:
        text = f.read()
    blocks = re.findall(r"```%s\n(.*?)```" % lang, text, re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, "README: no single %s block holding %r" % (lang, marker)
    return found[0]


def test_the_readme_pytest_example_passes(tmp_path, transport):
    (tmp_path / "test_deploy.py").write_text(readme_block("python", "# test_deploy.py"))
    deploy = tmp_path / "deploy.sh"
    deploy.write_text(DEPLOY)
    deploy.chmod(deploy.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PYTHONPATH=SRC)
    plugin = [] if conftest._installed else ["-p", "socketbridge.pytest_plugin"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + plugin
                       + ["--socketbridge-transport", transport, "test_deploy.py"],
                       cwd=str(tmp_path), env=env, capture_output=True, timeout=deadline(120))
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert "1 passed" in out
