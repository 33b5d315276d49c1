"""The core's anchored calls and ng clients' calls share rtp-relay's session table: an ng client
(Kamailio, or anyone who can reach the ng port) must not change or delete a call the core
anchors, and the core's anchor must not adopt or delete an ng client's call of the same id.
Call ids the core mints are "jc-" + 128 random bits, so a collision is never an accident; these
checks make a deliberate one harmless. Relay ports: this file's band 9000-9999."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, main  # noqa: E402
from ngclient import NgClient, sdp  # noqa: E402

A, B, RELAY = "call-peer-a", "call-peer-b", "rtp-relay"
ROUTES = [{"match": "exact", "pattern": "svc:help", "targets": ["peerb:desk"]}]


class AnchorIdsTest(JunctionTest):
    def setUp(self):
        super().setUp()
        ng_port = free_port(socket.SOCK_DGRAM)
        lo = 9000 + (ng_port % 9) * 100
        relay = {"ng_listen": f"127.0.0.1:{ng_port}", "port_range": "media"}
        self.j = self.server(plugins={A: {"on_offer": "answer"}, B: {"on_offer": "answer"}, RELAY: relay},
                             routes=ROUTES, server={"media_anchor": RELAY})
        self.j.write_core(dict(self.j.core, ports={"media": {"min": lo, "max": lo + 99}}))
        self.j.start()
        self.ng = NgClient(ng_port)
        self.addCleanup(self.ng.close)

    def anchored_call(self):
        r = self.j.cmd(A, "originate", {"from": "peera:door/1", "to": "svc:help"})
        self.assertEqual(r["status"], 0, r)
        return self.anchored_call_id()

    def anchored_call_id(self):
        offers = [e for e in self.j.cmd(B, "events") if e["type"] == "offer"]
        self.assertEqual(len(offers), 1, offers)
        call_id = offers[0]["call_id"]
        self.assertRegex(call_id, r"^jc-[0-9a-f]{32}$")
        self.assertIn(call_id, self.j.cmd(RELAY, "sessions"))
        return call_id

    def test_ng_client_cannot_change_or_delete_an_anchored_call(self):
        call_id = self.anchored_call()
        for command, kw in (("delete", {"from_tag": "a"}),
                            ("offer", {"from_tag": "x", "sdp": sdp(5000)}),
                            ("answer", {"from_tag": "a", "to_tag": "b", "sdp": sdp(5002)}),
                            ("forward", {"from_tag": "a", "address": "127.0.0.1", "port": 5004})):
            reply = self.ng.cmd(command, call_id=call_id, **kw)
            self.assertEqual(reply.get("result"), "error", (command, reply))
            self.assertEqual(reply.get("error-reason"), "call-id belongs to a call the core anchors", command)
        # Reading is allowed (Kamailio's $rtpstat queries before a delete).
        self.assertEqual(self.ng.cmd("query", call_id=call_id).get("result"), "ok")
        sessions = self.j.cmd(RELAY, "sessions")
        self.assertIn(call_id, sessions)
        self.assertEqual(len(sessions[call_id]["medias"][0]["streams"]), 2)  # untouched

    def test_ending_an_anchored_call_deletes_only_its_session(self):
        ng_call = "kamailio-call-1@host"
        self.assertEqual(self.ng.cmd("offer", call_id=ng_call, from_tag="f", sdp=sdp(5010)).get("result"), "ok")
        r = self.j.cmd(A, "originate", {"from": "peera:door/1", "to": "svc:help"})
        call_id = self.anchored_call_id()
        self.assertEqual(set(self.j.cmd(RELAY, "sessions")), {ng_call, call_id})
        self.assertEqual(self.j.cmd(A, "send", {"leg": r["leg"], "type": "end"})["status"], 0)
        self.j.wait_for_log(r"call '%s' deleted by anchor delete" % call_id)
        self.assertEqual(list(self.j.cmd(RELAY, "sessions")), [ng_call])  # the ng client's call stays
        self.assertEqual(self.ng.cmd("delete", call_id=ng_call, from_tag="f").get("result"), "ok")

if __name__ == "__main__":
    main()
