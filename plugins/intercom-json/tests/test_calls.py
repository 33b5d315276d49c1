"""Call control (document section 2) and alarms (section 4), driven by test peers written from
the document: a call to a family rings every joined screen at once (first call_accept wins, the
others get call_end), reject, end by either side, connection loss, keepalive timeout, open_door,
calls by dest.ip/port (the box dials the device), seczone_emergency."""

from intercom_env import (PLUGIN, BoxTest, INNER_SCREEN, OUTER_BOX, PROPERTY_APP, OuterBox, Screen, main, metric,
                          wait_until)

ROOM = {"id": "101", "type": INNER_SCREEN}


class CallTest(BoxTest):
    def family(self, j, n=2, room="101"):
        return [self.screen(j, f"screen-{room}-{i}", room) for i in range(n)]

    def ring(self, caller, screens, sid="s1", dest=ROOM):
        caller.call(sid, dest=dest)
        return [s.expect("call_req", sid=sid) for s in screens]

    # -- fork -----------------------------------------------------------------------------------
    def test_call_to_a_family_rings_every_screen_first_accept_wins(self):
        j = self.start_box()
        s1, s2 = self.family(j, 2)
        other = self.screen(j, "screen-102-0", "102")
        door = self.outer_box(j)
        reqs = self.ring(door, [s1, s2], "s1")
        for r in reqs:
            v = r["values"]
            self.assertEqual((v["src"]["id"], v["src"]["type"]), ("door-2-1-1", OUTER_BOX))
            self.assertEqual((v["dest"]["id"], v["dest"]["type"]), ("101", INNER_SCREEN))
        other.expect_none("call_req", after=[door])
        calls = self.calls(j)
        self.assertEqual(len(calls), 1)
        self.assertEqual((calls[0]["from"], calls[0]["to"], calls[0]["state"]),
                         ("intercom:device/door-2-1-1", "intercom:room/101", "ringing"))

        s2.accept("s1")
        door.expect("call_accept", sid="s1")
        end = s1.expect("call_end", sid="s1")
        self.assertEqual(end["values"]["reason"], "answered-elsewhere")
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        # The loser's late accept is refused: the call is not its any more.
        s1.accept("s1")
        self.assertEqual(s1.expect("error")["values"]["reason"], "unknown-sid")
        s2.expect_none("call_end", after=[s1])

        door.end("s1")
        self.assertEqual(s2.expect("call_end", sid="s1")["values"]["reason"], "hangup")
        wait_until(lambda: self.calls(j) == [], what="call gone from the core")
        self.assertEqual(self.box_calls(j), [])

    def test_reject_one_screen_then_all(self):
        j = self.start_box()
        s1, s2 = self.family(j, 2)
        door = self.outer_box(j)
        self.ring(door, [s1, s2], "s1")
        s1.reject("s1", "busy", "in the bath")
        door.expect_none("call_reject", after=[s1])  # the other screen still rings
        self.assertEqual([c["state"] for c in self.calls(j)], ["ringing"])
        s2.reject("s1", "busy", "cooking")
        r = door.expect("call_reject", sid="s1")["values"]
        self.assertEqual((r["reason"], r["message"]), ("busy", "cooking"))
        wait_until(lambda: self.calls(j) == [], what="call gone")

        # A single screen declining.
        s1.close()
        self.peers.remove(s1)
        self.ring(door, [s2], "s2")
        s2.reject("s2", "declined", "not now")
        r = door.expect("call_reject", sid="s2")["values"]
        self.assertEqual((r["reason"], r["message"]), ("declined", "not now"))

    def test_end_by_caller_while_ringing_and_by_callee_after_answer(self):
        j = self.start_box()
        s1, s2 = self.family(j, 2)
        door = self.outer_box(j)
        self.ring(door, [s1, s2], "s1")
        door.end("s1", reason="")  # a cancel: every ringing screen hears call_end
        for s in (s1, s2):
            self.assertEqual(s.expect("call_end", sid="s1")["values"]["reason"], "cancelled")

        self.ring(door, [s1, s2], "s2")
        s1.accept("s2")
        door.expect("call_accept", sid="s2")
        s2.expect("call_end", sid="s2")
        s1.end("s2", "hangup", "bye")
        v = door.expect("call_end", sid="s2")["values"]
        self.assertEqual((v["reason"], v["message"]), ("hangup", "bye"))
        wait_until(lambda: self.calls(j) == [], what="call gone")

    def test_connection_loss(self):
        j = self.start_box()
        s1, s2 = self.family(j, 2)
        door = self.outer_box(j)

        # One ringing screen goes away: the other still rings and can answer.
        self.ring(door, [s1, s2], "a")
        s1.abort()
        self.peers.remove(s1)
        s2.accept("a")
        door.expect("call_accept", sid="a")
        # The answered screen goes away: the caller hears call_end.
        s2.abort()
        self.peers.remove(s2)
        self.assertEqual(door.expect("call_end", sid="a")["values"]["reason"], "connection-lost")

        # The caller goes away mid-call: the screen hears call_end.
        s3 = self.screen(j, "screen-101-3")
        self.ring(door, [s3], "b")
        s3.accept("b")
        door.expect("call_accept", sid="b")
        door.abort()
        self.peers.remove(door)
        self.assertEqual(s3.expect("call_end", sid="b")["values"]["reason"], "connection-lost")

        # The only ringing screen goes away: the caller's call is rejected.
        door2 = self.outer_box(j, "door-2")
        self.ring(door2, [s3], "c")
        s3.abort()
        self.peers.remove(s3)
        self.assertEqual(door2.expect("call_reject", sid="c")["values"]["reason"], "connection-lost")
        wait_until(lambda: self.calls(j) == [], what="no call left")

    def test_keepalive_timeout_ends_the_call_on_both_sides(self):
        j = self.start_box(keep_interval_ms=300, keep_max_missed=3)
        s = self.screen(j, "screen-1")
        door = self.outer_box(j)
        self.ring(door, [s], "k")
        s.accept("k")
        door.expect("call_accept", sid="k")
        # Both sides keep: the box keeps both, one call_keep per interval. Six of them to each side
        # (the box's own clock: at least 6 x 300 ms = twice the 900 ms timeout) and the call is up.
        door.keep_alive("k", 0.1)
        s.keep_alive("k", 0.1)
        for _ in range(6):
            s.expect("call_keep", sid="k")
            door.expect("call_keep", sid="k")
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        self.assertEqual([m for m in s.received + door.received if m["name"] == "call_end"], [])
        # The screen stops keeping: both sides hear call_end keep-timeout, and it is the screen's
        # silence that ended it (the door kept on).
        s.stop_keep("k")
        self.assertEqual(s.expect("call_end", sid="k", timeout=10)["values"]["reason"], "keep-timeout")
        self.assertEqual(door.expect("call_end", sid="k", timeout=10)["values"]["reason"], "keep-timeout")
        j.wait_for_log("call .*: no call_keep from screen-1 for")
        self.assertNotIn("no call_keep from door-2-1-1", j.log())
        wait_until(lambda: self.calls(j) == [], what="call gone")

    def test_open_door(self):
        j = self.start_box()
        s1, s2 = self.family(j, 2)
        door = self.outer_box(j)
        self.ring(door, [s1, s2], "d")
        # Opening while it still rings (answering is not needed to let a visitor in).
        s2.open_door("d")
        self.assertEqual(door.expect("open_door")["values"], {"sid": "d"})
        s1.accept("d")
        door.expect("call_accept", sid="d")
        s1.open_door("d")
        self.assertEqual(door.expect("open_door")["values"], {"sid": "d"})
        s1.end("d")
        door.expect("call_end", sid="d")

    def test_dial_out_is_off_by_default(self):
        # A joined device naming dest.ip/port must not make the box connect anywhere.
        j = self.start_box()
        s = self.screen(j, "screen-1")
        listener = self.dial_in(OuterBox, "door-listening")
        s.call("m0", dest={"ip": "127.0.0.1", "port": listener.port, "type": OUTER_BOX})
        self.assertEqual(s.expect("call_reject", sid="m0")["values"]["reason"], "dial-out-disabled")
        # The refusal is decided before any connect: nothing is queued at the listener.
        listener.srv.setblocking(False)
        with self.assertRaises(BlockingIOError):
            listener.srv.accept()
        self.assertEqual(self.box_calls(j), [])

    def test_call_req_flood_is_limited_per_connection(self):
        j = self.start_box(call_req_per_min=1, call_req_burst=3)
        door = self.outer_box(j)
        other = self.outer_box(j, "door-2")
        ids = [door.call(f"f{i}", dest={}) for i in range(8)]
        # One answer per call_req, in order: the burst is served (no dest here: call_reject), the
        # rest gets the protocol's error 429.
        answers = [door.expect(None) for _ in ids]
        self.assertEqual([a["name"] for a in answers], ["call_reject"] * 3 + ["error"] * 5, answers)
        self.assertEqual([a["values"]["sid"] for a in answers[:3]], ["f0", "f1", "f2"])
        for a, mid in zip(answers[3:], ids[3:]):
            self.assertEqual((a["id"], a["values"]["code"], a["values"]["reason"]), (mid, 429, "rate-limited"))
        self.assertEqual(metric(j, "intercom_call_req_limited_total"), 5)
        j.wait_for_log(r"call_req flood from 127\.0\.0\.1:\d+ \(door-2-1-1\)")
        self.assertEqual(sum(1 for l in j.lines if l and "call_req flood from" in l), 1)  # logged once per flood
        # Another connection has its own bucket; the flooder stays connected (well-formed messages).
        other.call("g0", dest={})
        self.assertEqual(other.expect("call_reject", sid="g0")["values"]["reason"], "no-dest")
        door.call("f9", dest={})
        self.assertEqual(door.expect("error")["values"]["reason"], "rate-limited")
        self.assertEqual(j.cmd(PLUGIN, "info")["connections"], 2)

    def test_calls_by_dest_ip_port_dial_the_device(self):
        j = self.start_box(dial_out=True)
        s = self.screen(j, "screen-1")
        listener = self.dial_in(OuterBox, "door-listening")
        s.call("m1", dest={"ip": "127.0.0.1", "port": listener.port, "type": OUTER_BOX},
               src={"id": "101", "audio_stream_id": "56780"})
        door = listener.accept()
        self.peers.append(door)
        req = door.expect("call_req", sid="m1")["values"]
        self.assertEqual((req["src"]["id"], req["src"]["type"]), ("101", INNER_SCREEN))
        self.assertEqual((req["dest"]["ip"], req["dest"]["port"]), ("127.0.0.1", listener.port))
        door.accept("m1")
        s.expect("call_accept", sid="m1")
        door.open_door("m1")  # the door unit may send it too; the screen hears it
        s.expect("open_door")
        s.end("m1")
        door.expect("call_end", sid="m1")
        door.wait_closed()  # the box hangs up the connection it dialled

        # Nobody listening there: call_reject "unreachable".
        dead = self.dial_in()
        port = dead.port
        dead.close()
        s.call("m2", dest={"ip": "127.0.0.1", "port": port, "type": OUTER_BOX})
        self.assertEqual(s.expect("call_reject", sid="m2")["values"]["reason"], "unreachable")

    def test_unroutable_and_refused_calls(self):
        j = self.start_box()
        door = self.outer_box(j)
        door.call("x1", dest={"id": "999", "type": INNER_SCREEN})
        self.assertEqual(door.expect("call_reject", sid="x1")["values"]["reason"], "no-such-family")
        s = self.screen(j, "screen-1", "101")
        s.close()
        self.peers.remove(s)
        wait_until(lambda: j.cmd(PLUGIN, "info")["joined"] == 1, what="screen gone")
        door.call("x2", dest=ROOM)
        self.assertEqual(door.expect("call_reject", sid="x2")["values"]["reason"], "offline")
        door.call("x3", dest={})
        self.assertEqual(door.expect("call_reject", sid="x3")["values"]["reason"], "no-dest")
        door.call("x4", dest={"id": "nosuchscheme:abc"})
        self.assertEqual(door.expect("call_reject", sid="x4")["values"]["reason"], "no-route")
        door.call("x5", dest={"id": "ghost", "type": PROPERTY_APP})
        self.assertEqual(door.expect("call_reject", sid="x5")["values"]["reason"], "no-such-device")
        # The same sid twice on one connection while the first is up.
        s = self.screen(j, "screen-2", "101")
        door.call("x6", dest=ROOM)
        s.expect("call_req", sid="x6")
        door.call("x6", dest=ROOM)
        self.assertEqual(door.expect("error")["values"]["reason"], "duplicate-sid")

    def test_ring_timeout(self):
        j = self.start_box(server={"ring_timeout_ms": 1000})
        s = self.screen(j, "screen-1")
        door = self.outer_box(j)
        self.ring(door, [s], "t")
        self.assertEqual(door.expect("call_reject", sid="t", timeout=5)["values"]["reason"], "ring timeout")
        self.assertEqual(s.expect("call_end", sid="t")["values"]["reason"], "ring timeout")

    # -- alarms -------------------------------------------------------------------------------------
    def test_seczone_emergency_from_admin_and_from_alarm_events(self):
        j = self.start_box()
        a1, a2 = self.family(j, 2, "101")
        b1 = self.screen(j, "screen-102-0", "102")
        door = self.outer_box(j)

        r = j.cmd(PLUGIN, "alarm", {"room": "101", "port": "3", "name": "smoke", "message": "kitchen smoke detector"})
        self.assertEqual(r["sent"], 2)
        for s in (a1, a2):
            self.assertEqual(s.expect("seczone_emergency")["values"],
                             {"port": "3", "name": "smoke", "message": "kitchen smoke detector"})
        b1.expect_none("seczone_emergency")  # the alarm was sent to all at once, before the reply
        door.expect_none("seczone_emergency")

        # Another plugin raises an alarm through the core (the same path as POST /api/v1/events).
        j.api("POST", "/api/v1/events", {"topic": "alarm/gb28181/34020000001320000001",
                                         "data": {"room": "102", "source": "cam-7", "type": "motion",
                                                  "description": "motion at the gate"}}, expect=202)
        self.assertEqual(b1.expect("seczone_emergency")["values"],
                         {"port": "cam-7", "name": "motion", "message": "motion at the gate"})
        a1.expect_none("seczone_emergency")
        # No room: every family's screens.
        rc, out, err = j.ctl("event", "alarm/fire", '{"port":"1","name":"fire","message":"building fire alarm"}')
        self.assertEqual(rc, 0, err)
        for s in (a1, a2, b1):
            self.assertEqual(s.expect("seczone_emergency")["values"]["name"], "fire")
        # A topic outside alarm/ is not ours: the next alarm a1 sees is the one posted after it.
        j.api("POST", "/api/v1/events", {"topic": "other/x", "data": {"name": "nope"}}, expect=202)
        j.api("POST", "/api/v1/events", {"topic": "alarm/sentinel", "data": {"room": "101", "name": "sentinel"}}, expect=202)
        self.assertEqual(a1.expect("seczone_emergency")["values"]["name"], "sentinel")
        a1.expect_none("seczone_emergency")


if __name__ == "__main__":
    main()
