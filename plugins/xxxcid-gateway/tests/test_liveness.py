"""Peers that vanish without a goodbye: a phone that stops heartbeating (the document's 6 s online
rule, shortened here to online_ms = 1000 through the conf) in the middle of a talk or while it
rings, and a door that goes silent during an answered call (door_idle_ms). Each must end its call
on both sides and leave the room free for the next door."""
import threading

from xx_common import GatewayTest, NAME, UID, CALLEE
from junction_test import main

PERIOD = 0.1  # the phone simulators' heartbeat period: well inside online_ms


class LivenessTest(GatewayTest):
    conf_over = {"online_ms": 1000, "door_idle_ms": 1000}

    def phone(self, **kw):
        return super().phone(period=PERIOD, **kw)

    def call_async(self, door, callee=CALLEE):
        result = {}
        t = threading.Thread(target=lambda: result.update(r=door.call(callee)))
        t.start()
        return t, result

    def door_keeps_streaming(self, door):
        """A door in a talk streams video: it is alive. Returns the stop event."""
        stop = threading.Event()

        def run():
            i = 0
            while not stop.is_set():
                try:
                    door.send_video(b"v-%d" % i)
                except OSError:  # the simulator was closed by tearDown
                    return
                i += 1
                stop.wait(0.1)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.addCleanup(lambda: (stop.set(), t.join(2)))
        return stop

    def test_phone_silent_mid_talk_ends_the_call_and_frees_the_room(self):
        phone = self.phone()
        door = self.door()
        self.door_keeps_streaming(door)
        self.answered_call(door, phone)
        self.talk(door, phone)
        mark = len(self.j.lines)
        phone.stop_heartbeat()  # the app dies: no "over", no heartbeat, nothing
        # The door hears the hang-up (op 30 type 1), the server the door's answer to it.
        hang = door.wait(door.got(30), timeout=10, what="hang-up command")
        self.assertEqual((hang["caller"], hang["callee"]), (door.addr, CALLEE))
        self.j.wait_for_log(r"phone %s silent for \d+ ms" % UID, start=mark)
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        self.assertEqual(self.stats().get("phone_lost", 0), 1)
        # The phone comes back (network back, app restarted): it is free, a second door's call rings.
        phone.start_heartbeat()
        self.assertFalse([p for p in self.j.cmd(NAME, "phones") if p["uid"] == UID][0]["busy"])
        door2 = self.door(addr="M00010200")
        m = phone.mark()
        t, result = self.call_async(door2)
        phone.wait("call", start=m, pred=lambda o: o["doorAddress"] == "M00010200")
        phone.order("call ok", door2.addr)
        t.join(30)
        self.assertEqual(result.get("r"), "answer")
        self.assertTrue(door2.hangup(CALLEE))

    def test_phone_silent_while_ringing_refuses_the_door(self):
        phone = self.phone(auto_over_success=False)
        door = self.door()
        m = phone.mark()
        t, result = self.call_async(door)
        phone.wait("call", start=m)
        phone.stop_heartbeat()  # never answers, never says over
        t.join(30)
        # Before the ring timeout (10 s here), the door hears busy: the only refusal it knows.
        self.assertEqual(result.get("r"), "busy")
        self.j.wait_for_log(r"phone %s silent for \d+ ms while ringing" % UID)
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})

    def test_door_silent_mid_talk_ends_the_call_and_frees_the_phone(self):
        phone = self.phone()
        door = self.door()
        stop = self.door_keeps_streaming(door)
        self.answered_call(door, phone)
        self.talk(door, phone)
        m = phone.mark()
        stop.set()  # the door loses power: no op 30, no media
        over = phone.wait("over", start=m, timeout=10)
        self.assertEqual(over["doorAddress"], door.addr)
        self.j.wait_for_log(r"door %s silent for \d+ ms" % door.addr)
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        self.assertEqual(self.stats().get("door_lost", 0), 1)
        # The phone is free: the next door's call rings it.
        door2 = self.door(addr="M00010200")
        m = phone.mark()
        t, result = self.call_async(door2)
        phone.wait("call", start=m, pred=lambda o: o["doorAddress"] == "M00010200")
        phone.order("call ok", door2.addr)
        t.join(30)
        self.assertEqual(result.get("r"), "answer")
        self.assertTrue(door2.hangup(CALLEE))


if __name__ == "__main__":
    main()
