# SPDX-License-Identifier: MIT
"""What the code's structure promises, checked on its source.

- One owner of a connection's state: the fields in sb_conn's state section
  (supervisor/sb_internal.h) are assigned in supervisor/conn.c only; the
  other files call its verbs.
- Calls go one way: the layers below conn.c (conn_read.c, wire.c,
  conn_hello.c) call none of its functions; they report back only through
  the callbacks conn.c gives them (conn->ev).
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUP = ROOT / "supervisor"
BELOW_CONN = ["conn_read.c", "wire.c", "conn_hello.c"]


def state_fields():
    header = (SUP / "sb_internal.h").read_text()
    section = re.search(r"/\* The state machine:.*?\*/(.*?)/\* Reading \(conn_read\.c\)",
                        header, re.S)
    assert section, "sb_conn's state section not found in sb_internal.h"
    body = re.sub(r"/\*.*?\*/", "", section.group(1), flags=re.S)
    names = re.findall(r"(\w+)(?:\[\w*\])?\s*(?:,|;)", body)
    assert len(names) > 15, names
    return names


def assignments(text, fields):
    """(line, field) of every `conn->FIELD = ...` (or ++, --, op=) in text."""
    pat = re.compile(r"\bconn->(%s)\b(?:\[[^\]]*\])?\s*(?:=(?!=)|\+\+|--|[-+|&]=)"
                     % "|".join(fields))
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in pat.finditer(text)]


def test_only_conn_c_assigns_a_connections_state():
    fields = state_fields()
    found = {}
    for path in sorted(SUP.glob("*.c")):
        hits = assignments(path.read_text(), fields)
        if hits:
            found[path.name] = hits
    assert "conn.c" in found, "the pattern finds nothing: is it still right?"
    del found["conn.c"]
    assert found == {}, f"connection state assigned outside conn.c: {found}"


def test_the_layers_below_conn_c_do_not_call_it():
    conn_c = (SUP / "conn.c").read_text()
    defined = set(re.findall(r"^(?!static)[a-z][\w \*]*?\b(sb_\w+)\(", conn_c, re.M))
    assert "sb__conn_close" in defined and "sb_conn_exit" in defined, defined
    calls = {}
    for name in BELOW_CONN:
        text = (SUP / name).read_text()
        used = sorted(f for f in defined if re.search(r"\b%s\(" % f, text))
        if used:
            calls[name] = used
    assert calls == {}, f"calls up into conn.c: {calls}"
