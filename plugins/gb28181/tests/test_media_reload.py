"""gb28181 hot reload with 50 live streams: every stream's frames on the bus stay contiguous
across the reload (0 frames lost: each consumer's video hashes are one unbroken run of the
encoded access units)."""
import unittest

from gb_device_sim import default_channels
from media_env import GbMediaTest, wait_until

N = 50


class ReloadTest(GbMediaTest):
    def test_reload_with_50_live_streams_loses_no_frame(self):
        ids = [f"340200000013200{i:05d}" for i in range(1, N + 1)]
        self.provision_many(ids)
        devs = []
        for i in ids:
            ch = dict(default_channels(i, 1)[0], DeviceID=i[:10] + "131" + i[13:])  # one distinct channel each
            d = self.device(i, channels=[ch], event_limit=4000)
            self.assertEqual(self.sim.run(d.register()), 200)
            devs.append(d)
        subs = []
        for d in devs:
            ch = d.channels[0]["DeviceID"]
            subs.append(self.watch(d.id, ch))
            self.play(d.id, ch)
        for d, s in zip(devs, subs):
            d.wait("invite", timeout=30)
            self.wait_frames(s, 5)
        self.j.api("POST", "/api/v1/plugins/gb28181/reload", expect=200)
        self.j.wait_for_log(r"gb28181: restored 50 registration")
        marks = [self.frames(s)["video"] for s in subs]
        for s, m in zip(subs, marks):
            self.wait_frames(s, m + 25)
        for s in subs:
            self.assertVideoIdentical(self.frames(s), "h264")
        self.assertTrue(all(len(d.find("invite")) == 1 for d in devs), "no stream was restarted")


if __name__ == "__main__":
    unittest.main()
