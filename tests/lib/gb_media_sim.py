"""The media side of the GB/T 28181 device simulator (tests/lib/gb_device_sim.py), written from the
document (../shared/seeds/002_db30924816719358.txt: 媒体传输方式, 实时预览, 回放/下载 with MANSRTSP,
断流, 语音广播).

Media: H.264 (libx264) or H.265 (libx265) + G.711A (pcm_alaw) encoded by ffmpeg, muxed to PS and
packetized to RTP by the sdk (build/tools/media_ps_tool packetize: no second muxer here), then
streamed by the device paced by the RTP timestamps:
- over UDP, TCP passive (the platform's offer says a=setup:passive: the device connects to it) and
  TCP active (a=setup:active: the device listens and answers with a=setup:passive), RFC 4571
  framing on TCP;
- an event per frame sent ("media_frame": call_id, n, track v|a, key, loop, index), "media_end" at the end;
- Play loops the file (live: continuous sequence numbers and timestamps) until BYE; Playback and
  Download end with MESSAGE Notify/MediaStatus NotifyType 121 (Download at a=downloadspeed);
- MANSRTSP over INFO: PLAY (resume, Scale), PAUSE (sending stops), TEARDOWN;
- device-side BYE (断流): dev.media.hangup(call_id); a stall without BYE: dev.media.stall(call_id);
- broadcast: Notify/Broadcast answered with 200 + Response OK, then the device INVITEs the
  platform for audio (PS or plain PCMA as configured) and checks what arrives is G.711A.

Quirks (the device's `quirks` set):
  "ssrc_mismatch"   RTP SSRC differs from the y= of the answer
  "ssrc_zero"       RTP SSRC 0
  "answer_ssrc"     the answer's y= differs from the offer's (RTP uses the answer's)
  "tcp_bad_length"  a lying RFC 4571 length once mid-stream (TCP)
  "udp_loss"        5 % of the UDP packets dropped (seeded, reproducible)
  "media_status_from_device"  MediaStatus 121 names the device (not the dialog's channel URI)
                    in its From (as many devices do; RFC 3261 wants the dialog's URI)

Expected frames: MediaAssets.video_frames (the ES cut at its AUDs, 4-byte start codes: the
media frame convention) with frame_hash() per frame, for byte-identity checks against what a
consumer got.
"""
import asyncio
import atexit
import hashlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading

