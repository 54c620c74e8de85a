#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""help2man.py NAME SECTION VERSION < HELP > NAME.SECTION

Turns `socketbridge --help` into its man page, so that the two never say
different things: the usage lines become SYNOPSIS, the first paragraph
DESCRIPTION, the "Options of run" list OPTIONS (each option a tagged
paragraph), and every other paragraph that starts with "Label:" a
subsection; indented blocks that are not options stay as they are
(examples, tables). A man page written by hand (socketbridge-stub.1) says
what no --help says.
"""
import re
import sys

name, section, version = sys.argv[1:4]
text = sys.stdin.read()
paras = [p for p in re.split(r"\n\s*\n", text.strip("\n"))]


def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", s, flags=re.M)


out = [f".TH {name.upper()} {section} \"\" \"{name} {version}\" \"User Commands\"",
       ".SH NAME", f"{name} \\- launch, watch and stand in for processes",
       ".SH SYNOPSIS", ".nf"]
usage = paras.pop(0).splitlines()
for line in usage:
    out.append(esc(re.sub(r"^(Usage:)?\s*", "", line)))
out.append(".fi")
out += [".SH DESCRIPTION", esc(" ".join(paras.pop(0).split()))]

OPT = re.compile(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$")


def options(lines):
    """Tagged paragraphs from '  --opt ARG   text' lines and their
    continuation lines (indented deeper)."""
    items = []
    for line in lines:
        m = OPT.match(line)
        if m:
            items.append([m.group(1).strip(), m.group(2) or ""])
        elif items:
            items[-1][1] += " " + line.strip()
    for tag, body in items:
        out.extend([".TP", f"\\fB{esc(tag)}\\fR", esc(" ".join(body.split()))])


for p in paras:
    lines = p.splitlines()
    head = lines[0]
    label = re.match(r"^([A-Za-z][\w -]*(?:\([^)]*\))?):(?:\s+(.*))?$", head)
    if head.startswith("Options of"):
        out += [".SH OPTIONS", esc(" ".join(" ".join(
            l for l in lines if not l.startswith("  ")).split()))]
        options([l for l in lines if l.startswith("  ")])
        continue
    if label:
        out.append(f".SS {esc(label.group(1))}")
        lines = ([label.group(2)] if label.group(2) else []) + lines[1:]
    # Prose lines, then indented blocks kept as they are.
    block = []
    for line in lines + [None]:
        indented = line is not None and line.startswith("  ")
        if block and (line is None or indented != block[0].startswith("  ")):
            if block[0].startswith("  "):
                out += [".PP", ".nf", ".RS 2", *map(esc, block), ".RE", ".fi"]
            else:
                out += [".PP", esc(" ".join(" ".join(block).split()))]
            block = []
        if line is not None:
            block.append(line)
out += [".SH SEE ALSO", "socketbridge\\-stub(1), timeout(1), env(1)"]
print("\n".join(out))
