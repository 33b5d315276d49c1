"""rtp-relay driven through the rtpengine ng protocol by a Python ng client and UDP endpoints:
ping, offer/answer SDP rewriting, relaying RTP and RTCP both ways with symmetric latching,
rtcp-mux, ICE removal, SRTP<->RTP, per-session stats and loss, query/list/delete, bad input
(bad bencode, missing keys, unknown call-ids, garbage datagrams, wrong source) counted and
answered without disturbing other sessions, control through events, the bus tap and the copy
counter."""
import os
import socket
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, udp_socket, wait_until, BUILD, main  # noqa: E402
from ngclient import NgClient, sdp, sdp_port, rtp  # noqa: E402

SRTP_TOOL = os.path.join(BUILD, "plugins", "rtp-relay", "rtp_relay_srtp_tool")


def relay_ports(ng_port):
    """The core's [ports.media] range for one server: a private band per server, below the
    kernel's ephemeral range (32768+) so that no other test's ephemeral socket (free_port, port 0
    binds) can take a port the relay allocates or the ng port it binds. Each test file has its own
    band: test_reload 10000-17999, test_ng 18000-19999, test_kamailio 20000-21999, test_anchor
    22000-23999. Ports another process holds are skipped by the core's allocator anyway."""
    lo = 18000 + (ng_port % 20) * 100
    return {"media": {"min": lo, "max": lo + 99}}


def relay_conf(ng_port, **kw):
    conf = {"ng_listen": f"127.0.0.1:{ng_port}", "port_range": "media"}
    conf.update(kw)
    return conf


def relay_server(test, ng_port, media_loops=2, **kw):
    """A started server whose relay takes its ports from the core's range 'media'."""
    j = test.server(plugins={"rtp-relay": relay_conf(ng_port, **kw)}, server={"media_loops": media_loops})
    j.write_core(dict(j.core, ports=relay_ports(ng_port)))
    return j.start()


def recv_all(sock, n):
    out = []
    for _ in range(n):
        try:
            out.append(sock.recvfrom(4096))
        except socket.timeout:
            break
    return out


def srtp(mode, suite, key, packets, rtcp=False):
    args = [SRTP_TOOL, mode, suite, key] + (["rtcp"] if rtcp else [])
    p = subprocess.run(args, input="".join(x.hex() + "\n" for x in packets), capture_output=True, text=True, check=True)
    return [None if l == "FAIL" else bytes.fromhex(l) for l in p.stdout.split()]


class NgTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.ng_port = free_port(socket.SOCK_DGRAM)
        self.j = relay_server(self, self.ng_port)
        self.j.wait_for_log(r"rtp-relay: ng on")
        self.ng = NgClient(self.ng_port)
        self.socks = []

    def tearDown(self):
        self.ng.close()
        for s in self.socks:
            s.close()
        super().tearDown()

    def sock(self, timeout=2.0):
        s = udp_socket(timeout)
        self.socks.append(s)
        return s

    def call(self, call_id, a, b, offer_extra="", answer_extra="", offer_kw=None, answer_kw=None, a_proto="RTP/AVP", b_proto="RTP/AVP"):
        """Offer from a (tag ft), answer from b (tag tt); returns (port toward b, port toward a, replies)."""
        o = self.ng.cmd("offer", call_id=call_id, from_tag="ft-" + call_id,
                        sdp=sdp(a.getsockname()[1], proto=a_proto, extra=offer_extra), **(offer_kw or {}))
        self.assertEqual(o["result"], "ok", o)
        an = self.ng.cmd("answer", call_id=call_id, from_tag="ft-" + call_id, to_tag="tt-" + call_id,
                         sdp=sdp(b.getsockname()[1], proto=b_proto, extra=answer_extra), **(answer_kw or {}))
        self.assertEqual(an["result"], "ok", an)
        return sdp_port(o["sdp"]), sdp_port(an["sdp"]), o, an

    def test_ping_and_protocol_errors(self):
        self.assertEqual(self.ng.cmd("ping"), {"result": "pong"})
        # Bad bencode, a non-dict, no command, unknown command, missing keys, unknown call-id.
        reply = self.ng.raw(b"c1 d7:command4:pin")
        self.assertTrue(reply.startswith(b"c1 d6:result5:error12:error-reason"), reply)
        self.assertIn(b"bad bencode", reply)
        self.assertIn(b"not a dictionary", self.ng.raw(b"c2 l4:pinge"))
        self.assertEqual(self.ng.cmd("frobnicate")["result"], "error")
        self.assertEqual(self.ng.cmd("offer", from_tag="x", sdp=sdp(1000))["error-reason"], "No call-id in message")
        self.assertEqual(self.ng.cmd("offer", call_id="x", sdp=sdp(1000))["error-reason"], "No from-tag in message")
        self.assertEqual(self.ng.cmd("offer", call_id="x", from_tag="y")["error-reason"], "No SDP body in message")
        self.assertIn("Failed to parse SDP", self.ng.cmd("offer", call_id="x", from_tag="y", sdp="garbage")["error-reason"])
        self.assertEqual(self.ng.cmd("answer", call_id="nope", from_tag="a", to_tag="b", sdp=sdp(1000))["error-reason"], "Unknown call-id")
        for c in ("delete", "query"):
            self.assertEqual(self.ng.cmd(c, call_id="nope")["result"], "error")
        # No cookie at all: nothing to answer, only counted; the listener keeps serving.
        self.ng.sock.sendto(b"garbage-without-space", self.ng.addr)
        self.assertEqual(self.ng.cmd("ping"), {"result": "pong"})
        # A retransmitted request (same cookie) gets the same reply without being redone.
        msg = b"rt1 d7:command5:offer7:call-id3:rtx8:from-tag1:a3:sdp%d:%se" % (len(sdp(1234)), sdp(1234).encode())
        r1 = self.ng.raw(msg)
        r2 = self.ng.raw(msg)
        self.assertEqual(r1, r2)
        stats = self.j.cmd("rtp-relay", "stats")
        self.assertEqual(stats["sessions"], 1)
        self.assertEqual(stats["ng"]["retransmits"], 1)
        self.assertEqual(stats["ng"]["bad"], 3)  # bad bencode, not a dictionary, no cookie
        self.assertEqual(stats["ng"]["errors"], 8)

    def test_forward_to_more_endpoints(self):
        # A call between a and b; a's media also goes to a monitor and a recorder (ng "forward",
        # a Junction extension), each from a relay port of its own, by reference (no copy).
        a, b, monitor, recorder = self.sock(), self.sock(), self.sock(), self.sock()
        to_b, to_a, _, _ = self.call("fw-1", a, b)
        fwd = {}
        for name, s in (("monitor", monitor), ("recorder", recorder)):
            r = self.ng.cmd("forward", call_id="fw-1", from_tag="ft-fw-1", address="127.0.0.1:%d" % s.getsockname()[1],
                            flags=["rtcp-mux"])
            self.assertEqual(r["result"], "ok", r)
            self.assertEqual(len(r["forwards"]), 1, r)
            fwd[name] = r["forwards"][0]["local port"]
        self.assertNotEqual(fwd["monitor"], fwd["recorder"])
        for seq in range(5):
            a.sendto(rtp(seq, ssrc=7), ("127.0.0.1", to_a))
        for s, src in ((b, to_b), (monitor, fwd["monitor"]), (recorder, fwd["recorder"])):
            for seq in range(5):
                data, frm = s.recvfrom(2048)
                self.assertEqual((data, frm[1]), (rtp(seq, ssrc=7), src))
        # RTCP follows (rtcp-mux: to the same port); b's media is not forwarded (only a's tag).
        sr = bytes([0x80, 200, 0, 6]) + (0xA).to_bytes(4, "big") + bytes(20)
        a.sendto(sr, ("127.0.0.1", to_a))
        self.assertEqual(monitor.recvfrom(2048)[0], sr)
        self.assertEqual(recorder.recvfrom(2048)[0], sr)
        b.sendto(rtp(100, ssrc=8), ("127.0.0.1", to_b))
        self.assertEqual(a.recvfrom(2048)[0], rtp(100, ssrc=8))
        # Stop the monitor: the recorder keeps getting a's packets, the monitor nothing more.
        r = self.ng.cmd("unforward", call_id="fw-1", from_tag="ft-fw-1", address="127.0.0.1:%d" % monitor.getsockname()[1])
        self.assertEqual(r["result"], "ok", r)
        a.sendto(rtp(5, ssrc=7), ("127.0.0.1", to_a))
        self.assertEqual(recorder.recvfrom(2048)[0], rtp(5, ssrc=7))
        self.assertEqual(b.recvfrom(2048)[0], rtp(5, ssrc=7))
        monitor.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            monitor.recvfrom(2048)
        # The forward survives a hot reload of the relay (its sockets are the core's).
        status, body = self.j.request("POST", "/api/v1/plugins/rtp-relay/reload")
        self.assertEqual(status, 200, body)
        a.sendto(rtp(6, ssrc=7), ("127.0.0.1", to_a))
        self.assertEqual(recorder.recvfrom(2048), (rtp(6, ssrc=7), ("127.0.0.1", fwd["recorder"])))
        self.assertEqual(b.recvfrom(2048)[0], rtp(6, ssrc=7))
        q = self.ng.cmd("query", call_id="fw-1")["medias"][0]["streams"][0]
        self.assertEqual([(f["local port"], f["packets"]) for f in q["forwards"]], [(fwd["recorder"], 8)])
        # Bad requests are answered with a reason and change nothing.
        for kw, why in (({"from_tag": "ft-fw-1", "address": "127.0.0.1:9"}, "No call-id in message"),
                        ({"call_id": "fw-1", "address": "127.0.0.1:9"}, "No from-tag in message"),
                        ({"call_id": "fw-1", "from_tag": "ft-fw-1"}, "No address in message"),
                        ({"call_id": "fw-1", "from_tag": "ft-fw-1", "address": "nowhere"}, "Bad address 'nowhere'"),
                        ({"call_id": "nope", "from_tag": "x", "address": "127.0.0.1:9"}, "Call-ID not found or tags didn't match"),
                        ({"call_id": "fw-1", "from_tag": "who", "address": "127.0.0.1:9"}, "No stream with from-tag 'who'")):
            r = self.ng.cmd("forward", **kw)
            self.assertEqual((r["result"], r.get("error-reason")), ("error", why), kw)
        # Nothing was copied on the way, and delete frees the forward's ports too.
        self.assertIn("junction_bus_payload_copies_total 0", self.j.api("GET", "/metrics", expect=200))
        self.assertEqual(self.ng.cmd("delete", call_id="fw-1")["result"], "ok")
        wait_until(lambda: self._free(fwd["recorder"]), what="the forward's port to be released")

    def test_subscribe_request_answer_unsubscribe(self):
        # rtpengine's subscriptions: a subscriber is offered a's media (send-only, from relay ports
        # of its own), answers with its address, gets a's packets, and unsubscribes.
        a, b, sub = self.sock(), self.sock(), self.sock()
        to_b, to_a, _, _ = self.call("sub-1", a, b)
        r = self.ng.cmd("subscribe request", call_id="sub-1", from_tag="ft-sub-1")
        self.assertEqual(r["result"], "ok", r)
        self.assertEqual(r["from-tag"], "ft-sub-1")
        tag = r["to-tag"]
        self.assertTrue(tag.startswith("sub-"), tag)
        offer = r["sdp"]
        self.assertIn("a=sendonly\r\n", offer)
        self.assertNotIn("a=sendrecv", offer)
        self.assertIn("c=IN IP4 127.0.0.1\r\n", offer)
        sub_port = sdp_port(offer)
        self.assertNotIn(sub_port, (to_a, to_b))
        # Not answered yet: nothing goes to the subscriber.
        a.sendto(rtp(1, ssrc=7), ("127.0.0.1", to_a))
        self.assertEqual(b.recvfrom(2048)[0], rtp(1, ssrc=7))
        r = self.ng.cmd("subscribe answer", call_id="sub-1", to_tag=tag, sdp=sdp(sub.getsockname()[1]))
        self.assertEqual(r["result"], "ok", r)
        for seq in range(2, 5):
            a.sendto(rtp(seq, ssrc=7), ("127.0.0.1", to_a))
        for seq in range(2, 5):
            self.assertEqual(sub.recvfrom(2048), (rtp(seq, ssrc=7), ("127.0.0.1", sub_port)))
            self.assertEqual(b.recvfrom(2048)[0], rtp(seq, ssrc=7))
        q = self.ng.cmd("query", call_id="sub-1")["medias"][0]["streams"][0]
        self.assertEqual([(f["tag"], f["local port"], f["packets"]) for f in q["forwards"]], [(tag, sub_port, 3)])
        # Errors: unknown tags, a tag twice, a side that never sent SDP.
        self.assertEqual(self.ng.cmd("subscribe answer", call_id="sub-1", to_tag="nope", sdp=sdp(9))["error-reason"], "Unknown to-tag 'nope'")
        self.assertEqual(self.ng.cmd("subscribe request", call_id="sub-1", from_tag="ft-sub-1", to_tag=tag)["error-reason"],
                         f"to-tag '{tag}' already subscribes")
        self.assertEqual(self.ng.cmd("subscribe request", call_id="sub-1", from_tag="zz")["error-reason"], "No SDP known from from-tag 'zz'")
        self.assertEqual(self.ng.cmd("unsubscribe", call_id="sub-1", to_tag="nope")["error-reason"], "Unknown to-tag 'nope'")
        self.assertEqual(self.ng.cmd("unsubscribe", call_id="sub-1", to_tag=tag)["result"], "ok")
        a.sendto(rtp(9, ssrc=7), ("127.0.0.1", to_a))
        self.assertEqual(b.recvfrom(2048)[0], rtp(9, ssrc=7))
        sub.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            sub.recvfrom(2048)
        wait_until(lambda: self._free(sub_port), what="the subscriber's port to be released")
        self.assertEqual(self.ng.cmd("delete", call_id="sub-1")["result"], "ok")

    @staticmethod
    def _free(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def test_offer_answer_relay_latching_stats_delete(self):
        a, b, intruder, b_rtcp = self.sock(), self.sock(), self.sock(), self.sock()
        to_b, to_a, o, an = self.call("call-1", a, b, offer_extra="a=candidate:1 1 udp 1 10.9.9.9 4000 typ host\r\na=ice-ufrag:x\r\n",
                                      answer_extra=f"a=rtcp:{b_rtcp.getsockname()[1]}\r\n",
                                      offer_kw={"replace": ["origin", "session-connection"], "ICE": "remove"})
        # SDP rewriting: c=, m= port, a=rtcp, origin; ICE gone.
        self.assertIn("c=IN IP4 127.0.0.1\r\n", o["sdp"])
        self.assertIn(f"a=rtcp:{to_b + 1}\r\n", o["sdp"])
        self.assertIn(f"a=rtcp:{to_a + 1}\r\n", an["sdp"])
        self.assertNotIn("candidate", o["sdp"])
        self.assertNotIn("ice-ufrag", o["sdp"])
        self.assertEqual(to_b % 2, 0)
        self.assertEqual(to_a % 2, 0)
        self.assertNotEqual(to_a, to_b)
        relay = ("127.0.0.1", to_a)
        # A -> relay(to_a) -> B, arriving from the relay's port toward B (symmetric).
        n = 50
        for i in range(n):
            if i == 20:
                continue  # one packet lost on purpose
            a.sendto(rtp(1000 + i, ssrc=0xA), relay)
        got = recv_all(b, n - 1)
        self.assertEqual(len(got), n - 1)
        self.assertEqual({addr for _, addr in got}, {("127.0.0.1", to_b)})
        self.assertEqual(got[0][0], rtp(1000, ssrc=0xA))
        # B -> relay(to_b) -> A.
        for i in range(n):
            b.sendto(rtp(5000 + i, ssrc=0xB), ("127.0.0.1", to_b))
        got = recv_all(a, n)
        self.assertEqual(len(got), n)
        self.assertEqual({addr for _, addr in got}, {("127.0.0.1", to_a)})
        # RTCP on the odd ports, both ways.
        sr = bytes([0x80, 200, 0, 6]) + (0xA).to_bytes(4, "big") + bytes(20)
        a_rtcp = self.sock()
        # A's RTCP comes from another socket than its SDP said: latched; it goes to B's a=rtcp port.
        a_rtcp.sendto(sr, ("127.0.0.1", to_a + 1))
        data, addr = b_rtcp.recvfrom(4096)
        self.assertEqual((data, addr), (sr, ("127.0.0.1", to_b + 1)))
        # Bad input on the latched session: wrong source, short, wrong version, garbage.
        intruder.sendto(rtp(1, ssrc=0xBAD), relay)
        a.sendto(b"\x80\x00", relay)
        a.sendto(b"\x40" + rtp(2)[1:], relay)
        a.sendto(os.urandom(100).replace(b"\x80", b"\x00").replace(b"\x81", b"\x00")[:1] + b"\x00" * 10, relay)
        a.sendto(rtp(1000 + n, ssrc=0xA), relay)  # still relayed after the garbage
        data, addr = b.recvfrom(4096)
        self.assertEqual(data, rtp(1000 + n, ssrc=0xA))
        q = self.ng.cmd("query", call_id="call-1")
        self.assertEqual(q["result"], "ok")
        sides = q["medias"][0]["streams"]
        sa = sides[0]["stats"]
        self.assertEqual(sides[0]["tag"], "ft-call-1")
        self.assertEqual(sides[1]["tag"], "tt-call-1")
        self.assertEqual(sa["packets"], n)  # 49 + the one after garbage
        self.assertEqual(sa["lost"], 1)
        self.assertEqual(sa["dropped source"], 1)
        self.assertEqual(sa["dropped malformed"], 3)
        self.assertEqual(sa["rtcp packets"], 1)
        self.assertEqual(sides[1]["stats"]["packets"], n)
        self.assertEqual(sides[0]["endpoint"]["port"], a.getsockname()[1])
        self.assertEqual(q["totals"]["RTP"]["packets"], 2 * n)
        self.assertIn("call-1", self.ng.cmd("list")["calls"])
        # The relay path copied no payload.
        metrics = self.j.api("GET", "/metrics", expect=200)
        self.assertIn("junction_bus_payload_copies_total 0", metrics)
        # Delete tears it down: the ports stop relaying and the call is gone.
        d = self.ng.cmd("delete", call_id="call-1", from_tag="ft-call-1")
        self.assertEqual(d["result"], "ok")
        self.assertEqual(d["totals"]["RTP"]["packets"], 2 * n)
        self.assertEqual(self.ng.cmd("query", call_id="call-1")["result"], "error")
        self.assertNotIn("call-1", self.ng.cmd("list")["calls"])
        wait_until(lambda: self._free(to_a) and self._free(to_b), what="the call's ports to be released")
        a.sendto(rtp(9999, ssrc=0xA), relay)
        b.settimeout(0.3)
        self.assertEqual(recv_all(b, 1), [])

    def test_sessions_are_isolated_and_strict_source(self):
        a1, b1, a2, b2 = self.sock(), self.sock(), self.sock(), self.sock()
        to_b1, to_a1, _, _ = self.call("iso-1", a1, b1)
        to_b2, to_a2, _, _ = self.call("iso-2", a2, b2, offer_kw={"flags": ["strict-source"]}, answer_kw={"flags": ["strict-source"]})
        # Garbage and foreign packets into session 1 do not disturb session 2.
        for _ in range(20):
            a2.sendto(rtp(1, ssrc=0x99), ("127.0.0.1", to_a1))  # a2 latches session 1's A side...
            a1.sendto(b"\xff" * 5, ("127.0.0.1", to_a1))
        for i in range(30):
            a2.sendto(rtp(i, ssrc=0x2), ("127.0.0.1", to_a2))
        got = recv_all(b2, 30)
        self.assertEqual(len(got), 30)
        # Strict source: a different socket sending to session 2 is dropped even before latching B.
        intr = self.sock()
        intr.sendto(rtp(1), ("127.0.0.1", to_b2))
        b2.sendto(rtp(7, ssrc=0x3), ("127.0.0.1", to_b2))
        data, _ = a2.recvfrom(4096)
        self.assertEqual(data, rtp(7, ssrc=0x3))
        q2 = self.ng.cmd("query", call_id="iso-2")["medias"][0]["streams"]
        self.assertEqual(q2[1]["stats"]["dropped source"], 1)
        self.assertEqual(q2[0]["stats"]["errors"], 0)

    def test_rtcp_mux_and_demux(self):
        a, b = self.sock(), self.sock()
        to_b, to_a, o, an = self.call("mux-1", a, b, offer_extra="a=rtcp-mux\r\n", answer_extra="a=rtcp-mux\r\n")
        self.assertIn("a=rtcp-mux", o["sdp"])
        self.assertIn(f"a=rtcp:{to_a}\r\na=rtcp-mux\r\n", an["sdp"])
        sr = bytes([0x80, 200, 0, 6]) + (0xA).to_bytes(4, "big") + bytes(20)
        a.sendto(sr, ("127.0.0.1", to_a))  # RTCP on the RTP port
        data, addr = b.recvfrom(4096)
        self.assertEqual(data, sr)
        self.assertEqual(addr, ("127.0.0.1", to_b))
        # demux: A offers mux, B is not offered it; RTCP from B on the odd port reaches A muxed.
        a2, b2, b2_rtcp = self.sock(), self.sock(), self.sock()
        o2 = self.ng.cmd("offer", call_id="mux-2", from_tag="f", sdp=sdp(a2.getsockname()[1], extra="a=rtcp-mux\r\n"), rtcp_mux=["demux"])
        self.assertNotIn("a=rtcp-mux", o2["sdp"])
        an2 = self.ng.cmd("answer", call_id="mux-2", from_tag="f", to_tag="t",
                          sdp=sdp(b2.getsockname()[1], extra=f"a=rtcp:{b2_rtcp.getsockname()[1]}\r\n"))
        self.assertIn("a=rtcp-mux", an2["sdp"])
        to_b2 = sdp_port(o2["sdp"])
        b2_rtcp.sendto(sr, ("127.0.0.1", to_b2 + 1))
        data, addr = a2.recvfrom(4096)
        self.assertEqual(data, sr)
        self.assertEqual(addr, ("127.0.0.1", sdp_port(an2["sdp"])))
        # And A's muxed RTCP goes to B's separate RTCP port from the relay's odd port.
        a2.sendto(sr, ("127.0.0.1", sdp_port(an2["sdp"])))
        data, addr = b2_rtcp.recvfrom(4096)
        self.assertEqual(addr, ("127.0.0.1", to_b2 + 1))

    def test_srtp_to_rtp_and_back(self):
        key_a = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"  # 30 bytes
        a, b = self.sock(), self.sock()
        crypto = f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key_a}|2^20\r\n"
        to_b, to_a, o, an = self.call("srtp-1", a, b, offer_extra=crypto, a_proto="RTP/SAVP",
                                      offer_kw={"transport-protocol": "RTP/AVP"})
        self.assertIn(" RTP/AVP ", o["sdp"])
        self.assertNotIn("crypto", o["sdp"])
        self.assertIn(" RTP/SAVP ", an["sdp"])
        line = [l for l in an["sdp"].split("\r\n") if l.startswith("a=crypto:")][0]
        self.assertTrue(line.startswith("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), line)
        key_relay = line.split("inline:")[1].split("|")[0]
        self.assertNotEqual(key_relay, key_a)
        plain = [rtp(100 + i, ssrc=0x5A) for i in range(10)]
        for p in srtp("protect", "AES_CM_128_HMAC_SHA1_80", key_a, plain):
            a.sendto(p, ("127.0.0.1", to_a))
        got = [d for d, _ in recv_all(b, 10)]
        self.assertEqual(got, plain)  # decrypted for the plain side
        # A tampered SRTP packet is dropped and counted.
        bad = bytearray(srtp("protect", "AES_CM_128_HMAC_SHA1_80", key_a, [rtp(200, ssrc=0x5A)])[0])
        bad[20] ^= 0xFF
        a.sendto(bytes(bad), ("127.0.0.1", to_a))
        a.sendto(srtp("protect", "AES_CM_128_HMAC_SHA1_80", key_a, [rtp(201, ssrc=0x5A)])[0], ("127.0.0.1", to_a))
        self.assertEqual(b.recvfrom(4096)[0], rtp(201, ssrc=0x5A))  # ordered after the bad one
        # B's plain RTP reaches A encrypted with the relay's key.
        back = [rtp(300 + i, ssrc=0x5B) for i in range(10)]
        for p in back:
            b.sendto(p, ("127.0.0.1", to_b))
        enc = [d for d, _ in recv_all(a, 10)]
        self.assertEqual(len(enc), 10)
        self.assertNotEqual(enc[0], back[0])
        self.assertEqual(srtp("unprotect", "AES_CM_128_HMAC_SHA1_80", key_relay, enc), back)
        q = self.ng.cmd("query", call_id="srtp-1")["medias"][0]["streams"]
        self.assertEqual(q[0]["stats"]["dropped srtp"], 1)
        self.assertEqual(q[0]["SRTP"], "yes")
        # Unprotect and protect happened in place (the auth tag fits the buffer's tailroom).
        self.assertEqual(self.j.cmd("rtp-relay", "stats")["payload_copies"], 0)

    def test_srtp_protect_in_place_copies_nothing(self):
        """Protecting toward an SRTP leg writes the auth tag into the received buffer's tailroom
        (reported by the core since the tailroom fix): no payload copy."""
        a, b = self.sock(), self.sock()
        o = self.ng.cmd("offer", call_id="ip-1", from_tag="f", sdp=sdp(a.getsockname()[1]), transport_protocol="RTP/SAVP")
        key_b = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"
        an = self.ng.cmd("answer", call_id="ip-1", from_tag="f", to_tag="t",
                         sdp=sdp(b.getsockname()[1], proto="RTP/SAVP", extra=f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key_b}\r\n"))
        for i in range(5):
            a.sendto(rtp(i), ("127.0.0.1", sdp_port(an["sdp"])))
        self.assertEqual(len(recv_all(b, 5)), 5)
        self.assertEqual(self.j.cmd("rtp-relay", "stats")["payload_copies"], 0)

    def test_rtp_to_srtp_offer_and_bus_tap(self):
        a, b = self.sock(), self.sock()
        o = self.ng.cmd("offer", call_id="srtp-2", from_tag="f", sdp=sdp(a.getsockname()[1]), transport_protocol="RTP/SAVP")
        self.assertIn(" RTP/SAVP ", o["sdp"])
        relay_key = [l for l in o["sdp"].split("\r\n") if l.startswith("a=crypto:")][0].split("inline:")[1]
        key_b = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"
        an = self.ng.cmd("answer", call_id="srtp-2", from_tag="f", to_tag="t",
                         sdp=sdp(b.getsockname()[1], proto="RTP/SAVP", extra=f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key_b}\r\n"))
        self.assertEqual(an["result"], "ok", an)
        self.assertIn(" RTP/AVP ", an["sdp"])
        self.assertNotIn("crypto", an["sdp"])
        to_b, to_a = sdp_port(o["sdp"]), sdp_port(an["sdp"])
        # A tap on A's stream that holds a reference (as a recorder queue would): the plain packet
        # on the bus stays intact, so the SRTP protect toward B works on a counted copy.
        stream_a = self.ng.cmd("query", call_id="srtp-2")["medias"][0]["streams"][0]["bus stream"]
        self.j.cmd("rtp-relay", "tap", {"stream": stream_a, "hold": True})
        plain = [rtp(10 + i, ssrc=0x77) for i in range(5)]
        for p in plain:
            a.sendto(p, ("127.0.0.1", to_a))
        enc = [d for d, _ in recv_all(b, 5)]
        self.assertEqual(srtp("unprotect", "AES_CM_128_HMAC_SHA1_80", relay_key, enc), plain)
        taps = self.j.cmd("rtp-relay", "taps")
        self.assertEqual(taps[0]["packets"], 5)
        self.assertEqual(taps[0]["bytes"], sum(len(p) for p in plain))
        self.assertEqual(self.j.cmd("rtp-relay", "stats")["payload_copies"], 5)  # one per packet, not two
        # B's SRTP reaches A decrypted.
        for p in srtp("protect", "AES_CM_128_HMAC_SHA1_80", key_b, [rtp(1, ssrc=0x88)]):
            b.sendto(p, ("127.0.0.1", to_b))
        data, _ = a.recvfrom(4096)
        self.assertEqual(data, rtp(1, ssrc=0x88))

    def test_ssrc_flood_is_bounded(self):
        a, b = self.sock(), self.sock()
        # B takes RTCP on its RTP socket too, so an RTCP sentinel can mark the end of the flood.
        to_b, to_a, _, _ = self.call("flood-1", a, b, answer_extra=f"a=rtcp:{b.getsockname()[1]}\r\n")
        for i in range(40):
            a.sendto(rtp(i, ssrc=0x1000 + i), ("127.0.0.1", to_a))  # a new SSRC every packet
        sr = bytes([0x80, 200, 0, 6]) + (0xA).to_bytes(4, "big") + bytes(20)
        a.sendto(sr, ("127.0.0.1", to_a))  # RTCP on the RTP port: relayed, not SSRC-limited
        got = []
        while True:
            data, _ = b.recvfrom(4096)
            if data == sr:
                break
            got.append(data)
        q = self.ng.cmd("query", call_id="flood-1")["medias"][0]["streams"][0]["stats"]
        self.assertGreater(q["dropped ssrc flood"], 0)
        self.assertLessEqual(len(got), 2 * 9)  # at most 1 + ssrc_change_limit per second window
        self.assertEqual(len(got) + q["dropped ssrc flood"], 40)

    def test_overload_of_one_session_spares_the_others(self):
        """A burst far beyond what the relay drains on one session: its loss stays its own (each
        session has its own sockets; the core serves every readable socket each wakeup), the
        other session loses nothing, and the flooded stream is never disabled."""
        def big(s):
            try:
                s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
            except OSError:
                pass
            return s
        a1, b1, a2, b2 = self.sock(), big(self.sock()), self.sock(), big(self.sock())
        to_b1, to_a1, _, _ = self.call("hot", a1, b1)
        to_b2, to_a2, _, _ = self.call("calm", a2, b2)
        payload = b"\xd5" * 188
        calm = 100
        for i in range(20000):
            a1.sendto(rtp(i, ssrc=0x1, payload=payload), ("127.0.0.1", to_a1))
            if i % 200 == 0:
                a2.sendto(rtp(i // 200, ssrc=0x2), ("127.0.0.1", to_a2))
        got2 = recv_all(b2, calm)
        self.assertEqual(len(got2), calm, "the calm session lost packets to the other one's overload")
        # No event says "the kernel dropped the rest": read until the flooded side goes quiet.
        b1.settimeout(0.5)
        got1 = recv_all(b1, 20000)
        self.assertGreater(len(got1), 0)
        # The flooded stream still relays afterwards.
        a1.sendto(rtp(30000, ssrc=0x1), ("127.0.0.1", to_a1))
        b1.settimeout(5)
        self.assertEqual(b1.recvfrom(4096)[0], rtp(30000, ssrc=0x1))
        print(f"\noverload: flooded session relayed {len(got1)}/20000, calm session {len(got2)}/{calm}")

    def test_silent_session_times_out(self):
        ng_port = free_port(socket.SOCK_DGRAM)
        j = relay_server(self, ng_port, timeout_s=1)
        ng = NgClient(ng_port)
        self.addCleanup(ng.close)
        self.assertEqual(ng.cmd("offer", call_id="quiet", from_tag="f", sdp=sdp(5000))["result"], "ok")
        j.wait_for_log(r"call 'quiet' deleted by timeout", timeout=10)
        self.assertEqual(ng.cmd("query", call_id="quiet")["result"], "error")
        self.assertEqual(j.cmd("rtp-relay", "stats")["timeouts"], 1)

    def test_control_commands_lock_only_their_calls_shard(self):
        # Two calls, one per media loop (a new call goes to the least loaded loop). While media
        # flows through the second call, ng commands for the first (re-offer, answer, query,
        # forward, unforward, subscribe, unsubscribe, list, delete) must take only the first
        # call's shard lock: the relay counts every control-thread acquisition per shard.
        a1, b1, a2, b2, rec = self.sock(), self.sock(), self.sock(), self.sock(), self.sock()
        self.call("lk-1", a1, b1)
        to_b2, to_a2, _, _ = self.call("lk-2", a2, b2)
        loop1 = self.ng.cmd("query", call_id="lk-1")["media loop"]
        loop2 = self.ng.cmd("query", call_id="lk-2")["media loop"]
        self.assertEqual({loop1, loop2}, {1, 2})

        def locks():
            return {s["loop"]: s for s in self.j.cmd("rtp-relay", "locks")["shards"]}

        def media_round(seq):  # a packet through lk-2 both ways, each one received
            a2.sendto(rtp(seq, ssrc=0x2A), ("127.0.0.1", to_a2))
            self.assertEqual(b2.recvfrom(4096)[0], rtp(seq, ssrc=0x2A))
            b2.sendto(rtp(seq, ssrc=0x2B), ("127.0.0.1", to_b2))
            self.assertEqual(a2.recvfrom(4096)[0], rtp(seq, ssrc=0x2B))

        media_round(0)
        before = locks()
        rounds = 10
        for i in range(rounds):
            media_round(i + 1)
            o = self.ng.cmd("offer", call_id="lk-1", from_tag="ft-lk-1", to_tag="tt-lk-1", sdp=sdp(a1.getsockname()[1]))
            self.assertEqual(o["result"], "ok", o)
            an = self.ng.cmd("answer", call_id="lk-1", from_tag="ft-lk-1", to_tag="tt-lk-1", sdp=sdp(b1.getsockname()[1]))
            self.assertEqual(an["result"], "ok", an)
            self.assertEqual(self.ng.cmd("query", call_id="lk-1")["result"], "ok")
            fw = dict(call_id="lk-1", from_tag="ft-lk-1", address=f"127.0.0.1:{rec.getsockname()[1]}")
            self.assertEqual(self.ng.cmd("forward", **fw)["result"], "ok")
            self.assertEqual(self.ng.cmd("unforward", **fw)["result"], "ok")
            sub = self.ng.cmd("subscribe request", call_id="lk-1", from_tag="ft-lk-1", to_tag=f"sub-{i}")
            self.assertEqual(sub["result"], "ok", sub)
            self.assertEqual(self.ng.cmd("unsubscribe", call_id="lk-1", to_tag=f"sub-{i}")["result"], "ok")
            self.assertEqual(self.ng.cmd("list")["result"], "ok")
        self.assertEqual(self.ng.cmd("delete", call_id="lk-1")["result"], "ok")
        media_round(rounds + 1)
        after = locks()
        # The untouched shard: its media loop kept relaying, no control command took its lock.
        self.assertGreater(after[loop2]["media"], before[loop2]["media"])
        self.assertEqual(after[loop2]["control"], before[loop2]["control"])
        # The call's own shard was taken (at least once per command that changes or reads it).
        self.assertGreaterEqual(after[loop1]["control"] - before[loop1]["control"], 7 * rounds)
        self.assertEqual(after[0]["control"], before[0]["control"])  # no call lives on the control loop

    def test_deadline_is_checked_when_due_and_media_keeps_a_call(self):
        # timeout_s = 1: both calls' deadlines fall due together; the silent one is deleted, the
        # one with media is checked, found active and kept (put back at last media + 1 s).
        ng_port = free_port(socket.SOCK_DGRAM)
        j = relay_server(self, ng_port, timeout_s=1)
        ng = NgClient(ng_port)
        self.addCleanup(ng.close)
        a, b = self.sock(), self.sock()
        self.assertEqual(ng.cmd("offer", call_id="silent", from_tag="f", sdp=sdp(5000))["result"], "ok")
        o = ng.cmd("offer", call_id="busy", from_tag="fb", sdp=sdp(a.getsockname()[1]))
        an = ng.cmd("answer", call_id="busy", from_tag="fb", to_tag="tb", sdp=sdp(b.getsockname()[1]))
        to_a = sdp_port(an["sdp"])
        timed_out = threading.Event()
        threading.Thread(target=lambda: (j.wait_for_log(r"call 'silent' deleted by timeout", timeout=30), timed_out.set()),
                         daemon=True).start()
        seq = 0
        while not timed_out.wait(0.02):  # RTP pacing: a packet every 20 ms until the silent call is gone
            seq += 1
            self.assertLess(seq, 1500, "the silent call never timed out")
            a.sendto(rtp(seq, ssrc=0xB), ("127.0.0.1", to_a))
            self.assertEqual(b.recvfrom(4096)[0], rtp(seq, ssrc=0xB))
        self.assertEqual(ng.cmd("query", call_id="silent")["result"], "error")
        self.assertEqual(ng.cmd("query", call_id="busy")["result"], "ok")
        self.assertNotIn("call 'busy' deleted", j.log())
        self.assertGreaterEqual(j.cmd("rtp-relay", "locks")["deadline_checks"], 2)
        self.assertEqual(sdp_port(o["sdp"]) % 2, 0)

    def test_peer_strings_are_escaped_in_the_log(self):
        # A call-id, tags and a command chosen by the peer, with newlines, a carriage return and
        # a terminal escape: none of them may start a log line of its own or reach it raw.
        evil = "ev\nFORGED 2026-01-01T00:00:00.000Z error [core] owned\r\x1b[31m"
        r = self.ng.cmd("offer", call_id=evil, from_tag="t\ntag", sdp=sdp(5000))
        self.assertEqual(r["result"], "ok", r)
        self.assertEqual(self.ng.cmd("frob\nFORGED cmd")["result"], "error")
        self.assertEqual(self.ng.cmd("forward", call_id=evil, from_tag="x\nFORGED tag", address="127.0.0.1:9")["result"], "error")
        self.assertEqual(self.ng.cmd("delete", call_id=evil)["result"], "ok")
        self.j.wait_for_log(r"call 'ev\\nFORGED .*\\r\\x1b\[31m' deleted by ng delete", timeout=10)
        log = self.j.log()
        self.assertIn(r"ng offer call-id 'ev\nFORGED 2026-01-01T00:00:00.000Z error [core] owned\r\x1b[31m'", log)
        self.assertIn(r"Unrecognized command 'frob\nFORGED cmd'", log)
        self.assertIn(r"No stream with from-tag 'x\nFORGED tag'", log)
        lines = log.splitlines()
        self.assertEqual([l for l in lines if l.startswith("FORGED")], [])
        self.assertEqual([l for l in lines if "\r" in l or "\x1b" in l], [])

    def test_rtcp_address_never_wraps_to_port_0(self):
        # A peer offering RTP on port 65535 has no RTCP port after it (65535 + 1 used to become
        # port 0): RTCP toward it is dropped as "no destination", never sent to port 0.
        b = self.sock()
        o = self.ng.cmd("offer", call_id="wrap-1", from_tag="f", sdp=sdp(65535))
        self.assertEqual(o["result"], "ok", o)
        an = self.ng.cmd("answer", call_id="wrap-1", from_tag="f", to_tag="t", sdp=sdp(b.getsockname()[1]))
        self.assertEqual(an["result"], "ok", an)
        to_b = sdp_port(o["sdp"])
        sr = bytes([0x80, 200, 0, 6]) + (0xB).to_bytes(4, "big") + bytes(20)
        b.sendto(sr, ("127.0.0.1", to_b + 1))
        wait_until(lambda: self.ng.cmd("query", call_id="wrap-1")["medias"][0]["streams"][1]["stats"]["rtcp packets"] == 1,
                   what="B's RTCP to reach the relay")
        st = self.ng.cmd("query", call_id="wrap-1")["medias"][0]["streams"][1]["stats"]
        self.assertEqual((st["dropped no destination"], st["forwarded"]), (1, 0), st)
        # A forward to port 65535 without rtcp-mux has no RTCP port either: refused, with the reason.
        r = self.ng.cmd("forward", call_id="wrap-1", from_tag="t", address="127.0.0.1:65535")
        self.assertEqual(r["result"], "error", r)
        self.assertIn("no RTCP port after 65535", r["error-reason"])
        r = self.ng.cmd("forward", call_id="wrap-1", from_tag="t", address="127.0.0.1:65535", flags=["rtcp-mux"])
        self.assertEqual(r["result"], "ok", r)
        for bad in ("127.0.0.1:4294967297", "127.0.0.1:65536", "127.0.0.1:"):
            r = self.ng.cmd("forward", call_id="wrap-1", from_tag="t", address=bad)
            self.assertEqual((r["result"], r["error-reason"]), ("error", f"Bad address '{bad}'"), bad)
        self.assertEqual(self.ng.cmd("delete", call_id="wrap-1")["result"], "ok")

    def test_control_by_event_and_admin(self):
        # Another plugin (here: the admin API's event publish) offers through the control topic.
        self.j.api("POST", "/api/v1/events", {"topic": "rtp-relay.ng", "data": {
            "command": "offer", "call-id": "ev-1", "from-tag": "f", "sdp": sdp(5000), "reply_topic": "x.reply", "id": 7}}, expect=202)
        # Events are delivered asynchronously; the admin 'ng' command is ordered after it on the loop.
        calls = self.j.cmd("rtp-relay", "ng", {"command": "list"})["calls"]
        self.assertEqual(calls, ["ev-1"])
        q = self.j.cmd("rtp-relay", "ng", {"command": "query", "call-id": "ev-1"})
        self.assertEqual(q["result"], "ok")
        self.assertEqual(self.j.cmd("rtp-relay", "ng", {"command": "delete", "call-id": "ev-1"})["result"], "ok")
        self.j.cmd("rtp-relay", "ng", "not a dict", expect=400)


if __name__ == "__main__":
    main()
