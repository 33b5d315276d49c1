"""gb28181 media-session admin verbs (play / stop / streams / playback / download /
playback_control) without media flowing: every refusal carries its reason, nothing is left
behind by a refused request, and a play on a registered device either INVITEs it (the media
ingest built in) or is refused with the reason that it is not. The media flows themselves are
the test_media_*.py files."""
from gb_env import DEV1, DEV2, GbTest
from junction_test import main

CH1 = "34020000001310000001"


class PlayAdminTest(GbTest):
    def test_refusals_name_their_reason(self):
        self.provision(DEV1)
        s = self.cmd("streams")
        self.assertEqual(s["sessions"], [])
        self.assertIn("media", s)
        self.assertIn("device", self.cmd("play", {"channel": CH1}, expect=400)["error"])
        self.assertIn("20 digits", self.cmd("play", {"device": DEV1, "channel": "123"}, expect=400)["error"])
        self.assertIn("no device", self.cmd("play", {"device": DEV2, "channel": CH1}, expect=404)["error"])
        self.assertIn("transport", self.cmd("play", {"device": DEV1, "channel": CH1, "transport": "sctp"}, expect=400)["error"])
        # provisioned, never registered
        self.assertIn("offline", self.cmd("play", {"device": DEV1, "channel": CH1}, expect=502)["error"])
        self.assertIn("offline", self.cmd("playback", {"device": DEV1, "channel": CH1, "start": 1697264152,
                                                       "end": 1697266715}, expect=502)["error"])
        self.assertIn("start < end", self.cmd("download", {"device": DEV1, "channel": CH1, "start": 20, "end": 10},
                                              expect=502)["error"])
        self.assertIn("no such session", self.cmd("stop", {"id": 42}, expect=404)["error"])
        self.assertIn("no such session", self.cmd("stop", {"channel": CH1}, expect=404)["error"])
        self.assertIn("action", self.cmd("playback_control", {"id": 1, "action": "rewind"}, expect=400)["error"])
        self.assertIn("no established session", self.cmd("playback_control", {"id": 1, "action": "pause"}, expect=400)["error"])
        self.assertIn("numbers", self.cmd("playback_control", {"id": 1, "action": "play", "scale": "fast"}, expect=400)["error"])
        self.assertEqual(self.cmd("streams")["sessions"], [])  # nothing left behind

    def test_play_on_a_registered_device(self):
        self.registered_device(DEV1)
        media = self.cmd("streams")["media"]
        if not media:
            err = self.cmd("play", {"device": DEV1, "channel": CH1}, expect=502)["error"]
            self.assertIn("media ingest not built", err)
            self.assertEqual(self.cmd("streams")["sessions"], [])
            return
        v = self.cmd("play", {"device": DEV1, "channel": CH1})
        self.assertEqual(v["channel"], CH1)
        self.assertEqual(v["kind"], "Play")
        self.assertEqual(len(v["ssrc"]), 10)
        self.assertTrue(v["ssrc"].startswith("0"))
        self.j.wait_for_log(rf"gb28181: INVITE Play {CH1} of {DEV1}")
        self.assertEqual([x["id"] for x in self.cmd("streams")["sessions"]], [v["id"]])
        self.cmd("stop", {"id": v["id"]})
        self.j.wait_for_log(rf"Play {CH1} of {DEV1} ended: stopped by the operator")


if __name__ == "__main__":
    main()
