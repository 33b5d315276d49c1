"""verto-ws across plugins (signalling): a browser calls an intercom-json family's screens
(intercom:room/101) and is called by a screen (dest verto:1001); the screen's open-door reaches
the browser as verto.info, bye/call_end cross both ways. The screens are intercom-json's own test
peers (plugins/intercom-json/tests/intercom_peer.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "intercom-json", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "xxxcid-gateway", "tests"))

from verto_env import VertoTest, free_port, main, wait_until  # noqa: E402
import intercom_env  # noqa: E402
from intercom_peer import Screen  # noqa: E402
import threading  # noqa: E402
import xx_common  # noqa: E402
from door_sim import DoorSim, OP_ANSWER, OP_HANGUP, OP_TALK, OP_UNLOCK  # noqa: E402


class CrossPlugin(VertoTest):
    def start_with_box(self):
        box_port = free_port()
        j = self.start(plugins={"intercom-json": intercom_env.box_conf(box_port)})
        self.box_port = box_port
        self.peers = []
        return j

    def screen(self, device, room="101"):
        token = self.j.cmd("intercom-json", "issue-token", {"device": device, "type": Screen.type, "room": room})["token"]
        s = Screen(self.box_port, name=device)
        self.addCleanup(s.close)
        self.assertEqual(s.join(token)["name"], "join_accept")
        return s

    def test_browser_calls_a_family_screen(self):
        self.start_with_box()
        s = self.screen("screen-1")
        a = self.logged_in("1001")
        call_id, r = a.invite("intercom:room/101")
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        req = s.expect("call_req")["values"]
        self.assertEqual(req["src"]["id"], "verto:1001")
        sid = req["sid"]
        s.accept(sid)
        self.assertEqual(a.wait_request("verto.answer")["callID"], call_id)
        s.open_door(sid)
        info = a.wait_request("verto.info", lambda p: "info" in p)
        self.assertEqual(info["info"]["type"], "open-door")
        a.bye(call_id)
        self.assertEqual(s.expect("call_end", sid=sid)["values"]["sid"], sid)

    def test_screen_calls_a_browser_user(self):
        self.start_with_box()
        s = self.screen("screen-1")
        b = self.logged_in("1002")
        s.call("x1", src={"id": "101"}, dest={"id": "verto:1002"})
        inv = b.wait_request("verto.invite")
        self.assertEqual(inv["caller_id_number"], "intercom:room/101")
        b.answer(inv["callID"])
        s.expect("call_accept", sid="x1")
        s.end("x1")
        bye = b.wait_request("verto.bye")
        self.assertEqual(bye["callID"], inv["callID"])


    def test_door_station_calls_a_browser_user(self):
        """An XXXCID door's call for its room is routed to the browser user named by the room key
        (a conf route); the browser answers (op 4 + talk op 6), opens the door (INFO open-door ->
        op 10) and hangs up (op 30 to the door)."""
        self.users = dict(self.users, **{"00010108090": "doorpw"})
        conf, ports = xx_common.plugin_conf()
        self.start(plugins={"xxxcid-gateway": conf},
                   routes=[{"match": "regex", "pattern": r"xxxcid:room/([0-9]+)", "targets": ["verto:$1"]}])
        self.j.cmd("xxxcid-gateway", "bind", {"uid": xx_common.UID, "room": xx_common.ROOM, "community": xx_common.COMMUNITY})
        b = self.logged_in("00010108090")
        door = DoorSim(ports["door"], ports["video"], ports["audio"], addr=xx_common.DOOR)
        self.addCleanup(door.close)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=door.call(xx_common.CALLEE)), daemon=True)
        t.start()
        inv = b.wait_request("verto.invite")
        self.assertEqual(inv["caller_id_number"], "xxxcid:door/" + xx_common.DOOR)
        b.answer(inv["callID"])
        t.join(10)
        self.assertEqual(result.get("r"), "answer")
        door.wait(door.got(OP_TALK, callee=xx_common.CALLEE), what="talk (op 6)")
        b.result("verto.info", {"dialogParams": {"callID": inv["callID"]}, "info": {"type": "open-door"}})
        door.wait(door.got(OP_UNLOCK), what="unlock (op 10)")
        b.bye(inv["callID"])
        door.wait(door.got(OP_HANGUP), what="hang-up (op 30)")


if __name__ == "__main__":
    main()
