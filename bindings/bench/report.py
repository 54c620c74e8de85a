# SPDX-License-Identifier: MIT
"""Bench (scripts/bench.sh): the language packages' table from the JSON
lines live.py and node.mjs print (stdin); writes them all to argv[1]."""

import json
import statistics
import sys

rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
by = {r["figure"]: r for r in rows}
for r in rows:
    r["median"] = statistics.median(r["reps"])


def cell(r):
    return "%.1f [%.1f..%.1f]" % (r["median"], min(r["reps"]), max(r["reps"]))


# (figure, floor, goal: (op, bound) on figure/floor)
pairs = []
for t in ("tcp", "unix"):
    pairs += [("python live %s" % t, "rules file %s" % t, ("<=", 2.0)),
              ("node live %s" % t, "rules file %s" % t, ("<=", 2.0))]
for t in ("tcp", "unix"):
    pairs += [("300-call loop socketbridge %s" % t, "300-call loop process-proxy tcp", ("<=", 0.5)),
              ("256 MiB stdout socketbridge %s" % t, "256 MiB stdout process-proxy tcp", (">=", 1.0))]

print("%-34s %-8s %-24s %-24s %-7s %s" % ("figure", "unit", "figure median [min..max]",
                                          "floor median [min..max]", "ratio", "goal"))
out = []
for fig, floor, (op, bound) in pairs:
    if fig not in by or floor not in by:
        continue
    f, fl = by[fig], by[floor]
    ratio = f["median"] / fl["median"]
    met = ratio <= bound if op == "<=" else ratio >= bound
    print("%-34s %-8s %-24s %-24s %5.2fx  %s %.2fx %s" % (
        fig, f["unit"], cell(f), cell(fl), ratio, op, bound, "met" if met else "MISSED"))
    out.append({"figure": fig, "floor": floor, "ratio": ratio, "goal": [op, bound], "met": met})
with open(sys.argv[1], "w") as fh:
    json.dump({"figures": rows, "ratios": out}, fh, indent=1)