BUILD = os.environ.get("JN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
PS_TOOL = os.path.join(BUILD, "tools", "media_ps_tool")

# ------------------------------------------------------------------------------------------------
# Assets: encoded once per (codec, seconds) per process

_assets = {}
_assets_lock = threading.Lock()


def _ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def four_byte_start_codes(es):
    return re.sub(rb"(?<!\x00)\x00\x00\x01", b"\x00\x00\x00\x01", es)


def split_nals(es):
    """Annex-B -> NAL unit payloads (without start codes)."""
    starts = [m.end() for m in re.finditer(rb"\x00\x00\x01", es)]
    out = []
    for i, s in enumerate(starts):
        e = len(es) if i + 1 == len(starts) else starts[i + 1] - 3
        nal = es[s:e]
        if i + 1 < len(starts):
            nal = nal.rstrip(b"\x00") if nal.endswith(b"\x00") else nal
        out.append(nal)
    return out


def split_access_units(es, codec):
    """The ES cut at its AUDs, every NAL with a 4-byte start code (as media_ps_tool frames it)."""
    frames = []
    for nal in split_nals(es):
        t = (nal[0] >> 1) & 0x3F if codec == "h265" else nal[0] & 0x1F
        aud = t == 35 if codec == "h265" else t == 9
        if aud or not frames:
            frames.append(b"")
        frames[-1] += b"\x00\x00\x00\x01" + nal
    return frames


def frame_hash(data):
    return hashlib.sha1(data).hexdigest()[:16]


class MediaAssets:
    """ffmpeg-encoded video ES + G.711A, and the sdk's PS/RTP packets of them."""

    def __init__(self, vcodec="h264", seconds=2, fps=25, size="320x240"):
        self.vcodec, self.seconds, self.fps = vcodec, seconds, fps
        self.dir = tempfile.mkdtemp(prefix=f"jn-gbsim-{vcodec}-")
        atexit.register(shutil.rmtree, self.dir, True)
        d = self.dir
        src = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}", "-t", str(seconds)]
        if vcodec == "h264":
            _ffmpeg(*src, "-c:v", "libx264", "-g", str(fps), "-bf", "0", "-x264-params", "repeat-headers=1",
                    "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", f"{d}/v.es")
        elif vcodec == "h265":
            _ffmpeg(*src, "-c:v", "libx265", "-x265-params",
                    f"keyint={fps}:bframes=0:repeat-headers=1:log-level=error",
                    "-bsf:v", "hevc_metadata=aud=insert", "-f", "hevc", f"{d}/v.es")
        else:
            raise ValueError("vcodec must be h264 or h265")
        _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", str(seconds),
                "-c:a", "pcm_alaw", "-f", "alaw", f"{d}/a.alaw")
        subprocess.run([PS_TOOL, "packetize", "--vcodec", vcodec, "--video", f"{d}/v.es", "--acodec", "pcma",
                        "--audio", f"{d}/a.alaw", "--rtp-out", f"{d}/ps.rtp", "--index-out", f"{d}/ps.idx"],
                       check=True, capture_output=True)
        self.es = open(f"{d}/v.es", "rb").read()
        self.alaw = open(f"{d}/a.alaw", "rb").read()
        self.video_frames = split_access_units(self.es, vcodec)
        self.video_hashes = [frame_hash(f) for f in self.video_frames]
        raw = open(f"{d}/ps.rtp", "rb").read()
        packets, off = [], 0
        while off < len(raw):
            n = (raw[off] << 8) | raw[off + 1]
            packets.append(raw[off + 2:off + 2 + n])
            off += 2 + n
        # frames: (kind "v"/"a", keyframe, [packets]) in sending order
        self.frames = []
        for line in open(f"{d}/ps.idx").read().splitlines():
            parts = line.split()
            n = int(parts[1])
            self.frames.append((parts[0], "k" in parts[2:], packets[:n]))
            packets = packets[n:]
        assert not packets and sum(1 for f in self.frames if f[0] == "v") == len(self.video_frames)
        self.ps_bytes = sum(len(p) - 12 for f in self.frames for p in f[2])

    @property
    def duration_ts(self):
        """90 kHz ticks of one pass of the file (what the next loop adds to the timestamps)."""
        return self.seconds * 90000

    @staticmethod
    def get(vcodec="h264", seconds=2):
        with _assets_lock:
            key = (vcodec, seconds)
            if key not in _assets:
                _assets[key] = MediaAssets(vcodec, seconds)
            return _assets[key]


# ------------------------------------------------------------------------------------------------
# SDP (the document's F.2 fields: y= SSRC, f= media description, a=setup/connection, u=, t=)


def parse_sdp(text):
    s = {"media": [], "attrs": [], "y": None, "f": None, "c": None, "s": None, "u": None, "t": None}
    cur = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if len(line) < 2 or line[1] != "=":
            continue
        k, v = line[0], line[2:].strip()
        if k == "m":
            parts = v.split()
            cur = {"type": parts[0], "port": int(parts[1]), "proto": parts[2], "fmts": parts[3:], "attrs": []}
            s["media"].append(cur)
        elif k == "a":
            (cur["attrs"] if cur else s["attrs"]).append(v)
        elif k == "c" and cur is not None:
            cur["c"] = v
        elif k in s and s[k] is None:
            s[k] = v
    return s


def sdp_attr(sdp, media, name):
    for a in media.get("attrs", []) + sdp["attrs"]:
        if a == name or a.startswith(name + ":"):
            return a[len(name) + 1:] if ":" in a else ""
    return None


