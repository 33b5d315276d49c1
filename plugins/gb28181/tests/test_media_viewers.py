"""gb28181 live view with viewers as calls (gb-consumer calls gb:<device>/<channel>): two viewers
make one INVITE; the first leaving keeps the stream; the last leaving BYEs after the grace."""
import unittest

from media_env import DEV1, GbMediaTest


class ViewersTest(GbMediaTest):
    def test_two_viewers_one_invite_last_leaves_bye_after_grace(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        a = self.viewer(ch, DEV1)
        dev.wait("invite", timeout=15)
        b = self.viewer(ch, DEV1)
        self.j.wait_for_log(r"gb-consumer: call \d+ answer")
        sub = self.watch(DEV1, ch)
        self.wait_frames(sub, 10)
        self.assertEqual(len(dev.find("invite")), 1, "the second viewer joins the running stream")
        self.end_viewer(a)
        mark = dev.mark()
        self.wait_frames(sub, 20)  # still streaming for b
        self.assertEqual(dev.find("bye_received", since=mark), [])
        self.end_viewer(b)
        bye = dev.wait("bye_received", timeout=15)
        self.assertEqual(len(dev.find("invite")), 1)
        self.assertGreater(bye["frames"], 0)


if __name__ == "__main__":
    unittest.main()
