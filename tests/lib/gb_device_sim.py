#!/usr/bin/env python3
"""GB/T 28181 device simulator (the device / lower-platform side), written from the protocol
document (../shared/seeds/002_db30924816719358.txt) with Python 3's standard library only.

It is the peer the gb28181 tests trust, so it is strict where the document is:
- SIP basics (RFC 3261): Via with a z9hG4bK branch and rport, CSeq, From/To tags; its own
  requests over UDP are retransmitted per T1 (doubling up to T2, given up after 64*T1); a
  retransmitted request from the platform gets the very same response again (server transaction
  cache keyed by the Via branch).
- MD5 digest client (RFC 2617 / 7616): 401 and 407, qop=auth with nc/cnonce, the legacy form
  without qop, opaque echoed, a stale nonce answered once more, a second 401 is a failure.
- REGISTER (注册), refresh, unregister (Expires: 0), 302 redirect followed (注册重定向), 423
  Min-Expires honoured; keepalive MESSAGE Notify/Keepalive on its interval, with a switch to stop.
- Answers to the platform's MESSAGE queries: Catalog (split over several MESSAGEs with SumNum),
  DeviceInfo, DeviceStatus, RecordInfo (several MESSAGEs), ConfigDownload, PresetQuery, Alarm.
- DeviceControl: a PTZCmd is checked (8 bytes, A5 header, the version/check nibble, the last byte
  the sum of bytes 1-7 mod 256: the document's C++ sample) and refused with 400 when wrong;
  commands that need a Response (录像控制, 布防/撤防, 报警复位, 看守位, DeviceConfig) get one.
- Alarms (Notify/Alarm): expects 200 then waits for the platform's Response (Result OK).
- Snapshots (图像抓拍): after a SnapShotConfig (SessionID checked: 32-128 of [A-Za-z0-9-]) and
  its Response, with snapshot_upload=True, SnapNum JPEGs POSTed (image/jpeg body, or
  multipart/form-data naming the file by its SnapShotFileID) to UploadURL
  Interval seconds apart, then Notify/UploadSnapShotFinished with the SessionID and the
  SnapShotFileIDs.
- SUBSCRIBE (Catalog / Alarm / presence): 200 with a To tag, NOTIFYs in the dialog with catalog
  changes (ADD/DEL/UPDATE/ON/OFF/VLOST/DEFECT), refresh, unsubscribe (Expires: 0).
- Bodies: GB18030 bytes under a GB2312 declaration by default (charset="utf-8" for UTF-8).

- Media (tests/lib/gb_media_sim.py, dev.media): INVITE s=Play/Playback/Download answered with
  y=/f=/a=setup, PS over RTP (ffmpeg H.264/H.265 + G.711A, muxed by the sdk's media_ps_tool) over
  UDP / TCP passive / TCP active paced by timestamps, MANSRTSP over INFO, MediaStatus 121, the
  device's BYE, broadcast (Notify/Broadcast -> Response -> INVITE for audio); its quirks there.

Quirk modes (the field deviations of real devices), set per device in `quirks`:
  "utf8_as_gb2312"   UTF-8 bytes under a GB2312 declaration
  "raw_amp"          an unescaped '&' in text (names, descriptions)
  "bang_comments"    '<! -- ... -->' comments in bodies, as the document's samples
and as actions: send_unsolicited_catalog() (a partial catalog nobody asked for), nat_rebind()
(a new UDP source port between keepalives, Via/Contact unchanged, as behind a NAT), reboot() (a
new Call-ID and a lower CSeq for the next REGISTER).

Tests wait on events, never sleep: each device keeps an event log (kind + fields) that a test
thread waits on (dev.wait("registered"), dev.wait_message("Catalog"), dev.wait_ptz()) or a
coroutine awaits (await dev.next("ptz")).

Use from a test (a background loop thread):
    sim = Simulator(server=("127.0.0.1", port), platform_id="34020000002000000001").start()
    dev = sim.add_device("34020000001320000001", "secret", transport="tcp")
    sim.run(dev.register())           # -> 200
    dev.wait("registered")
    sim.stop()
As a CLI:  python3 gb_device_sim.py --server 127.0.0.1:5060 --devices 100 --password secret
"""
import argparse
import asyncio
import hashlib
import json
import random
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

T1, T2 = 0.5, 4.0
MANSCDP = "Application/MANSCDP+xml"
USER_AGENT = "JunctionGBSim/1.0"

# ------------------------------------------------------------------------------------------------
# SIP message

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "o": "event", "e": "content-encoding"}


class SipError(ValueError):
    pass


