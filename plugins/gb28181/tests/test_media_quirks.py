"""gb28181 media against the field's device quirks: the RTP SSRC differs from the answer's y=,
SSRC 0, an answer whose y= differs from the offer's, a lying RFC 4571 length mid-stream (the
receiver resyncs), 5 % UDP loss (only whole frames reach the bus: every frame published is one
of the encoded access units, byte for byte)."""
import unittest

from media_env import DEV1, GbMediaTest, expected_video_hashes


class QuirksTest(GbMediaTest):
    def run_quirk(self, quirk, transport="udp", frames=40):
        dev = self.media_device(DEV1, transport, quirks=(quirk,))
        ch = dev.channels[0]["DeviceID"]
        sub = self.watch(DEV1, ch)
        self.play(DEV1, ch)
        dev.wait("invite", timeout=15)
        return dev, self.wait_frames(sub, frames)

    def test_ssrc_differs_from_y(self):
        _, f = self.run_quirk("ssrc_mismatch")
        self.assertVideoIdentical(f, "h264")

    def test_ssrc_zero(self):
        _, f = self.run_quirk("ssrc_zero")
        self.assertVideoIdentical(f, "h264")

    def test_answer_with_another_y(self):
        dev, f = self.run_quirk("answer_ssrc")
        inv = dev.find("invite")[0]
        self.assertNotEqual(int(inv["y"]), inv["answer_ssrc"])
        self.assertVideoIdentical(f, "h264")

    def test_tcp_lying_length_resyncs(self):
        dev, _ = self.run_quirk("tcp_bad_length", "tcp_passive", frames=5)
        dev.wait("media_corrupted", timeout=15)
        sub_frames = self.wait_frames(self.watch(DEV1, dev.channels[0]["DeviceID"]), 30)
        expected = set(expected_video_hashes("h264"))
        self.assertTrue(all(h in expected for h, k in zip(sub_frames["hashes"], sub_frames["kinds"]) if k == "v"))
        self.assertIn("resync", self.j.log())

    def test_udp_loss_whole_frames_only(self):
        dev, f = self.run_quirk("udp_loss", frames=60)
        expected = set(expected_video_hashes("h264"))
        video = [h for h, k in zip(f["hashes"], f["kinds"]) if k == "v"]
        self.assertTrue(all(h in expected for h in video), "a damaged frame is dropped, never published cut")
        sent = len(dev.find("media_frame", track="v"))
        self.assertLess(len(video), sent, "some frames were lost")


if __name__ == "__main__":
    unittest.main()
