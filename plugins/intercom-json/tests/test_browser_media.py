"""A door station answered from a browser: a verto-ws browser (headless Chromium, fake camera and
microphone) calls an intercom-json screen (intercom:room/101); the screen accepts naming its
stream id; the box pulls the screen's HTTP-FLV stream from the stream server (fake_srs.py serving
an ffmpeg-made FLV: H.264 constrained baseline + G.711 A-law, paced at its timestamps) onto the
bus, and verto-ws sends it to the browser as RTP, no transcoding: the browser decodes the
screen's video (framesDecoded > 0, H264) and hears its audio (totalAudioEnergy > 0). The other
way, the browser's camera and microphone (verto-ws's bus streams) are pushed by RTMP to the stream
server (nginx-rtmp, as rest-sip-capture's tests run it) under the stream id the screen was told
in its call_req: ffprobe reads H.264 and A-law back from nginx's recording.

Loopback only: Chromium gathers no loopback candidates, so the test re-runs itself in a network
namespace with nothing but `lo` (tests/lib/loopback_netns.py; skipped without that permission)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import loopback_netns  # noqa: E402 (tests/lib, on PYTHONPATH)

NETNS = loopback_netns.enter(__name__ == "__main__")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "verto-ws", "tests"))

import cdp  # noqa: E402
import test_browser  # noqa: E402 (verto-ws's page directory)
from fake_srs import FakeSrs  # noqa: E402
from intercom_env import BoxTest, free_port, main, wait_until  # noqa: E402
from verto_env import verto_conf  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "..", "rest-sip-capture", "tests"))
from capture_env import Nginx, ffprobe  # noqa: E402


def make_flv(path, seconds=8):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", str(seconds),
                    "-c:v", "libx264", "-profile:v", "baseline", "-g", "15", "-pix_fmt", "yuv420p", "-tune", "zerolatency",
                    "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1", "-f", "flv", path], check=True)


@unittest.skipUnless(NETNS, "needs a network namespace with only loopback (unshare -n)")
class BrowserCallsScreen(BoxTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.web = cdp.StaticServer(test_browser.PAGE_DIR)
        cls.browser = cdp.Browser()
        cls.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(cls.tmp.name, "screen.flv")
        make_flv(path)
        with open(path, "rb") as f:
            cls.flv = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.web.close()
        cls.tmp.cleanup()
        super().tearDownClass()

    def tearDown(self):
        for p in self.browser.pages:
            p.close()
        self.browser.pages = []
        super().tearDown()

    def test_browser_sees_and_hears_the_screen(self):
        srs = FakeSrs()
        self.addCleanup(srs.close)
        srs.routes["/stream/56780"] = FakeSrs.flv(self.flv, paced=True)
        rtmp = Nginx().start()  # the stream server's RTMP side (SRS accepts publishes on 1935)
        self.addCleanup(rtmp.cleanup)
        verto_port = free_port()
        j = self.start_box(plugins={"verto-ws": verto_conf(verto_port, media="webrtc", allowed_origins=[self.web.origin])},
                           server={"media_loops": 1},
                           stream_pull_url=f"http://127.0.0.1:{srs.port}/stream/{{id}}",
                           stream_push_url=f"{rtmp.url()}/{{id}}")
        j.cmd("verto-ws", "user-add", {"user": "1001", "password": "pw1001"})
        s = self.screen(j, "screen-1")

        p = self.browser.new_page(self.web.origin + "/page.html")
        p.wait_for("window.pageReady")
        p.evaluate(f"window.v = new VertoClient('ws://127.0.0.1:{verto_port}/verto'); v.connect().then(() => true)")
        p.evaluate("v.loginLikeVertoJs('1001', 'pw1001')")
        r = p.evaluate("v.invite('intercom:room/101', {audio: true, video: true}).then(r => (window.cid = r.callID, r))")
        self.assertEqual(r["message"], "CALL CREATED")
        req = s.expect("call_req", timeout=15)["values"]
        sid = req["sid"]
        # The screen is told where the browser's media will be: a stream id of the box's server.
        push_id = req["src"]["videostreamid"]
        self.assertEqual(req["src"]["audiostreamid"], push_id)
        self.assertRegex(push_id, r"^jn[A-Za-z0-9._-]+$")
        s.accept(sid, dest={"videostreamid": "56780", "audiostreamid": "56780"})
        srs.wait_request("/stream/56780")
        p.evaluate("v.waitFor('verto.answer', () => true, 30000)")
        p.wait_for("v.calls.get(cid).remoteSet === true", what="the server's answer applied")
        # verto-ws answered the browser with the screen's codecs (from the bus streams named first).
        j.wait_for_log(r"media: audio\(0\): PCMA pt \d+ \w+; video\(1\): H264")
        st = p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0 && s.audioEnergy > 0, 30000)", timeout=40)
        self.assertEqual(st["videoCodec"], "video/H264")
        self.assertGreater(st["framesDecoded"], 0)
        self.assertGreater(st["audioEnergy"], 0)
        pull = j.cmd("intercom-json", "pulls")[0]
        self.assertGreater(pull["video_frames"], 0)
        self.assertGreater(pull["audio_frames"], 0)

        # Browser -> screen: published on nginx-rtmp under the push id, video and audio flowing.
        rtmp.wait_log(rf"publish: name='{push_id}'")
        wait_until(lambda: (lambda q: q if q and q[0].get("sent_video", 0) >= 10 and q[0].get("sent_audio", 0) >= 10 else None)(
            j.cmd("intercom-json", "pushes")), what="the browser's frames sent by RTMP")
        p.evaluate("v.hangup(cid)")
        s.expect("call_end", sid=sid, timeout=15)
        rtmp.wait_log(rf"deleteStream|disconnect")
        rtmp.stop()  # closes the recording
        codecs, packets = ffprobe(rtmp.recording(push_id))
        self.assertEqual(codecs, {"video": "h264", "audio": "pcm_alaw"})
        self.assertGreater(len(packets["video"]), 0)
        self.assertGreater(len(packets["audio"]), 0)

    def test_screen_calls_a_browser_user(self):
        # The other way round: the screen calls verto:1001 naming its own stream; the browser
        # answers, verto-ws answers with its bus streams, and the box pulls the screen's stream
        # onto the bus streams its OFFER announced, and pushes the browser's under a dest id it
        # tells the screen in call_accept.
        srs = FakeSrs()
        self.addCleanup(srs.close)
        srs.routes["/stream/777"] = FakeSrs.flv(self.flv, paced=True)
        rtmp = Nginx().start()
        self.addCleanup(rtmp.cleanup)
        verto_port = free_port()
        j = self.start_box(plugins={"verto-ws": verto_conf(verto_port, media="webrtc", allowed_origins=[self.web.origin])},
                           server={"media_loops": 1},
                           stream_pull_url=f"http://127.0.0.1:{srs.port}/stream/{{id}}",
                           stream_push_url=f"{rtmp.url()}/{{id}}")
        j.cmd("verto-ws", "user-add", {"user": "1001", "password": "pw1001"})
        s = self.screen(j, "screen-1")
        p = self.browser.new_page(self.web.origin + "/page.html")
        p.wait_for("window.pageReady")
        p.evaluate(f"window.v = new VertoClient('ws://127.0.0.1:{verto_port}/verto'); v.connect().then(() => true)")
        p.evaluate("v.loginLikeVertoJs('1001', 'pw1001')")
        s.call("c1", src={"id": "101", "videostreamid": "777", "audiostreamid": "777"}, dest={"id": "verto:1001"})
        inv = p.evaluate("v.waitFor('verto.invite', () => true, 30000)")
        self.assertIn("H264", inv["sdp"])
        self.assertIn("PCMA", inv["sdp"])
        p.evaluate(f"window.cid = {json.dumps(inv['callID'])}; v.answer(cid)")
        acc = s.expect("call_accept", sid="c1", timeout=15)["values"]
        # The browser's media is pushed under the dest id the box gives the screen.
        push_id = acc["dest"]["videostreamid"]
        self.assertRegex(push_id, r"^jn[A-Za-z0-9._-]+$")
        srs.wait_request("/stream/777")
        st = p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0 && s.audioEnergy > 0, 30000)", timeout=40)
        self.assertEqual(st["videoCodec"], "video/H264")
        self.assertGreater(st["framesDecoded"], 0)
        self.assertGreater(st["audioEnergy"], 0)
        rtmp.wait_log(rf"publish: name='{push_id}'")
        wait_until(lambda: (lambda q: q if q and q[0].get("sent_video", 0) >= 10 and q[0].get("sent_audio", 0) >= 10 else None)(
            j.cmd("intercom-json", "pushes")), what="the browser's frames sent by RTMP")
        s.end("c1")
        p.evaluate("v.waitFor('verto.bye', () => true, 15000)")


if __name__ == "__main__":
    main()
