"""Calls and events under abuse (hardening, item "calls and events"), with the scriptable
call-peer plugins (tests/plugins/call-peer: call-peer-a owns "peera", call-peer-b "peerb").

- server.max_calls: call_originate beyond it is refused with JN_ERR_LIMIT, counted in
  junction_calls_refused_total, logged once per burst; the calls up are unaffected.
- Re-entrancy: two legs that answer every INFO with an INFO from inside on_call (call-peer's
  on_info = "echo") are cut off after the drain's budget (1000 events): the echo that goes over
  is refused with JN_ERR_LIMIT and counted, the admin command that set it off returns, other
  calls proceed.
- Early media under a fork with rtp-relay as the media anchor: each branch's early media
  (RINGING with media) reaches the caller as the relay's address, and real RTP from the caller
  reaches the branch whose early media it was told last (back to the previous one when that
  branch gives up), then the winner.

Call deliveries are synchronous in the core (an admin command returns once everything it set
off has been delivered), so the event logs are read once, without waiting. Relay ports: this
file's band 8700-8799; the endpoints' media sockets are the test's own (port 0 binds).
"""
import os
import re
import socket
import subprocess
import sys
import unittest

from junction_test import BUILD, JunctionTest, main, udp_socket, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "rtp-relay", "tests"))
from ngclient import rtp  # noqa: E402

A, B, RELAY = "call-peer-a", "call-peer-b", "rtp-relay"
JN_OK, JN_ERR_LIMIT = 0, -9
EVENTS_PER_DRAIN = 1000  # CallManager::kEventsPerDrain
RELAY_LO, RELAY_HI = 8700, 8799


def metric(j, name, labels):
    status, text = j.request("GET", "/metrics")
    assert status == 200, status
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    assert m, f"no {name}{{{labels}}} in /metrics"
    return float(m.group(1))


