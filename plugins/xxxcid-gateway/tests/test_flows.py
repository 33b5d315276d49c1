"""The document's flows end to end: door-station and phone simulators against the real server.

Steps 1-22, the busy case, the offline case, unlock (and over) refused for each failed check,
and every flow again with 20% of the door-side datagrams lost."""
import threading

from xx_common import GatewayTest, NAME, UID, ROOM, COMMUNITY, DOOR, CALLEE
from junction_test import main


class FlowTest(GatewayTest):
    def test_all_22_steps(self):
        phone = self.phone()
        door = self.door()
        # (1)-(2) resolve: answered with the server's address because the phone is online.
        self.assertEqual(door.resolve(CALLEE), [(CALLEE, "127.0.0.1")])
        # (3)-(6) call, call, call ok, call answer.
        call = self.answered_call(door, phone)
        self.assertEqual(call, {"order": "call", "doorAddress": DOOR, "roomAddress": ROOM, "uid": UID,
                                "community": COMMUNITY})
        ans = door.wait(door.got(4))
        self.assertEqual((ans["caller"], ans["callee"], ans["len"], ans["mcast"]), (DOOR, CALLEE, 62, 0))
        # Video reaches the phone only after enable_video.
        door.send_video(b"early-frame")
        self.wait_until(lambda: self.calls()["doors"][0]["video_in"] == 1)
        phone.order("enable_video", DOOR)
        self.wait_until(lambda: self.calls()["phones"][0]["video"])
        for i in range(20):
            door.send_video(b"frame-%d" % i)
        frames = phone.wait_media("video", 20)
        self.assertNotIn(b"early-frame", frames)
        self.assertEqual(frames[:20], [b"frame-%d" % i for i in range(20)])
        # (7)-(10) talk, talk command, its answer, talk begin; then audio both ways.
        tb = self.talk(door, phone)
        self.assertEqual((tb["doorAddress"], tb["uid"]), (DOOR, UID))
        talk_cmd = door.wait(door.got(6))
        self.assertEqual(talk_cmd["len"], 57)
        for i in range(10):
            door.send_audio(b"door-audio-%d" % i)
        self.assertEqual(phone.wait_media("audio", 10), [b"door-audio-%d" % i for i in range(10)])
        for i in range(10):
            phone.send_audio(b"phone-audio-%d" % i)
        got = door.wait_audio(10)
        self.assertEqual(got, [b"phone-audio-%d" % i for i in range(10)])
        # (11)-(14) unlock, unlock command, its answer, unlock success.
        mark = phone.mark()
        phone.order("unlock", DOOR)
        door.wait(door.got(10), what="unlock command")
        self.assertEqual(phone.wait("unlock success", start=mark)["doorAddress"], DOOR)
        self.assertEqual(door.count(door.got(10)), 1)
        # (15)-(18) the door hangs up: over to the phone, over success, then the door's answer.
        self.assertTrue(door.hangup(CALLEE))
        over_i = next(i for i, o in enumerate(phone.orders) if o["order"] == "over")
        self.assertEqual(phone.orders[over_i]["uid"], UID)
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        # Media stops with the call.
        before = len(phone.video)
        door.send_video(b"late")
        self.wait_until(lambda: self.stats().get("dropped_media", 0) >= 1)
        self.assertEqual(len(phone.video), before)

        # (19)-(22) a second call (from the next door), hung up by the phone.
        door = self.door(addr="M00010101")
        self.answered_call(door, phone)
        mark = phone.mark()
        phone.order("over", door.addr)
        cmd = door.wait(lambda p: p["cmd"] == 150 and p["op"] == 30 and p["type"] == 1, what="hang-up command")
        self.assertEqual((cmd["caller"], cmd["callee"]), ("M00010101", CALLEE))
        phone.wait("over success", start=mark)
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        # The media path never copied a payload.
        self.assertEqual(self.metric("junction_bus_payload_copies_total"), 0)
        self.assertEqual(self.stats()["unlocks"], 1)

    def test_busy_when_the_phone_is_in_a_call(self):
        phone = self.phone()
        door1 = self.door()
        door2 = self.door(addr="M00010200")
        self.answered_call(door1, phone)
        mark = phone.mark()
        self.assertEqual(door2.call(CALLEE), "busy")
        busy = door2.wait(door2.got(2))
        self.assertEqual((busy["caller"], busy["callee"], busy["len"]), ("M00010200", CALLEE, 57))
        # The phone was not rung again and the first call is untouched.
        self.assertEqual(phone.count("call"), 1)
        self.assertEqual(len(phone.orders[mark:]) - sum(1 for o in phone.orders[mark:] if o["order"] == "heartbeat ok"), 0)
        self.talk(door1, phone)
        self.assertTrue(door1.hangup(CALLEE))

    def test_offline_phone_gets_no_resolve_answer(self):
        # No heartbeat yet: the resolve goes unanswered. A sentinel resolve for an online room,
        # sent after it on the same socket, is answered, so the first one was processed.
        self.bind("42", "Y00020202020")
        online = self.phone(uid="42", room="Y00020202020")
        door = self.door()
        self.assertIsNone(door.resolve(CALLEE, retries=0))
        self.assertEqual(door.resolve("S00020202020"), [("S00020202020", "127.0.0.1")])
        self.assertEqual(door.count(lambda p: p["cmd"] == 154 and p["resolved"][0][0] == CALLEE), 0)
        self.assertGreaterEqual(self.stats()["resolve_silent"], 1)
        # A call to the offline room is refused (busy: the protocol's only refusal).
        self.assertEqual(door.call(CALLEE), "busy")
        # Online, then silent for more than online_ms: offline again.
        phone = self.phone()
        self.assertEqual(door.resolve(CALLEE), [(CALLEE, "127.0.0.1")])
        phone.stop_heartbeat()
        self.wait_until(lambda: not [p for p in self.j.cmd(NAME, "phones") if p["uid"] == UID][0]["online"], timeout=15)
        answered = door.count(lambda p: p["cmd"] == 154 and p["resolved"][0][0] == CALLEE)
        self.assertIsNone(door.resolve(CALLEE, retries=0))
        # The sentinel again: answered after the silent one, which was processed and not answered.
        self.assertEqual(door.resolve("S00020202020"), [("S00020202020", "127.0.0.1")])
        self.assertEqual(door.count(lambda p: p["cmd"] == 154 and p["resolved"][0][0] == CALLEE), answered)

    def test_unlock_and_over_refused_for_each_failed_check(self):
        self.bind("777", "Y00010108091")  # another resident, another room
        phone = self.phone()
        other = self.phone(uid="777", room="Y00010108091")
        door = self.door()
        self.answered_call(door, phone)
        m = phone.mark()
        # Check 1: uid not bound to roomAddress.
        phone.order("unlock", DOOR, room="Y00010108091")
        self.assertEqual(phone.wait("unlock fail", start=m)["roomAddress"], "Y00010108091")
        # Check 2: uid bound, but in no call with that door.
        m = phone.mark()
        phone.order("unlock", "M99999999")
        phone.wait("unlock fail", start=m)
        # The other resident is bound to its own room but not in this call.
        m2 = other.mark()
        other.order("unlock", DOOR)
        other.wait("unlock fail", start=m2)
        other.order("over", DOOR)
        other.wait("over fail", start=m2)
        self.assertEqual(door.count(door.got(10)), 0)
        self.assertEqual(door.count(door.got(30)), 0)
        # Both checks pass: exactly one unlock command.
        m = phone.mark()
        phone.order("unlock", DOOR)
        phone.wait("unlock success", start=m)
        self.assertEqual(door.count(door.got(10)), 1)
        s = self.stats()
        self.assertEqual((s["unlock_refused"], s["over_refused"], s["unlocks"]), (3, 1, 1))
        self.assertEqual(len(self.calls()["doors"]), 1)
        self.assertTrue(door.hangup(CALLEE))

    def test_twenty_percent_door_loss_every_flow_completes(self):
        phone = self.phone()
        doors = [self.door(addr="M0001010%d" % i, drop=0.2, seed=1000 + i) for i in range(6)]
        for i, door in enumerate(doors):
            self.assertEqual(door.resolve(CALLEE), [(CALLEE, "127.0.0.1")])
            self.answered_call(door, phone)
            self.talk(door, phone)
            m = phone.mark()
            phone.order("unlock", door.addr)
            phone.wait("unlock success", start=m)
            if i % 2:
                self.assertTrue(door.hangup(CALLEE))
            else:
                m = phone.mark()
                phone.order("over", door.addr)
                phone.wait("over success", start=m)
            self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        s = self.stats()
        # Retransmissions happened, and none of them repeated an action.
        self.assertGreater(sum(d.dropped for d in doors), 0)
        self.assertGreater(s["door_retransmits"], 0)
        self.assertEqual((s["door_calls"], s["talks"], s["unlocks"], s.get("door_gave_up", 0)), (6, 6, 6, 0))

    def test_duplicated_and_reordered_datagrams_never_duplicate_an_action(self):
        from door_sim import pack_call
        phone = self.phone()
        door = self.door()
        self.answered_call(door, phone)
        raw_call = pack_call(1, DOOR, "127.0.0.1", CALLEE, "127.0.0.1", mcast=(0, "0.0.0.0"))
        for _ in range(5):
            door.send_raw(raw_call)  # duplicates: answered again, no second call
        door.wait(lambda p: door.count(door.got(4)) >= 6)
        self.assertEqual(phone.count("call"), 1)
        # A stale talk answer (no talk pending) changes nothing.
        door.send_raw(pack_call(6, DOOR, "127.0.0.1", CALLEE, "127.0.0.1", type=2))
        m = phone.mark()
        phone.order("unlock", DOOR)
        phone.order("unlock", DOOR)  # a duplicate while the first is pending
        phone.wait("unlock success", start=m)
        self.assertEqual(self.stats()["unlocks"], 1)
        self.assertNotIn("talk begin", [o["order"] for o in phone.orders])
        # Hang-up duplicated, then the late call datagram after it: no new call.
        self.assertTrue(door.hangup(CALLEE))
        door.send_raw(pack_call(30, DOOR, "127.0.0.1", CALLEE, "127.0.0.1"))
        door.send_raw(raw_call)
        door.send_raw(pack_call(30, DOOR, "127.0.0.1", CALLEE, "127.0.0.1"))  # sentinel
        door.wait(lambda p: door.count(door.got(30, type=2)) >= 3)
        self.assertEqual(self.stats()["door_calls"], 1)
        self.assertEqual(phone.count("call"), 1)


if __name__ == "__main__":
    main()
