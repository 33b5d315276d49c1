"""gb28181 voice broadcast (语音广播): Notify/Broadcast to the device, its Response, the device's
INVITE for audio; what the device receives is valid G.711A (PS-wrapped or plain RTP, as its SDP
asked), from a bus audio stream of G.711A frames."""
import unittest

from media_env import DEV1, GbMediaTest, wait_until


class BroadcastTest(GbMediaTest):
    def broadcast(self, mode):
        dev = self.media_device(DEV1, broadcast_audio=mode)
        # the source: another registered channel's live audio (G.711A from the simulator)
        src = self.media_device("34020000001320000002")
        src_ch = src.channels[0]["DeviceID"]
        self.play("34020000001320000002", src_ch)
        src.wait("invite", timeout=15)
        self.cmd("broadcast", {"device": DEV1, "channel": dev.channels[0]["DeviceID"],
                               "source": f"gb28181/34020000001320000002/{src_ch}/audio"})
        dev.wait("broadcast", timeout=15)
        dev.wait("broadcast_response", status=200)
        dev.wait("broadcast_acked", timeout=15)
        wait_until(lambda: dev.media._broadcast["got"]["packets"] >= 50)
        r = self.sim.call(dev.media.broadcast_result)
        self.assertEqual(r["acodec"], "pcma")
        self.assertEqual(r.get("errors", {}), {})
        self.assertGreater(r["rms"], 1000, "the source's tone, not silence")
        self.assertEqual(r["pts"], [96] if mode == "ps" else [8])

    def test_broadcast_ps(self):
        self.broadcast("ps")

    def test_broadcast_plain(self):
        self.broadcast("plain")


if __name__ == "__main__":
    unittest.main()