class SipMessage:
    def __init__(self, first, headers, body=b""):
        self.first = first
        self.headers = headers  # [(name, value)] in order
        self.body = body
        parts = first.split(" ", 2)
        if first.startswith("SIP/2.0 "):
            self.is_request = False
            if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
                raise SipError("bad status line: " + first)
            self.status = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            self.method = None
            self.uri = None
        else:
            if len(parts) != 3 or parts[2] != "SIP/2.0":
                raise SipError("bad request line: " + first)
            self.is_request = True
            self.method, self.uri = parts[0], parts[1]
            self.status = None

    def get(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if _hname(n) == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        out = []
        for n, v in self.headers:
            if _hname(n) == name:
                out.extend(split_commas(v) if name in ("via", "contact") else [v])
        return out

    @property
    def cseq(self):
        v = self.get("cseq", "")
        n, _, m = v.strip().partition(" ")
        return int(n), m.strip()

    @property
    def branch(self):
        vias = self.get_all("via")
        return header_param(vias[0], "branch") if vias else None

    def encode(self):
        return encode_message(self.first, self.headers, self.body)

    def __repr__(self):
        return f"<SipMessage {self.first!r}>"


def _hname(n):
    n = n.strip().lower()
    return COMPACT.get(n, n)


def encode_message(first, headers, body=b""):
    out = first + "\r\n"
    for n, v in headers:
        if _hname(n) != "content-length":
            out += f"{n}: {v}\r\n"
    out += f"Content-Length: {len(body)}\r\n\r\n"
    return out.encode() + body


def split_commas(value):
    """Splits a header value at commas outside quotes and <>."""
    out, cur, q, a = [], "", False, False
    for ch in value:
        if ch == '"' and not a:
            q = not q
        elif ch == "<" and not q:
            a = True
        elif ch == ">" and not q:
            a = False
        if ch == "," and not q and not a:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_message(data):
    """One complete message (bytes) -> SipMessage. Raises SipError."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipError("no end of headers")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipError("headers are not UTF-8")
    lines = head.split("\r\n")
    first, headers = lines[0], []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise SipError("bad header line: " + line)
        headers.append((name.strip(), value.strip()))
    body = data[end + 4:]
    m = SipMessage(first, headers, b"")
    cl = m.get("content-length")
    if cl is not None:
        if not cl.strip().isdigit():
            raise SipError("bad Content-Length")
        n = int(cl)
        if n > len(body):
            raise SipError("body shorter than Content-Length")
        body = body[:n]
    m.body = body
    for required in ("via", "from", "to", "call-id", "cseq"):
        if m.get(required) is None:
            raise SipError("missing " + required)
    return m


def header_param(value, name):
    """A ;name=value parameter of a header value (after the <> of a name-addr form)."""
    if ">" in value:
        params = value[value.rindex(">") + 1:].split(";")
    else:
        params = value.split(";")[1:]
    for p in params:
        k, _, val = p.strip().partition("=")
        if k.strip().lower() == name.lower():
            return val.strip().strip('"')
    return None


def addr_uri(value):
    """The URI of a name-addr / addr-spec header value."""
    if "<" in value:
        return value[value.index("<") + 1:value.index(">")]
    return value.split(";")[0].strip()


def uri_user(uri):
    u = uri.split(":", 1)[1] if ":" in uri else uri
    return u.split("@")[0] if "@" in u else ""


def uri_hostport(uri):
    u = uri.split(":", 1)[1]
    u = u.split(";")[0]
    hp = u.split("@")[-1]
    host, _, port = hp.partition(":")
    return host, int(port) if port else 5060


def new_branch():
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag():
    return str(random.randrange(10**8, 10**10))


def new_call_id():
    return str(random.randrange(10**8, 10**10))


# ------------------------------------------------------------------------------------------------
# Digest client

def parse_challenge(value):
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipError("not a Digest challenge: " + value)
    params = {}
    for item in split_commas(rest):
        k, _, v = item.partition("=")
        v = v.strip()
        if v.startswith('"') and v.endswith('"') and len(v) >= 2:
            v = v[1:-1]
        params[k.strip().lower()] = v
    if "nonce" not in params or "realm" not in params:
        raise SipError("challenge without realm/nonce")
    return params


class DigestClient:
    """Answers a WWW-Authenticate / Proxy-Authenticate challenge (MD5, MD5-sess, SHA-256)."""

    HASHES = {"md5": hashlib.md5, "md5-sess": hashlib.md5, "sha-256": hashlib.sha256, "sha-256-sess": hashlib.sha256}

    def __init__(self, username, password):
        self.username, self.password = username, password
        self.challenge = None
        self.proxy = False
        self.nc = 0

    def set_challenge(self, value, proxy=False):
        ch = parse_challenge(value)
        alg = ch.get("algorithm", "MD5").lower()
        if alg not in self.HASHES:
            raise SipError("unsupported algorithm " + alg)
        qops = [q.strip().lower() for q in ch.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            raise SipError("no qop=auth offered: " + ch["qop"])
        self.challenge, self.proxy, self.nc = ch, proxy, 0
        return ch

    @property
    def header_name(self):
        return "Proxy-Authorization" if self.proxy else "Authorization"

    def authorization(self, method, uri):
        ch = self.challenge
        alg = ch.get("algorithm", "MD5")
        h = self.HASHES[alg.lower()]

        def H(s):
            return h(s.encode()).hexdigest()
        realm, nonce = ch["realm"], ch["nonce"]
        ha1 = H(f"{self.username}:{realm}:{self.password}")
        cnonce = secrets.token_hex(8)
        if alg.lower().endswith("-sess"):
            ha1 = H(f"{ha1}:{nonce}:{cnonce}")
        ha2 = H(f"{method}:{uri}")
        parts = [f'username="{self.username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        if ch.get("qop"):
            self.nc += 1
            nc = f"{self.nc:08x}"
            resp = H(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += [f'response="{resp}"', f"algorithm={alg}", "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            resp = H(f"{ha1}:{nonce}:{ha2}")
            parts += [f'response="{resp}"', f"algorithm={alg}"]
        if "opaque" in ch:
            parts.append(f'opaque="{ch["opaque"]}"')
        return "Digest " + ", ".join(parts)


# ------------------------------------------------------------------------------------------------
# PTZ command (document: 控制格式 and the C++ sample ParsePTZCmd; the sample table is wrong for
# "down" and "left", see seeds/README.md)

PTZ_DIRS = {"stop": 0x00, "right": 0x01, "left": 0x02, "down": 0x04, "up": 0x08, "rightdown": 0x05,
            "rightup": 0x09, "leftdown": 0x06, "leftup": 0x0A}


def ptz_cmd(command, data1=0, data2=0, data3=0, address=1):
    """Builds a PTZCmd hex string: A5, 0F, address, command, data1, data2, data3<<4 | addr-high, sum."""
    b = [0xA5, 0x0F, address & 0xFF, command & 0xFF, data1 & 0xFF, data2 & 0xFF, ((data3 & 0x0F) << 4) | ((address >> 8) & 0x0F)]
    b.append(sum(b) & 0xFF)
    return "".join(f"{x:02X}" for x in b)


def check_ptz_cmd(text):
    """Returns (bytes, None) for a well-formed PTZCmd, (None, reason) otherwise."""
    t = (text or "").strip()
    if len(t) != 16:
        return None, f"PTZCmd must be 8 bytes (16 hex digits), got {len(t)} characters"
    try:
        b = bytes.fromhex(t)
    except ValueError:
        return None, "PTZCmd is not hex"
    if b[0] != 0xA5:
        return None, f"PTZCmd first byte must be A5, got {b[0]:02X}"
    version = b[1] >> 4
    if (b[1] & 0x0F) != ((0xA + 0x5 + version) & 0x0F):
        return None, f"PTZCmd byte 2 check nibble wrong ({b[1]:02X})"
    if sum(b[:7]) & 0xFF != b[7]:
        return None, f"PTZCmd checksum wrong: {b[7]:02X}, expected {sum(b[:7]) & 0xFF:02X}"
    return b, None


def describe_ptz(b):
    """What a checked PTZCmd asks for (the fields of the instruction)."""
    cmd = b[3]
    d = {"command": cmd, "data1": b[4], "data2": b[5], "data3": b[6] >> 4, "address": b[2] | ((b[6] & 0x0F) << 8)}
    if cmd & 0xC0 == 0x00:
        d["action"] = "ptz"
        d["pan"] = "right" if cmd & 0x01 else "left" if cmd & 0x02 else None
        d["tilt"] = "down" if cmd & 0x04 else "up" if cmd & 0x08 else None
        d["zoom"] = "in" if cmd & 0x10 else "out" if cmd & 0x20 else None
        d["pan_speed"], d["tilt_speed"], d["zoom_speed"] = b[4], b[5], b[6] >> 4
    elif cmd & 0xF0 == 0x40:
        d["action"] = "fi"
        d["iris"] = "open" if cmd & 0x04 else "close" if cmd & 0x08 else None
        d["focus"] = "near" if cmd & 0x02 else "far" if cmd & 0x01 else None
        d["focus_speed"], d["iris_speed"] = b[4], b[5]
    else:
        names = {0x81: "preset_set", 0x82: "preset_call", 0x83: "preset_delete", 0x84: "cruise_add", 0x85: "cruise_delete",
                 0x86: "cruise_speed", 0x87: "cruise_dwell", 0x88: "cruise_start", 0x89: "scan", 0x8A: "scan_speed"}
        d["action"] = names.get(cmd, f"0x{cmd:02X}")
    return d


# ------------------------------------------------------------------------------------------------
# MANSCDP bodies

def decode_body(body, content_type=""):
    """Strict decode of a platform body: the declared charset (GB2312/GBK/GB18030 -> GB18030,
    UTF-8), then a real XML parse. Returns the root Element; raises ValueError with the reason."""
    m = re.match(rb'\s*<\?xml[^>]*encoding\s*=\s*["\']([A-Za-z0-9_-]+)["\']', body)
    enc = (m.group(1).decode() if m else "").lower()
    if not enc:
        cm = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_-]+)", content_type or "", re.I)
        enc = cm.group(1).lower() if cm else "utf-8"
    codec = "gb18030" if enc in ("gb2312", "gbk", "gb18030") else "utf-8" if enc in ("utf-8", "utf8") else None
    if codec is None:
        raise ValueError("unsupported encoding " + enc)
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as e:
        raise ValueError(f"body is not {codec}: {e}")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"malformed XML: {e}")


def child_text(el, name, default=None):
    c = el.find(name) if el is not None else None
    return c.text.strip() if c is not None and c.text is not None else default


class Body:
    """Builds a MANSCDP body the way devices write it (text templates), with the quirks."""

    def __init__(self, root, charset="gb18030", quirks=()):
        self.root, self.charset, self.quirks = root, charset, set(quirks)
        self.parts = []

    def text(self, s):
        s = str(s)
        if "raw_amp" in self.quirks:
            return _xml_escape(s).replace("&amp;", "&")
        return _xml_escape(s)

    def el(self, tag, value=None, attrs=None, children=None):
        a = "".join(f' {k}="{v}"' for k, v in (attrs or {}).items())
        if children is not None:
            return f"<{tag}{a}>\r\n" + "".join(children) + f"</{tag}>\r\n"
        return f"<{tag}{a}>{self.text('' if value is None else value)}</{tag}>\r\n"

    def add(self, *parts):
        self.parts.extend(parts)
        return self

    def encode(self):
        utf8 = self.charset.lower() in ("utf-8", "utf8")
        decl = '<?xml version="1.0" encoding="%s"?>\r\n' % ("UTF-8" if utf8 else "GB2312")
        inner = "".join(self.parts)
        if "bang_comments" in self.quirks:
            inner = "<! -- 命令类型 (document style comment) -->\r\n" + inner
        text = decl + f"<{self.root}>\r\n" + inner + f"</{self.root}>\r\n"
        if utf8 or "utf8_as_gb2312" in self.quirks:
            return text.encode("utf-8")
        return text.encode("gb18030")


# ------------------------------------------------------------------------------------------------
# Events


class EventLog:
    """Thread-safe list of events; waited on from a test thread (wait) or a coroutine (next).
    Each event's "i" is its index for since=. With a limit (long CLI runs) the oldest half is
    dropped when it is reached; indices keep counting."""

    def __init__(self, name, limit=None):
        self.name = name
        self.items = []
        self.base = 0  # index of items[0]
        self.limit = limit
        self.cond = threading.Condition()
        self.waiters = []  # (kind, match, future)

    def record(self, kind, **fields):
        fields["kind"] = kind
        fields["t"] = time.monotonic()
        with self.cond:
            fields["i"] = self.base + len(self.items)
            self.items.append(fields)
            if self.limit and len(self.items) > self.limit:
                drop = len(self.items) // 2
                del self.items[:drop]
                self.base += drop
            self.cond.notify_all()
        for w in list(self.waiters):
            k, match, fut = w
            if k == kind and _matches(fields, match) and not fut.done():
                fut.set_result(fields)
                self.waiters.remove(w)
        return fields

    def mark(self):
        with self.cond:
            return self.base + len(self.items)

    def find(self, kind, since=0, **match):
        with self.cond:
            return [e for e in self.items[max(0, since - self.base):] if e["kind"] == kind and _matches(e, match)]

    def wait(self, kind, timeout=10.0, since=0, **match):
        deadline = time.monotonic() + timeout
        i = since
        with self.cond:
            while True:
                i = max(i, self.base)
                while i < self.base + len(self.items):
                    e = self.items[i - self.base]
                    i += 1
                    if e["kind"] == kind and _matches(e, match):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = [(e["kind"], {k: v for k, v in e.items() if k not in ("kind", "t", "i", "xml", "raw")})
                              for e in self.items[-8:]]
                    raise AssertionError(f"{self.name}: no event {kind} {match or ''} within {timeout}s; last: {recent}")
                self.cond.wait(left)

    async def next(self, kind, timeout=10.0, since=None, **match):
        """Awaits an event recorded from now (or from index `since`)."""
        if since is not None:
            found = self.find(kind, since, **match)
            if found:
                return found[0]
        fut = asyncio.get_running_loop().create_future()
        w = (kind, match, fut)
        self.waiters.append(w)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            if w in self.waiters:
                self.waiters.remove(w)


def _matches(e, match):
    for k, v in match.items():
        if callable(v):
            if not v(e.get(k)):
                return False
        elif e.get(k) != v:
            return False
    return True


# ------------------------------------------------------------------------------------------------
# Transports: one UDP socket or one TCP connection per device


class _UdpProto(asyncio.DatagramProtocol):
    def __init__(self, dev):
        self.dev = dev

    def datagram_received(self, data, addr):
        self.dev._on_datagram(data, addr)

    def error_received(self, exc):
        self.dev.events.record("transport_error", error=str(exc))


class _TcpProto(asyncio.Protocol):
    def __init__(self, dev):
        self.dev, self.buf, self.transport = dev, b"", None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        while True:
            # CRLF keepalives (RFC 5626 pong) between messages
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:end])
            if not m:
                self.dev.events.record("bad_stream", reason="no Content-Length on TCP")
                self.transport.close()
                return
            total = end + 4 + int(m.group(1))
            if len(self.buf) < total:
                return
            msg, self.buf = self.buf[:total], self.buf[total:]
            self.dev._on_datagram(msg, self.transport.get_extra_info("peername"))

    def connection_lost(self, exc):
        self.dev._on_tcp_lost(self)


# ------------------------------------------------------------------------------------------------
# Device


class Subscription:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def default_channels(device_id, n, civil_code=None):
    civil = civil_code or device_id[:6]
    out = []
    for i in range(n):
        cid = device_id[:10] + "131" + "1" + f"{i + 1:06d}"
        out.append({"DeviceID": cid, "Name": f"Camera {i + 1:02d}", "Manufacturer": "JunctionSim", "Model": "IP Camera",
                    "Owner": "Owner", "CivilCode": civil, "Address": "Address", "Parental": "0", "ParentID": device_id,
                    "SafetyWay": "0", "RegisterWay": "1", "Secrecy": "0", "Status": "ON"})
    return out


class Device:
    """One simulated device. Coroutine methods run on the simulator's loop (sim.run(...) from a
    test thread); wait*/find read its event log from any thread."""

    def __init__(self, sim, device_id, password, transport="udp", username=None, expires=3600, keepalive_interval=60,
                 charset="gb18030", quirks=(), channels=None, catalog_per_message=2, records=None,
                 records_per_message=2, presets=None, register_uri="addr", auto_refresh=True, follow_redirect=True,
                 name=None, silent=(), response_result="OK", response_limit=None, snapshot_upload=False,
                 snapshot_form="raw", event_limit=None, refresh_after_403=True, local_ip="127.0.0.1",
                 media_codec="h264", media_seconds=2, broadcast_audio="ps"):
        self.sim = sim
        self.id = device_id
        self.password = password
        self.transport = transport.lower()
        self.username = username or device_id
        self.expires = expires
        self.keepalive_interval = keepalive_interval
        self.charset = charset
        self.quirks = set(quirks)
        self.name = name or f"Sim {device_id[-4:]}"
        self.server = tuple(sim.server)
        self.platform_id = sim.platform_id
        self.domain = sim.domain
        self.register_uri = register_uri  # "addr": sip:platform@ip:port; "domain": sip:platform@domain
        self.auto_refresh = auto_refresh
        self.follow_redirect = follow_redirect
        self.refresh_after_403 = refresh_after_403
        self.channels = default_channels(device_id, 4) if channels is None else (
            default_channels(device_id, channels) if isinstance(channels, int) else list(channels))
        self.catalog_per_message = catalog_per_message
        self.records = records  # None: generated per query
        self.records_per_message = records_per_message
        self.presets = presets if presets is not None else [(1, "Gate"), (2, "Parking")]
        self.silent = set(silent)  # CmdTypes this device answers with 200 and then never responds to
        self.response_result = response_result
        self.response_limit = response_limit  # send only the first N MESSAGEs of a multi-MESSAGE answer
        # after a SnapShotConfig: upload the images and report them. Off by default: a test that
        # uploads by hand into the session (gb28181 test_admin) must not race the device.
        self.snapshot_upload = snapshot_upload
        self.snapshot_form = snapshot_form  # "raw" (image/jpeg body) or "multipart" (form-data, filename = file ID)
        self.local_ip = local_ip
        self.events = EventLog(device_id, event_limit)
        self.dialogs = {}  # subscriptions by (call_id, our tag)
        self.alarms = []
        # SIP state
        self.reg_call_id = new_call_id()
        self.reg_tag = new_tag()
        self.cseq = 1
        self.digest = DigestClient(self.username, password)
        self.registered = False
        self.reg_expires = 0
        self.date = None
        self.sn = random.randrange(1, 1000)
        self.client_txns = {}  # branch -> future
        self.server_txns = {}  # (branch, method) -> response bytes or None (in progress)
        self.keepalive_on = False
        self._keepalive_task = None
        self._refresh_handle = None
        self.udp = None
        self.tcp = None
        self.contact_port = None  # what Via/Contact advertise (unchanged by nat_rebind)
        self.sent = []  # last raw messages sent (bytes), for tests that inspect them
        self.received = []
        # the media side (INVITE/ACK/BYE/INFO, streaming, broadcast): tests/lib/gb_media_sim.py
        from gb_media_sim import MediaSide
        self.media = MediaSide(self, media_codec, media_seconds, broadcast_audio)

    def __repr__(self):
        return f"<Device {self.id} {self.transport}>"

    # -- events ------------------------------------------------------------------------------------
    def wait(self, kind, timeout=10.0, since=0, **match):
        return self.events.wait(kind, timeout, since, **match)

    def find(self, kind, since=0, **match):
        return self.events.find(kind, since, **match)

    def mark(self):
        return self.events.mark()

    async def next(self, kind, timeout=10.0, since=None, **match):
        return await self.events.next(kind, timeout, since, **match)

    def wait_registered(self, timeout=10.0, since=0):
        return self.wait("registered", timeout, since)

    def wait_message(self, cmd, timeout=10.0, since=0, **match):
        """A MESSAGE from the platform with this CmdType (Query/Control/Response/Notify)."""
        return self.wait("message", timeout, since, cmd=cmd, **match)

    def wait_ptz(self, timeout=10.0, since=0, **match):
        return self.wait("ptz", timeout, since, **match)

    # -- transport ---------------------------------------------------------------------------------
    async def open(self):
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            t, _ = await loop.create_datagram_endpoint(lambda: _UdpProto(self), local_addr=(self.local_ip, 0))
            self.udp = t
            if self.contact_port is None:
                self.contact_port = t.get_extra_info("sockname")[1]
        elif self.transport == "tcp":
            await self._connect_tcp()
        else:
            raise ValueError("transport must be udp or tcp")
        return self

    async def _connect_tcp(self):
        loop = asyncio.get_running_loop()
        t, p = await loop.create_connection(lambda: _TcpProto(self), self.server[0], self.server[1],
                                            local_addr=(self.local_ip, 0))
        self.tcp = p
        self.contact_port = t.get_extra_info("sockname")[1]
        self.events.record("tcp_connected", port=self.contact_port)

    def _on_tcp_lost(self, proto):
        if proto is self.tcp:
            self.tcp = None
            self.registered = False
            self.events.record("tcp_closed")

    def close(self):
        self.media.close()
        self.stop_keepalive()
        if self._refresh_handle:
            self._refresh_handle.cancel()
            self._refresh_handle = None
        if self.udp:
            self.udp.close()
            self.udp = None
        if self.tcp and self.tcp.transport:
            t = self.tcp
            self.tcp = None
            t.transport.close()
        for fut in self.client_txns.values():
            if not fut.done():
                fut.cancel()

    @property
    def proto_name(self):
        return "TCP" if self.transport == "tcp" else "UDP"

    @property
    def local_port(self):
        if self.udp:
            return self.udp.get_extra_info("sockname")[1]
        if self.tcp and self.tcp.transport:
            return self.tcp.transport.get_extra_info("sockname")[1]
        return None

    def send_raw(self, data, addr=None):
        """Sends bytes as they are (to the platform, or to addr over UDP)."""
        self.sent.append(data)
        del self.sent[:-50]
        if self.transport == "udp":
            if self.udp is None:
                raise ConnectionError("device closed")
            self.udp.sendto(data, addr or self.server)
        else:
            if self.tcp is None or self.tcp.transport.is_closing():
                raise ConnectionError("TCP connection closed")
            self.tcp.transport.write(data)

    def _via(self, branch):
        return f"SIP/2.0/{self.proto_name} {self.local_ip}:{self.contact_port};rport;branch={branch}"

    @property
    def contact(self):
        t = ";transport=tcp" if self.transport == "tcp" else ""
        return f"<sip:{self.id}@{self.local_ip}:{self.contact_port}{t}>"

    @property
    def platform_uri(self):
        if self.register_uri == "domain":
            return f"sip:{self.platform_id}@{self.domain}"
        return f"sip:{self.platform_id}@{self.server[0]}:{self.server[1]}"

    @property
    def aor(self):
        return f"sip:{self.id}@{self.domain}"

    # -- client transactions -----------------------------------------------------------------------
    async def request(self, method, uri, headers, body=b"", content_type=None, timeout=64 * T1):
        """Sends a request (a new transaction: a new branch) and returns the final response, or
        None after Timer F (64*T1). UDP requests are retransmitted per T1 doubling up to T2."""
        branch = new_branch()
        hs = [("Via", self._via(branch)), ("Max-Forwards", "70")] + list(headers)
        if body:
            hs.append(("Content-Type", content_type or MANSCDP))
        hs.append(("User-Agent", USER_AGENT))
        data = encode_message(f"{method} {uri} SIP/2.0", hs, body)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.client_txns[branch] = fut
        try:
            self.send_raw(data)
            if self.transport == "tcp":
                return await asyncio.wait_for(asyncio.shield(fut), timeout)
            interval, deadline = T1, loop.time() + timeout
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    return None
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), min(interval, left))
                except asyncio.TimeoutError:
                    if fut.done():
                        return fut.result()
                    if self.udp is None:
                        return None
                    self.events.record("retransmit", method=method)
                    self.send_raw(data)
                    interval = min(interval * 2, T2)
        except asyncio.TimeoutError:
            return None
        except ConnectionError:
            return None
        finally:
            self.client_txns.pop(branch, None)

    # -- incoming ----------------------------------------------------------------------------------
    def _on_datagram(self, data, addr):
        if data in (b"\r\n\r\n", b"\r\n"):  # keepalive ping/pong
            return
        try:
            m = parse_message(data)
        except SipError as e:
            self.events.record("bad_message", reason=str(e), raw=data[:200])
            return
        self.received.append(m)
        del self.received[:-50]
        if not m.is_request:
            fut = self.client_txns.get(m.branch)
            if fut is None:
                self.events.record("stray_response", status=m.status, cseq=m.get("cseq"))
            elif m.status >= 200 and not fut.done():
                fut.set_result(m)
            elif m.status < 200:
                self.events.record("provisional", status=m.status, cseq=m.get("cseq"))
            return
        key = (m.branch, m.method)
        if m.method == "ACK":
            return self.media.on_ack(m)
        if key in self.server_txns:  # a retransmission: the same response again, byte for byte
            self.events.record("retransmitted_request", method=m.method)
            resp = self.server_txns[key]
            if resp is not None:
                self.send_raw(resp, addr)
            return
        self.server_txns[key] = None
        asyncio.get_running_loop().call_later(64 * T1, self.server_txns.pop, key, None)
        try:
            self._on_request(m, addr)
        except Exception as e:  # a bug here must not take the device down silently
            self.events.record("error", error=repr(e))
            if self.server_txns.get(key) is None:
                self.respond(m, addr, 500, "Simulator Error")
            raise

    def respond(self, req, addr, status, reason=None, headers=(), body=b"", to_tag=None, content_type=None):
        reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                   481: "Call/Transaction Does Not Exist", 489: "Bad Event", 500: "Server Internal Error",
                   501: "Not Implemented"}
        hs = []
        first_via = True
        for n, v in req.headers:
            hn = _hname(n)
            if hn == "via":
                for via in split_commas(v):
                    if first_via and addr and "rport" in via.split(";"):  # RFC 3581: fill rport / received
                        via = re.sub(r";rport(?=;|$)", f";rport={addr[1]}", via) + f";received={addr[0]}"
                    first_via = False
                    hs.append(("Via", via))
            elif hn in ("from", "call-id", "cseq"):
                hs.append((n, v))
            elif hn == "to":
                if header_param(v, "tag") is None and status > 100:
                    v = f"{v};tag={to_tag or self._to_tag(req)}"
                hs.append((n, v))
        hs.extend(headers)
        if body:
            hs.append(("Content-Type", content_type or MANSCDP))
        hs.append(("User-Agent", USER_AGENT))
        data = encode_message(f"SIP/2.0 {status} {reason or reasons.get(status, 'Unknown')}", hs, body)
        key = (req.branch, req.method)
        if key in self.server_txns:
            self.server_txns[key] = data
        self.send_raw(data, addr)

    def _to_tag(self, req):
        # the same tag for retransmissions is guaranteed by the response cache; one per request
        return hashlib.md5((req.get("call-id", "") + (req.branch or "")).encode()).hexdigest()[:10]

    def _on_request(self, m, addr):
        if m.method == "MESSAGE":
            return self._on_message(m, addr)
        if m.method == "SUBSCRIBE":
            return self._on_subscribe(m, addr)
        if m.method == "OPTIONS":
            return self.respond(m, addr, 200, headers=[("Allow", "REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS, INFO")])
        if m.method == "INVITE":
            return self.media.on_invite(m, addr)
        if m.method == "BYE":
            return self.media.on_bye(m, addr)
        if m.method == "INFO":
            return self.media.on_info(m, addr)
        if m.method == "NOTIFY":
            self.events.record("request", method=m.method)
            return self.respond(m, addr, 481)
        self.events.record("request", method=m.method)
        self.respond(m, addr, 501)

    # -- registration ------------------------------------------------------------------------------
    async def register(self, expires=None):
        """REGISTER with digest; returns the final status (200, 403, ...; None on no answer).
        Events: registered / unregistered / register_failed / redirected."""
        expires = self.expires if expires is None else expires
        preemptive = self.digest.challenge is not None  # a nonce cached from the last registration
        sent_auth = stale_retried = fresh_retried = False
        for _ in range(6):
            uri = self.platform_uri
            self.cseq += 1
            hs = [("From", f"<{self.aor}>;tag={self.reg_tag}"), ("To", f"<{self.aor}>"),
                  ("Call-ID", self.reg_call_id), ("CSeq", f"{self.cseq} REGISTER"), ("Contact", self.contact),
                  ("Expires", str(expires))]
            sent_auth = self.digest.challenge is not None
            if sent_auth:
                hs.append((self.digest.header_name, self.digest.authorization("REGISTER", uri)))
            r = await self.request("REGISTER", uri, hs)
            if r is None:
                self.registered = False
                self.events.record("register_failed", status=None, reason="no answer")
                return None
            if r.status in (401, 407):
                hv = r.get("www-authenticate" if r.status == 401 else "proxy-authenticate")
                try:
                    ch = parse_challenge(hv or "")
                except SipError as e:
                    self.events.record("register_failed", status=r.status, reason=str(e))
                    return r.status
                stale = ch.get("stale", "").lower() == "true"
                if sent_auth:
                    if stale and not stale_retried:
                        stale_retried = True
                    elif preemptive and not fresh_retried:
                        fresh_retried = True  # the cached nonce expired: answer the fresh challenge once
                    else:
                        self.registered = False
                        self.digest.challenge = None
                        self.events.record("register_failed", status=r.status, reason="credentials refused")
                        return r.status
                try:
                    self.digest.set_challenge(hv, proxy=r.status == 407)
                except SipError as e:
                    self.events.record("register_failed", status=r.status, reason=str(e))
                    return r.status
                continue
            if r.status == 423:
                me = r.get("min-expires")
                if me is None or not me.strip().isdigit():
                    self.events.record("register_failed", status=423, reason="423 without Min-Expires")
                    return 423
                expires = int(me)
                continue
            if r.status == 302 and self.follow_redirect:
                contacts = r.get_all("contact")
                if not contacts:
                    self.events.record("register_failed", status=302, reason="302 without Contact")
                    return 302
                target = addr_uri(contacts[0])
                host, port = uri_hostport(target)
                self.events.record("redirected", contact=target, expires=r.get("expires"))
                self.platform_id, self.server = uri_user(target), (host, port)
                self.digest = DigestClient(self.username, self.password)
                preemptive = fresh_retried = stale_retried = False
                if self.transport == "tcp":
                    old = self.tcp
                    self.tcp = None
                    if old:
                        old.transport.close()
                    await self._connect_tcp()
                continue
            if r.status == 200:
                granted = expires
                for c in r.get_all("contact"):
                    e = header_param(c, "expires")
                    if e and e.isdigit() and (self.id in c):
                        granted = int(e)
                if r.get("expires", "").strip().isdigit() and not any(header_param(c, "expires") for c in r.get_all("contact")):
                    granted = int(r.get("expires").strip())
                self.date = r.get("date")
                if expires == 0:
                    self.registered = False
                    self.reg_expires = 0
                    if self._refresh_handle:
                        self._refresh_handle.cancel()
                        self._refresh_handle = None
                    self.events.record("unregistered", status=200)
                else:
                    self.registered = True
                    self.reg_expires = granted
                    self.events.record("registered", status=200, expires=granted, date=self.date, call_id=self.reg_call_id,
                                       cseq=self.cseq, port=self.local_port)
                    self._schedule_refresh(granted)
                return 200
            self.registered = False
            self.events.record("register_failed", status=r.status, reason=r.reason)
            return r.status
        self.events.record("register_failed", status=None, reason="too many rounds")
        return None

    def _schedule_refresh(self, granted):
        if self._refresh_handle:
            self._refresh_handle.cancel()
            self._refresh_handle = None
        if self.auto_refresh and granted > 0:
            loop = asyncio.get_running_loop()
            self._refresh_handle = loop.call_later(max(1.0, granted * 0.8),
                                                   lambda: loop.create_task(self.register()))

    async def unregister(self):
        return await self.register(expires=0)

    async def reboot(self, register=True):
        """A reboot: new Call-ID, CSeq from 1 (lower than before), new From tag, no cached nonce."""
        self.stop_keepalive()
        self.reg_call_id, self.reg_tag, self.cseq = new_call_id(), new_tag(), 0
        self.digest = DigestClient(self.username, self.password)
        self.registered = False
        if self.transport == "tcp":
            old = self.tcp
            self.tcp = None
            if old:
                old.transport.close()
            await self._connect_tcp()
        self.events.record("rebooted", call_id=self.reg_call_id)
        if register:
            return await self.register()

    async def nat_rebind(self):
        """A NAT mapping change: a new UDP source port; Via/Contact still say the old one (the
        device cannot know its public port). Returns the new source port."""
        if self.transport != "udp":
            raise ValueError("nat_rebind is a UDP quirk")
        old = self.udp
        loop = asyncio.get_running_loop()
        t, _ = await loop.create_datagram_endpoint(lambda: _UdpProto(self), local_addr=(self.local_ip, 0))
        self.udp = t
        old.close()
        port = t.get_extra_info("sockname")[1]
        self.events.record("nat_rebind", port=port)
        return port

    # -- keepalive ---------------------------------------------------------------------------------
    def next_sn(self):
        self.sn += 1
        return self.sn

    async def send_manscdp(self, body_bytes, method="MESSAGE", uri=None, extra=()):
        """An out-of-dialog MESSAGE (new Call-ID) with a MANSCDP body to the platform; returns the
        final response (or None)."""
        uri = uri or self.platform_uri
        hs = [("From", f"<{self.aor}>;tag={new_tag()}"), ("To", f"<sip:{self.platform_id}@{self.domain}>"),
              ("Call-ID", new_call_id()), ("CSeq", f"{random.randrange(1, 1000)} {method}")] + list(extra)
        return await self.request(method, uri, hs, body_bytes)

    def body(self, root):
        return Body(root, self.charset, self.quirks)

    async def keepalive(self, status="OK"):
        """One Notify/Keepalive now; returns the SIP status (None: no answer)."""
        b = self.body("Notify")
        b.add(b.el("CmdType", "Keepalive"), b.el("SN", self.next_sn()), b.el("DeviceID", self.id), b.el("Status", status))
        r = await self.send_manscdp(b.encode())
        code = r.status if r else None
        self.events.record("keepalive", status=code, port=self.local_port)
        if code in (403, 404) and self.refresh_after_403 and self.keepalive_on:
            self.registered = False
            asyncio.get_running_loop().create_task(self.register())
        return code

    def start_keepalive(self, interval=None):
        if interval is not None:
            self.keepalive_interval = interval
        self.stop_keepalive()
        self.keepalive_on = True
        self._keepalive_task = asyncio.get_running_loop().create_task(self._keepalive_loop())

    def stop_keepalive(self):
        self.keepalive_on = False
        if self._keepalive_task:
            self._keepalive_task.cancel()
            self._keepalive_task = None

    async def _keepalive_loop(self):
        try:
            while self.keepalive_on:
                await self.keepalive()
                await asyncio.sleep(self.keepalive_interval)  # the device's own timer
        except asyncio.CancelledError:
            pass

    # -- MESSAGE from the platform -----------------------------------------------------------------
    def _on_message(self, m, addr):
        try:
            root = decode_body(m.body, m.get("content-type", ""))
        except ValueError as e:
            self.events.record("bad_body", reason=str(e), raw=m.body[:300])
            return self.respond(m, addr, 400, f"Bad Request ({str(e)[:60]})")
        cmd = child_text(root, "CmdType")
        sn = child_text(root, "SN")
        did = child_text(root, "DeviceID")
        if cmd == "Broadcast" and root.tag == "Notify":  # 语音广播通知 names SourceID/TargetID instead
            did = child_text(root, "TargetID")
        if not cmd or not sn or not sn.isdigit() or not did:
            self.events.record("bad_body", reason="CmdType/SN/DeviceID missing", raw=m.body[:300])
            return self.respond(m, addr, 400, "Bad Request (CmdType, SN and DeviceID are required)")
        fields = {c.tag: (c.text or "").strip() for c in root if len(c) == 0}
        ev = dict(root=root.tag, cmd=cmd, sn=int(sn), device_id=did, fields=fields, xml=root, call_id=m.get("call-id"))
        if root.tag == "Query":
            return self._on_query(m, addr, root, ev)
        if root.tag == "Control":
            return self._on_control(m, addr, root, ev)
        if root.tag == "Response":
            self.events.record("message", **ev)
            self.respond(m, addr, 200)
            if cmd == "Alarm":
                self.events.record("alarm_response", sn=int(sn), result=child_text(root, "Result"), device_id=did)
            return
        if root.tag == "Notify":
            self.events.record("message", **ev)
            if cmd == "Broadcast":
                return self.media.on_broadcast(m, addr, root)
            return self.respond(m, addr, 200)
        self.events.record("bad_body", reason="unknown root " + root.tag)
        self.respond(m, addr, 400, "Bad Request (unknown root element)")

    QUERIES = ("Catalog", "DeviceInfo", "DeviceStatus", "RecordInfo", "ConfigDownload", "PresetQuery", "Alarm")

    def _on_query(self, m, addr, root, ev):
        cmd = ev["cmd"]
        if cmd not in self.QUERIES:
            self.events.record("message", **ev)
            return self.respond(m, addr, 400, "Bad Request (unsupported query " + cmd + ")")
        if ev["device_id"] != self.id and not any(c["DeviceID"] == ev["device_id"] for c in self.channels):
            self.events.record("message", **ev)
            return self.respond(m, addr, 404, "Not Found (no such device or channel)")
        self.events.record("message", **ev)
        self.respond(m, addr, 200)
        if cmd in self.silent:
            return
        asyncio.get_running_loop().create_task(self._answer_query(root, ev))

    async def _answer_query(self, root, ev):
        cmd, sn, did = ev["cmd"], ev["sn"], ev["device_id"]
        bodies = []
        if cmd == "Catalog":
            bodies = self.catalog_bodies(sn, self.channels, self.catalog_per_message)
        elif cmd == "RecordInfo":
            bodies = self.record_bodies(sn, did, child_text(root, "StartTime"), child_text(root, "EndTime"))
        elif cmd == "DeviceInfo":
            b = self.body("Response")
            b.add(b.el("CmdType", "DeviceInfo"), b.el("SN", sn), b.el("DeviceID", did), b.el("DeviceName", self.name),
                  b.el("Result", self.response_result), b.el("Manufacturer", "JunctionSim"), b.el("Model", "IP Camera"),
                  b.el("Firmware", "V1.0"), b.el("Channel", len(self.channels)))
            bodies = [b.encode()]
        elif cmd == "DeviceStatus":
            b = self.body("Response")
            b.add(b.el("CmdType", "DeviceStatus"), b.el("SN", sn), b.el("DeviceID", did), b.el("Result", self.response_result),
                  b.el("Online", "ONLINE"), b.el("Status", "OK"), b.el("DeviceTime", time.strftime("%Y-%m-%dT%H:%M:%S")),
                  b.el("Alarmstatus", attrs={"Num": "0"}, children=[]), b.el("Encode", "ON"), b.el("Record", "OFF"))
            bodies = [b.encode()]
        elif cmd == "ConfigDownload":
            ctype = child_text(root, "ConfigType", "BasicParam")
            b = self.body("Response")
            b.add(b.el("CmdType", "ConfigDownload"), b.el("SN", sn), b.el("DeviceID", did), b.el("Result", self.response_result))
            for t in ctype.split("/"):
                if t == "BasicParam":
                    b.add(b.el("BasicParam", children=[
                        b.el("Name", self.name), b.el("Expiration", self.expires), b.el("HeartBeatInterval", self.keepalive_interval),
                        b.el("HeartBeatCount", 3), b.el("PositionCapability", 0)]))
                else:
                    b.add(b.el(t, children=[]))
            bodies = [b.encode()]
        elif cmd == "PresetQuery":
            b = self.body("Response")
            items = [b.el("Item", children=[b.el("PresetID", pid), b.el("PresetName", pname)]) for pid, pname in self.presets]
            b.add(b.el("CmdType", "PresetQuery"), b.el("SN", sn), b.el("DeviceID", did),
                  b.el("PresetList", attrs={"Num": str(len(items))}, children=items))
            bodies = [b.encode()]
        elif cmd == "Alarm":
            b = self.body("Response")
            b.add(b.el("CmdType", "Alarm"), b.el("SN", sn), b.el("DeviceID", did), b.el("Result", self.response_result))
            bodies = [b.encode()]
        if self.response_limit is not None:
            bodies = bodies[:self.response_limit]
        for i, body in enumerate(bodies):
            r = await self.send_manscdp(body)
            self.events.record("response_sent", cmd=cmd, sn=sn, index=i, count=len(bodies), status=r.status if r else None)

    def _item(self, b, ch, event=None):
        kids = [b.el("DeviceID", ch["DeviceID"])]
        if event:
            kids.append(b.el("Event", event))
        for k, v in ch.items():
            if k != "DeviceID":
                kids.append(b.el(k, v))
        return b.el("Item", children=kids)

    def catalog_bodies(self, sn, channels, per_message, sum_num=None):
        """The catalog split over MESSAGEs: each with SumNum (the total) and DeviceList Num (this
        message's items)."""
        total = len(channels) if sum_num is None else sum_num
        chunks = [channels[i:i + per_message] for i in range(0, len(channels), per_message)] or [[]]
        out = []
        for chunk in chunks:
            b = self.body("Response")
            b.add(b.el("CmdType", "Catalog"), b.el("SN", sn), b.el("DeviceID", self.id), b.el("SumNum", total),
                  b.el("DeviceList", attrs={"Num": str(len(chunk))}, children=[self._item(b, c) for c in chunk]))
            out.append(b.encode())
        return out

    def make_records(self, channel_id, start, end, n=5):
        fmt = "%Y-%m-%dT%H:%M:%S"
        try:
            t0 = time.mktime(time.strptime(start, fmt)) if start else time.time() - 86400
        except ValueError:
            t0 = time.time() - 86400
        recs = []
        for i in range(n):
            s = t0 + i * 600
            recs.append({"DeviceID": channel_id, "Name": "Camera 01", "FilePath": f"/rec/{i}.mp4", "Address": "Address 1",
                         "StartTime": time.strftime(fmt, time.localtime(s)), "EndTime": time.strftime(fmt, time.localtime(s + 300)),
                         "Secrecy": "0", "Type": "time", "FileSize": str(1000000 + i)})
        return recs

    def record_bodies(self, sn, did, start, end):
        recs = self.records if self.records is not None else self.make_records(did, start, end)
        recs = list(reversed(recs))  # newest first: the platform merges and sorts
        per = self.records_per_message
        chunks = [recs[i:i + per] for i in range(0, len(recs), per)] or [[]]
        out = []
        for chunk in chunks:
            b = self.body("Response")
            items = [b.el("Item", children=[b.el(k, v) for k, v in r.items()]) for r in chunk]
            b.add(b.el("CmdType", "RecordInfo"), b.el("SN", sn), b.el("DeviceID", did), b.el("Name", self.name),
                  b.el("SumNum", len(recs)), b.el("RecordList", attrs={"Num": str(len(chunk))}, children=items))
            out.append(b.encode())
        return out

    async def send_unsolicited_catalog(self, channels=None, sn=None):
        """Quirk: a partial catalog nobody asked for (SumNum says more than it carries)."""
        channels = self.channels[:1] if channels is None else channels
        sn = sn if sn is not None else self.next_sn() + 100000
        b = self.catalog_bodies(sn, channels, len(channels) or 1, sum_num=len(self.channels))[0]
        r = await self.send_manscdp(b)
        return r.status if r else None

    # -- control -----------------------------------------------------------------------------------
    RESPONSE_CONTROLS = ("RecordCmd", "GuardCmd", "AlarmCmd", "HomePosition", "DeviceUpgrade")

    def _on_control(self, m, addr, root, ev):
        cmd = ev["cmd"]
        self.events.record("message", **ev)
        if cmd == "DeviceControl":
            ptz = root.find("PTZCmd")
            if ptz is not None:
                b, why = check_ptz_cmd(ptz.text)
                if b is None:  # answered first: a test woken by the event may look at what was sent
                    self.respond(m, addr, 400, f"Bad Request ({why})")
                    self.events.record("ptz_refused", reason=why, text=ptz.text, sn=ev["sn"])
                    return
                self.respond(m, addr, 200)
                self.events.record("ptz", bytes=b, hex=b.hex().upper(), sn=ev["sn"], device_id=ev["device_id"], **describe_ptz(b))
                return
            # IFameCmd: GB/T 28181-2016 A.2.3's own spelling of the I-frame request; IFrameCmd also seen
            known = ("TeleBoot", "RecordCmd", "GuardCmd", "AlarmCmd", "IFrameCmd", "IFameCmd", "DragZoomIn", "DragZoomOut",
                     "HomePosition", "PTZPreciseCtrl", "FormatSDCard", "TargetTrack", "DeviceUpgrade")
            present = [c.tag for c in root if c.tag in known]
            if not present:
                self.events.record("control_refused", reason="no known control element", sn=ev["sn"])
                return self.respond(m, addr, 400, "Bad Request (no control element)")
            self.respond(m, addr, 200)
            for tag in present:
                el = root.find(tag)
                value = (el.text or "").strip() if len(el) == 0 else {c.tag: (c.text or "").strip() for c in el}
                self.events.record("control", name=tag, value=value, sn=ev["sn"], device_id=ev["device_id"])
            if any(t in self.RESPONSE_CONTROLS for t in present) and "DeviceControl" not in self.silent:
                asyncio.get_running_loop().create_task(self._control_response("DeviceControl", ev))
            return
        if cmd == "DeviceConfig":
            present = [c for c in root if c.tag not in ("CmdType", "SN", "DeviceID")]
            if not present:
                self.events.record("control_refused", reason="DeviceConfig without a config element", sn=ev["sn"])
                return self.respond(m, addr, 400, "Bad Request (no config element)")
            snap = root.find("SnapShotConfig")
            if snap is not None:
                sid = child_text(snap, "SessionID", "")
                if not re.fullmatch(r"[A-Za-z0-9-]{32,128}", sid):
                    self.events.record("control_refused", reason="SessionID must be 32-128 [A-Za-z0-9-]", sn=ev["sn"])
                    return self.respond(m, addr, 400, "Bad Request (SessionID)")
            self.respond(m, addr, 200)
            for el in present:
                self.events.record("config", name=el.tag, value={c.tag: (c.text or "").strip() for c in el}, sn=ev["sn"])
            if "DeviceConfig" not in self.silent:
                asyncio.get_running_loop().create_task(self._control_response("DeviceConfig", ev, snap))
            return
        self.events.record("control_refused", reason="unknown control " + cmd, sn=ev["sn"])
        self.respond(m, addr, 400, "Bad Request (unsupported control " + cmd + ")")

    async def _control_response(self, cmd, ev, snap=None):
        b = self.body("Response")
        b.add(b.el("CmdType", cmd), b.el("SN", ev["sn"]), b.el("DeviceID", ev["device_id"]), b.el("Result", self.response_result))
        r = await self.send_manscdp(b.encode())
        self.events.record("response_sent", cmd=cmd, sn=ev["sn"], index=0, count=1, status=r.status if r else None)
        if snap is not None and self.snapshot_upload and self.response_result == "OK":
            await self._snapshots(ev["device_id"], snap)

    # -- snapshots (图像抓拍) ------------------------------------------------------------------------
    @staticmethod
    def jpeg(tag):
        """A small well-formed JPEG-framed image (SOI, a COM segment naming it, EOI)."""
        com = tag.encode()[:60000]
        return b"\xff\xd8" + b"\xff\xfe" + (len(com) + 2).to_bytes(2, "big") + com + b"\xff\xd9"

    async def _snapshots(self, target, snap):
        """After a SnapShotConfig: SnapNum images, Interval seconds apart, each an HTTP POST of
        image/jpeg to UploadURL; then Notify/UploadSnapShotFinished with the SessionID and the
        file IDs (the document's 抓拍流程)."""
        num = int(child_text(snap, "SnapNum", "1") or 1)
        interval = float(child_text(snap, "Interval", "1") or 1)
        url = child_text(snap, "UploadURL", "")
        sid = child_text(snap, "SessionID", "")
        loop = asyncio.get_running_loop()
        ids = []
        for i in range(max(1, min(num, 10))):
            if i:
                await asyncio.sleep(interval)  # the device's own shot interval
            fid = f"{target}{time.strftime('%Y%m%d%H%M%S')}{i:02d}"
            data = self.jpeg(f"{target} {sid} {i}")

            def post(fid=fid, data=data):
                if self.snapshot_form == "multipart":  # a form upload naming the file by its SnapShotFileID
                    boundary = "----gbsim" + secrets.token_hex(8)
                    payload = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{fid}.jpg"\r\n'
                               f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
                    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
                else:  # the image as the body
                    payload, headers = data, {"Content-Type": "image/jpeg"}
                req = urllib.request.Request(url, data=payload, method="POST", headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        return resp.status, resp.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()
                except OSError as e:
                    return None, str(e).encode()
            status, body = await loop.run_in_executor(None, post)
            self.events.record("snapshot_uploaded", index=i, file_id=fid, status=status, session_id=sid, bytes=len(data),
                               reply=body[:200])
            if status is not None and 200 <= status < 300:
                ids.append(fid)
        b = self.body("Notify")
        b.add(b.el("CmdType", "UploadSnapShotFinished"), b.el("SN", self.next_sn()), b.el("DeviceID", target),
              b.el("SessionID", sid), b.el("SnapShotList", children=[b.el("SnapShotFileID", f) for f in ids]))
        r = await self.send_manscdp(b.encode())
        self.events.record("snapshot_finished", status=r.status if r else None, session_id=sid, file_ids=ids)

    # -- alarms ------------------------------------------------------------------------------------
    def alarm_body(self, sn, device_id=None, priority=1, method=5, description="视频动检", alarm_type=2, event_type=None,
                   root="Notify"):
        b = self.body(root)
        info = [b.el("AlarmType", alarm_type)]
        if event_type is not None:
            info.append(b.el("AlarmTypeParam", children=[b.el("EventType", event_type)]))
        b.add(b.el("CmdType", "Alarm"), b.el("SN", sn), b.el("DeviceID", device_id or self.id), b.el("AlarmPriority", priority),
              b.el("AlarmMethod", method), b.el("AlarmTime", time.strftime("%Y-%m-%dT%H:%M:%S")),
              b.el("AlarmDescription", description), b.el("Info", children=info))
        return b.encode()

    async def send_alarm(self, device_id=None, **kw):
        """Notify/Alarm by MESSAGE (报警上告). Returns (sip status, sn); the platform's Response
        arrives later as the event alarm_response (sn=...)."""
        sn = self.next_sn()
        r = await self.send_manscdp(self.alarm_body(sn, device_id, **kw))
        code = r.status if r else None
        self.events.record("alarm_sent", status=code, sn=sn)
        return code, sn

    # -- subscriptions -----------------------------------------------------------------------------
    def _on_subscribe(self, m, addr):
        to_tag = header_param(m.get("to"), "tag")
        from_tag = header_param(m.get("from"), "tag")
        event = m.get("event")
        exp = m.get("expires", "3600").strip()
        if not exp.isdigit():
            return self.respond(m, addr, 400, "Bad Request (Expires)")
        expires = int(exp)
        if to_tag:  # refresh or unsubscribe in a dialog
            sub = self.dialogs.get((m.get("call-id"), to_tag))
            if sub is None:
                self.events.record("subscribe_unknown", call_id=m.get("call-id"))
                return self.respond(m, addr, 481)
            cseq, _ = m.cseq
            if cseq <= sub.remote_cseq:
                return self.respond(m, addr, 500, "CSeq out of order")
            sub.remote_cseq = cseq
            sub.expires_at = time.monotonic() + expires
            self.respond(m, addr, 200, headers=[("Expires", str(expires)), ("Event", event or sub.event), ("Contact", self.contact)])
            if expires == 0:
                del self.dialogs[(sub.call_id, sub.local_tag)]
                self.events.record("unsubscribed", cmd=sub.kind, call_id=sub.call_id)
                asyncio.get_running_loop().create_task(self._send_notify(sub, None, state="terminated;reason=timeout"))
            else:
                self.events.record("subscription_refreshed", cmd=sub.kind, expires=expires, call_id=sub.call_id)
            return
        if not event:
            return self.respond(m, addr, 489, "Bad Event (no Event header)")
        kind = None
        if m.body:
            try:
                root = decode_body(m.body, m.get("content-type", ""))
                kind = child_text(root, "CmdType")
                sn = child_text(root, "SN")
            except ValueError as e:
                self.events.record("bad_body", reason=str(e))
                return self.respond(m, addr, 400, "Bad Request (body)")
        else:
            sn = None
        ev_name = event.split(";")[0].strip().lower()
        if kind is None:
            kind = {"catalog": "Catalog", "alarm": "Alarm"}.get(ev_name)
        if kind not in ("Catalog", "Alarm", "MobilePosition") or ev_name not in ("catalog", "alarm", "presence", "mobileposition"):
            return self.respond(m, addr, 489, "Bad Event")
        contact = m.get_all("contact")
        local_tag = new_tag()
        sub = Subscription(kind=kind, event=event, call_id=m.get("call-id"), local_tag=local_tag, remote_tag=from_tag,
                           remote_uri=addr_uri(m.get("from")), local_uri=addr_uri(m.get("to")),
                           target=addr_uri(contact[0]) if contact else addr_uri(m.get("from")),
                           local_cseq=random.randrange(1, 1000), remote_cseq=m.cseq[0], sn=int(sn) if sn and sn.isdigit() else None,
                           expires_at=time.monotonic() + expires)
        self.respond(m, addr, 200, to_tag=local_tag,
                     headers=[("Expires", str(expires)), ("Event", event), ("Contact", self.contact)])
        if expires > 0:
            self.dialogs[(sub.call_id, local_tag)] = sub
        self.events.record("subscribed", cmd=kind, expires=expires, call_id=sub.call_id, event=event, sn=sub.sn)

    def subscription(self, kind="Catalog"):
        for s in self.dialogs.values():
            if s.kind == kind:
                return s
        return None

    async def _send_notify(self, sub, body, state=None):
        sub.local_cseq += 1
        left = max(0, int(sub.expires_at - time.monotonic()))
        hs = [("From", f"<{sub.local_uri}>;tag={sub.local_tag}"), ("To", f"<{sub.remote_uri}>;tag={sub.remote_tag}"),
              ("Call-ID", sub.call_id), ("CSeq", f"{sub.local_cseq} NOTIFY"), ("Event", sub.event),
              ("Subscription-State", state or f"active;expires={left}"), ("Contact", self.contact)]
        r = await self.request("NOTIFY", sub.target, hs, body or b"")
        code = r.status if r else None
        self.events.record("notify_sent", status=code, cmd=sub.kind, state=state or "active")
        return code

    async def notify_catalog(self, changes, sub=None):
        """Catalog change NOTIFY in the subscription dialog. changes: [(event, channel dict or
        id)] with event ADD/DEL/UPDATE/ON/OFF/VLOST/DEFECT; also applied to this device's own list.
        Returns the SIP status."""
        sub = sub or self.subscription("Catalog")
        if sub is None:
            raise RuntimeError("no catalog subscription")
        b = self.body("Notify")
        items = []
        for event, ch in changes:
            if isinstance(ch, str):
                ch = next((c for c in self.channels if c["DeviceID"] == ch), {"DeviceID": ch})
            items.append(self._item(b, ch if event in ("ADD", "UPDATE") else {"DeviceID": ch["DeviceID"]}, event))
            self._apply_change(event, ch)
        b.add(b.el("CmdType", "Catalog"), b.el("SN", self.next_sn()), b.el("DeviceID", self.id), b.el("SumNum", len(items)),
              b.el("DeviceList", attrs={"Num": str(len(items))}, children=items))
        return await self._send_notify(sub, b.encode())

    def _apply_change(self, event, ch):
        cur = next((c for c in self.channels if c["DeviceID"] == ch["DeviceID"]), None)
        if event == "ADD" and cur is None:
            self.channels.append(dict(ch))
        elif event == "DEL" and cur is not None:
            self.channels.remove(cur)
        elif event == "UPDATE" and cur is not None:
            cur.update(ch)
        elif event in ("ON", "OFF") and cur is not None:
            cur["Status"] = event

    async def notify_alarm(self, sub=None, **kw):
        """An alarm as a NOTIFY in an alarm subscription (事件通知)."""
        sub = sub or self.subscription("Alarm")
        if sub is None:
            raise RuntimeError("no alarm subscription")
        return await self._send_notify(sub, self.alarm_body(self.next_sn(), **kw))

    async def send_request(self, method, body=b"", headers=None, uri=None, content_type=None):
        """Any request to the platform (bad-input tests): a new transaction, the given headers
        (default From/To/Call-ID/CSeq filled in). Returns the final response (or None)."""
        hs = headers if headers is not None else [
            ("From", f"<{self.aor}>;tag={new_tag()}"), ("To", f"<sip:{self.platform_id}@{self.domain}>"),
            ("Call-ID", new_call_id()), ("CSeq", f"{random.randrange(1, 1000)} {method}")]
        return await self.request(method, uri or self.platform_uri, hs, body, content_type)


# ------------------------------------------------------------------------------------------------
# Simulator: many devices in one process


class Simulator:
    def __init__(self, server=("127.0.0.1", 5060), platform_id="34020000002000000001", domain=None, **device_defaults):
        self.server = tuple(server)
        self.platform_id = platform_id
        self.domain = domain or platform_id[:10]
        self.defaults = device_defaults
        self.devices = {}
        self.loop = None
        self.thread = None

    # -- background loop (tests) -------------------------------------------------------------------
    def start(self):
        ready = threading.Event()

        def main():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

        self.thread = threading.Thread(target=main, name="gb-sim", daemon=True)
        self.thread.start()
        ready.wait()
        return self

    def run(self, coro, timeout=120):
        """Runs a coroutine on the simulator's loop from another thread; returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *a, **kw):
        """Runs a plain function on the loop (things that touch loop state, e.g. start_keepalive)."""
        async def wrap():
            return fn(*a, **kw)
        return self.run(wrap())

    def stop(self):
        if self.loop is None:
            return
        async def close_all():
            for d in self.devices.values():
                d.close()
            await asyncio.sleep(0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.run(close_all(), 30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop = None

    # -- devices -----------------------------------------------------------------------------------
    async def new_device(self, device_id, password, **kw):
        d = Device(self, device_id, password, **dict(self.defaults, **kw))
        await d.open()
        self.devices[device_id] = d
        return d

    def add_device(self, device_id, password, **kw):
        """Creates and opens a device (thread-safe; blocks until its socket is open)."""
        return self.run(self.new_device(device_id, password, **kw))

    def add_devices(self, n, password, prefix="3402000000132", start=1, **kw):
        """n devices with IDs prefix + serial (20 digits)."""
        async def make():
            out = []
            for i in range(start, start + n):
                did = prefix + str(i).zfill(20 - len(prefix))
                out.append(await self.new_device(did, password, **kw))
            return out
        return self.run(make())

    async def register_all(self, devices, concurrency=100, keepalive=False):
        """Registers devices concurrently; returns {device_id: status}."""
        sem = asyncio.Semaphore(concurrency)
        out = {}

        async def one(d):
            async with sem:
                out[d.id] = await d.register()
                if keepalive and out[d.id] == 200:
                    d.start_keepalive()
        await asyncio.gather(*(one(d) for d in devices))
        return out


# ------------------------------------------------------------------------------------------------
# CLI


def _cli():
    ap = argparse.ArgumentParser(description="GB/T 28181 device simulator")
    ap.add_argument("--server", default="127.0.0.1:5060", help="platform SIP address ip:port")
    ap.add_argument("--platform-id", default="34020000002000000001")
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--prefix", default="3402000000132", help="device ID prefix (serial fills to 20 digits)")
    ap.add_argument("--password", default="12345678")
    ap.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    ap.add_argument("--expires", type=int, default=3600)
    ap.add_argument("--keepalive", type=float, default=60, help="keepalive interval in seconds (0: none)")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--charset", default="gb18030")
    ap.add_argument("--quirk", action="append", default=[], help="utf8_as_gb2312, raw_amp, bang_comments")
    ap.add_argument("--duration", type=float, default=0, help="seconds to run (0: until interrupted)")
    a = ap.parse_args()
    host, _, port = a.server.rpartition(":")

    async def main():
        sim = Simulator(server=(host, int(port)), platform_id=a.platform_id)
        devs = []
        for i in range(1, a.devices + 1):
            did = a.prefix + str(i).zfill(20 - len(a.prefix))
            devs.append(await sim.new_device(did, a.password, transport=a.transport, expires=a.expires, channels=a.channels,
                                             charset=a.charset, quirks=a.quirk, keepalive_interval=a.keepalive or 60,
                                             event_limit=1000))
        res = await sim.register_all(devs, keepalive=a.keepalive > 0)
        ok = sum(1 for v in res.values() if v == 200)
        print(json.dumps({"registered": ok, "failed": {k: v for k, v in res.items() if v != 200}}), flush=True)
        try:
            if a.duration:
                await asyncio.sleep(a.duration)
            else:
                await asyncio.Event().wait()
        finally:
            for d in devs:
                d.close()
        return 0 if ok == len(devs) else 1

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(_cli())