class CallsHardeningTest(JunctionTest):
    def events(self, j, plugin, type=None, leg=None):
        return [e for e in j.cmd(plugin, "events") if (type is None or e["type"] == type) and (leg is None or e["leg"] == leg)]

    def originate(self, j, to, expect=JN_OK, **kw):
        r = j.cmd(A, "originate", dict(kw, **{"from": "peera:door/1", "to": to}))
        self.assertEqual(r["status"], expect, r)
        return r["leg"]

    def send(self, j, plugin, leg, type, expect=JN_OK, **kw):
        r = j.cmd(plugin, "send", dict(kw, leg=leg, type=type))
        self.assertEqual(r["status"], expect, f"{plugin} {type} on {leg}: {r}")

    # -- server.max_calls --------------------------------------------------------------------------
    def test_max_calls_refuses_new_calls_only(self):
        j = self.server(plugins={A: {"on_offer": "answer"}, B: {"on_offer": "ring"}}, server={"max_calls": 2}).start()
        a1 = self.originate(j, "peerb:desk/1")
        a2 = self.originate(j, "peerb:desk/2")
        refusal = r"refused a call_originate from 'call-peer-a' to 'peerb:desk/3' \(JN_ERR_LIMIT\): 2 calls in progress, server.max_calls"
        self.assertEqual(self.originate(j, "peerb:desk/3", expect=JN_ERR_LIMIT), 0)
        j.wait_for_log(refusal)
        self.originate(j, "peerb:desk/4", expect=JN_ERR_LIMIT)
        self.assertEqual(metric(j, "junction_calls_refused_total", 'reason="max_calls"'), 2)
        self.assertEqual(len(re.findall(r"refused a call_originate", j.log())), 1, "one line per burst")
        offers = self.events(j, B, "offer")
        self.assertEqual(sorted(o["target"] for o in offers), ["peerb:desk/1", "peerb:desk/2"])  # nothing else offered

        # The calls up are unaffected: answered, DTMF through, listed.
        b1 = next(o["leg"] for o in offers if o["target"] == "peerb:desk/1")
        self.send(j, B, b1, "answer")
        self.assertEqual(len(self.events(j, A, "answer", leg=a1)), 1)
        self.send(j, A, a1, "dtmf", dtmf="7")
        self.assertEqual([e["dtmf"] for e in self.events(j, B, "dtmf", leg=b1)], ["7"])
        self.assertEqual(len(j.api("GET", "/api/v1/calls", expect=200)), 2)

        # One ends: below the limit again (burst over, summarised); a new call goes through,
        # the next is refused again and starts a new burst (a second line).
        self.send(j, A, a2, "end")
        j.wait_for_log(r"calls: 1 in progress, below server.max_calls \(2\) again; 2 call_originate\(s\) were refused")
        self.originate(j, "peerb:desk/5")
        self.originate(j, "peerb:desk/6", expect=JN_ERR_LIMIT)
        self.assertEqual(metric(j, "junction_calls_refused_total", 'reason="max_calls"'), 3)
        j.wait_for_log(r"refused a call_originate from 'call-peer-a' to 'peerb:desk/6'")
        self.assertEqual(len(re.findall(r"refused a call_originate", j.log())), 2)
        self.assertEqual(len(j.api("GET", "/api/v1/calls", expect=200)), 2)
        health = j.api("GET", "/api/v1/health", expect=200)
        self.assertEqual(health["status"], "ok", health)

    def test_max_calls_conf_is_checked(self):
        j = self.server(plugins={A: {}}, server={"max_calls": 10000001})
        p = subprocess.run([os.path.join(BUILD, "junction"), "--check", "--config", j.conf_path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'server.max_calls' must be between 0 and 10000000", p.stderr)

    # -- re-entrancy ---------------------------------------------------------------------------------
    def test_info_ping_pong_is_cut_off_and_other_calls_proceed(self):
        j = self.server(plugins={A: {"on_info": "echo"}, B: {"on_offer": "answer", "on_info": "echo"}}).start()
        a = self.originate(j, "peerb:desk")
        b = self.events(j, B, "offer")[0]["leg"]
        self.assertEqual(len(self.events(j, A, "answer", leg=a)), 1)

        # One INFO from outside sets off the ping-pong. Without the bound this command never
        # returns (the control loop spins in the drain).
        self.send(j, A, a, "info", info_type="ping", info_body="1")
        ea, eb = j.cmd(A, "info")["echo"], j.cmd(B, "info")["echo"]
        self.assertEqual(ea["ok"] + eb["ok"], EVENTS_PER_DRAIN, (ea, eb))
        self.assertEqual(ea["limit"] + eb["limit"], 1, (ea, eb))
        self.assertEqual(ea["other"] + eb["other"], 0, (ea, eb))
        self.assertEqual(len(self.events(j, B, "info", leg=b)) + len(self.events(j, A, "info", leg=a)), EVENTS_PER_DRAIN + 1)
        self.assertEqual(metric(j, "junction_call_events_refused_total", 'reason="events_per_drain"'), 1)
        self.assertEqual(metric(j, "junction_call_events_refused_total", 'reason="queued_per_leg"'), 0)
        j.wait_for_log(r"calls: refused an event on call jc-[0-9a-f]{32} from 'call-peer-[ab]' \(JN_ERR_LIMIT\): "
                       r"1000 events already sent from inside on_call in this drain")
        self.assertEqual(len(re.findall(r"calls: refused an event", j.log())), 1)

        # The server answers, another call goes through and carries events, the looping call
        # still ends normally.
        self.assertEqual(j.api("GET", "/api/v1/health", expect=200)["status"], "ok")
        a2 = self.originate(j, "peerb:desk/2")
        b2 = [o for o in self.events(j, B, "offer") if o["target"] == "peerb:desk/2"][0]["leg"]
        self.assertEqual(len(self.events(j, A, "answer", leg=a2)), 1)
        self.send(j, B, b2, "dtmf", dtmf="9")
        self.assertEqual([e["dtmf"] for e in self.events(j, A, "dtmf", leg=a2)], ["9"])
        self.send(j, A, a, "end")
        self.assertEqual(len(self.events(j, B, "end", leg=b)), 1)
        self.send(j, A, a2, "end")
        self.assertEqual(j.api("GET", "/api/v1/calls", expect=200), [])

    # -- early media under a fork, anchored ----------------------------------------------------------
    def relay_port(self, media):
        self.assertEqual(len(media), 1, media)
        ip, port = media[0]["addr"].rsplit(":", 1)
        self.assertEqual(ip, "127.0.0.1", media)
        self.assertTrue(RELAY_LO <= int(port) <= RELAY_HI, f"{media[0]['addr']} is not a relay address ({RELAY_LO}-{RELAY_HI})")
        return int(port)

    def sock(self):
        s = udp_socket(timeout=2.0)
        self.addCleanup(s.close)
        return s

    def rtp_through(self, src, relay_port, dst, seq0, n=3):
        """n RTP packets sent by src to the relay's relay_port all arrive at dst."""
        for i in range(n):
            src.sendto(rtp(seq0 + i, ssrc=0xE0, pt=8), ("127.0.0.1", relay_port))
        for i in range(n):
            data, _ = dst.recvfrom(2048)
            self.assertEqual(data, rtp(seq0 + i, ssrc=0xE0, pt=8))

    def test_early_media_under_a_fork_goes_through_the_anchor(self):
        if not os.path.exists(os.path.join(BUILD, "plugins", "rtp-relay.so")):
            self.skipTest("rtp-relay is not built")
        routes = [{"match": "exact", "pattern": "svc:all", "targets": ["peerb:one", "peerb:two", "peerb:three"],
                   "strategy": "fork"}]
        j = self.server(plugins={A: {"on_offer": "answer"}, B: {"on_offer": "none"},
                                 RELAY: {"ng_listen": "", "port_range": "media"}},
                        routes=routes, server={"media_anchor": RELAY})
        j.write_core(dict(j.core, ports={"media": {"min": RELAY_LO, "max": RELAY_HI}}))
        j.start()
        sa, s1, s2, s3 = self.sock(), self.sock(), self.sock(), self.sock()
        port = lambda s: s.getsockname()[1]  # noqa: E731

        a = self.originate(j, "svc:all", port=port(sa))
        offers = {o["target"]: o for o in self.events(j, B, "offer")}
        self.assertEqual(sorted(offers), ["peerb:one", "peerb:three", "peerb:two"])
        to_b = self.relay_port(offers["peerb:one"]["media"])  # both branches send to the relay
        self.assertEqual(self.relay_port(offers["peerb:two"]["media"]), to_b)
        l1, l2, l3 = (offers[t]["leg"] for t in ("peerb:one", "peerb:two", "peerb:three"))
        call_id = offers["peerb:one"]["call_id"]

        # Branch one's early media: the caller is told the relay's address, the relay sends the
        # caller's media to branch one, and branch one's media reaches the caller.
        self.send(j, B, l1, "ringing", port=port(s1))
        ringing = self.events(j, A, "ringing", leg=a)
        self.assertEqual(len(ringing), 1, ringing)
        self.assertEqual(ringing[0]["target"], "peerb:one")
        to_a = self.relay_port(ringing[0]["media"])
        self.assertNotEqual(to_a, to_b)
        self.rtp_through(sa, to_a, s1, 100)
        self.rtp_through(s1, to_b, sa, 200)

        # Branch two's early media replaces it: forwarded too, the relay now points at branch two.
        self.send(j, B, l2, "ringing", port=port(s2))
        ringing = self.events(j, A, "ringing", leg=a)
        self.assertEqual(len(ringing), 2, ringing)
        self.assertEqual(ringing[1]["target"], "peerb:two")
        self.assertEqual(self.relay_port(ringing[1]["media"]), to_a)
        sides = j.cmd(RELAY, "sessions")[call_id]["medias"][0]["streams"]
        self.assertEqual([(s["tag"], s["advertised endpoint"]["port"]) for s in sides], [("a", port(sa)), ("b", port(s2))])
        self.rtp_through(sa, to_a, s2, 300)

        # Branch two gives up: the caller hears branch one's early media again, through the relay.
        self.send(j, B, l2, "reject", code=486)
        ringing = self.events(j, A, "ringing", leg=a)
        self.assertEqual([r["target"] for r in ringing], ["peerb:one", "peerb:two", "peerb:one"])
        self.assertEqual(self.relay_port(ringing[2]["media"]), to_a)
        self.rtp_through(sa, to_a, s1, 400)

        # Branch one wins, answering from yet another address: the answer is anchored too, the
        # relay points at it, branch three (which never sent early media) ends 487.
        self.send(j, B, l1, "answer", port=port(s3))
        answers = self.events(j, A, "answer", leg=a)
        self.assertEqual(len(answers), 1, answers)
        self.assertEqual(self.relay_port(answers[0]["media"]), to_a)
        self.assertEqual([(e["code"], e["reason"]) for e in self.events(j, B, "end", leg=l3)], [(487, "answered elsewhere")])
        self.rtp_through(sa, to_a, s3, 500)
        stats = j.cmd(RELAY, "stats")["anchor"]
        # Three early media (one, two, one again) and the answer.
        self.assertEqual((stats["offers"], stats["answers"], stats["errors"]), (1, 4, 0), stats)

        self.send(j, A, a, "end")
        wait_until(lambda: j.cmd(RELAY, "sessions") == {}, what="the relay session to be deleted")


if __name__ == "__main__":
    main()
