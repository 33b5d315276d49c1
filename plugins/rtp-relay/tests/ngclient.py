"""A small rtpengine ng client (bencode over UDP) and RTP helpers for rtp-relay's tests and bench."""
import os
import socket
import struct


def bencode(v):
    if isinstance(v, bool):
        v = "yes" if v else "no"
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in v.items()) + b"e"
    raise TypeError(type(v))


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        e = b.index(b"e", i)
        return int(b[i + 1:e]), e + 1
    if c == b"l":
        out, i = [], i + 1
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while b[i:i + 1] != b"e":
            k, i = bdecode(b, i)
            v, i = bdecode(b, i)
            out[k] = v
        return out, i + 1
    colon = b.index(b":", i)
    n = int(b[i:colon])
    s = b[colon + 1:colon + 1 + n]
    try:
        s = s.decode()
    except UnicodeDecodeError:
        pass
    return s, colon + 1 + n


class NgClient:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.n = 0
        self.prefix = os.urandom(4).hex().encode()  # relays cache replies by cookie

    def raw(self, data):
        self.sock.sendto(data, self.addr)
        return self.sock.recv(65535)

    def cmd(self, command, **kw):
        self.n += 1
        cookie = b"%s_%d" % (self.prefix, self.n)
        d = {"command": command}
        d.update({k.replace("_", "-"): v for k, v in kw.items()})
        reply = self.raw(cookie + b" " + bencode(d))
        c, _, body = reply.partition(b" ")
        assert c == cookie, (c, cookie)
        return bdecode(body)[0]

    def close(self):
        self.sock.close()


def sdp(port, ip="127.0.0.1", proto="RTP/AVP", extra=""):
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} {proto} 0 8\r\na=rtpmap:0 PCMU/8000\r\n{extra}a=sendrecv\r\n")


def sdp_port(text, media=0):
    ms = [l for l in text.split("\r\n") if l.startswith("m=")]
    return int(ms[media].split()[1])


def rtp(seq, ssrc=0x1234, ts=None, payload=b"\xd5" * 160, pt=0):
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, (seq * 160 if ts is None else ts) & 0xFFFFFFFF, ssrc) + payload
