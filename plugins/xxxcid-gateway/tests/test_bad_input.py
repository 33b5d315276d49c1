"""Bad input on both sides: every datagram is dropped with a counter and a log line, nothing
crashes, no state changes, and a real flow still works afterwards."""
import json

from xx_common import GatewayTest, NAME, DOOR, CALLEE
from door_sim import pack_call, pack_resolve, HEADER, pad
from junction_test import main


class BadInputTest(GatewayTest):
    def test_bad_door_packets(self):
        phone = self.phone()
        door = self.door()
        good = pack_call(1, DOOR, "127.0.0.1", CALLEE, "127.0.0.1", mcast=(0, "0.0.0.0"))
        bad = [
            b"",                                     # empty
            b"XXXCID",                               # short
            b"YYYCID" + good[6:],                    # wrong header
            good[:40],                               # truncated
            good + b"\0" * 300,                      # oversized
            good[:6] + bytes([151]) + good[7:],      # unknown cmd
            good[:7] + bytes([9]) + good[8:],        # unknown type
            good[:8] + bytes([5]) + good[9:],        # unknown operation
            good.replace(b"M00010100", b"M0001/100"),  # bad character in an address
            good.replace(b"S00010108090", b"S0001\x000108090"),  # junk after the padding
            pack_call(1, DOOR, "10.1.2.3", CALLEE, "127.0.0.1"),  # source does not match caller IP
            pack_call(2, DOOR, "127.0.0.1", CALLEE, "127.0.0.1"),  # busy is not a door request
            HEADER + bytes([154, 2]) + pad(DOOR) + bytes(4) + b"\x01" + pad(CALLEE) + bytes(4),  # an answer
            b"\xff" * 1400,                         # oversized garbage
            HEADER + bytes([154, 1]) + pad(DOOR) + bytes([127, 0, 0, 1]) + pad(CALLEE),  # resolve, 4 bytes short
        ]
        for b in bad:
            door.send_raw(b)
        # A sentinel, processed after all of them on the same socket.
        self.assertEqual(door.resolve(CALLEE), [(CALLEE, "127.0.0.1")])
        s = self.stats()
        self.assertEqual(s["dropped_door"], len(bad))
        self.assertEqual(self.calls(), {"doors": [], "phones": []})
        self.assertEqual(phone.count("call"), 0)
        self.j.wait_for_log(r"dropped door datagram .*wrong header")
        self.j.wait_for_log(r"dropped door datagram .*does not match the caller IP field 10\.1\.2\.3")
        self.j.wait_for_log(r"dropped door datagram .*bad address field")
        self.assertEqual(self.metric("xxxcid_dropped_total"), len(bad))
        # The real flow still works.
        self.answered_call(door, phone)
        self.assertTrue(door.hangup(CALLEE))

    def test_phone_garbage(self):
        phone = self.phone()
        bad = [b"{", b"[]", b"null", b"\xff\xfe", json.dumps({"order": "dance", "uid": "1"}).encode(),
               json.dumps({"order": "talk", "uid": 7}).encode(), json.dumps({"order": "talk"}).encode(),
               json.dumps({"order": "heartbeat", "uid": "not bound"}).encode(),
               json.dumps({"order": "heartbeat", "uid": "unbound1"}).encode(),
               json.dumps({"order": "talk", "uid": phone.uid, "doorAddress": "M 1"}).encode(),
               b"\x02audio-from-nowhere", b"\x01video"]
        for b in bad:
            phone.send_raw(b)
        m = phone.mark()
        phone.send_json({"order": "heartbeat", "uid": phone.uid})  # sentinel
        phone.wait("heartbeat ok", start=m)
        s = self.stats()
        self.assertEqual(s["dropped_phone"], len(bad))
        self.assertEqual(self.calls(), {"doors": [], "phones": []})
        self.assertEqual([p["uid"] for p in self.j.cmd(NAME, "phones")], [phone.uid])
        self.j.wait_for_log(r"dropped phone datagram .*not JSON")
        self.j.wait_for_log(r"dropped phone datagram .*unbound1 is not bound")

    def test_metric_labels_carry_no_remote_input(self):
        # Unbound uids, spoofed caller IPs and door-only operations, each different: the drops are
        # labelled by a fixed vocabulary, so they make three series, not one per uid / IP / op.
        phone = self.phone()
        door = self.door()
        for i in range(5):
            phone.send_json({"order": "heartbeat", "uid": "bogus%d" % i})
            door.send_raw(pack_call(1, DOOR, "10.9.8.%d" % i, CALLEE, "127.0.0.1"))
            door.send_raw(pack_call((2, 4, 6, 10, 2)[i], DOOR, "127.0.0.1", CALLEE, "127.0.0.1"))
        m = phone.mark()
        phone.order("call ok", "M99999999")  # refused: in no call with that door
        phone.wait("call fail", start=m)
        self.assertEqual(door.resolve(CALLEE), [(CALLEE, "127.0.0.1")])  # sentinel: the door packets were processed
        self.assertEqual(self.series("xxxcid_dropped_total"),
                         ['{side="door",reason="not a door request"}',
                          '{side="door",reason="source does not match the caller IP"}',
                          '{side="phone",reason="unbound uid"}'])
        self.assertEqual(self.metric("xxxcid_dropped_total"), 15)
        text = self.j.api("GET", "/metrics", expect=200)
        self.assertNotIn("bogus", text)
        self.assertNotIn("10.9.8.", text)
        # The refused order: a label from the order vocabulary and a valid metric name.
        self.assertEqual(self.series("xxxcid_refused_total"), ['{order="call ok"}'])
        self.assertEqual(self.metric("xxxcid_call_ok_refused_total"), 1)
        # The details are in the log lines, not in the labels.
        self.j.wait_for_log(r"dropped phone datagram .*uid bogus0 is not bound")
        self.j.wait_for_log(r"dropped door datagram .*caller IP field 10\.9\.8\.0")

    def test_admin_bindings(self):
        self.assertEqual(self.j.request("POST", f"/api/v1/plugins/{NAME}/cmd/bind", {"uid": "a b", "room": "Y1"})[0], 400)
        self.assertEqual(self.j.request("POST", f"/api/v1/plugins/{NAME}/cmd/bind", {"uid": "1", "room": "Y/1"})[0], 400)
        self.bind("5", "Y00010108090")
        rows = self.j.cmd(NAME, "bindings", {"room": "Y00010108090"})
        self.assertEqual(sorted(r["uid"] for r in rows), ["359608060142756", "5"])
        routes = self.j.api("GET", "/api/v1/routes", expect=200)
        self.assertIn("xxxcid:room/00010108090", [r["uri"] for r in routes["dynamic"]])
        self.assertEqual(routes["namespaces"].get("xxxcid"), NAME)
        self.j.cmd(NAME, "unbind", {"uid": "5", "room": "Y00010108090"})
        self.j.cmd(NAME, "unbind", {"uid": "359608060142756", "room": "Y00010108090"})
        self.assertEqual(self.j.request("POST", f"/api/v1/plugins/{NAME}/cmd/unbind", {"uid": "5", "room": "Y00010108090"})[0], 404)
        routes = self.j.api("GET", "/api/v1/routes", expect=200)
        self.assertNotIn("xxxcid:room/00010108090", [r["uri"] for r in routes["dynamic"]])
        # Through junction ctl, and persisted in the store across a restart.
        rc, out, err = self.j.ctl("cmd", NAME, "bind", json.dumps({"uid": "9", "room": "Y77", "community": "c"}))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.j.stop(), 0)
        self.j.lines.clear()  # wait for the new process's "ready", not the old one's
        self.j.start()
        self.assertEqual(self.j.cmd(NAME, "bindings"), [{"uid": "9", "room": "Y77", "community": "c", "online": False}])


if __name__ == "__main__":
    main()
