"""Hot reload of intercom-json during a ringing call and during an active call: both survive, no
message is lost (the core holds the plugin's input during the swap and replays it), the
keepalive clock carries over (it is not restarted by the reload)."""
import threading
import time

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

        # The screen sends open_door messages without pause across three reloads.
        sent = []
        stop = threading.Event()

        def burst():
            while not stop.is_set() and len(sent) < 2000:
                sent.append(s.open_door("a1"))
                time.sleep(0.0005)

        t = threading.Thread(target=burst)
        t.start()
        held = 0
        try:
            for _ in range(3):
                time.sleep(0.05)
                held += self.reload(j)["held_events"]
        finally:
            stop.set()
            t.join()
        got = 0
        deadline = time.monotonic() + 10
        while got < len(sent) and time.monotonic() < deadline:
            door.expect("open_door", sid="a1")
            got += 1
        self.assertEqual(got, len(sent))
        door.expect_none("open_door", within=0.2)
        self.assertEqual([m for m in s.received + door.received if m["name"] in ("error", "call_end")], [])
        # The call is still up and ends normally.
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        door.end("a1")
        s.expect("call_end", sid="a1")
        print(f"{len(sent)} open_door relayed across 3 reloads, {held} events held by the core during cut-overs")

    def test_keepalive_clock_carries_over_a_reload(self):
        interval, missed = 1.0, 3           # a silent device is ended 3.0 s after its last keep
        j = self.start_box(keep_interval_ms=int(interval * 1000), keep_max_missed=missed)
        s = self.screen(j, "screen-1")
        door = self.outer_box(j)
        door.call("k1", dest=ROOM)
        s.expect("call_req", sid="k1")
        s.accept("k1")
        door.expect("call_accept", sid="k1")
        door.keep_alive("k1", 0.2)
        s.keep("k1")
        last_keep = time.monotonic()
        time.sleep(2.0)  # time must pass: most of the timeout, then the reload
        self.reload(j)
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        end = s.expect("call_end", sid="k1", timeout=5)
        elapsed = time.monotonic() - last_keep
        self.assertEqual(end["values"]["reason"], "keep-timeout")
        self.assertEqual(door.expect("call_end", sid="k1")["values"]["reason"], "keep-timeout")
        # 3.0 s plus at most a tick (250 ms): had the reload restarted the clock it would be >= 5.0 s.
        self.assertGreaterEqual(elapsed, interval * missed - 0.05)
        self.assertLess(elapsed, 4.3)
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
