#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzzers (tests/fuzz/corpus/{frame,msg,conn}/).

Run from anywhere; the files are small and committed, so this only needs to
run again when the seeds change. Frame seeds start with the 3 bytes
fuzz_frame reads first: a max_bytes selector and a seed for the cut points.
Conn seeds start with the 5 header bytes of fuzz_conn.c (cfg, on_connect,
callbacks, cut seed) and hold "T" * 64 where the ticket's token goes.
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
    "hello_winsize": HELLO[:-1] + b',"winsize":{"rows":24,"cols":80}}',
    "winsize": b'{"type":"winsize","rows":50,"cols":132}',
    "pty": b'{"type":"pty"}',
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

# fuzz_conn: [cfg][dispo][behave][seed hi][seed lo] then what the stub sends.
CFG_T1MS, CFG_SMALL, CFG_EOF, CFG_NO_DRAIN = 1, 4, 8, 16
CFG_WAITS, CFG_FINAL_WAIT, CFG_RESET = 32, 64, 128
BH_ON_SIGNAL, BH_ECHO, BH_PAUSE, BH_EXIT_AT_EOF = 1, 2, 4, 8
BH_OVERRIDE, BH_OUT_PAUSE, BH_CLOSE_ERR, BH_SERVER_CLOSE = 16, 32, 64, 128
D_NONE, D_EXIT, D_KILL, D_RESPOND, D_RESPOND_LATER, D_EXEC, D_RUN = 0, 1, 2, 3, 4, 5, 6
D_DELEGATE, D_PAUSE, D_CLOSE, D_WRITE, D_SERVER_CLOSE, D_REVOKE = 7, 8, 9, 10, 11, 12
D_DELEGATE_MISSING, D_RUN_PAUSE, D_EXEC_WRITE = 13, 14, 15

T = "T" * 64


def hello(token=T, version=1, min_version=1, extra=""):
    return frame(1, (
        '{"type":"hello","version":%d,"min_version":%d,"token":"%s","pid":4242,'
        '"ppid":1,"argv":["git","commit","-m",{"base64":"/w=="}],'
        '"env":["PATH=/usr/bin:/bin","HOME=/root","SOCKETBRIDGE_TOKEN=%s"],'
        '"cwd":"/tmp","exe":"/usr/bin/git","tty":{"stdin":false,"stdout":true,'
        '"stderr":true}%s}' % (version, min_version, token, token, extra)
    ).encode())


def ctl(s):
    return frame(1, s.encode())


def conn(name, cfg, dispo, behave, stream, seed=0x1234):
    write("conn", name, bytes([cfg, dispo, behave, seed >> 8, seed & 255]) + stream)


H = hello()
STDIN = frame(2, b"some input\n") + frame(2, b"\x00\xff more") + frame(2, b"")
EXITED0 = ctl('{"type":"exited","code":0}')
RUN_OUT = (frame(3, b"out 1\n") + frame(4, b"err 1\n") + frame(3, b"out 2\n")
           + frame(3, b"") + frame(4, b""))

conn("hello", 0, D_NONE, 0, H)
conn("hello_one_piece", CFG_EOF, D_EXIT | 0x30, 0, H, seed=0)
conn("stdin_echo", CFG_EOF, D_NONE, BH_ECHO | BH_EXIT_AT_EOF, H + STDIN)
conn("stdin_pause", CFG_EOF, D_NONE, BH_PAUSE | BH_ECHO, H + STDIN * 1)
conn("signal_default", CFG_EOF, D_NONE, 0, H + ctl('{"type":"signal","signal":"INT"}'))
conn("signal_cb", CFG_EOF, D_NONE, BH_ON_SIGNAL,
     H + frame(2, b"x") + ctl('{"type":"signal","signal":"TERM"}'))
conn("stream_error", CFG_EOF, D_WRITE | 0x10, BH_CLOSE_ERR, H + ctl(
    '{"type":"stream_error","stream":"stdout","errno":32,"message":"Broken pipe"}'))
conn("run", CFG_EOF, D_RUN, 0, H + RUN_OUT + EXITED0)
conn("run_tee_signal", CFG_EOF, D_RUN | 0xf0, BH_OVERRIDE | BH_OUT_PAUSE,
     H + RUN_OUT + ctl('{"type":"exited","signal":"TERM"}'))
