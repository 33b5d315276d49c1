"""xxxcid-gateway with the real intercom-json plugin in one server (no stand-in peers).

A static conf route sends a door's call for a room (xxxcid:room/<room key>, README "Calls,
routing and other plugins") to the intercom family of that room (intercom:room/<room>, the
intercom README "Calls"). The room key of the door's callee S00010108090 is 00010108090, so the
intercom screen joins family "00010108090" and the two line up.

Intercom-json has no talk message: a screen talks from the moment it accepts. Its ANSWER carries no
audio stream (a plain call_accept{sid}, as in the document) or an active one (the intercom
README's audio_stream_id extension); either way the door side sends op 4 then op 6 talk, and the
door's type-2 answer completes the talk. open_door from the screen is INFO open-door -> op 10.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "intercom-json", "tests"))

from xx_common import GatewayTest, NAME, DOOR, CALLEE, UID  # noqa: E402
from junction_test import free_port, main  # noqa: E402
from intercom_env import PLUGIN as ICOM, box_conf  # noqa: E402
from intercom_peer import Screen, OUTER_BOX  # noqa: E402

KEY = "00010108090"                     # room key of CALLEE, and the intercom family id
ROOM_URI = "xxxcid:room/" + KEY
FAMILY_URI = "intercom:room/" + KEY
DOOR_URI = "xxxcid:door/" + DOOR


class WithIntercom(GatewayTest):
    routes = [{"match": "regex", "pattern": r"xxxcid:room/([0-9]+)", "targets": ["intercom:room/$1"]}]

    def setUp(self):
        self.box_port = free_port()
        self.plugins_extra = {ICOM: box_conf(self.box_port)}
        super().setUp()
        self.screens = []

    def tearDown(self):
        for s in self.screens:
            try:
                s.close()
            except OSError:
                pass
        super().tearDown()

    # -- helpers ----------------------------------------------------------------------------------
    def screen(self, device="screen-1", room=KEY):
        tok = self.j.cmd(ICOM, "issue-token", {"device": device, "type": Screen.type, "room": room})["token"]
        s = Screen(self.box_port, name=device)
        self.screens.append(s)
        reply = s.join(tok)
        self.assertEqual(reply["name"], "join_accept", reply)
        self.assertEqual(reply["values"]["room_id"], room)
        return s

    def core_calls(self):
        return self.j.api("GET", "/api/v1/calls", expect=200)

    def door_calls_in_thread(self, door):
        result = {}
        t = threading.Thread(target=lambda: result.update(r=door.call(CALLEE)), daemon=True)
        t.start()
        return t, result

    def assert_call_req_from_door(self, req):
        v = req["values"]
        # The foreign caller is the door's URI, typed as an outer box; dest is the family.
        self.assertEqual((v["src"]["id"], v["src"]["type"], v["dest"]["id"]), (DOOR_URI, OUTER_BOX, KEY), v)
        return v["sid"]

    def ring_and_answer(self, door, screen, accept_dest=None):
        """Door op 1 -> route -> intercom family -> call_req; call_accept -> ANSWER -> op 4 + op 6."""
        mark = len(self.j.lines)
        t, result = self.door_calls_in_thread(door)
        sid = self.assert_call_req_from_door(screen.expect("call_req", timeout=5))
        # Ringing: the door has had no answer (no op 4, no busy) while the screen has not accepted.
        self.assertEqual(door.count(lambda p: p.get("op") in (2, 4)), 0)
        if accept_dest:
            screen.accept(sid, dest=accept_dest)
        else:
            screen.accept(sid)  # plain, as the document shows it
        t.join(8)
        self.assertEqual(result.get("r"), "answer")
        door.wait(door.got(4, callee=CALLEE), what="call answer (op 4)")
        self.j.wait_for_log(r"call .* answered by screen-1", timeout=5, start=mark)
        # Talk: a screen talks once it accepts, so the door leg sends op 6 itself.
        self.j.wait_for_log(r"door call \d+ answered, talking at once", timeout=5, start=mark)
        door.wait(door.got(6, callee=CALLEE), what="talk command (op 6)")
        # The door's type-2 answer completes the talk (no log line: bounded poll of the state).
        self.wait_until(lambda: self.stats().get("talks") == 1, timeout=5)
        doors = self.calls()["doors"]
        self.assertEqual(len(doors), 1, doors)
        self.assertTrue(doors[0]["talking"], doors)
        self.assertEqual(len(self.j.cmd(ICOM, "calls")), 1)
        self.assertTrue(self.core_calls())
        return sid

    def open_door(self, door, screen, sid):
        mark = len(self.j.lines)
        screen.open_door(sid)
        self.j.wait_for_log(r"open_door on call .* from screen-1 \(status 0\)", timeout=5, start=mark)
        p = door.wait(lambda p: p["cmd"] == 150 and p["type"] == 1 and p["op"] == 10, what="unlock command (op 10)")
        self.assertEqual((p["caller"], p["callee"]), (DOOR, CALLEE))
        # The door's type-2 op 10 completes the unlock.
        self.j.wait_for_log(rf"door {DOOR} unlocked", timeout=5, start=mark)
        self.assertEqual(self.stats().get("unlocks"), 1)

    def assert_all_gone(self, screen):
        self.wait_until(lambda: self.core_calls() == [], timeout=5)
        self.assertEqual(self.calls(), {"doors": [], "phones": []})
        self.assertEqual(self.j.cmd(ICOM, "calls"), [])
        screen.expect_none("call_req")


class DoorToScreenTest(WithIntercom):
    def test_route_resolves_to_intercom_family(self):
        self.screen()
        r = self.j.api("GET", "/api/v1/routes/lookup?uri=" + ROOM_URI, expect=200)
        self.assertEqual([(t["uri"], t["plugin"]) for t in r["targets"]], [(FAMILY_URI, ICOM)])

    def test_door_calls_screen_talks_opens_and_door_hangs_up(self):
        screen = self.screen()
        door = self.door()
        sid = self.ring_and_answer(door, screen)
        self.open_door(door, screen, sid)
        # The door hangs up (op 30 until its type-2 answer); the screen hears call_end.
        self.assertTrue(door.hangup(CALLEE))
        end = screen.expect("call_end", sid=sid, timeout=5)["values"]
        self.assertEqual(end["code"], 200, end)
        self.assertEqual(door.count(door.got(30, type=1)), 0)  # the server sent no hang-up command of its own
        self.assert_all_gone(screen)

    def test_screen_ends_call_and_door_gets_hangup(self):
        screen = self.screen()
        door = self.door()
        sid = self.ring_and_answer(door, screen, accept_dest={"audio_stream_id": "56781"})
        self.open_door(door, screen, sid)
        mark = len(self.j.lines)
        screen.end(sid, reason="hangup", message="resident done")
        p = door.wait(door.got(30, type=1, callee=CALLEE), what="hang-up command (op 30)")
        self.assertEqual(p["caller"], DOOR)
        # door_sim answered with type 2: the door call is finished, and nothing comes back to the
        # screen for a call it ended itself.
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []}, timeout=5)
        self.assert_all_gone(screen)
        screen.expect_none("call_end")
        self.assertFalse([l for l in self.j.lines[mark:] if l and "never acknowledged" in l])

    def test_screen_connection_dropped_mid_call_door_gets_hangup(self):
        # The screen vanishes (RST, no call_end): intercom-json ends its call (connection-lost),
        # the door hears op 30, and nothing of the call is left on either plugin.
        screen = self.screen()
        door = self.door()
        self.ring_and_answer(door, screen)
        screen.abort()
        self.screens.remove(screen)
        p = door.wait(door.got(30, type=1, callee=CALLEE), what="hang-up command (op 30)")
        self.assertEqual(p["caller"], DOOR)
        self.j.wait_for_log(r"connection .*\(screen-1\) closed")
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []}, timeout=5)
        self.wait_until(lambda: self.core_calls() == [], timeout=5)
        self.assertEqual(self.j.cmd(ICOM, "calls"), [])


class ForkPhoneAndScreenTest(WithIntercom):
    routes = [{"match": "regex", "pattern": r"xxxcid:room/([0-9]+)", "strategy": "fork",
               "targets": ["xxxcid:phone/$1", "intercom:room/$1"]}]

    def test_screen_answers_first_phone_ringing_cancelled(self):
        screen = self.screen()
        phone = self.phone()   # online (heartbeat answered)
        r = self.j.api("GET", "/api/v1/routes/lookup?uri=" + ROOM_URI, expect=200)
        self.assertEqual(r["strategy"], "fork")
        self.assertEqual([(t["uri"], t["plugin"]) for t in r["targets"]],
                         [("xxxcid:phone/" + KEY, NAME), (FAMILY_URI, ICOM)])
        door = self.door()
        pmark = phone.mark()
        t, result = self.door_calls_in_thread(door)
        call = phone.wait("call", start=pmark, timeout=5)          # the phone rings ...
        self.assertEqual((call["doorAddress"], call["uid"]), (DOOR, UID))
        sid = self.assert_call_req_from_door(screen.expect("call_req", timeout=5))  # ... and the screen
        screen.accept(sid, dest={"audio_stream_id": "56781"})  # a screen that talks at once
        t.join(8)
        self.assertEqual(result.get("r"), "answer")
        # First answer wins: the phone's ringing is cancelled with "over" (it answers "over success").
        over = phone.wait("over", start=pmark, timeout=5)
        self.assertEqual((over["doorAddress"], over["uid"]), (DOOR, UID))
        self.assertEqual(phone.count("call ok"), 0)
        self.wait_until(lambda: self.calls()["phones"] == [], timeout=5)
        doors = self.calls()["doors"]
        self.assertEqual(len(doors), 1, doors)
        # The answered call is the screen's: the door talks with it, the phone is free again.
        door.wait(door.got(6, callee=CALLEE), what="talk command (op 6)")
        self.assertFalse([p for p in self.j.cmd(NAME, "phones") if p["busy"]])
        # A late "call ok" from the cancelled phone is refused and reaches nothing.
        m = phone.mark()
        phone.order("call ok", DOOR)
        phone.wait("call fail", start=m, timeout=5)
        # Then the door hangs up: the screen hears it.
        self.assertTrue(door.hangup(CALLEE))
        screen.expect("call_end", sid=sid, timeout=5)
        self.assert_all_gone(screen)


if __name__ == "__main__":
    main()
