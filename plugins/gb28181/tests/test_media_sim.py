"""The device simulator's media side (tests/lib/gb_media_sim.py) against a small platform written
here (raw SIP over UDP, RTP over UDP/TCP), before the gb28181 plugin has its media part: what the
simulator sends is what the flow tests will trust, so it is checked on its own first.

- INVITE s=Playback over UDP, TCP passive (the device connects), TCP active (the device listens),
  H.264 and H.265: the RTP payloads reassembled and demuxed by media_ps_tool give the ffmpeg ES
  byte for byte, the device records an event per frame, and ends with MediaStatus 121;
- MANSRTSP over INFO: PAUSE stops sending, PLAY with Scale resumes; the device's BYE (断流);
- quirks: SSRC 0, SSRC differs from y=, an answer y= that differs from the offer, 5 % UDP loss,
  a lying RFC 4571 length;
- broadcast: Notify/Broadcast -> 200 + Response OK + the device's INVITE for audio; PS-wrapped
  G.711A sent by the platform is found valid (a 440 Hz tone, not silence)."""
import json
import os
import queue
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "lib"))
from gb_device_sim import Simulator, encode_message, parse_message, new_branch, new_tag, new_call_id  # noqa: E402
from junction_test import wait_until as _wait_until  # noqa: E402
from gb_media_sim import PS_TOOL, MediaAssets, four_byte_start_codes, parse_rtp, parse_sdp, rtp_header  # noqa: E402

PLATFORM = "34020000002000000001"
DEV = "34020000001320000001"
CH = "34020000001310000001"