conn("run_killed", CFG_EOF, D_RUN, 0, H + RUN_OUT + ctl('{"type":"exited","signal":"KILL"}'))
conn("write_big_small_max", CFG_SMALL | CFG_EOF, D_WRITE | 0x30, 0, H)
conn("run_pause", CFG_EOF, D_RUN_PAUSE, BH_OUT_PAUSE, H + RUN_OUT + EXITED0)
conn("run_exited_twice", CFG_EOF, D_RUN, 0, H + EXITED0 + EXITED0)
conn("run_data_after_end", CFG_EOF, D_RUN, 0, H + frame(3, b"") + frame(3, b"late"))
conn("exec", CFG_EOF, D_EXEC | 0x70, 0, H)
conn("exec_failed", CFG_EOF, D_EXEC_WRITE, 0, H + ctl('{"type":"exited","code":127}'))
conn("exited_unasked", CFG_EOF, D_NONE, 0, H + EXITED0)
conn("second_hello", CFG_EOF, D_NONE, 0, H + H)
conn("bad_kind", CFG_EOF, D_NONE, 0, H + frame(9, b"??"))
conn("zero_length", CFG_EOF, D_NONE, 0, H + b"\x00\x00\x00\x00")
conn("stdin_after_end", CFG_EOF, D_NONE, 0, H + frame(2, b"") + frame(2, b"x"))
conn("oversize_hello", CFG_SMALL, D_NONE, 0, struct.pack(">IB", 0x7FFFFFFF, 1) + b"{")
conn("oversize_after", CFG_SMALL | CFG_EOF, D_NONE, BH_ECHO,
     H + struct.pack(">IB", 5000, 2) + b"x" * 100)
conn("truncated", CFG_EOF, D_NONE, 0, H[:37])
conn("truncated_reset", CFG_EOF | CFG_RESET, D_NONE, 0, H[:3])
conn("data_before_hello", 0, D_NONE, 0, frame(2, b"early") + H)
conn("not_hello", 0, D_NONE, 0, ctl('{"type":"signal","signal":"INT"}'))
conn("bad_json", 0, D_NONE, 0, ctl('{"type":"hello",'))
conn("bad_token", CFG_EOF, D_NONE, 0, hello(token="0" * 64))
conn("version", CFG_EOF, D_NONE, 0, hello(version=7, min_version=5))
conn("timeout", CFG_T1MS | CFG_FINAL_WAIT, D_NONE, 0, H[:20])
conn("respond_now", CFG_EOF, D_RESPOND | 0x30, 0, H + STDIN)
conn("respond_later", CFG_WAITS | CFG_FINAL_WAIT | CFG_EOF, D_RESPOND_LATER | 0x50, 0,
     H + STDIN)
conn("kill", CFG_EOF, D_KILL | 0x10, 0, H)
conn("delegate", CFG_WAITS | CFG_FINAL_WAIT | CFG_EOF, D_DELEGATE, BH_OVERRIDE, H + STDIN)
conn("delegate_lookup", CFG_FINAL_WAIT | CFG_EOF, D_DELEGATE | 0x60, BH_OVERRIDE, H + STDIN)
conn("delegate_call_cwd", CFG_FINAL_WAIT | CFG_EOF, D_DELEGATE | 0x10, 0, H + STDIN)
conn("delegate_cat", CFG_FINAL_WAIT | CFG_EOF, D_DELEGATE | 0x20, BH_ECHO, H + STDIN)
conn("delegate_cat_signal", CFG_WAITS | CFG_FINAL_WAIT | CFG_EOF, D_DELEGATE | 0x20, 0,
     H + frame(2, b"x") + ctl('{"type":"signal","signal":"TERM"}'))
conn("delegate_missing", CFG_EOF, D_DELEGATE_MISSING, 0, H)
conn("pause", CFG_EOF, D_PAUSE, BH_ECHO, H + STDIN)
conn("close", 0, D_CLOSE, 0, H + STDIN)
conn("server_close", 0, D_SERVER_CLOSE, 0, H + STDIN)
conn("server_close_in_stdin", CFG_EOF, D_NONE, BH_SERVER_CLOSE, H + STDIN)
conn("revoke", CFG_EOF, D_REVOKE, BH_EXIT_AT_EOF, H + STDIN)
conn("slow_reader", CFG_NO_DRAIN | CFG_EOF, D_NONE, BH_ECHO | BH_EXIT_AT_EOF,
     H + frame(2, bytes(range(256)) * 200) + frame(2, b""))
