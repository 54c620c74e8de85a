#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_lite (tests/fuzz/corpus/lite/): the
control payloads of corpus/msg (fuzz_lite holds what lib/'s reader
accepts to cJSON), payloads on the points where cJSON is laxer than the
protocol's grammar (docs/protocol.md section 2), and inputs shaped for the encode half (the first 8 bytes set a
hello's numbers, 0xff cuts the rest into its strings).

Run from anywhere after make_corpus.py; the files are small and committed.
"""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "lite")
TOKEN = "0123456789abcdef" * 4


def write(data):
    os.makedirs(OUT, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


msg_dir = os.path.join(HERE, "corpus", "msg")
for name in sorted(os.listdir(msg_dir)):
    with open(os.path.join(msg_dir, name), "rb") as f:
        write(f.read())

W = b'{"type":"welcome","version":%s}'
for num in [b"1", b"01", b"1.", b"1.0", b"1e0", b"10E-1", b"-.5", b"1.0000000000000001",
            b"0." + b"0" * 70 + b"1e71", b"+1", b".5", b"1e", b"-", b"1.2.3", b"0x1",
            b"1e400", b"-0", b"65535", b"65536"]:
    write(W % num)
for data in [
    b"\xef\xbb\xbf" + W % b"1",
    b"\xef\xbb\xbf{}",
    b"{\x01\"type\"\x0b:\x1f\"welcome\",\"version\":1}",
    W % b"1" + b"\x0b",
    W % b"1" + b" \r\n\t",
    b'{"type":"exit\\uzzzz","code":1}',
    b'{"type":"reject","reason":"busy","message":"\\u00e9\\ud83d\\ude00\\udbff\\udfff"}',
    b'{"type":"reject","reason":"busy","message":"\\ud800\\u0041"}',
    b'{"type":"reject","reason":"busy","message":"\\udc00"}',
    b'{"type":"reject","reason":"busy","message":"\\\\u0000"}',
    b'{"typ\\u0065":"exit","\\u0063ode":3}',
    b'{"type":"exec","argv":[{"x":1,"base64":"QQ==","base64":5}],"tee":1,"tee":2}',
    b'{"type":"exit","code":1e-400}',
    b'{"type":"exit","code":null,"signal":"TERM"}',
    b'{"type":"hello","version":1,"token":"%s","pid":2,"ppid":1,"argv":[],'
    b'"env":["A=1","SOCKETBRIDGE_TOKEN=x"],"cwd":null,"exe":{"base64":"L3j/"},'
    b'"tty":{"stdin":false,"stdout":true,"stderr":false,"stdin":true}}' % TOKEN.encode(),
    b'{"type":"run","argv":["a"],"env":[],"unset":["PAGER"],"path":"/bin/a","cwd":"/",'
    b'"tee":true}',
    b'{"type":"welcome","version":1,"x":' + b"[" * 999 + b"]" * 999 + b"}",
    b'{"type":"welcome","version":1,"x":' + b"[" * 1000 + b"]" * 1000 + b"}",
    # encode half: numbers, then argv/cwd/exe/env pieces cut at 0xff
    b"\x00\x01\x00\x02\x01\x02\x01\x47" + b"git\xffcommit\xff/tmp\xff/usr/bin/git\xffA=1\xffB=\xc3\xa9",
    b"\x80\x01\x03\x01\x01\x00\x00\x07" + b"\xfe\x80\xff/h\xc0me\xffSOCKETBRIDGE_TOKEN=x\xffNOEQ",
    b"\x00\x01\x00\x03\x05\x05\x05\x45" + b"a\x01\"\\/\x7f\xff\xffC=\tq\xff" + b"Z=" + b"y" * 5000 + b"\x7f",
]:
    write(data)