class FakePlatform:
    """Just enough of a platform: sends INVITE/ACK/INFO/BYE/MESSAGE, answers the device's
    requests with 200 (an INVITE with an SDP answer for audio), keeps what it received."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.responses = queue.Queue()
        self.requests = queue.Queue()
        self.audio_port = None  # set before a broadcast: where the platform's audio comes from
        self.cseq = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            m = parse_message(data)
            if m.is_request:
                if m.method != "ACK":
                    body, hs = b"", []
                    if m.method == "INVITE":
                        sdp = parse_sdp(m.body.decode())
                        body = (f"v=0\r\no={PLATFORM} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                f"m=audio {self.audio_port} RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n"
                                f"y={sdp['y']}\r\n").encode()
                        hs = [("Content-Type", "application/sdp"), ("Contact", f"<sip:{PLATFORM}@127.0.0.1:{self.port}>")]
                    self.reply(m, addr, 200, hs, body)
                self.requests.put((m, addr))
            else:
                self.responses.put(m)

    def reply(self, m, addr, status, extra=(), body=b""):
        hs = [(n, v) for n, v in m.headers if n.lower() in ("via", "from", "call-id", "cseq")]
        to = m.get("to")
        if "tag=" not in to:
            to += ";tag=" + new_tag()
        hs.append(("To", to))
        self.sock.sendto(encode_message(f"SIP/2.0 {status} OK", hs + list(extra), body), addr)

    def send(self, method, uri, dest, hs, body=b"", ctype=None):
        h = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={new_branch()}"), ("Max-Forwards", "70")] + hs
        if body:
            h.append(("Content-Type", ctype))
        self.sock.sendto(encode_message(f"{method} {uri} SIP/2.0", h, body), dest)

    def final(self, timeout=10):
        while True:
            r = self.responses.get(timeout=timeout)
            if r.status >= 200:
                return r

    def request(self, method, timeout=10):
        while True:
            m, addr = self.requests.get(timeout=timeout)
            if m.method == method:
                return m, addr

    def close(self):
        self.sock.close()


class Call:
    """The platform's side of one INVITE dialog and its media receiver."""

    def __init__(self, plat, dev_addr, s="Playback", transport="udp", y="0100000001", extra_sdp=()):
        self.plat, self.dev_addr = plat, dev_addr
        self.packets = []  # parsed RTP
        self.resyncs = 0  # RFC 4571 resyncs after a lying length (TCP)
        self.last_seq = None
        self.lock = threading.Lock()
        self.call_id, self.tag = new_call_id(), new_tag()
        self.uri = f"sip:{CH}@127.0.0.1:{dev_addr[1]}"
        self.transport = transport
        if transport == "udp":
            self.msock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.msock.bind(("127.0.0.1", 0))
            threading.Thread(target=self._read_udp, daemon=True).start()
        elif transport == "tcp_passive":  # the platform listens
            self.msock = socket.socket()
            self.msock.bind(("127.0.0.1", 0))
            self.msock.listen(1)
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            self.msock = socket.socket()
            self.msock.bind(("127.0.0.1", 0))
        port = self.msock.getsockname()[1]
        proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
        lines = ["v=0", f"o={PLATFORM} 0 0 IN IP4 127.0.0.1", f"s={s}", f"u={CH}:0" if s != "Play" else None,
                 "c=IN IP4 127.0.0.1", "t=0 0" if s == "Play" else "t=1700000000 1700000600",
                 f"m=video {port} {proto} 96 98", "a=recvonly", "a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000"]
        if transport != "udp":
            lines += ["a=setup:" + ("passive" if transport == "tcp_passive" else "active"), "a=connection:new"]
        lines += list(extra_sdp) + [f"y={y}", "f="]
        self.offer_y = y
        body = ("\r\n".join(l for l in lines if l) + "\r\n").encode()
        self.from_hdr = f"<sip:{PLATFORM}@3402000000>;tag={self.tag}"
        hs = [("From", self.from_hdr), ("To", f"<sip:{CH}@3402000000>"), ("Call-ID", self.call_id),
              ("CSeq", "1 INVITE"), ("Contact", f"<sip:{PLATFORM}@127.0.0.1:{plat.port}>"),
              ("Subject", f"{CH}:{y},{PLATFORM}:0")]
        plat.send("INVITE", self.uri, dev_addr, hs, body, "application/sdp")
        r = plat.final()
        assert r.status == 200, r.status
        self.to_hdr = r.get("to")
        self.answer = parse_sdp(r.body.decode())
        if transport == "tcp_active":  # the platform connects to the device's port
            self.msock.connect(("127.0.0.1", self.answer["media"][0]["port"]))
            threading.Thread(target=self._read_tcp, args=(self.msock,), daemon=True).start()
        self.cseq = 1
        plat.send("ACK", self.uri, dev_addr, self._dialog("ACK", same=True))

    def _dialog(self, method, same=False):
        if not same:
            self.cseq += 1
        return [("From", self.from_hdr), ("To", self.to_hdr), ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}")]

    def _add(self, data):
        r = parse_rtp(data)
        with self.lock:
            self.packets.append(r)

    def _read_udp(self):
        while True:
            try:
                data = self.msock.recv(65536)
            except OSError:
                return
            self._add(data)

    def _accept(self):
        try:
            c, _ = self.msock.accept()
        except OSError:
            return
        self._read_tcp(c)

    def _read_tcp(self, c):
        buf = b""
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                return
            if not d:
                return
            buf += d
            while len(buf) >= 2:
                n = (buf[0] << 8) | buf[1]
                if len(buf) < 2 + n:
                    break
                r = parse_rtp(buf[2:2 + n])
                nxt = buf[2 + n:2 + n + 6]
                expect = None if self.last_seq is None else (self.last_seq + 1) & 0xFFFF
                ok = r is not None and (expect is None or r["seq"] == expect)
                if ok and len(nxt) == 6:  # what follows must be the next packet's length + RTP header
                    ok = nxt[2] == 0x80 and ((nxt[4] << 8) | nxt[5]) == (r["seq"] + 1) & 0xFFFF
                if not ok:
                    # the length lied: find the next frame whose RTP sequence continues ours
                    self.resyncs += 1
                    found = None
                    for k in range(1, len(buf) - 6):
                        if buf[k + 2] == 0x80 and buf[k + 3] & 0x7F == 96:
                            sq = (buf[k + 4] << 8) | buf[k + 5]
                            if self.last_seq is not None and 0 < (sq - self.last_seq) & 0xFFFF <= 3:
                                found = k
                                break
                    buf = buf[found:] if found is not None else buf[-6:]
                    continue
                buf = buf[2 + n:]
                self.last_seq = r["seq"]
                with self.lock:
                    self.packets.append(r)

    def info(self, text):
        self.plat.send("INFO", self.uri, self.dev_addr, self._dialog("INFO"), text.encode(), "Application/MANSRTSP")
        return self.plat.final().status

    def bye(self):
        self.plat.send("BYE", self.uri, self.dev_addr, self._dialog("BYE"))
        return self.plat.final().status

    def count(self):
        with self.lock:
            return len(self.packets)

    def es(self):
        """The received RTP in sequence order (RFC 3550 wrap-aware), payloads -> PS -> demux."""
        with self.lock:
            pk = list(self.packets)
        base = pk[0]["seq"]
        pk.sort(key=lambda p: (p["seq"] - base) & 0xFFFF)
        with tempfile.TemporaryDirectory(prefix="jn-gbsim-rx-") as d:
            with open(f"{d}/in.ps", "wb") as f:
                for p in pk:
                    f.write(p["payload"])
            out = json.loads(subprocess.run([PS_TOOL, "demux", "--in", f"{d}/in.ps", "--out-video", f"{d}/v.es",
                                             "--out-audio", f"{d}/a.raw"], check=True, capture_output=True,
                                            text=True).stdout)
            for key, name in (("video", "v.es"), ("audio", "a.raw")):
                out[key] = b""
                if os.path.exists(f"{d}/{name}"):
                    with open(f"{d}/{name}", "rb") as f:
                        out[key] = f.read()
        return out

    def close(self):
        self.msock.close()


