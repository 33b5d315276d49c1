"""gb28181 media-session admin verbs (play / stop / streams / playback / download /
playback_control) without media flowing: every refusal carries its reason, nothing is left
behind by a refused request, and a play on a registered device either INVITEs it (the media
ingest built in) or is refused with the reason that it is not. The media flows themselves are
the test_media_*.py files."""
from gb_env import DEV1, DEV2, GbTest, wait_until
from junction_test import main

CH1 = "34020000001310000001"


class PlayAdminTest(GbTest):
    def server(self, **kw):
        # The core's [ports.media] range the receivers take their ports from: a private band
        # below the ephemeral range (30400-30499, clear of rtp-relay's test bands).
        j = super().server(**kw)
        j.write_core(dict(j.core, ports={"media": {"min": 30400, "max": 30499}}))
        return j

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
        self.assertEqual(v["state"], "inviting")
        self.assertRegex(v["ssrc"], r"^0\d{9}$")  # live: 0 + domain digits + sequence
        self.assertTrue(30400 <= v["media_port"] <= 30499, v)  # from the core's range
        self.j.wait_for_log(rf"gb28181: INVITE Play {CH1} of {DEV1} \(udp, y={v['ssrc']}, port {v['media_port']}\)")
        # The simulated device answers the INVITE: established (a device with media) or refused
        # (part 1's simulator: 501); a refusal closes the receiver and leaves no session.
        m = self.j.wait_for_log(rf"Play {CH1} of {DEV1} (established|ended: INVITE answered \d+)")
        if "established" in m:
            self.assertEqual([x["id"] for x in self.cmd("streams")["sessions"]], [v["id"]])
            self.cmd("stop", {"id": v["id"]})
            self.j.wait_for_log(rf"Play {CH1} of {DEV1} ended: stopped by the operator")
        else:
            self.j.wait_for_log(rf"stream \d+ gb28181/{DEV1}/{CH1} closed: INVITE answered")
            self.assertEqual(self.cmd("streams")["sessions"], [])


class GbRoutingTest(GbTest):
    """Calls from another plugin (call-peer-a) to gb:<channel>: refused with the reason when the
    channel is unknown or its device offline; for a registered device the call rings while the
    platform INVITEs it, and is rejected with the INVITE's outcome when the stream cannot start
    (part 1's simulator answers INVITE 501; restart_attempts = 1: no retry)."""
    conf_over = {"play": {"restart_attempts": 1}}
    plugins_extra = {"call-peer-a": {"on_offer": "none"}}

    def server(self, **kw):
        j = super().server(**kw)
        j.write_core(dict(j.core, ports={"media": {"min": 30500, "max": 30599}}))
        return j

    def originate(self, to):
        r = self.j.cmd("call-peer-a", "originate", {"from": "peera:desk/1", "to": to})
        self.assertEqual(r["status"], 0, r)
        return r["leg"]

    def events_of(self, leg, *types):
        got = []

        def seen():
            got[:] = [e for e in self.j.cmd("call-peer-a", "events") if e["leg"] == leg and e["type"] in types]
            return got
        wait_until(seen, timeout=10, what=f"{types} on leg {leg}")
        return got

    def test_unknown_channel_and_offline_device_are_rejected(self):
        self.provision(DEV1)
        leg = self.originate("gb:" + CH1)
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 404)
        self.assertIn("catalog", e["reason"])
        leg = self.originate(f"gb:{DEV1}/{CH1}")
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 480)
        self.assertIn("offline", e["reason"])
        leg = self.originate("gb:12345")
        self.assertIn("20-digit", self.events_of(leg, "reject")[0]["reason"])

    def test_call_rings_then_gets_the_invite_outcome(self):
        self.registered_device(DEV1)
        leg = self.originate(f"gb:{DEV1}/{CH1}")
        self.events_of(leg, "ringing")
        self.j.wait_for_log(rf"gb28181: INVITE Play {CH1} of {DEV1}")
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 503)
        self.assertIn("INVITE answered 501", e["reason"])
        self.assertEqual(self.cmd("streams")["sessions"], [])


if __name__ == "__main__":
    main()
