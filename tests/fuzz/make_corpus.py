#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers (tests/fuzz/corpus/{frame,msg}/).

Run from anywhere; the files are small and committed, so this only needs to
run again when the seeds change. Frame seeds start with the 3 bytes
fuzz_frame reads first: a max_bytes selector and a seed for the cut points.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "0123456789abcdef" * 4


def frame(kind, payload):
    return struct.pack(">IB", len(payload) + 1, kind) + payload


def write(sub, name, data):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


HELLO = (
    '{"type":"hello","version":1,"min_version":1,"token":"%s","pid":42,"ppid":1,'
    '"argv":["git","commit",{"base64":"/w=="}],"env":["A=1","SOCKETBRIDGE_TOKEN=x"],'
    '"cwd":"/tmp","exe":null,"tty":{"stdin":true,"stdout":false,"stderr":true}}' % TOKEN
).encode()

MSGS = {
    "hello": HELLO,
    "welcome": b'{"type":"welcome","version":1}',
    "reject": b'{"type":"reject","reason":"bad_token","message":"no such token"}',
    "exit_code": b'{"type":"exit","code":3}',
    "exit_signal": b'{"type":"exit","signal":"TERM"}',
    "exited": b'{"type":"exited","code":0}',
    "signal": b'{"type":"signal","signal":"INT"}',
    "stream_error": b'{"type":"stream_error","stream":"stdout","errno":32,"message":"Broken pipe"}',
    "exec": b'{"type":"exec","argv":["ls","-l"],"path":"/bin/ls","cwd":"/","env":["X=\\u00e9"]}',
    "run": b'{"type":"run","argv":[{"base64":"Y2Fm6Q=="}],"tee":true,"env":[]}',
    "bad_utf8": b'{"type":"exit","code":0,"x":"\xc0\xaf"}',
    "bad_nul_escape": b'{"type":"reject","reason":"busy","message":"a\\u0000b"}',
    "bad_base64": b'{"type":"run","argv":[{"base64":"Zh=="}]}',
    "bad_both": b'{"type":"exit","code":0,"signal":"KILL"}',
    "bad_nesting": b'{"type":"welcome","version":1,"x":' + b"[" * 40 + b"]" * 40 + b"}",
    "bad_trailing": b'{"type":"welcome","version":1}{}',
}

for name, data in MSGS.items():
    write("msg", name, data)

# fuzz_frame: [max selector][seed hi][seed lo] then the stream.
mixed = (
    frame(1, MSGS["welcome"])
    + frame(3, b"hello, world\n")
    + frame(4, b"e")
    + frame(3, b"")
    + frame(2, b"\x00\x01\xff")
    + frame(1, b"")
    + frame(2, b"")
)
write("frame", "mixed", b"\x00\x12\x34" + mixed)
write("frame", "mixed_small_max", b"\x01\x00\x07" + mixed)
write("frame", "truncated", b"\x00\x00\x01" + mixed[:-3] + frame(3, b"abcdef")[:8])
write("frame", "oversize", b"\x01\x00\x02" + frame(3, b"x" * 20))
write("frame", "zero_length", b"\x00\x00\x03" + frame(3, b"ok") + b"\x00\x00\x00\x00\x03")
write("frame", "unknown_kind", b"\x00\x00\x04" + frame(9, b"??"))
write("frame", "big_control", b"\x00\x05\x00" + frame(1, HELLO) + frame(4, b"tail"))
