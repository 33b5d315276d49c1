#!/usr/bin/env python3
"""Seeds the fuzz_rtmp_chunk corpus (tests/fuzz/corpus/rtmp_chunk): what an RTMP server sends a
publisher (nginx-rtmp's answers: Window Acknowledgement Size, Set Peer Bandwidth, Set Chunk Size,
_result, onBWDone, onFCPublish, onStatus; then Acknowledgements, pings, refusals), chunked with
every header type (0-3), 1-3 byte basic headers and extended timestamps, for each Publisher
state the target reaches first. Input format: fuzz_rtmp_chunk.cpp's header comment. Run once;
tests/fuzz/run_all.py --grow grows the corpus."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "rtmp_chunk")


def num(v):
    return b"\x00" + struct.pack(">d", v)


def s(v):
    b = v.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def obj(**kv):
    out = b"\x03"
    for k, v in kv.items():
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + v
    return out + b"\x00\x00\x09"


NULL = b"\x05"


def chunks(csid, typ, sid, ts, payload, size=128, fmt=0):
    """A message in chunks: header type fmt (0-2) for the first, type 3 for the rest."""
    def basic(f):
        if csid < 64:
            return bytes([f << 6 | csid])
        if csid < 320:
            return bytes([f << 6, csid - 64])
        return bytes([f << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])
    ext = ts >= 0xFFFFFF
    t = struct.pack(">I", 0xFFFFFF if ext else ts)[1:]
    if fmt == 0:
        head = basic(0) + t + struct.pack(">I", len(payload))[1:] + bytes([typ]) + struct.pack("<I", sid)
    elif fmt == 1:
        head = basic(1) + t + struct.pack(">I", len(payload))[1:] + bytes([typ])
    else:
        head = basic(2) + t
    if ext:
        head += struct.pack(">I", ts)
    out = head + payload[:size]
    for i in range(size, len(payload), size):
        out += basic(3) + (struct.pack(">I", ts) if ext else b"") + payload[i:i + size]
    return out


def ctl(typ, body):
    return chunks(2, typ, 0, 0, body)


HANDSHAKE = b"\x03" + bytes(1536) + bytes(range(256)) * 6
CONNECT_OK = chunks(3, 20, 0, 0, s("_result") + num(1) + obj(fmsVer=s("FMS/3,0,1,123"), capabilities=num(31)) +
                    obj(level=s("status"), code=s("NetConnection.Connect.Success"), description=s("Connection succeeded."),
                        objectEncoding=num(0)))
NGINX_HELLO = ctl(5, struct.pack(">I", 5000000)) + ctl(6, struct.pack(">IB", 5000000, 2)) + ctl(1, struct.pack(">I", 4096))
BW_DONE = chunks(3, 20, 0, 0, s("onBWDone") + num(0) + NULL)
FC = chunks(3, 20, 0, 0, s("onFCPublish") + num(0) + NULL + obj(code=s("NetStream.Publish.Start"), description=s("x")))
CREATE_OK = chunks(3, 20, 0, 0, s("_result") + num(4) + NULL + num(1))
PUBLISH_START = chunks(5, 20, 1, 0, s("onStatus") + num(0) + NULL +
                       obj(level=s("status"), code=s("NetStream.Publish.Start"), description=s("Start publishing")))
BAD_NAME = chunks(5, 20, 1, 0, s("onStatus") + num(0) + NULL +
                  obj(level=s("error"), code=s("NetStream.Publish.BadName"), description=s("Already publishing")))
CONNECT_ERR = chunks(3, 20, 0, 0, s("_error") + num(1) + NULL +
                     obj(level=s("error"), code=s("NetConnection.Connect.Rejected"), description=s("no app")))
ACKS = b"".join(ctl(3, struct.pack(">I", v)) for v in (0, 100, 5000, 0xFFFFFFF0, 10))
PING = ctl(4, struct.pack(">HI", 6, 123456)) + ctl(4, struct.pack(">HI", 0, 1))
SMALL_WINDOW = ctl(5, struct.pack(">I", 16))
# Header types 1-3, 2- and 3-byte basic headers, extended timestamps, an aborted message.
MIXED = (chunks(64, 18, 1, 0xFFFFFF, s("onMetaData") + b"\x08\x00\x00\x00\x01" + b"\x00\x01a" + num(1) + b"\x00\x00\x09") +
         chunks(400, 8, 1, 0x12345678, bytes(300)) + chunks(400, 8, 1, 20, bytes(10), fmt=1) +
         chunks(400, 8, 1, 20, bytes(10), fmt=2) + b"\xc0\x50" + chunks(3, 20, 0, 0, bytes(200))[:140] +
         ctl(2, struct.pack(">I", 3)) + BW_DONE)

SEEDS = {
    "nginx_full": (0, 3, HANDSHAKE + NGINX_HELLO + CONNECT_OK + BW_DONE + FC + CREATE_OK + PUBLISH_START),
    "nginx_full_bytewise": (0, 0, HANDSHAKE + NGINX_HELLO + CONNECT_OK + CREATE_OK + PUBLISH_START + ACKS),
    "bad_version": (0, 9, b"\x06" + HANDSHAKE[1:]),
    "after_handshake": (1, 5, NGINX_HELLO + CONNECT_OK + BW_DONE + CREATE_OK + PUBLISH_START),
    "connect_refused": (1, 2, NGINX_HELLO + CONNECT_ERR),
    "create_stream": (2, 4, FC + CREATE_OK + PUBLISH_START + PING),
    "publish_refused": (3, 1, BAD_NAME),
    "publishing_acks": (4, 7, SMALL_WINDOW + ACKS + PING + ACKS),
    "publishing_mixed": (4, 31, MIXED),
    "publishing_unpublish": (4, 31 | 0x10, ACKS + PING),
}

os.makedirs(OUT, exist_ok=True)
for name, (state, step, body) in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([(state & 7) | (step << 3) & 0xF8]) + body)
print(f"{len(SEEDS)} seeds in {OUT}")
