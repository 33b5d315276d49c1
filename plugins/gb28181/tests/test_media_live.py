"""gb28181 live view (实时预览) end to end: the simulated device streams ffmpeg-encoded H.264 /
H.265 + G.711A as PS over RTP; the admin "play" starts the live stream and the frames on the
channel's bus stream (gb-consumer's hashes) are byte-identical to the encoded elementary stream,
in order, none missing, over UDP, TCP passive and TCP active; "stop" BYEs the device. An RTP
timeout re-INVITEs and frames flow again; the device's BYE (断流) ends the session.
(Two viewers by calls to gb:<device>/<channel>: test_media_viewers.py.)"""
import unittest

from media_env import DEV1, GbMediaTest, wait_until


class LiveTest(GbMediaTest):
    def live(self, transport, vcodec):
        dev = self.media_device(DEV1, transport, media_codec=vcodec)
        ch = dev.channels[0]["DeviceID"]
        sub = self.watch(DEV1, ch)
        view = self.play(DEV1, ch, transport)
        inv = dev.wait("invite", timeout=15)
        self.assertEqual((inv["s"], inv["transport"]), ("Play", transport))
        self.assertRegex(inv["y"], r"^0\d{9}$", "live: y= starts with 0 (the document's SSRC rule)")
        f = self.wait_frames(sub, 60)  # past one loop of the 2 s file
        self.assertVideoIdentical(f, vcodec)
        self.assertEqual(f["discont"], 1, "one discontinuity: the first frame")
        self.stop(channel=ch)
        dev.wait("bye_received", timeout=15)
        self.assertIn("id", view)

    def test_udp_h264(self):
        self.live("udp", "h264")

    def test_tcp_passive_h264(self):
        self.live("tcp_passive", "h264")

    def test_tcp_active_h264(self):
        self.live("tcp_active", "h264")

    def test_udp_h265(self):
        self.live("udp", "h265")

    def test_tcp_passive_h265(self):
        self.live("tcp_passive", "h265")

    def test_tcp_active_h265(self):
        self.live("tcp_active", "h265")

    def test_rtp_timeout_reinvites(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        sub = self.watch(DEV1, ch)
        self.play(DEV1, ch)
        first = dev.wait("invite", timeout=15)
        self.wait_frames(sub, 10)
        self.sim.call(dev.media.stall, first["call_id"])
        second = dev.wait("invite", timeout=15, since=first["i"] + 1)
        self.assertNotEqual(second["call_id"], first["call_id"])
        before = self.frames(sub)["video"]
        self.wait_frames(sub, before + 10)  # frames flow again on the same bus stream

    def test_device_bye_ends_viewers(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        sub = self.watch(DEV1, ch)
        self.play(DEV1, ch)
        inv = dev.wait("invite", timeout=15)
        self.wait_frames(sub, 10)
        self.assertEqual(self.sim.run(dev.media.hangup(inv["call_id"])), 200)
        wait_until(lambda: not self.cmd("streams")["sessions"])  # the session ended with the device's BYE


if __name__ == "__main__":
    unittest.main()
