"""gb28181 client-initiated live view (实时预览, 客户端主动发起, the document's B2BUA flow) against real
peers: sipp is the SIP client (a GB decoder: tests/sipp/client_*.xml, INVITE with the document's
SDP and digest), a UDP socket at the client's SDP address receives the RTP, and the PS it carries
is read twice: by ffprobe (H.264 found, its frame count) and by a PS parser here, whose video
frames must be byte-identical to the encoded elementary stream (a contiguous, in-order run of the
looped file: none missing, none altered). Also: CANCEL before the answer (487), a wrong password
(403), an unknown channel (404), an offline device (480), BYE from the client ends only that viewer
and the device stream stops after the grace, the admin `streams` lists the clients, and a hot
reload during the view loses no frame. Loopback only; synchronisation on sipp's exit, the RTP
received, the device simulator's events and the server's log lines."""
import json
import os
import shutil
import socket
import struct
import subprocess
import threading

from gb_media_sim import MediaAssets
from junction_test import main
from media_env import DEV1, GbMediaTest, PASSWORD, free_port, is_cyclic_slice, wait_until
from sipp import SippRuns

FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
SCEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")
CLIENT, CLIENT_PW = "decoder", "dec-secret-1"
SSRC = "0100000001"  # the document's sample y=


class RtpSink:
    """The decoder's media side: RTP on a UDP port, kept in arrival order (loopback: in order)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.packets = []
        self.lock = threading.Lock()
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) >= 12 and data[0] >> 6 == 2:
                with self.lock:
                    self.packets.append(data)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()

    def snapshot(self):
        with self.lock:
            return list(self.packets)

    def frames(self):
        return ps_video_frames(self.ps())

    def ps(self):
        out = bytearray()
        for p in self.snapshot():
            cc = p[0] & 0x0F
            off = 12 + 4 * cc
            if p[0] & 0x10:  # extension
                off += 4 + 4 * struct.unpack(">H", p[off + 2:off + 4])[0]
            end = len(p) - (p[-1] if p[0] & 0x20 else 0)
            out += p[off:end]
        return bytes(out)


def ps_video_frames(data):
    """Video access units of an MPEG-PS as Junction's PsMuxer writes it (one pack per frame; a large
    frame split over several PES of that pack)."""
    frames, cur, i, n = [], None, 0, len(data)
    while i + 4 <= n:
        if data[i:i + 3] != b"\x00\x00\x01":
            raise AssertionError(f"PS out of sync at byte {i}")
        sid = data[i + 3]
        if sid == 0xBA:
            if cur:
                frames.append(bytes(cur))
            cur = bytearray()
            i += 14 + (data[i + 13] & 7)
            continue
        if sid == 0xB9:
            break
        length = struct.unpack(">H", data[i + 4:i + 6])[0]
        if 0xE0 <= sid <= 0xEF and cur is not None:
            hl = data[i + 8]
            cur += data[i + 9 + hl:i + 6 + length]
        i += 6 + length
    if cur:
        frames.append(bytes(cur))
    return frames


class TcpRtpSink(RtpSink):
    """The decoder's media side over TCP: RFC 4571 (2-byte length + RTP). connect(port): the client
    is active (we listen on the platform's port from its answer); listen(): it is passive."""

    def __init__(self):
        self.packets, self.lock, self.running, self.thread, self.conn = [], threading.Lock(), True, None, None
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def connect(self, port):
        self.listener.close()
        self.conn = socket.create_connection(("127.0.0.1", port))
        self.start()

    def listen(self):
        self.listener.listen(1)
        self.listener.settimeout(20)
        self.thread = threading.Thread(target=self.accept_then_read, daemon=True)
        self.thread.start()

    def accept_then_read(self):
        try:
            self.conn, _ = self.listener.accept()
        except OSError:
            return
        self.read()

    def start(self):
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        buf = b""
        self.conn.settimeout(0.2)
        while self.running:
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
                n = struct.unpack(">H", buf[:2])[0]
                with self.lock:
                    self.packets.append(buf[2:2 + n])
                buf = buf[2 + n:]

    def close(self):
        self.running = False
        if self.thread:
            self.thread.join()
        for s in (self.conn, self.listener):
            if s:
                s.close()


def client_scenario(expected=None, setup=None, replace=None):
    """The scenario edits of one client run (None: the file as it is): the refusal code a
    client_refused.xml.in run expects, an SDP the platform refuses ((old, new) in the offer), RTP over
    TCP (RFC 4571) with the client connecting (setup "active") or listening ("passive")."""
    if expected is None and setup is None and replace is None:
        return None

    def edit(text):
        if expected is not None:
            text = text.replace("EXPECTED_CODE", str(expected))
        if replace is not None:
            text = text.replace(*replace)
        if setup is not None:
            text = text.replace("RTP/AVP 96 98 97\n      a=recvonly",
                                f"TCP/RTP/AVP 96 98 97\n      a=recvonly\n      a=setup:{setup}\n      a=connection:new")
            assert "a=setup:" in text
        return text
    return edit


class ClientInviteTest(SippRuns, GbMediaTest):
    SIPP_SCENARIOS = SCEN
    conf_over = {"clients": {"users": {CLIENT: CLIENT_PW}}}

    def media_device(self, device_id=DEV1, transport="udp", **kw):
        """A device streaming on demand whose catalog the platform has (a client names only the channel)."""
        dev = super().media_device(device_id, transport, **kw)
        r = self.cmd("query", {"id": device_id, "type": "Catalog"})
        self.assertEqual(r["outcome"], "ok", r)
        return dev

    def sipp(self, scenario, channel, rtp_port=None, user=CLIENT, password=CLIENT_PW, **kw):  # kw: expected, setup, replace
        """A GB decoder's call: INVITE for `channel`, its RTP expected on rtp_port."""
        return super().sipp(scenario, f"127.0.0.1:{self.port}", "u1", auth=(user, password),
                            keys={"channel": channel, "rtp_port": rtp_port or free_port(), "ssrc": SSRC},
                            edit=client_scenario(**kw), timeout_s=40, extra=["-mp", str(free_port())],
                            prefix="jn-gb-client-")

    def sink(self):
        return self.closing(RtpSink())

    def clients(self):
        return self.cmd("streams")["clients"]

    def assert_identical_run(self, frames):
        expected = MediaAssets.get("h264", 2).video_frames
        self.assertGreater(len(frames), 0)
        self.assertTrue(frames[0].find(b"\x00\x00\x00\x01\x67") >= 0 or frames[0].find(b"\x00\x00\x01\x67") >= 0,
                        "the client starts at a keyframe carrying the SPS")
        self.assertTrue(is_cyclic_slice(frames, expected),
                        "every video frame byte-identical to the encoded ES, in order, none missing")

    def test_live_view_ps_to_the_client_then_client_bye(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.sink()
        s = self.sipp("client_live.xml", ch, rx.port)
        inv = dev.wait("invite", timeout=15)  # the platform starts the device stream (play on demand)
        self.assertEqual(inv["s"], "Play")
        c = wait_until(lambda: next((x for x in self.clients() if x["state"] == "sending"), None))
        self.assertEqual((c["user"], c["channel"], c["device"], c["ssrc"], c["transport"]), (CLIENT, ch, DEV1, SSRC, "udp"))
        self.assertEqual(c["to"], f"127.0.0.1:{rx.port}")
        live = [x for x in self.cmd("streams")["sessions"] if x["channel"] == ch]
        self.assertEqual(len(live), 1)
        self.assertEqual(live[0]["viewers"], 1, "the client is the stream's one viewer")
        self.finished(s)  # 200 (sendonly, PS/96, y= the client's), ACK, 4 s of media, BYE, 200
        self.j.wait_for_log(r"client call .* ended: client BYE")
        pkts = rx.snapshot()
        self.assertGreater(len(pkts), 0)
        self.assertEqual({p[1] & 0x7F for p in pkts}, {96})
        self.assertEqual({struct.unpack(">I", p[8:12])[0] for p in pkts}, {int(SSRC)})
        seqs = [struct.unpack(">H", p[2:4])[0] for p in pkts]
        self.assertEqual(seqs, [(seqs[0] + k) & 0xFFFF for k in range(len(seqs))], "RTP sequence without a gap")
        frames = rx.frames()
        self.assert_identical_run(frames)
        self.assertGreaterEqual(len(frames), 25, "about 4 s at 25 fps, from the first keyframe on")
        # ffprobe reads the received PS as a GB decoder would: H.264, the same frame count.
        path = os.path.join(self.sipps[0].dir, "received.ps")
        open(path, "wb").write(rx.ps())
        out = json.loads(subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                         "stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
                                        check=True, capture_output=True, text=True).stdout)
        st = out["streams"][0]
        self.assertEqual(st["codec_name"], "h264")
        self.assertGreater(st["width"], 0)
        self.assertLessEqual(abs(int(st["nb_read_frames"]) - len(frames)), 1, (st, len(frames)))
        # The client's BYE ended only its viewer: the device stream stops after the grace (nobody left).
        dev.wait("bye_received", timeout=15)
        wait_until(lambda: not self.clients() and not self.cmd("streams")["sessions"])

    def tcp_view(self, setup):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.closing(TcpRtpSink())
        if setup == "passive":
            rx.listen()  # the platform connects to the client after the ACK
        s = self.sipp("client_live.xml", ch, rx.port, setup=setup)
        c = wait_until(lambda: next((x for x in self.clients() if x["state"] == "sending"), None))
        self.assertEqual(c["transport"], "tcp_passive" if setup == "active" else "tcp_active")
        if setup == "active":
            rx.connect(c["local_port"])  # the client connects to the port of our answer
        wait_until(lambda: len(rx.frames()) >= 10)
        self.finished(s)
        self.j.wait_for_log(r"client call .* ended: client BYE")
        pkts = rx.snapshot()
        self.assertEqual({struct.unpack(">I", p[8:12])[0] for p in pkts}, {int(SSRC)})
        seqs = [struct.unpack(">H", p[2:4])[0] for p in pkts]
        self.assertEqual(seqs, [(seqs[0] + k) & 0xFFFF for k in range(len(seqs))], "RTP sequence without a gap")
        self.assert_identical_run(rx.frames())
        dev.wait("bye_received", timeout=15)

    def test_tcp_client_connects_to_the_platform(self):
        self.tcp_view("active")

    def test_tcp_platform_connects_to_a_passive_client(self):
        self.tcp_view("passive")

    def test_second_client_joins_the_running_stream_and_bye_ends_only_its_viewer(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        self.play(DEV1, ch)  # the operator keeps the stream up
        first = dev.wait("invite", timeout=15)
        rx = self.sink()
        s = self.sipp("client_live.xml", ch, rx.port)
        self.finished(s)
        frames = rx.frames()
        self.assert_identical_run(frames)
        self.j.wait_for_log(r"client call .* ended: client BYE")
        # One device stream for both viewers; the client's BYE did not stop it.
        self.assertEqual(len(dev.events.find("invite")), 1, "one INVITE to the device")
        sess = [x for x in self.cmd("streams")["sessions"] if x["channel"] == ch]
        self.assertEqual(len(sess), 1)
        self.assertEqual(sess[0]["viewers"], 1, "the operator is left")
        self.assertEqual(dev.events.find("bye_received"), [])
        self.assertEqual(first["call_id"], dev.events.find("invite")[0]["call_id"])

    def test_hot_reload_during_the_view_loses_no_frame(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.sink()
        s = self.sipp("client_live.xml", ch, rx.port)
        wait_until(lambda: len(rx.frames()) >= 10)
        before = len(rx.snapshot())
        self.j.api("POST", "/api/v1/plugins/gb28181/reload", expect=200)
        self.finished(s)  # the BYE is answered by the new instance
        self.j.wait_for_log(r"client call .* ended: client BYE")
        self.assertGreater(len(rx.snapshot()), before, "media went on after the reload")
        self.assert_identical_run(rx.frames())
        pkts = rx.snapshot()
        seqs = [struct.unpack(">H", p[2:4])[0] for p in pkts]
        self.assertEqual(seqs, [(seqs[0] + k) & 0xFFFF for k in range(len(seqs))], "RTP sequence continues across the reload")

    def test_device_bye_ends_the_client_call(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.sink()
        s = self.sipp("client_platform_bye.xml", ch, rx.port)
        inv = dev.wait("invite", timeout=15)
        wait_until(lambda: len(rx.frames()) >= 5)
        self.assertEqual(self.sim.run(dev.media.hangup(inv["call_id"])), 200)  # 设备侧断流
        self.finished(s)  # the platform's BYE reached the client, which answered 200
        self.j.wait_for_log(r"client call .* ended: ")
        wait_until(lambda: not self.clients() and not self.cmd("streams")["sessions"])

    def test_cancel_before_the_answer(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        dev.media.refuse_invite = 486  # the device never answers 200: the client is still waiting
        s = self.sipp("client_cancel.xml", ch)
        self.finished(s)  # 100, CANCEL, 200, 487, ACK
        self.j.wait_for_log(r"client call .* ended: client CANCEL")
        wait_until(lambda: not self.clients())

    def refused(self, code, channel, log, **kw):
        s = self.sipp("client_refused.xml.in", channel, expected=code, **kw)
        self.finished(s)
        self.j.wait_for_log(log)
        self.assertEqual(self.clients(), [])

    def test_wrong_password_403(self):
        dev = self.media_device(DEV1)
        self.refused(403, dev.channels[0]["DeviceID"], r"INVITE from decoder .* refused 403 \(client decoder: wrong password\)",
                     password="not-the-password")
        self.assertEqual(dev.events.find("invite"), [])

    def test_unknown_channel_404(self):
        self.media_device(DEV1)
        self.refused(404, "34020000001310009999", r"INVITE from decoder .* refused 404 \(no device lists channel 34020000001310009999")

    def test_a_client_that_wants_to_send_488(self):
        dev = self.media_device(DEV1)
        self.refused(488, dev.channels[0]["DeviceID"], r"refused 488 \(offer SDP: a=sendrecv: the platform only sends",
                     replace=("a=recvonly", "a=sendrecv"))
        self.assertEqual(dev.events.find("invite"), [])

    def test_device_credentials_sign_too_and_offline_device_480(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        self.sim.run(dev.unregister())
        self.j.wait_for_log(rf"device {DEV1} offline")
        # A provisioned device's ID and password are accepted as a client's credentials.
        self.refused(480, ch, rf"refused 480 \(device {DEV1} is offline\)", user=DEV1, password=PASSWORD)


class ClientLimitTest(ClientInviteTest):
    """clients.max_per_channel: a second client of a channel at the limit gets 486."""
    conf_over = {"clients": {"users": {CLIENT: CLIENT_PW}, "max_per_channel": 1}}

    def test_second_client_over_the_limit_486(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.sink()
        first = self.sipp("client_live.xml", ch, rx.port)
        wait_until(lambda: next((x for x in self.clients() if x["state"] == "sending"), None))
        self.refused(486, ch, r"refused 486 \(1 client\(s\) already view", clients=1)
        self.finished(first)  # the first client was not disturbed
        self.assert_identical_run(rx.frames())

    def refused(self, code, channel, log, clients=0, **kw):
        s = self.sipp("client_refused.xml.in", channel, expected=code, **kw)
        self.finished(s)
        self.j.wait_for_log(log)
        self.assertEqual(len(self.clients()), clients)


class ClientGopCacheTest(ClientInviteTest):
    """media.gop_cache: a client joining a running stream gets PS from the cached GOP at once."""
    conf_over = {"clients": {"users": {CLIENT: CLIENT_PW}},
                 "media": dict(GbMediaTest.media_conf["media"], gop_cache=True)}

    def test_client_joining_a_running_stream_starts_from_the_cached_gop(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        first = self.watch(DEV1, ch)
        self.viewer(ch, DEV1)
        self.wait_frames(first, 30)  # past the first GOP (the simulator ignores IFrame)
        rx = self.sink()
        s = self.sipp("client_live.xml", ch, rx.port)
        c = wait_until(lambda: next((x for x in self.clients() if x["state"] == "sending"), None))
        self.assertIn(f"gb28181/{DEV1}/{ch}/viewer/client-", c["stream"])  # its own streams
        live = [x for x in self.cmd("streams")["sessions"] if x.get("kind") == "Play" and x["channel"] == ch][0]
        self.assertEqual(live["media"]["catch_ups"], 1, "the sender started from the cache")
        self.finished(s)
        self.assert_identical_run(rx.frames())  # keyframe first, byte-identical, no gap


class ClientMediaLoopsTest(ClientInviteTest):
    """server.media_loops = 2: a client's PS sender runs on the media loop of the channel's live
    stream (its socket there, a loop-local bus subscription): every frame it sends is sent on
    that loop's thread, none handed over to the control loop; also over TCP and across a reload."""

    def server(self, **kw):
        j = super().server(**kw)
        j.core["server"]["media_loops"] = 2
        j.write_core(j.core)
        return j

    def sending(self, frames=10):
        """The client's entry once its sender has sent `frames` frames."""
        return wait_until(lambda: next((x for x in self.clients() if x.get("media", {}).get("frames", 0) >= frames), None))

    def assert_on_loop(self, c):
        m = c["media"]
        self.assertGreaterEqual(m["loop"], 1, m)
        self.assertTrue(m["loop_local"], m)
        self.assertEqual(m["frames_off_loop"], 0, m)
        self.assertEqual(m["frames_on_loop"], m["frames"], m)

    def test_udp_sender_sends_on_the_streams_media_loop(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.sink()
        s = self.sipp("client_live.xml", ch, rx.port)
        self.assert_on_loop(self.sending())
        self.finished(s)
        self.j.wait_for_log(r"client call .* ended: client BYE")
        self.assert_identical_run(rx.frames())

    def test_tcp_sender_sends_on_the_streams_media_loop(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.closing(TcpRtpSink())
        s = self.sipp("client_live.xml", ch, rx.port, setup="active")
        c = wait_until(lambda: next((x for x in self.clients() if x["state"] == "sending"), None))
        rx.connect(c["local_port"])
        self.assert_on_loop(self.sending())
        self.finished(s)
        self.assert_identical_run(rx.frames())

    def test_hot_reload_keeps_the_sender_on_its_loop(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        rx = self.sink()
        s = self.sipp("client_live.xml", ch, rx.port)
        before = self.sending()["media"]
        self.j.api("POST", "/api/v1/plugins/gb28181/reload", expect=200)
        after = self.sending(before["frames"] + 10)
        self.assertEqual(after["media"]["loop"], before["loop"])
        self.assert_on_loop(after)
        self.finished(s)
        self.assert_identical_run(rx.frames())
        seqs = [struct.unpack(">H", p[2:4])[0] for p in rx.snapshot()]
        self.assertEqual(seqs, [(seqs[0] + k) & 0xFFFF for k in range(len(seqs))], "RTP sequence continues across the reload")


for _name in [n for n in dir(ClientInviteTest) if n.startswith("test_")]:
    setattr(ClientLimitTest, _name, None)  # only its own test runs under the limit
    setattr(ClientGopCacheTest, _name, None)
    setattr(ClientMediaLoopsTest, _name, None)
del _name


if __name__ == "__main__":
    main()