# ------------------------------------------------------------------------------------------------
# RTP / G.711


def rtp_header(seq, ts, ssrc, pt, marker):
    return bytes([0x80, (0x80 if marker else 0) | pt, (seq >> 8) & 0xFF, seq & 0xFF, (ts >> 24) & 0xFF,
                  (ts >> 16) & 0xFF, (ts >> 8) & 0xFF, ts & 0xFF, (ssrc >> 24) & 0xFF, (ssrc >> 16) & 0xFF,
                  (ssrc >> 8) & 0xFF, ssrc & 0xFF])


def parse_rtp(p):
    if len(p) < 12 or p[0] >> 6 != 2:
        return None
    cc = p[0] & 0x0F
    off = 12 + 4 * cc
    if p[0] & 0x10:
        if len(p) < off + 4:
            return None
        off += 4 + 4 * ((p[off + 2] << 8) | p[off + 3])
    end = len(p)
    if p[0] & 0x20:
        end -= p[-1]
    if off > end:
        return None
    return {"pt": p[1] & 0x7F, "marker": bool(p[1] & 0x80), "seq": (p[2] << 8) | p[3],
            "ts": int.from_bytes(p[4:8], "big"), "ssrc": int.from_bytes(p[8:12], "big"), "payload": p[off:end]}


def alaw_to_linear(b):
    b ^= 0x55
    t = (b & 0x0F) << 4
    seg = (b & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if b & 0x80 else -t


def g711a_check(audio, sample_rate=8000):
    """What a valid G.711A stream of a tone looks like: the length (s), the RMS of the decoded
    samples (not silence) and whether it decodes to a signal at all."""
    samples = [alaw_to_linear(x) for x in audio]
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5 if samples else 0.0
    return {"bytes": len(audio), "seconds": len(audio) / sample_rate, "rms": rms, "peak": max(map(abs, samples), default=0)}


# ------------------------------------------------------------------------------------------------
# One media session (one INVITE dialog)


class _Tcp(asyncio.Protocol):
    def __init__(self, sess):
        self.sess, self.transport = sess, None

    def connection_made(self, transport):
        self.transport = transport
        self.sess._on_tcp(self)

    def data_received(self, data):
        self.sess._on_tcp_data(data)

    def connection_lost(self, exc):
        self.sess.dev.events.record("media_tcp_closed", call_id=self.sess.call_id)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, sess):
        self.sess = sess

    def datagram_received(self, data, addr):
        self.sess._on_udp_data(data, addr)


