"""Rooms and doors in the core's routing table: per conf a door's call to a room rings the
resident's phone, another plugin's screen (call-peer-b stands in for intercom-json here), or both
(fork); and the other plugin's INFO "open-door" reaches the door as the XXXCID unlock command."""
import json

from xx_common import GatewayTest, NAME, DOOR, CALLEE
from junction_test import main

PEER = "call-peer-b"


class ForkTest(GatewayTest):
    plugins_extra = {PEER: 'on_offer = "ring"\n'}
    routes = [{"match": "prefix", "pattern": "xxxcid:room/", "strategy": "fork",
               "targets": ["xxxcid:phone/${rest}", "peerb:room/${rest}"]}]

    def test_fork_rings_phone_and_screen_phone_wins(self):
        r = self.j.api("GET", "/api/v1/routes/lookup?uri=xxxcid:room/00010108090", expect=200)
        self.assertEqual([(t["uri"], t["plugin"]) for t in r["targets"]],
                         [("xxxcid:phone/00010108090", NAME), ("peerb:room/00010108090", PEER)])
        phone = self.phone()
        door = self.door()
        self.answered_call(door, phone)
        evs = self.j.cmd(PEER, "events")
        offer = [e for e in evs if e["type"] == "offer"][0]
        self.assertEqual((offer["from"], offer["target"]), ("xxxcid:door/" + DOOR, "peerb:room/00010108090"))
        streams = {m["kind"]: m["bus_stream"] for m in offer["media"]}
        self.assertRegex(streams["video"], r"^xxxcid/door-\d+/video$")
        self.assertRegex(streams["audio"], r"^xxxcid/door-\d+/audio$")
        # First answer wins: the screen's branch is cancelled.
        self.assertEqual([(e["type"], e["code"]) for e in self.j.cmd(PEER, "events") if e["type"] == "end"], [("end", 487)])
        self.assertTrue(door.hangup(CALLEE))


class ScreenTest(GatewayTest):
    plugins_extra = {PEER: 'on_offer = "answer"\n'}
    routes = [{"match": "prefix", "pattern": "xxxcid:room/", "targets": ["peerb:room/${rest}"]}]

    def peer_leg(self):
        return [e for e in self.j.cmd(PEER, "events") if e["type"] == "offer"][-1]["leg"]

    def test_screen_answers_talks_opens_door_and_hangs_up(self):
        door = self.door()
        self.assertEqual(door.call(CALLEE), "answer")
        # An answer with active audio means talking at once: op 4, then op 6.
        door.wait(door.got(4))
        door.wait(door.got(6))
        self.wait_until(lambda: [e for e in self.j.cmd(PEER, "events") if e["info_type"] == "talk-begin"])
        leg = self.peer_leg()
        r = self.j.cmd(PEER, "send", {"leg": leg, "type": "info", "info_type": "open-door", "info_body": {"by": "screen"}})
        self.assertEqual(r["status"], 0)
        door.wait(door.got(10), what="unlock command")
        res = self.wait_until(lambda: [e for e in self.j.cmd(PEER, "events") if e["info_type"] == "open-door-result"])
        self.assertTrue(json.loads(res[0]["info_body"])["ok"])
        # The screen hangs up: the door gets the hang-up command (op 30, type 1).
        self.j.cmd(PEER, "send", {"leg": leg, "type": "end", "code": 200})
        door.wait(door.got(30), what="hang-up command")
        self.wait_until(lambda: self.calls() == {"doors": [], "phones": []})
        # Another call, hung up by the door: the screen's leg ends.
        door2 = self.door(addr="M00010101")
        self.assertEqual(door2.call(CALLEE), "answer")
        leg2 = self.peer_leg()
        self.assertNotEqual(leg2, leg)
        self.assertTrue(door2.hangup(CALLEE))
        self.wait_until(lambda: [e for e in self.j.cmd(PEER, "events") if e["leg"] == leg2 and e["type"] == "end"])


if __name__ == "__main__":
    main()
