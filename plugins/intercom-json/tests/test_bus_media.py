"""Screen -> bus (README "Media on the bus"): a call from a leg that wants bus streams (here
gb-consumer's viewer call: an OFFER without media at an address) to a screen; the screen accepts
naming its stream ids; the box pulls the screen's HTTP-FLV stream from the stream server (a fake
SRS, fake_srs.py, serving an ffmpeg-made FLV: H.264 with B-frames + G.711 A-law) and publishes it
as intercom-json/<sid>/video|audio, named first in the ANSWER. gb-consumer's per-frame hashes
must equal the FLV's frames as Annex B / raw A-law. A bad FLV ends that stream with a log line and
nothing else; a closed connection is reconnected and the next frame says DISCONT."""
import os
import threading

from fake_srs import FakeSrs, flv_frames
from intercom_env import BoxTest, main, metric, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
FLV = os.path.join(HERE, "..", "..", "..", "tests", "unit", "data", "flv", "screen.flv")
VIEWER = "gb-consumer"
H264, PCMA = "h264", "pcma"  # gb-consumer names the codecs


def fnv1a64(b):
    h = 14695981039346656037
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class BusMediaTest(BoxTest):
    def setUp(self):
        super().setUp()
        self.srs = FakeSrs()
        self.addCleanup(self.srs.close)
        with open(FLV, "rb") as f:
            self.flv = f.read()

    def start(self, **conf):
        conf.setdefault("stream_pull_url", f"http://127.0.0.1:{self.srs.port}/stream/{{id}}")
        conf.setdefault("pull_retry_ms", 50)
        return self.start_box(plugins={VIEWER: {}}, **conf)

    def call_screen(self, j, stream_id="56780"):
        """The viewer calls room 101; the screen accepts with its stream id; returns (screen, sid, leg)."""
        s = self.screen(j, "screen-1")
        r = j.cmd(VIEWER, "call", {"to": "intercom:room/101", "from": "viewer:1"})
        self.assertEqual(r["status"], 0)
        sid = s.expect("call_req")["values"]["sid"]
        s.accept(sid, dest={"videostreamid": stream_id, "audiostreamid": stream_id})
        j.wait_for_log(rf"gb-consumer: call {r['leg']} answer")
        return s, sid, r["leg"]

    def pull(self, j):
        pulls = j.cmd("intercom-json", "pulls")
        self.assertEqual(len(pulls), 1, pulls)
        return pulls[0]

    def subscribe(self, j, stream):
        r = j.cmd(VIEWER, "subscribe", {"stream": stream})
        self.assertEqual(r["status"], 0)
        return r["sub"]

    def test_screen_stream_reaches_the_bus_byte_exact(self):
        gate = threading.Event()
        self.srs.routes["/stream/56780"] = FakeSrs.flv(self.flv, gate)
        j = self.start()
        s, sid, leg = self.call_screen(j)
        self.srs.wait_request("/stream/56780")
        p = self.pull(j)
        # One id carries both tracks: one pull, two bus streams named after the sid.
        self.assertEqual(p["url"], f"http://127.0.0.1:{self.srs.port}/stream/56780")
        self.assertRegex(p["video_stream"], r"^intercom-json/[A-Za-z0-9._-]+/video$")
        self.assertEqual(p["audio_stream"], p["video_stream"][:-len("video")] + "audio")
        vsub, asub = self.subscribe(j, p["video_stream"]), self.subscribe(j, p["audio_stream"])
        gate.set()  # subscribed before the first byte: every frame is seen

        want_video, want_audio = flv_frames(self.flv)
        self.assertEqual((len(want_video), len(want_audio)), (10, 8))
        v = wait_until(lambda: (lambda f: f if f["video"] >= 10 else None)(j.cmd(VIEWER, "frames", {"sub": vsub})),
                       what="10 video frames on the bus")
        a = wait_until(lambda: (lambda f: f if f["audio"] >= 8 else None)(j.cmd(VIEWER, "frames", {"sub": asub})),
                       what="8 audio frames on the bus")
        self.assertEqual(v["hashes"], [fnv1a64(f) for f in want_video])
        self.assertEqual(a["hashes"], [fnv1a64(f) for f in want_audio])
        self.assertEqual((v["vcodec"], v["keyframes"], v["discont"]), (H264, 2, 0))
        self.assertEqual(a["acodec"], PCMA)
        p = self.pull(j)
        self.assertEqual((p["video_frames"], p["audio_frames"], p["connects"], p["ended"]), (10, 8, 1, False))

        # The call ends: the pull stops with it.
        s.end(sid)
        wait_until(lambda: j.cmd("intercom-json", "pulls") == [], what="pull stopped with the call")

    def test_bad_flv_ends_only_that_stream(self):
        self.srs.routes["/stream/666"] = FakeSrs.raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\nFLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
            b"\x07\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c")  # a tag of type 7
        j = self.start()
        s, sid, leg = self.call_screen(j, "666")
        j.wait_for_log(r"pull http://127\.0\.0\.1:\d+/stream/666: bad FLV: bad tag: unknown tag type: stream ended")
        p = self.pull(j)
        self.assertTrue(p["ended"])
        self.assertIn("unknown tag type", p["last_error"])
        # Not retried, and the call is untouched: the screen still ends it normally.
        self.assertEqual(self.srs.requests.count("/stream/666"), 1)
        self.assertEqual(len(self.box_calls(j)), 1)
        s.end(sid)
        j.wait_for_log(rf"gb-consumer: call {leg} end")

    def test_a_refused_stream_is_retried_with_its_status(self):
        # Nobody publishes 404404: the stream server answers 404 (the status comes from the core's
        # streamed HTTP head); the pull says so and asks again with backoff; the call goes on.
        j = self.start()
        s, sid, leg = self.call_screen(j, "404404")
        self.srs.wait_request("/stream/404404", 2)
        j.wait_for_log(r"pull http://127\.0\.0\.1:\d+/stream/404404: the stream server answered 404: retrying")
        p = self.pull(j)
        self.assertFalse(p["ended"])
        self.assertGreaterEqual(p["connects"], 1)
        self.assertGreaterEqual(metric(j, "intercom_pull_errors_total", 'reason="http"') or 0, 1)
        s.end(sid)
        j.wait_for_log(rf"gb-consumer: call {leg} end")

    def test_closed_stream_is_pulled_again_with_discont(self):
        gate = threading.Event()
        half = self.flv[:len(self.flv) // 2]
        self.srs.routes["/stream/56780"] = FakeSrs.flv(half, gate, close=True)
        j = self.start()
        s, sid, leg = self.call_screen(j)
        self.srs.wait_request("/stream/56780")
        p = self.pull(j)
        vsub = self.subscribe(j, p["video_stream"])
        # The second connection gets the whole stream and stays open.
        self.srs.routes["/stream/56780"] = FakeSrs.flv(self.flv)
        gate.set()
        self.srs.wait_request("/stream/56780", 2)
        f = wait_until(lambda: (lambda f: f if f["discont"] >= 1 and f["video"] >= 12 else None)(
            j.cmd(VIEWER, "frames", {"sub": vsub})), what="frames after the reconnect, the first DISCONT")
        self.assertEqual(f["discont"], 1)
        self.assertGreaterEqual(self.pull(j)["connects"], 2)
        j.wait_for_log(r"pull http://127\.0\.0\.1:\d+/stream/56780: closed by the stream server")

    def test_rtp_peer_gets_no_pull(self):
        # A far leg with RTP at an address (call-peer answers PCMA at 127.0.0.1) keeps the URLs.
        j = self.start_box(plugins={"call-peer-a": {"on_offer": "ring"}},
                           stream_pull_url=f"http://127.0.0.1:{self.srs.port}/stream/{{id}}")
        s = self.screen(j, "screen-1")
        r = j.cmd("call-peer-a", "originate", {"from": "peera:gate", "to": "intercom:room/101"})
        self.assertEqual(r["status"], 0)
        sid = s.expect("call_req")["values"]["sid"]
        s.accept(sid, dest={"videostreamid": "56780"})
        wait_until(lambda: [e for e in j.cmd("call-peer-a", "events") if e["type"] == "answer"], what="answer at call-peer-a")
        self.assertEqual(j.cmd("intercom-json", "pulls"), [])
        self.assertEqual(self.srs.requests, [])

    def test_hot_reload_pulls_again(self):
        self.srs.routes["/stream/56780"] = FakeSrs.flv(self.flv)
        j = self.start()
        s, sid, leg = self.call_screen(j)
        self.srs.wait_request("/stream/56780")
        p = self.pull(j)
        vsub = self.subscribe(j, p["video_stream"])
        # Frames published before the subscription are not counted: wait for the pull's own count.
        wait_until(lambda: self.pull(j)["video_frames"] >= 10, what="first pull done")
        before = j.cmd(VIEWER, "frames", {"sub": vsub})["video"]
        r = j.api("POST", "/api/v1/plugins/intercom-json/reload", {}, expect=200)
        self.assertGreaterEqual(r["generation"], 1)
        # The new instance pulls the answered call's stream again, onto the same bus stream.
        self.srs.wait_request("/stream/56780", 2)
        wait_until(lambda: j.cmd(VIEWER, "frames", {"sub": vsub})["video"] >= before + 10, what="frames after the reload")
        q = self.pull(j)
        self.assertEqual((q["video_stream"], q["connects"]), (p["video_stream"], 1))
        s.end(sid)
        j.wait_for_log(rf"gb-consumer: call {leg} end")

    def test_bad_media_conf_is_refused_with_its_reason(self):
        from intercom_env import PLUGIN, box_conf, free_port
        for key, value, why in (("stream_pull_url", "http://srs.example/stream/{id}", "IPv4 address"),
                                ("stream_push_url", "http://127.0.0.1/live/{id}", "rtmp"),
                                ("bus_audio_codec", "OPUS", "PCMA")):
            j = self.server(plugins={PLUGIN: box_conf(free_port(), **{key: value})})
            j.start(expect_ready=False)
            self.assertEqual(j.wait_exit(), 1)
            j.proc = None
            self.assertRegex(j.log(), rf"intercom-json\.toml:\d+: {key}: .*{why}")


if __name__ == "__main__":
    main()