class MediaSession:
    def __init__(self, side, invite, offer, kind):
        self.side, self.dev = side, side.dev
        self.invite = invite
        self.call_id = invite.get("call-id")
        self.kind = kind  # Play / Playback / Download / Talk / Broadcast (device-initiated)
        self.offer = offer
        self.media = offer["media"][0]
        c = (self.media.get("c") or offer["c"] or "IN IP4 127.0.0.1").split()[-1]
        self.peer = (c, self.media["port"])
        proto = self.media["proto"].upper()
        setup = sdp_attr(offer, self.media, "setup")
        self.transport = "udp" if not proto.startswith("TCP") else ("tcp_passive" if setup in (None, "passive") else "tcp_active")
        self.offer_ssrc = int(offer["y"]) if offer["y"] and offer["y"].isdigit() else 0
        self.answer_ssrc = self.offer_ssrc
        q = self.dev.quirks
        if "answer_ssrc" in q:
            self.answer_ssrc = (self.offer_ssrc + 1) % 10 ** 10 or 1
        self.rtp_ssrc = self.answer_ssrc
        if "ssrc_mismatch" in q:
            self.rtp_ssrc = (self.answer_ssrc ^ 0x5A5A5A5A) & 0xFFFFFFFF
        if "ssrc_zero" in q:
            self.rtp_ssrc = 0
        self.assets = None  # encoded off the loop in open() (ffmpeg may take seconds the first time)
        self.scale = 1.0
        self.download_speed = 1.0
        ds = sdp_attr(offer, self.media, "downloadspeed")
        if kind == "Download" and ds and ds.replace(".", "").isdigit():
            self.download_speed = max(1.0, float(ds))
        self.playing = asyncio.Event()
        self.playing.set()
        self.stopped = False
        self.stalled = False
        self.local_port = None
        self.udp = None
        self.tcp = None
        self.server = None
        self.tcp_ready = asyncio.Event()
        self.task = None
        self.remote_tag = None
        self.local_tag = None
        self.remote_contact = None
        self.sent_frames = 0
        self.sent_video = 0
        self.rng = random.Random(0x28181)
        self.lost = 0

    async def open(self):
        loop = asyncio.get_running_loop()
        self.assets = await loop.run_in_executor(None, self.side.assets)
        if self.transport == "udp":
            self.udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.dev.local_ip, 0))
            self.local_port = self.udp.get_extra_info("sockname")[1]
        elif self.transport == "tcp_active":  # the platform connects: listen
            self.server = await loop.create_server(lambda: _Tcp(self), self.dev.local_ip, 0)
            self.local_port = self.server.sockets[0].getsockname()[1]
        else:  # tcp_passive: the device connects after the ACK; its port is chosen now
            import socket
            s = socket.socket()
            s.bind((self.dev.local_ip, 0))
            self.local_port = s.getsockname()[1]
            self._bound = s

    def answer_sdp(self):
        ip = self.dev.local_ip
        m = self.media
        proto = "RTP/AVP" if self.transport == "udp" else "TCP/RTP/AVP"
        lines = ["v=0", f"o={self.dev.id} 0 0 IN IP4 {ip}", f"s={self.kind}", f"c=IN IP4 {ip}",
                 f"t={self.offer['t'] or '0 0'}"]
        if m["type"] == "audio":
            lines += [f"m=audio {self.local_port} {proto} 8", "a=sendonly", "a=rtpmap:8 PCMA/8000"]
        else:
            lines += [f"m=video {self.local_port} {proto} 96", "a=sendonly", "a=rtpmap:96 PS/90000"]
        if self.transport != "udp":
            lines += ["a=setup:" + ("active" if self.transport == "tcp_passive" else "passive"), "a=connection:new"]
        if self.kind == "Download":
            lines.append(f"a=filesize:{self.assets.ps_bytes}")
        lines += [f"y={self.answer_ssrc:010d}",
                  # f=v/codec/resolution/fps/rate type/kbit/s a/codec/kbit/s/sample rate: 2 = H.264
                  # (the document); 5 = H.265 (GB/T 28181-2022's table, the document stops at 4)
                  f"f=v/{'5' if self.assets.vcodec == 'h265' else '2'}/5/25/1/2048a/1/8/1"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self._run())

    # -- TCP ---------------------------------------------------------------------------------------
    def _on_tcp(self, proto):
        if self.tcp is None:
            self.tcp = proto
            self.dev.events.record("media_tcp_connected", call_id=self.call_id, transport=self.transport)
            self.tcp_ready.set()

    def _on_tcp_data(self, data):
        pass  # RTCP over TCP is not expected; ignored

    def _on_udp_data(self, data, addr):
        pass  # RTCP / platform probes: ignored

    async def _connect(self):
        loop = asyncio.get_running_loop()
        sock = self._bound
        sock.setblocking(False)
        await loop.sock_connect(sock, self.peer)
        await loop.create_connection(lambda: _Tcp(self), sock=sock)

    def _send(self, pkt):
        if self.transport == "udp":
            if "udp_loss" in self.dev.quirks and self.rng.random() < 0.05:
                self.lost += 1
                return
            self.udp.sendto(pkt, self.peer)
        else:
            if self.tcp is None or self.tcp.transport.is_closing():
                raise ConnectionError("media TCP closed")
            self.tcp.transport.write(len(pkt).to_bytes(2, "big") + pkt)

    # -- streaming ---------------------------------------------------------------------------------
    async def _run(self):
        ev = self.dev.events
        loop = asyncio.get_running_loop()
        try:
            if self.transport == "tcp_passive":
                await self._connect()
            elif self.transport == "tcp_active":
                await asyncio.wait_for(self.tcp_ready.wait(), 10)
            a = self.assets
            loops = 0
            seq = self.rng.randrange(0, 65536)
            ts_base = self.rng.randrange(0, 1 << 31)
            n = 0
            t0 = None
            ts0 = None
            corrupt_at = -1
            if "tcp_bad_length" in self.dev.quirks:  # a video frame of several packets mid-file
                corrupt_at = next(i for i in range(len(a.frames) // 2, len(a.frames))
                                  if a.frames[i][0] == "v" and len(a.frames[i][2]) >= 2)
            while not self.stopped:
                for i, (kind, key, packets) in enumerate(a.frames):
                    if not self.playing.is_set():
                        await self.playing.wait()
                        t0 = None  # resume: a new time origin
                    if self.stopped or self.stalled:
                        return
                    first = packets[0]
                    ts = (int.from_bytes(first[4:8], "big") + loops * a.duration_ts) & 0xFFFFFFFF
                    if t0 is None:
                        t0, ts0 = loop.time(), ts
                    # signed: audio frames may carry timestamps a little before the last video frame's
                    d = ((ts - ts0 + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
                    due = t0 + d / 90000.0 / (self.scale * self.download_speed)
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing by the timestamps (the device's clock)
                    if self.stopped or self.stalled:
                        return
                    if not self.playing.is_set():  # paused while waiting: this frame goes on resume
                        await self.playing.wait()
                        t0, ts0 = loop.time(), ts
                        if self.stopped or self.stalled:
                            return
                    if loops == 0 and i == corrupt_at and self.transport != "udp":
                        # a length that lies: announces 1000 bytes more than follow
                        self.tcp.transport.write((len(first) + 1000).to_bytes(2, "big") + first)
                        ev.record("media_corrupted", call_id=self.call_id, n=n)
                    for p in packets:
                        pkt = rtp_header(seq & 0xFFFF, (ts_base + ts) & 0xFFFFFFFF, self.rtp_ssrc, p[1] & 0x7F,
                                         p[1] & 0x80) + p[12:]
                        seq += 1
                        self._send(pkt)
                    self.sent_frames += 1
                    if kind == "v":
                        self.sent_video += 1
                    ev.record("media_frame", call_id=self.call_id, n=n, track=kind, key=key, loop=loops,
                              index=i, corrupted=(loops == 0 and i == corrupt_at))
                    n += 1
                loops += 1
                if self.kind != "Play":
                    break
            ev.record("media_end", call_id=self.call_id, frames=self.sent_frames, video=self.sent_video, lost=self.lost)
            if self.kind in ("Playback", "Download") and not self.stopped:
                await self.side.media_status(self, 121)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError, asyncio.TimeoutError) as e:
            ev.record("media_error", call_id=self.call_id, error=repr(e))

    def close(self):
        self.stopped = True
        self.playing.set()
        if self.task and not self.task.done():
            self.task.cancel()
        if self.udp:
            self.udp.close()
        if self.tcp and self.tcp.transport:
            self.tcp.transport.close()
        if self.server:
            self.server.close()
        s = getattr(self, "_bound", None)
        if s is not None and self.tcp is None:
            s.close()


# ------------------------------------------------------------------------------------------------
# The device's media side: INVITE / ACK / BYE / INFO (MANSRTSP) / Broadcast


def parse_mansrtsp(body):
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    lines = [l for l in text.split("\n")]
    first = lines[0].split() if lines else []
    out = {"method": first[0].upper() if first else "", "headers": {}}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            out["headers"][k.strip().lower()] = v.strip()
    return out


class MediaSide:
    def __init__(self, dev, vcodec="h264", seconds=2, broadcast_audio="ps"):
        self.dev = dev
        self.vcodec, self.seconds = vcodec, seconds
        self.broadcast_audio = broadcast_audio  # "ps" or "plain": what the device asks the platform for
        self.sessions = {}  # call_id -> MediaSession
        self.refuse_invite = 0  # a SIP status: answer every INVITE with it (a device that cannot stream)
        self.broadcast_invites = True  # False: answer Notify/Broadcast but leave the audio INVITE to the test

    def assets(self):
        return MediaAssets.get(self.vcodec, self.seconds)

    def session(self, call_id=None):
        if call_id is None:
            return next(iter(self.sessions.values()))
        return self.sessions[call_id]

    # -- from the platform -------------------------------------------------------------------------
    def on_invite(self, m, addr):
        dev = self.dev
        if self.refuse_invite:
            dev.events.record("invite_refused", status=self.refuse_invite)
            return dev.respond(m, addr, self.refuse_invite)
        from gb_device_sim import header_param, addr_uri
        try:
            offer = parse_sdp(m.body.decode("utf-8", "replace"))
            if not offer["media"]:
                raise ValueError("no m= line")
        except (ValueError, IndexError) as e:
            dev.events.record("bad_invite", reason=str(e))
            return dev.respond(m, addr, 400, "Bad Request (SDP)")
        kind = offer["s"] or "Play"
        channel = m.uri
        if kind not in ("Play", "Playback", "Download", "Talk"):
            dev.events.record("bad_invite", reason="s=" + kind)
            return dev.respond(m, addr, 488, "Not Acceptable Here")
        sess = MediaSession(self, m, offer, kind)
        from gb_device_sim import uri_user
        sess.channel = uri_user(m.uri) or dev.id  # the request URI names the channel
        sess.remote_tag = header_param(m.get("from", ""), "tag")
        contact = m.get("contact")
        sess.remote_contact = addr_uri(contact) if contact else None
        self.sessions[sess.call_id] = sess
        dev.respond(m, addr, 100, "Trying")

        async def answer():
            await sess.open()
            sess.local_tag = dev._to_tag(m)
            dev.events.record("invite", call_id=sess.call_id, s=kind, transport=sess.transport, y=offer["y"],
                              f=offer["f"], u=offer["u"], t=offer["t"], subject=m.get("subject"), peer=sess.peer,
                              port=sess.local_port, uri=channel, answer_ssrc=sess.answer_ssrc, rtp_ssrc=sess.rtp_ssrc,
                              media=sess.media["type"])
            dev.respond(m, addr, 200, headers=[("Contact", dev.contact)], body=sess.answer_sdp(),
                        content_type="application/sdp", to_tag=sess.local_tag)
        asyncio.get_running_loop().create_task(answer())

    def on_ack(self, m):
        sess = self.sessions.get(m.get("call-id"))
        if sess is None or sess.task is not None:
            return
        self.dev.events.record("ack", call_id=sess.call_id)
        sess.start()

    def on_bye(self, m, addr):
        sess = self.sessions.pop(m.get("call-id"), None)
        if sess is None:
            self.dev.events.record("request", method="BYE")
            return self.dev.respond(m, addr, 481)
        sess.close()
        self.dev.events.record("bye_received", call_id=sess.call_id, frames=sess.sent_frames, video=sess.sent_video)
        self.dev.respond(m, addr, 200)

    def on_info(self, m, addr):
        sess = self.sessions.get(m.get("call-id"))
        if sess is None:
            self.dev.events.record("request", method="INFO")
            return self.dev.respond(m, addr, 481)
        r = parse_mansrtsp(m.body)
        h = r["headers"]
        scale = h.get("scale")
        if r["method"] == "PAUSE":
            sess.playing.clear()
        elif r["method"] == "PLAY":
            if scale:
                try:
                    sess.scale = max(0.0625, float(scale))
                except ValueError:
                    self.dev.events.record("bad_mansrtsp", reason="Scale " + scale)
                    return self.dev.respond(m, addr, 400, "Bad Request (Scale)")
            sess.playing.set()
        elif r["method"] == "TEARDOWN":
            sess.close()
        else:
            self.dev.events.record("bad_mansrtsp", reason="method " + r["method"])
            return self.dev.respond(m, addr, 400, "Bad Request (MANSRTSP method)")
        self.dev.events.record("mansrtsp", call_id=sess.call_id, method=r["method"], scale=scale,
                               range=h.get("range"), cseq=h.get("cseq"), frames=sess.sent_frames)
        self.dev.respond(m, addr, 200)

    # -- the device's own actions ------------------------------------------------------------------
    def _dialog_headers(self, sess, method):
        dev = self.dev
        inv = sess.invite
        to_hdr = inv.get("to")
        if "tag=" not in to_hdr:
            to_hdr = f"{to_hdr};tag={sess.local_tag}"
        dev.cseq += 1
        return [("From", to_hdr), ("To", inv.get("from")), ("Call-ID", sess.call_id),
                ("CSeq", f"{dev.cseq} {method}")]

    async def hangup(self, call_id=None):
        """断流: the device ends the session with a BYE; returns the final status."""
        sess = self.session(call_id)
        sess.close()
        self.sessions.pop(sess.call_id, None)
        uri = sess.remote_contact or self.dev.platform_uri
        r = await self.dev.request("BYE", uri, self._dialog_headers(sess, "BYE"))
        self.dev.events.record("bye_sent", call_id=sess.call_id, status=r.status if r else None)
        return r.status if r else None

    def stall(self, call_id=None):
        """Stops sending without a BYE (the platform's RTP timeout must notice)."""
        sess = self.session(call_id)
        sess.stalled = True
        self.dev.events.record("media_stalled", call_id=sess.call_id)

    async def media_status(self, sess, notify_type=121):
        b = self.dev.body("Notify")
        b.add(b.el("CmdType", "MediaStatus"), b.el("SN", self.dev.next_sn()), b.el("DeviceID", sess.channel),
              b.el("NotifyType", str(notify_type)))
        hs = self._dialog_headers(sess, "MESSAGE")
        if "media_status_from_device" in self.dev.quirks:  # the device's ID in From, not the dialog's channel URI
            hs[0] = ("From", f"<sip:{self.dev.id}@{self.dev.domain}>;tag={sess.local_tag}")
        uri = sess.remote_contact or self.dev.platform_uri
        r = await self.dev.request("MESSAGE", uri, hs, b.encode())
        self.dev.events.record("media_status", call_id=sess.call_id, notify_type=notify_type,
                               status=r.status if r else None)

    # -- broadcast (语音广播) -----------------------------------------------------------------------
    def on_broadcast(self, m, addr, root):
        """Notify/Broadcast: 200, then a Response OK, then an INVITE to the platform for audio."""
        from gb_device_sim import child_text
        dev = self.dev
        dev.respond(m, addr, 200)
        sn = child_text(root, "SN")
        source = child_text(root, "SourceID")
        target = child_text(root, "TargetID") or dev.id
        dev.events.record("broadcast", sn=int(sn), source=source, target=target)

        async def go():
            b = dev.body("Response")
            b.add(b.el("CmdType", "Broadcast"), b.el("SN", sn), b.el("DeviceID", target), b.el("Result", "OK"))
            r = await dev.send_manscdp(b.encode())
            dev.events.record("broadcast_response", status=r.status if r else None)
            if self.broadcast_invites:
                await self.invite_audio(source, target)
        asyncio.get_running_loop().create_task(go())

    async def invite_audio(self, source, target):
        """The device INVITEs the platform (s=Play, m=audio, recvonly) and collects what arrives:
        event "broadcast_audio" with its checks when the platform BYEs or 'collect' seconds of
        audio arrived."""
        from gb_device_sim import new_call_id, new_tag, new_branch, header_param
        dev = self.dev
        loop = asyncio.get_running_loop()
        got = {"packets": 0, "pts": set(), "ssrcs": set(), "payload": bytearray(), "bad": 0}

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                r = parse_rtp(data)
                if r is None:
                    got["bad"] += 1
                    return
                got["packets"] += 1
                got["pts"].add(r["pt"])
                got["ssrcs"].add(r["ssrc"])
                got["payload"] += r["payload"]

        udp, _ = await loop.create_datagram_endpoint(P, local_addr=(dev.local_ip, 0))
        port = udp.get_extra_info("sockname")[1]
        ssrc = f"{random.randrange(1, 10 ** 9):010d}"
        ps = self.broadcast_audio == "ps"
        lines = ["v=0", f"o={target} 0 0 IN IP4 {dev.local_ip}", "s=Play", f"c=IN IP4 {dev.local_ip}", "t=0 0",
                 f"m=audio {port} RTP/AVP {'96' if ps else '8'}", "a=recvonly",
                 "a=rtpmap:96 PS/90000" if ps else "a=rtpmap:8 PCMA/8000", f"y={ssrc}", "f=v/////a/1/8/1"]
        body = ("\r\n".join(lines) + "\r\n").encode()
        call_id, tag = new_call_id(), new_tag()
        dev.cseq += 1
        uri = f"sip:{source}@{dev.server[0]}:{dev.server[1]}"
        hs = [("From", f"<sip:{target}@{dev.domain}>;tag={tag}"), ("To", f"<sip:{source}@{dev.domain}>"),
              ("Call-ID", call_id), ("CSeq", f"{dev.cseq} INVITE"), ("Contact", dev.contact),
              ("Subject", f"{target}:{ssrc},{source}:0")]
        r = await dev.request("INVITE", uri, hs, body, content_type="application/sdp")
        status = r.status if r else None
        dev.events.record("broadcast_invite", status=status, call_id=call_id)
        if status != 200:
            udp.close()
            return status
        # ACK (a new transaction, same Call-ID/tags, CSeq number of the INVITE)
        to_hdr = r.get("to")
        ack = [("Via", dev._via(new_branch())), ("Max-Forwards", "70"), ("From", hs[0][1]), ("To", to_hdr),
               ("Call-ID", call_id), ("CSeq", f"{dev.cseq} ACK")]
        from gb_device_sim import encode_message
        self._broadcast = {"udp": udp, "got": got, "call_id": call_id, "ps": ps, "to": to_hdr, "from": hs[0][1],
                           "uri": uri}
        dev.send_raw(encode_message(f"ACK {uri} SIP/2.0", ack))
        dev.events.record("broadcast_acked", call_id=call_id, port=port)
        return status

    def broadcast_result(self):
        """What arrived so far for the broadcast, checked: G.711A (plain PT 8, or PS with the
        audio demuxed by media_ps_tool)."""
        b = self._broadcast
        got = b["got"]
        audio = bytes(got["payload"])
        res = {"packets": got["packets"], "pts": sorted(got["pts"]), "ssrcs": sorted(got["ssrcs"]), "bad": got["bad"]}
        if b["ps"]:
            import json
            with tempfile.TemporaryDirectory(prefix="jn-gbsim-bc-") as d:
                with open(f"{d}/in.ps", "wb") as f:
                    f.write(audio)
                out = subprocess.run([PS_TOOL, "demux", "--in", f"{d}/in.ps", "--out-audio", f"{d}/a.raw"],
                                     check=True, capture_output=True, text=True).stdout
                j = json.loads(out)
                res["acodec"] = j["acodec"]
                res["errors"] = j["errors"]
                audio = b""
                if os.path.exists(f"{d}/a.raw"):
                    with open(f"{d}/a.raw", "rb") as f:
                        audio = f.read()
        else:
            res["acodec"] = "pcma" if got["pts"] == {8} else "unknown"
        res.update(g711a_check(audio))
        return res

    def close(self):
        for s in list(self.sessions.values()):
            s.close()
        self.sessions.clear()
        b = getattr(self, "_broadcast", None)
        if b:
            b["udp"].close()