def wait_until(fn, timeout=15):
    return _wait_until(fn, timeout=timeout, what="condition")


class MediaSimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        MediaAssets.get("h264", 2)  # encoded once here, not while a call waits for its answer
        MediaAssets.get("h265", 2)

    def setUp(self):
        self.plat = FakePlatform()
        self.sim = Simulator(server=("127.0.0.1", self.plat.port), platform_id=PLATFORM).start()
        self.calls = []

    def tearDown(self):
        for c in self.calls:
            c.close()
        self.sim.stop()
        self.plat.close()

    def device(self, **kw):
        dev = self.sim.add_device(DEV, "x", **kw)
        return dev, ("127.0.0.1", dev.local_port)

    def call(self, dev_addr, **kw):
        c = Call(self.plat, dev_addr, **kw)
        self.calls.append(c)
        return c

    def playback(self, vcodec, transport):
        dev, addr = self.device(media_codec=vcodec)
        a = MediaAssets.get(vcodec, 2)
        c = self.call(addr, transport=transport)
        inv = dev.wait("invite")
        self.assertEqual((inv["s"], inv["transport"], inv["y"]), ("Playback", transport, "0100000001"))
        self.assertEqual(c.answer["y"], "0100000001")
        if transport != "udp":
            self.assertEqual(c.answer["media"][0]["proto"], "TCP/RTP/AVP")
        end = dev.wait("media_end", call_id=c.call_id)
        total = sum(len(f[2]) for f in a.frames)
        self.assertEqual(end["frames"], len(a.frames))
        self.assertEqual(len(dev.find("media_frame", call_id=c.call_id)), len(a.frames), "an event per frame")
        m, _ = self.plat.request("MESSAGE")
        self.assertIn(b"<NotifyType>121</NotifyType>", m.body)
        self.assertEqual(m.get("call-id"), c.call_id, "MediaStatus in the dialog")
        wait_until(lambda: c.count() == total)
        self.assertEqual({p["ssrc"] for p in c.packets}, {100000001})
        out = c.es()
        self.assertEqual(out["errors"], {})
        self.assertEqual(out["vcodec"], vcodec)
        self.assertEqual(out["video_frames"], len(a.video_frames))
        self.assertEqual(out["video"], four_byte_start_codes(a.es))
        self.assertEqual(out["acodec"], "pcma")
        self.assertEqual(out["audio"], a.alaw)
        self.assertEqual(c.bye(), 200)
        dev.wait("bye_received", call_id=c.call_id)

    def test_playback_udp_h264(self):
        self.playback("h264", "udp")

    def test_playback_tcp_passive_h264(self):
        self.playback("h264", "tcp_passive")

    def test_playback_tcp_active_h265(self):
        self.playback("h265", "tcp_active")

    def test_playback_udp_h265(self):
        self.playback("h265", "udp")

    def test_pause_play_scale_and_device_bye(self):
        dev, addr = self.device()
        c = self.call(addr, s="Play")
        dev.wait("media_frame", call_id=c.call_id, n=10)
        self.assertEqual(c.info("PAUSE RTSP/1.0\r\nCSeq: 2\r\nPauseTime: now\r\n"), 200)
        p = dev.wait("mansrtsp", method="PAUSE")
        # paused: no frame goes out (25 fps would send ~15 in this window)
        with self.assertRaises(AssertionError):
            dev.wait("media_frame", timeout=0.6, since=p["i"] + 1, call_id=c.call_id)
        self.assertEqual(c.info("PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 2.0\r\nRange: npt=now-\r\n"), 200)
        q = dev.wait("mansrtsp", method="PLAY")
        self.assertEqual(q["scale"], "2.0")
        dev.wait("media_frame", call_id=c.call_id, since=q["i"])
        self.assertEqual(dev.media.session(c.call_id).scale, 2.0)
        # live Play loops the file with continuous timestamps: past one pass
        a = MediaAssets.get("h264", 2)
        dev.wait("media_frame", call_id=c.call_id, loop=1, index=0)
        self.assertEqual(self.sim.run(dev.media.hangup(c.call_id)), 200)
        bye, _ = self.plat.request("BYE")
        self.assertEqual(bye.get("call-id"), c.call_id)
        self.assertIn(c.tag, bye.get("to"))
        self.assertGreater(len(a.frames), 0)

    def test_quirk_ssrc_zero_and_mismatch(self):
        for quirk, check in (("ssrc_zero", lambda s, y: s == {0}),
                             ("ssrc_mismatch", lambda s, y: len(s) == 1 and y not in s),
                             ("answer_ssrc", lambda s, y: s == {y})):
            with self.subTest(quirk=quirk):
                dev, addr = self.device(quirks=(quirk,))
                c = self.call(addr)
                ay = int(c.answer["y"])
                if quirk == "answer_ssrc":
                    self.assertNotEqual(c.answer["y"], c.offer_y)
                else:
                    self.assertEqual(c.answer["y"], c.offer_y)
                dev.wait("media_frame", call_id=c.call_id, n=5)
                wait_until(lambda: c.count() > 5)
                self.assertTrue(check({p["ssrc"] for p in c.packets}, ay), {p["ssrc"] for p in c.packets})
                self.assertEqual(c.bye(), 200)
                self.sim.run(self._remove(dev))

    async def _remove(self, dev):
        dev.close()
        self.sim.devices.pop(dev.id, None)

    def test_quirk_udp_loss(self):
        dev, addr = self.device(quirks=("udp_loss",))
        a = MediaAssets.get("h264", 2)
        c = self.call(addr)
        end = dev.wait("media_end", call_id=c.call_id)
        total = sum(len(f[2]) for f in a.frames)
        self.assertGreater(end["lost"], total * 0.02)
        self.assertLess(end["lost"], total * 0.1)
        self.plat.request("MESSAGE")
        wait_until(lambda: c.count() == total - end["lost"])

    def test_quirk_tcp_lying_length(self):
        dev, addr = self.device(quirks=("tcp_bad_length",))
        a = MediaAssets.get("h264", 2)
        c = self.call(addr, transport="tcp_passive")
        dev.wait("media_corrupted", call_id=c.call_id)
        dev.wait("media_end", call_id=c.call_id)
        total = sum(len(f[2]) for f in a.frames)
        self.plat.request("MESSAGE")
        # the reader resyncs: the lying frame and what it swallowed are lost, the rest arrives
        wait_until(lambda: c.resyncs >= 1 and c.count() >= total - 3)
        self.assertLess(c.count(), total + 1)

    def test_broadcast_ps_g711a(self):
        dev, addr = self.device()
        a = MediaAssets.get("h264", 2)
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.bind(("127.0.0.1", 0))
        self.plat.audio_port = out.getsockname()[1]
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Broadcast</CmdType>\r\n<SN>7</SN>\r\n'
                f'<SourceID>{PLATFORM}</SourceID>\r\n<TargetID>{DEV}</TargetID>\r\n</Notify>\r\n').encode()
        self.plat.send("MESSAGE", f"sip:{DEV}@127.0.0.1:{addr[1]}", addr,
                       [("From", f"<sip:{PLATFORM}@3402000000>;tag={new_tag()}"), ("To", f"<sip:{DEV}@3402000000>"),
                        ("Call-ID", new_call_id()), ("CSeq", "1 MESSAGE")], body, "Application/MANSCDP+xml")
        self.assertEqual(self.plat.final().status, 200)
        resp, _ = self.plat.request("MESSAGE")
        self.assertIn(b"<Result>OK</Result>", resp.body)
        inv, _ = self.plat.request("INVITE")
        sdp = parse_sdp(inv.body.decode())
        self.assertEqual(sdp["media"][0]["type"], "audio")
        dev.wait("broadcast_invite", status=200)
        self.plat.request("ACK")
        dev.wait("broadcast_acked")
        port = sdp["media"][0]["port"]
        seq = 0
        # the first frame carries the PSM (which names stream 0xC0 G.711A); then the audio
        audio_frames = a.frames[:1] + [f for f in a.frames if f[0] == "a"]
        for kind, key, packets in audio_frames:
            for p in packets:
                out.sendto(rtp_header(seq, int.from_bytes(p[4:8], "big"), int(sdp["y"]), 96, p[1] & 0x80) + p[12:],
                           ("127.0.0.1", port))
                seq += 1
        wait_until(lambda: dev.media._broadcast["got"]["packets"] == seq)
        r = self.sim.call(dev.media.broadcast_result)
        out.close()
        self.assertEqual(r["acodec"], "pcma")
        self.assertEqual(r["errors"], {})
        self.assertEqual(r["bytes"], len(a.alaw))
        self.assertGreater(r["rms"], 1000, "a tone, not silence")


if __name__ == "__main__":
    unittest.main()
