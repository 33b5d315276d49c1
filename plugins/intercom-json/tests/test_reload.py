"""Hot reload of intercom-json during a ringing call and during an active call: both survive, no
message is lost (the core holds the plugin's input during the swap and replays it), the
keepalive clock carries over (it is not restarted by the reload)."""
import threading

from intercom_env import (PLUGIN, BoxTest, INNER_SCREEN, main, wait_until)

ROOM = {"id": "101", "type": INNER_SCREEN}


class ReloadTest(BoxTest):
    def reload(self, j):
        r = j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", expect=200)
        self.assertTrue(r["ok"], r)
        self.assertTrue(r["old_unloaded"], r)
        return r

    def test_reload_during_a_ringing_call(self):
        j = self.start_box()
        s1 = self.screen(j, "screen-1")
        s2 = self.screen(j, "screen-2")
        door = self.outer_box(j)
        door.call("r1", dest=ROOM)
        s1.expect("call_req", sid="r1")
        s2.expect("call_req", sid="r1")
        before = self.calls(j)
        r = self.reload(j)
        self.assertEqual(r["generation"], 1)
        self.assertEqual(self.calls(j)[0]["id"], before[0]["id"])
        self.assertEqual(j.cmd(PLUGIN, "info")["generation"], 1)
        # The ring goes on in the new instance: the fork, the accept, the loser's call_end.
        s2.accept("r1")
        door.expect("call_accept", sid="r1")
        self.assertEqual(s1.expect("call_end", sid="r1")["values"]["reason"], "answered-elsewhere")
        door.end("r1")
        s2.expect("call_end", sid="r1")
        # Registrations and routes survived too: a new call rings both screens.
        door.call("r2", dest=ROOM)
        s1.expect("call_req", sid="r2")
        s2.expect("call_req", sid="r2")
        j.wait_for_log("plugin intercom-json reloaded")

    def test_reload_during_an_active_call_loses_no_message(self):
        j = self.start_box()
        s = self.screen(j, "screen-1")
        door = self.outer_box(j)
        door.call("a1", dest=ROOM)
        s.expect("call_req", sid="a1")
        s.accept("a1")
        door.expect("call_accept", sid="a1")

        # The screen sends open_door messages without pause across three reloads, at most WINDOW
        # ahead of what the door has received (flow control on the door's receipts, not a pace).
        # The sender's errors are raised here, not lost in its thread.
        WINDOW = 100
        sent = []
        stop = threading.Event()
        failure = []

        def door_has(n):
            return sum(1 for m in door.received if m["name"] == "open_door") >= n

        def burst():
            try:
                while not stop.is_set() and len(sent) < 100000:
                    with door.cond:
                        door.cond.wait_for(lambda: stop.is_set() or door_has(len(sent) - WINDOW), timeout=10)
                    if stop.is_set():
                        return
                    if not door_has(len(sent) - WINDOW):
                        raise AssertionError(f"the door stopped receiving open_door: {len(sent)} sent")
                    sent.append(s.open_door("a1"))
            except Exception as e:  # noqa: BLE001 - re-raised by the test below
                failure.append(e)

        def relayed_more(n):
            """Waits for n more open_door at the door: the stream is flowing through the box."""
            for _ in range(n):
                door.expect("open_door", sid="a1")
            return n

        t = threading.Thread(target=burst)
        t.start()
        got = 0
        held = []
        try:
            for _ in range(3):
                got += relayed_more(20)  # flowing before the reload ...
                held.append(self.reload(j)["held_events"])
                got += relayed_more(20)  # ... and after it
        finally:
            stop.set()
            t.join()
        if failure:
            raise failure[0]
        self.assertEqual(len(held), 3)
        self.assertTrue(all(isinstance(h, int) and h >= 0 for h in held), held)
        # Every open_door sent arrived, none twice: the rest of them, then a sync round trip
        # through the box shows nothing more is queued.
        relayed_more(len(sent) - got)
        door.expect_none("open_door", after=[s])
        self.assertEqual([m for m in s.received + door.received if m["name"] in ("error", "call_end")], [])
        # The call is still up and ends normally.
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        door.end("a1")
        s.expect("call_end", sid="a1")

    def test_keepalive_clock_carries_over_a_reload(self):
        # The clock is each party's last_rx / last_tx (the loop's monotonic ms) in the saved state:
        # a reload must hand them over unchanged, neither restarted (now) nor lost (0).
        j = self.start_box(keep_interval_ms=500, keep_max_missed=3)
        s = self.screen(j, "screen-1")
        door = self.outer_box(j)
        door.call("k1", dest=ROOM)
        s.expect("call_req", sid="k1")
        s.accept("k1")
        door.expect("call_accept", sid="k1")
        s.keep("k1")  # the screen's last sign of life
        s.sync()      # ... read by the box

        def screen_party():
            legs = [c for c in self.box_calls(j) if not c["a_side"]]
            self.assertEqual(len(legs), 1, legs)
            return legs[0]["parties"][0]

        before = screen_party()
        self.assertEqual(before["dev"], "screen-1")
        self.assertGreater(before["last_rx"], 0)
        door.keep_alive("k1", 0.1)
        self.reload(j)
        after = screen_party()
        self.assertEqual(after["last_rx"], before["last_rx"])
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        # The silent screen is then ended by the carried-over clock, on both sides.
        end = s.expect("call_end", sid="k1", timeout=10)
        self.assertEqual(end["values"]["reason"], "keep-timeout")
        self.assertEqual(door.expect("call_end", sid="k1")["values"]["reason"], "keep-timeout")
        j.wait_for_log("no call_keep from screen-1 for")
        wait_until(lambda: self.calls(j) == [], what="call gone")

    def test_reload_keeps_state_when_nothing_is_happening(self):
        j = self.start_box()
        self.screen(j, "screen-1")
        info = j.cmd(PLUGIN, "info")
        self.reload(j)
        after = j.cmd(PLUGIN, "info")
        self.assertEqual((after["connections"], after["joined"], after["routes"]),
                         (info["connections"], info["joined"], info["routes"]))


if __name__ == "__main__":
    main()
