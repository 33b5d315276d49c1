"""Media anchoring (ABI 1.1): with `[server] media_anchor = "rtp-relay"` the core passes every
call's offer and answer through rtp-relay's on_anchor. Two scriptable call endpoints
(tests/plugins/call-peer: call-peer-a originates, call-peer-b answers) place a real call; the
test checks that each side is told a relay address instead of the other's own, that real RTP
flows through the relay both ways between sockets bound on the addresses the endpoints
advertised, that the session survives a hot reload of the relay, and that the session is gone
after END. Without the anchor conf the media is untouched.

call-peer's numbering: A's first originate (no cookie) offers 127.0.0.1:30001 (30000 + serial),
B's first answer is 127.0.0.1:40000 (40000 + answers). The relay uses a private range away
from both."""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, main, wait_until  # noqa: E402
from ngclient import rtp  # noqa: E402

A, B, RELAY = "call-peer-a", "call-peer-b", "rtp-relay"
JN_OK = 0
ROUTES = [{"match": "exact", "pattern": "svc:help", "targets": ["peerb:desk"]}]
A_MEDIA = ("127.0.0.1", 30001)  # call-peer-a's first originate
B_MEDIA = ("127.0.0.1", 40000)  # call-peer-b's first answer


def split_addr(text):
    ip, port = text.rsplit(":", 1)
    return ip, int(port)


