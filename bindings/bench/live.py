# SPDX-License-Identifier: MIT
"""Bench (scripts/bench.sh): a call decided live in Python against the same
call answered by a rules file. Prints one JSON object per figure:
{"figure", "unit", "reps": [...]} (us per call: a shell loop of N calls of a
shimmed `tool`, timed inside the shell, so the supervisor's start is out).

    python3 live.py SOCKETBRIDGE TRANSPORT CALLS REPS
"""

import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "src"))
import socketbridge  # noqa: E402

LOOP = ('i=0; t0=$(date +%%s%%N); while [ $i -lt %d ]; do tool >/dev/null || exit 1; '
        'i=$((i+1)); done; t1=$(date +%%s%%N); echo $(( (t1 - t0) / %d ))')


def rules_file(exe, transport, calls, tmp):
    rules = os.path.join(tmp, "rules.json")
    with open(rules, "w") as f:
        json.dump({"rules": [{"match": {"argv0": "tool"},
                              "respond": {"stdout": "ok\n", "exit": 0}}]}, f)
    out = subprocess.run([exe, "run", "--transport", transport, "--shim", "tool", "--rules", rules,
                          "--", "sh", "-c", LOOP % (calls, calls)],
                         check=True, capture_output=True).stdout
    return int(out) / 1000.0


def python_live(exe, transport, calls):
    with socketbridge.Bridge(exe, transport) as bridge:
        @bridge.fake("tool")
        def tool(call):
            call.stdout.write(b"ok\n")
            return 0

        r = bridge.run(["sh", "-c", LOOP % (calls, calls)], capture_output=True, check=True)
        return int(r.stdout) / 1000.0


def main():
    exe, transport, calls, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    figures = {"rules file": [], "python live": []}
    # SB_BENCH_ONLY (a regular expression): only if it matches a figure.
    if not re.search(os.environ.get("SB_BENCH_ONLY", ""), "python live rules file"):
        return
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):  # alternated, so drift hits both alike
            figures["rules file"].append(rules_file(exe, transport, calls, tmp))
            figures["python live"].append(python_live(exe, transport, calls))
    for name, reps_ in figures.items():
        print(json.dumps({"figure": "%s %s" % (name, transport), "unit": "us/call",
                          "reps": reps_}))


if __name__ == "__main__":
    main()
