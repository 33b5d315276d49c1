"""verto-ws subscriptions and events: subscribe/unsubscribe replies (subscribed / unauthorized /
already), broadcast to subscribers with eventSerno, per-user permissions, the heartbeat channel,
core events exposed as channels."""
from verto_env import PLUGIN, VertoTest, main


class Events(VertoTest):
    def test_subscribe_replies(self):
        self.start(user_channels={"1002": ["secret.*"]})
        a = self.logged_in("1001")
        r = a.result("verto.subscribe", {"eventChannel": ["chat.room", "admin.only"]})
        self.assertEqual(r["subscribedChannels"], ["chat.room"])
        self.assertEqual(r["unauthorizedChannels"], ["admin.only"])
        r = a.result("verto.subscribe", {"eventChannel": "chat.room"})
        self.assertEqual(r["alreadySubscribedChannels"], ["chat.room"])
        r = a.result("verto.unsubscribe", {"eventChannel": "chat.room"})
        self.assertEqual(r["unsubscribedChannels"], ["chat.room"])
        # per-user patterns replace the default list
        b = self.logged_in("1002")
        r = b.result("verto.subscribe", {"eventChannel": ["secret.x", "chat.room"]})
        self.assertEqual(r["subscribedChannels"], ["secret.x"])
        self.assertEqual(r["unauthorizedChannels"], ["chat.room"])
        self.assertEqual(b.call("verto.subscribe", {})["error"]["code"], -32602)

    def test_broadcast_reaches_subscribers_only(self):
        self.start()
        a, b, c = self.logged_in("1001"), self.logged_in("1002"), self.logged_in("1001")
        a.result("verto.subscribe", {"eventChannel": "chat.room"})
        b.result("verto.subscribe", {"eventChannel": "chat.room"})
        r = c.result("verto.broadcast", {"eventChannel": "chat.room", "data": {"text": "hello"}})
        self.assertEqual(r["delivered"], 2)
        ev_a = a.wait_request("verto.event")
        ev_b = b.wait_request("verto.event")
        for ev in (ev_a, ev_b):
            self.assertEqual(ev["eventChannel"], "chat.room")
            self.assertEqual(ev["data"], {"text": "hello"})
            self.assertEqual(ev["userid"], "1001")
            self.assertIsInstance(ev["eventSerno"], int)
        # the broadcaster, not subscribed, got nothing; a second broadcast has a later serno
        c.result("verto.broadcast", {"eventChannel": "chat.room", "data": 2})
        self.assertGreater(a.wait_request("verto.event")["eventSerno"], ev_a["eventSerno"])
        self.assertFalse(c.has_request("verto.event"))
        # no broadcast where the user may not subscribe
        self.assertEqual(c.call("verto.broadcast", {"eventChannel": "admin.x", "data": 1})["error"]["code"], -32001)

    def test_heartbeat_channel_carries_live_figures(self):
        self.start(heartbeat_ms=200)
        a = self.logged_in("1001")
        a.result("verto.subscribe", {"eventChannel": "FSevent.heartbeat"})
        ev = a.wait_request("verto.event", lambda p: p["eventChannel"] == "FSevent.heartbeat")
        self.assertEqual(ev["data"]["Event-Name"], "HEARTBEAT")
        self.assertEqual(ev["data"]["Verto-Logged-In"], "1")
        self.assertEqual(ev["data"]["Session-Count"], "0")
        # nobody may broadcast on it
        self.assertIn("error", a.call("verto.broadcast", {"eventChannel": "FSevent.heartbeat", "data": {}}))

    def test_core_events_as_channels(self):
        self.start(core_events=["alarm/"])
        a = self.logged_in("1001")
        a.result("verto.subscribe", {"eventChannel": "alarm/"})
        self.j.api("POST", "/api/v1/events", {"topic": "alarm/door", "data": {"door": "1-1", "kind": "forced"}}, expect=202)
        ev = a.wait_request("verto.event")
        self.assertEqual(ev["eventChannel"], "alarm/door")
        self.assertEqual(ev["data"], {"door": "1-1", "kind": "forced"})


if __name__ == "__main__":
    main()