class AnchorTest(JunctionTest):
    def start(self, anchor, ports=100, **relay_extra):
        # A private relay range per server (22000..23999, this file's band, see test_ng.relay_ports),
        # clear of call-peer's 30001 and 40000.
        self.lo = 22000 + (free_port(socket.SOCK_DGRAM) % 20) * 100
        self.hi = self.lo + ports - 1
        relay = {"ng_listen": "", "port_range": "media", **relay_extra}
        server = {"media_anchor": RELAY} if anchor else {}
        j = self.server(plugins={A: {"on_offer": "answer"}, B: {"on_offer": "answer"}, RELAY: relay},
                        routes=ROUTES, server=server)
        j.write_core(dict(j.core, ports={"media": {"min": self.lo, "max": self.hi}}))
        return j.start()

    def events(self, j, plugin, type=None):
        return [e for e in j.cmd(plugin, "events") if type is None or e["type"] == type]

    def bind(self, addr):
        """A UDP socket on an endpoint's advertised address (call-peer's fixed numbering). A port
        another process holds fails the test: the media check must not be skipped silently."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        try:
            s.bind(addr)
        except OSError as e:
            self.fail(f"cannot bind {addr}, where a call-peer endpoint receives its media: {e}")
        s.settimeout(2.0)
        return s

    @staticmethod
    def port_free(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def call(self, j):
        r = j.cmd(A, "originate", {"from": "peera:door/1", "to": "svc:help"})
        self.assertEqual(r["status"], JN_OK, r)
        offers = self.events(j, B, "offer")
        self.assertEqual(len(offers), 1, offers)
        answers = self.events(j, A, "answer")
        self.assertEqual(len(answers), 1, self.events(j, A))
        return r["leg"], offers[0], answers[0]

    def assert_relay(self, addr_text):
        ip, port = split_addr(addr_text)
        self.assertEqual(ip, "127.0.0.1", addr_text)
        self.assertTrue(self.lo <= port <= self.hi, f"{addr_text} is not in the relay range {self.lo}-{self.hi}")
        self.assertEqual(port % 2, 0, addr_text)
        return port

    def relay_rtp(self, src, dst_port, dst, seq0, n=5):
        """n RTP packets from src to the relay's dst_port all arrive at dst, from a relay port."""
        for i in range(n):
            src.sendto(rtp(seq0 + i, ssrc=0xA0 + seq0, pt=8), ("127.0.0.1", dst_port))
        got = []
        for _ in range(n):
            data, frm = dst.recvfrom(2048)
            got.append((data, frm))
        self.assertEqual([d for d, _ in got], [rtp(seq0 + i, ssrc=0xA0 + seq0, pt=8) for i in range(n)])
        return {f for _, f in got}

    def test_anchored_call_relays_both_ways_and_is_deleted_at_end(self):
        sock_a, sock_b = self.bind(A_MEDIA), self.bind(B_MEDIA)
        j = self.start(anchor=True)
        leg_a, offer, answer = self.call(j)
        call_id = offer["call_id"]

        # B was offered a relay port, not A's own address; A got another relay port in the answer.
        self.assertEqual(len(offer["media"]), 1, offer)
        om = offer["media"][0]
        self.assertEqual((om["kind"], om["format"], om["payload_type"], om["clock_rate"], om["transport"]),
                         ("audio", "PCMA", 8, 8000, "rtp/avp"), om)
        to_b_port = self.assert_relay(om["addr"])  # B sends here
        self.assertNotEqual(om["addr"], "%s:%d" % A_MEDIA)
        self.assertEqual(len(answer["media"]), 1, answer)
        am = answer["media"][0]
        self.assertEqual((am["format"], am["payload_type"]), ("PCMA", 8), am)
        to_a_port = self.assert_relay(am["addr"])  # A sends here
        self.assertNotEqual(to_a_port, to_b_port)
        self.assertNotEqual(am["addr"], "%s:%d" % B_MEDIA)

        # The relay has one session for the core's call id, with both endpoints' own addresses.
        sessions = j.cmd(RELAY, "sessions")
        self.assertEqual(list(sessions), [call_id])
        sides = sessions[call_id]["medias"][0]["streams"]
        self.assertEqual([(s["tag"], s["advertised endpoint"]["address"], s["advertised endpoint"]["port"], s["local port"])
                          for s in sides],
                         [("a", A_MEDIA[0], A_MEDIA[1], to_a_port), ("b", B_MEDIA[0], B_MEDIA[1], to_b_port)])
        stats = j.cmd(RELAY, "stats")
        self.assertEqual((stats["anchor"]["offers"], stats["anchor"]["answers"], stats["anchor"]["errors"]), (1, 1, 0))

        # A -> relay (its answer's port) -> B, arriving from the port B was told to use; and back.
        self.assertEqual(self.relay_rtp(sock_a, to_a_port, sock_b, 100), {("127.0.0.1", to_b_port)})
        self.assertEqual(self.relay_rtp(sock_b, to_b_port, sock_a, 200), {("127.0.0.1", to_a_port)})
        # The session survives a hot reload of the relay and keeps relaying.
        status, body = j.request("POST", "/api/v1/plugins/rtp-relay/reload")
        self.assertEqual(status, 200, body)
        self.assertEqual(list(j.cmd(RELAY, "sessions")), [call_id])
        stats = j.cmd(RELAY, "stats")
        self.assertEqual((stats["reloads"], stats["anchor"]["sessions"], stats["anchor"]["offers"]), (1, 1, 1), stats)
        self.assertEqual(self.relay_rtp(sock_a, to_a_port, sock_b, 300), {("127.0.0.1", to_b_port)})
        self.assertEqual(self.relay_rtp(sock_b, to_b_port, sock_a, 400), {("127.0.0.1", to_a_port)})
        side_stats = [s["stats"] for s in j.cmd(RELAY, "sessions")[call_id]["medias"][0]["streams"]]
        self.assertEqual([(s["packets"], s["forwarded"]) for s in side_stats], [(10, 10), (10, 10)])

        # END: the core deletes the anchored session; its ports are free again.
        r = j.cmd(A, "send", {"leg": leg_a, "type": "end"})
        self.assertEqual(r["status"], JN_OK, r)
        wait_until(lambda: j.cmd(RELAY, "sessions") == {}, what="the relay session to be deleted")
        stats = j.cmd(RELAY, "stats")
        self.assertEqual((stats["sessions"], stats["anchor"]["sessions"], stats["anchor"]["deletes"]), (0, 0, 1), stats)
        wait_until(lambda: self.port_free(to_a_port) and self.port_free(to_b_port), what="the relay's ports to be released")
        sock_a.sendto(rtp(999, pt=8), ("127.0.0.1", to_a_port))
        sock_b.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            sock_b.recvfrom(2048)
        self.assertNotIn("anchor_reply: malformed", j.log())

    def test_reoffer_mid_call_goes_through_the_relay(self):
        # ABI 1.2: a re-offer in an answered call (here from B, e.g. it moved) and its answer
        # (from A) are anchored too: each side keeps talking to the relay's same ports, and the
        # relay learns the new addresses.
        j = self.start(anchor=True)
        leg_a, offer, answer = self.call(j)
        to_b_port = self.assert_relay(offer["media"][0]["addr"])
        to_a_port = self.assert_relay(answer["media"][0]["addr"])
        leg_b = offer["leg"]
        r = j.cmd(B, "send", {"leg": leg_b, "type": "offer"})  # B now receives at 127.0.0.1:40001
        self.assertEqual(r["status"], JN_OK, r)
        reoffers = self.events(j, A, "offer")
        self.assertEqual(len(reoffers), 1, self.events(j, A))
        self.assertEqual(self.assert_relay(reoffers[0]["media"][0]["addr"]), to_a_port)  # not 40001
        r = j.cmd(A, "send", {"leg": leg_a, "type": "answer"})  # A answers: 127.0.0.1:40000
        self.assertEqual(r["status"], JN_OK, r)
        reanswers = [e for e in self.events(j, B, "answer")]
        self.assertEqual(len(reanswers), 1, self.events(j, B))
        self.assertEqual(self.assert_relay(reanswers[0]["media"][0]["addr"]), to_b_port)
        sides = j.cmd(RELAY, "sessions")[offer["call_id"]]["medias"][0]["streams"]
        self.assertEqual([(s["tag"], s["advertised endpoint"]["port"], s["local port"]) for s in sides],
                         [("a", 40000, to_a_port), ("b", 40001, to_b_port)])
        stats = j.cmd(RELAY, "stats")["anchor"]
        self.assertEqual((stats["offers"], stats["answers"], stats["errors"], stats["sessions"]), (2, 2, 0, 1), stats)
        self.assertEqual(j.cmd(A, "send", {"leg": leg_a, "type": "end"})["status"], JN_OK)
        wait_until(lambda: j.cmd(RELAY, "sessions") == {}, what="the relay session to be deleted")

    def test_media_timeout_ends_the_call(self):
        # No RTP for timeout_s: the relay tells the core (anchor_end), which ends the call on both
        # legs with 408 "media timeout" and then deletes the relay session.
        j = self.start(anchor=True, timeout_s=1)
        leg_a, offer, answer = self.call(j)
        call_id = offer["call_id"]

        def ended(plugin):
            return [e for e in self.events(j, plugin) if e["type"] == "end"]

        wait_until(lambda: ended(A) and ended(B), timeout=10, what="END on both legs")
        for plugin in (A, B):
            e = ended(plugin)[0]
            self.assertEqual((e["code"], e["reason"], e["call_id"]), (408, "media timeout", call_id), e)
        wait_until(lambda: j.cmd(RELAY, "sessions") == {}, what="the relay session to be deleted")
        self.assertEqual(j.api("GET", "/api/v1/calls", expect=200), [])
        j.wait_for_log(r"call %s ended by its media anchor: 408 media timeout" % call_id)

    def test_relay_error_passes_the_media_through(self):
        # Room for one stream (two port pairs): the second call cannot be anchored and keeps
        # its endpoints' own addresses; the first stays anchored.
        j = self.start(anchor=True, ports=4)
        leg1, offer1, answer1 = self.call(j)
        self.assert_relay(offer1["media"][0]["addr"])
        self.assert_relay(answer1["media"][0]["addr"])
        j.cmd(A, "clear")
        j.cmd(B, "clear")
        leg2, offer2, answer2 = self.call(j)
        self.assertEqual(offer2["media"][0]["addr"], "127.0.0.1:30002")
        self.assertEqual(answer2["media"][0]["addr"], "127.0.0.1:40001")
        self.assertEqual(list(j.cmd(RELAY, "sessions")), [offer1["call_id"]])
        self.assertEqual(j.cmd(RELAY, "stats")["anchor"]["errors"], 1)
        j.wait_for_log(r"anchor offer call '%s': Ran out of ports" % offer2["call_id"])
        for leg in (leg1, leg2):
            self.assertEqual(j.cmd(A, "send", {"leg": leg, "type": "end"})["status"], JN_OK)
        wait_until(lambda: j.cmd(RELAY, "sessions") == {}, what="the relay session to be deleted")

    def test_without_anchor_media_is_untouched(self):
        j = self.start(anchor=False)
        _, offer, answer = self.call(j)
        self.assertEqual([m["addr"] for m in offer["media"]], ["%s:%d" % A_MEDIA])
        self.assertEqual([m["addr"] for m in answer["media"]], ["%s:%d" % B_MEDIA])
        self.assertEqual(j.cmd(RELAY, "sessions"), {})
        self.assertEqual(j.cmd(RELAY, "stats")["anchor"]["offers"], 0)


if __name__ == "__main__":
    main()
