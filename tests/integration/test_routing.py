"""Routing and the neutral call model, end to end, with two real plugins.

call-peer-a (scheme "peera") and call-peer-b (scheme "peerb") are one scriptable test plugin
(tests/plugins/call-peer) built twice. The test drives them with admin commands: `originate`
and `send` put events into the core, `events` lists what their on_call received.

Call deliveries are synchronous in the core (an admin command returns after everything it
triggered has been delivered), so most checks read the event log once. Only what a core timer
triggers (hunt timeout, ring timeout) is waited for, with wait_until().
"""
import json
import os
import time
import unittest

from junction_test import JunctionTest, main, wait_until

A, B = "call-peer-a", "call-peer-b"
JN_OK, JN_ERR_NOT_FOUND, JN_ERR_EXISTS, JN_ERR_STATE = 0, -2, -3, -7

STATIC_ROUTES = [
    {"match": "exact", "pattern": "svc:help", "targets": ["peerb:desk"]},
    {"match": "prefix", "pattern": "room:", "targets": ["peerb:room/${rest}"]},
    {"match": "regex", "pattern": r"^tel:\+?(\d+)$", "targets": ["peerb:num/$1"]},
]


def b_conf(on_offer="ring", overrides=None, extra=""):
    """call-peer-b's conf as TOML text (per-target overrides need quoted keys)."""
    text = f'on_offer = "{on_offer}"\n' + extra
    if overrides:
        text += "[on_offer_for]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in overrides.items())
    return text


class RoutingTest(JunctionTest):
    # -- helpers ------------------------------------------------------------------------------
    def start(self, routes=None, a=None, b=None, server=None):
        j = self.server(plugins={A: a if a is not None else {"on_offer": "answer"},
                                 B: b if b is not None else b_conf("ring")},
                        routes=routes, server=server)
        return j.start()

    def events(self, j, plugin, leg=None, type=None):
        evs = j.cmd(plugin, "events")
        self.assertIsInstance(evs, list)
        return [e for e in evs if (leg is None or e["leg"] == leg) and (type is None or e["type"] == type)]

    def types(self, j, plugin, leg):
        return [e["type"] for e in self.events(j, plugin, leg)]

    def originate(self, j, to, frm="peera:caller", expect=JN_OK):
        r = j.cmd(A, "originate", {"from": frm, "to": to})
        self.assertEqual(r["status"], expect, f"originate to {to}: {r}")
        if expect == JN_OK:
            self.assertNotEqual(r["leg"], 0)
        return r["leg"]

    def send(self, j, plugin, leg, type, expect=JN_OK, **kw):
        r = j.cmd(plugin, "send", dict(kw, leg=leg, type=type))
        self.assertEqual(r["status"], expect, f"{plugin} send {type} on {leg}: {r}")
        return r

    def the_offer(self, j, target=None):
        """The one OFFER call-peer-b received (for `target`, if given); returns it."""
        offers = [e for e in self.events(j, B, type="offer") if target is None or e["target"] == target]
        self.assertEqual(len(offers), 1, f"offers to {target}: {offers}")
        return offers[0]

    def calls(self, j):
        return j.api("GET", "/api/v1/calls", expect=200)

    def cdrs(self, j):
        path = os.path.join(j.dir, "var", "cdr.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def lookup(self, j, uri, expect=200):
        return j.api("GET", f"/api/v1/routes/lookup?uri={uri.replace('+', '%2B')}", expect=expect)

    def assert_pcma(self, media, addr):
        self.assertIsInstance(media, list)
        self.assertEqual(len(media), 1)
        m = media[0]
        self.assertEqual((m["kind"], m["format"], m["payload_type"], m["clock_rate"]), ("audio", "PCMA", 8, 8000))
        self.assertEqual(m["addr"], addr)

    # -- routing ------------------------------------------------------------------------------
    def test_static_routes_lookup_and_namespaces(self):
        j = self.start(routes=STATIC_ROUTES)
        table = j.api("GET", "/api/v1/routes", expect=200)
        self.assertEqual([(r["match"], r["pattern"], r["targets"]) for r in table["static"]],
                         [(r["match"], r["pattern"], r["targets"]) for r in STATIC_ROUTES])
        self.assertEqual(table["namespaces"], {"peera": A, "peerb": B})
        self.assertEqual(table["dynamic"], [])

        # The lookup endpoint: rewritten target, owning plugin, and which rule matched.
        for uri, target, via in [("svc:help", "peerb:desk", "exact"), ("room:101", "peerb:room/101", "prefix"),
                                 ("room:", "peerb:room/", "prefix"), ("tel:+4930123", "peerb:num/4930123", "regex"),
                                 ("tel:77", "peerb:num/77", "regex"), ("peerb:x", "peerb:x", "namespace 'peerb'")]:
            r = self.lookup(j, uri)
            self.assertEqual(r["strategy"], "single", uri)
            self.assertEqual(r["targets"], [{"uri": target, "plugin": B}], uri)
            self.assertIn(via, r["via"], uri)
        self.assertEqual(self.lookup(j, "peera:me")["targets"], [{"uri": "peera:me", "plugin": A}])
        for uri in ["svc:helpdesk", "tel:+49x", "nope:1", "svc", "rooms:1"]:
            self.lookup(j, uri, expect=404)
        j.api("GET", "/api/v1/routes/lookup", expect=400)

        # Calls: the B-leg's OFFER carries the dialled URI in `to` and the rewritten one in `target`.
        for n, (to, target) in enumerate([("svc:help", "peerb:desk"), ("room:101", "peerb:room/101"),
                                          ("tel:+4930123", "peerb:num/4930123"), ("peerb:x", "peerb:x")]):
            j.cmd(B, "clear")
            a = self.originate(j, to, frm=f"peera:door/{n}")
            offer = self.the_offer(j)
            self.assertEqual((offer["to"], offer["target"], offer["from"]), (to, target, f"peera:door/{n}"))
            self.assertEqual(offer["cookie"], 0)  # a new leg: the plugin has not set one yet
            self.assertTrue(offer["call_id"])
            self.assert_pcma(offer["media"], f"127.0.0.1:{30000 + n + 1}")
            self.assertEqual(self.types(j, A, a), ["ringing"])
            self.send(j, A, a, "end")
            self.assertEqual([e["code"] for e in self.events(j, B, offer["leg"], "end")], [487])

        # Nothing routes: refused at originate, nobody is offered anything, no call exists.
        j.cmd(B, "clear")
        for to in ["nope:1", "svc:helpdesk", "tel:+49x"]:
            r = j.cmd(A, "originate", {"from": "peera:caller", "to": to})
            self.assertEqual((r["status"], r["leg"]), (JN_ERR_NOT_FOUND, 0), to)
        self.assertEqual(self.events(j, B), [])
        self.assertEqual(self.calls(j), [])

    def test_dynamic_routes(self):
        j = self.start(routes=STATIC_ROUTES, b=b_conf("answer", extra='register = ["dev:boot"]\n'))
        # Registered at start.
        r = self.lookup(j, "dev:boot")
        self.assertEqual((r["targets"], r["via"]), ([{"uri": "dev:boot", "plugin": B}], "dynamic"))
        self.lookup(j, "dev:door/7", expect=404)
        self.originate(j, "dev:door/7", expect=JN_ERR_NOT_FOUND)

        # Registered by a command, then used by a call.
        r = j.cmd(B, "register", {"uri": "dev:door/7"})
        self.assertEqual(r["status"], JN_OK)
        self.assertNotEqual(r["route"], 0)
        self.assertEqual(j.cmd(B, "register", {"uri": "dev:door/7"})["route"], r["route"])  # idempotent
        self.assertEqual(j.cmd(A, "register", {"uri": "dev:door/7"})["status"], JN_ERR_EXISTS)  # B holds it
        dynamic = j.api("GET", "/api/v1/routes", expect=200)["dynamic"]
        self.assertEqual(sorted((d["uri"], d["plugin"]) for d in dynamic), [("dev:boot", B), ("dev:door/7", B)])
        self.assertEqual(self.lookup(j, "dev:door/7")["targets"], [{"uri": "dev:door/7", "plugin": B}])
        a = self.originate(j, "dev:door/7")
        offer = self.the_offer(j)
        self.assertEqual((offer["to"], offer["target"]), ("dev:door/7", "dev:door/7"))
        self.assertEqual(self.types(j, A, a), ["ringing", "answer"])
        self.send(j, A, a, "end")

        # A static exact route wins over a dynamic one for the same URI.
        self.assertEqual(j.cmd(A, "register", {"uri": "svc:help"})["status"], JN_OK)
        self.assertEqual(self.lookup(j, "svc:help")["targets"], [{"uri": "peerb:desk", "plugin": B}])

        # Removed: nothing routes it any more.
        self.assertEqual(j.cmd(B, "unregister", {"uri": "dev:door/7"})["status"], JN_OK)
        self.lookup(j, "dev:door/7", expect=404)
        self.originate(j, "dev:door/7", expect=JN_ERR_NOT_FOUND)
        dynamic = j.api("GET", "/api/v1/routes", expect=200)["dynamic"]
        self.assertEqual(sorted((d["uri"], d["plugin"]) for d in dynamic), [("dev:boot", B), ("svc:help", A)])

    def test_unknown_conf_key_is_refused(self):
        j = self.server(plugins={A: {"on_offer": "answer"}, B: {"on_offer": "ring", "bogus": 1}})
        j.start(expect_ready=False)
        j.wait_for_log(r"call-peer-b\.toml:\d+: bogus: unknown key")
        j.wait_for_log(r"refusing to start: plugin call-peer-b")
        rc = j.wait_exit(30)
        j.proc.stderr.close()
        j.proc = None
        self.assertNotEqual(rc, 0)

    # -- a call across the two plugins ------------------------------------------------------------
    def test_full_call_both_directions_and_cdr(self):
        j = self.start(routes=STATIC_ROUTES)
        a = self.originate(j, "svc:help", frm="peera:door/1")
        a_cookie = j.cmd(A, "legs")[0]["cookie"]
        offer = self.the_offer(j)
        b = offer["leg"]
        call_id = offer["call_id"]
        self.assert_pcma(offer["media"], "127.0.0.1:30001")
        # B's on_offer = ring: A already heard RINGING (synchronous delivery), not more.
        ringing = self.events(j, A, a)
        self.assertEqual([e["type"] for e in ringing], ["ringing"])
        self.assertEqual((ringing[0]["call_id"], ringing[0]["cookie"]), (call_id, a_cookie))

        calls = self.calls(j)
        self.assertEqual(len(calls), 1)
        c = calls[0]
        self.assertEqual((c["id"], c["from"], c["to"], c["state"], c["strategy"]),
                         (call_id, "peera:door/1", "svc:help", "ringing", "single"))
        self.assertEqual(sorted((l["role"], l["plugin"], l["id"]) for l in c["legs"]), [("a", A, a), ("b", B, b)])
        self.assertEqual([l.get("target") for l in c["legs"] if l["role"] == "b"], ["peerb:desk"])

        # The A-leg may not answer; B answers with its media.
        self.send(j, A, a, "answer", expect=JN_ERR_STATE)
        self.send(j, B, b, "answer")
        ans = self.events(j, A, a, "answer")
        self.assertEqual(len(ans), 1)
        self.assert_pcma(ans[0]["media"], "127.0.0.1:40000")
        self.assertEqual((ans[0]["target"], ans[0]["call_id"], ans[0]["cookie"]), ("peerb:desk", call_id, a_cookie))
        self.assertEqual(self.calls(j)[0]["state"], "answered")
        self.send(j, B, b, "reject", code=486, expect=JN_ERR_STATE)  # too late

        # DTMF and INFO, both ways.
        self.send(j, A, a, "dtmf", dtmf="123#")
        self.send(j, B, b, "dtmf", dtmf="5")
        self.send(j, A, a, "info", info_type="open-door", info_body={"door": 1, "who": "screen"})
        self.send(j, B, b, "info", info_type="open-door", info_body={"opened": True})
        b_evs = self.events(j, B, b)
        b_cookie = b_evs[-1]["cookie"]
        self.assertNotEqual(b_cookie, 0)  # set by the plugin on the OFFER, carried after it
        self.assertEqual([e["type"] for e in b_evs], ["offer", "dtmf", "info"])
        self.assertEqual(b_evs[1]["dtmf"], "123#")
        self.assertEqual(b_evs[2]["info_type"], "open-door")
        self.assertEqual(json.loads(b_evs[2]["info_body"]), {"door": 1, "who": "screen"})
        a_evs = self.events(j, A, a)
        self.assertEqual([e["type"] for e in a_evs], ["ringing", "answer", "dtmf", "info"])
        self.assertEqual(a_evs[2]["dtmf"], "5")
        self.assertEqual((a_evs[3]["info_type"], json.loads(a_evs[3]["info_body"])), ("open-door", {"opened": True}))
        self.assertEqual({e["call_id"] for e in a_evs + b_evs}, {call_id})
        self.assertEqual({e["cookie"] for e in a_evs}, {a_cookie})
        self.assertEqual({e["cookie"] for e in b_evs[1:]}, {b_cookie})

        # END by A: B hears END 200, both legs are dead, the call is gone, a CDR is written.
        self.send(j, A, a, "end")
        end = self.events(j, B, b, "end")
        self.assertEqual([(e["code"], e["cookie"]) for e in end], [(200, b_cookie)])
        self.send(j, A, a, "dtmf", dtmf="1", expect=JN_ERR_NOT_FOUND)
        self.send(j, B, b, "end", expect=JN_ERR_NOT_FOUND)
        self.assertEqual(self.calls(j), [])
        cdrs = self.cdrs(j)
        self.assertEqual(len(cdrs), 1)
        self.assertEqual((cdrs[0]["call_id"], cdrs[0]["from"], cdrs[0]["to"], cdrs[0]["answered_by"], cdrs[0]["code"],
                          cdrs[0]["ended_by"]), (call_id, "peera:door/1", "svc:help", "peerb:desk", 200, "a"))

        # A second call, ended by B (its code travels to A and into the CDR).
        j.cmd(A, "clear")
        j.cmd(B, "clear")
        a2 = self.originate(j, "room:12")
        self.assertNotEqual(a2, a)
        b2 = self.the_offer(j)["leg"]
        self.send(j, B, b2, "answer")
        self.assertEqual(self.types(j, A, a2), ["ringing", "answer"])
        self.assertEqual(len(self.calls(j)), 1)
        self.send(j, B, b2, "end", code=200, reason="bye")
        end = self.events(j, A, a2, "end")
        self.assertEqual([(e["code"], e["reason"]) for e in end], [(200, "bye")])
        self.send(j, A, a2, "end", expect=JN_ERR_NOT_FOUND)
        self.assertEqual(self.calls(j), [])
        cdrs = self.cdrs(j)
        self.assertEqual(len(cdrs), 2)
        self.assertEqual((cdrs[1]["to"], cdrs[1]["answered_by"], cdrs[1]["code"], cdrs[1]["ended_by"]),
                         ("room:12", "peerb:room/12", 200, "b"))
        self.assertNotEqual(cdrs[1]["call_id"], cdrs[0]["call_id"])

    # -- strategies ---------------------------------------------------------------------------------
    def test_fork(self):
        routes = [{"match": "exact", "pattern": "grp:all", "targets": ["peerb:h1", "peerb:h2"], "strategy": "fork"},
                  {"match": "exact", "pattern": "grp:race", "targets": ["peerb:f1", "peerb:f2"], "strategy": "fork"},
                  {"match": "exact", "pattern": "grp:busy", "targets": ["peerb:r1", "peerb:r2"], "strategy": "fork"}]
        j = self.start(routes=routes, b=b_conf("ring", {"peerb:f1": "answer", "peerb:f2": "answer",
                                                        "peerb:r1": "reject", "peerb:r2": "reject"}))
        r = self.lookup(j, "grp:all")
        self.assertEqual(r["strategy"], "fork")
        self.assertEqual([t["uri"] for t in r["targets"]], ["peerb:h1", "peerb:h2"])

        # Both ring; the one answered wins, the other hears END 487; A hears one RINGING, one ANSWER.
        a = self.originate(j, "grp:all")
        h1, h2 = self.the_offer(j, "peerb:h1"), self.the_offer(j, "peerb:h2")
        self.assertEqual(h1["call_id"], h2["call_id"])
        self.assertNotEqual(h1["leg"], h2["leg"])
        self.assertEqual(self.types(j, A, a), ["ringing"])
        self.assertEqual(len(self.calls(j)[0]["legs"]), 3)
        self.send(j, B, h2["leg"], "answer")
        self.assertEqual([(e["code"], e["reason"]) for e in self.events(j, B, h1["leg"], "end")],
                         [(487, "answered elsewhere")])
        self.send(j, B, h1["leg"], "answer", expect=JN_ERR_NOT_FOUND)  # dead now
        ans = self.events(j, A, a, "answer")
        self.assertEqual([e["target"] for e in ans], ["peerb:h2"])
        self.assertEqual(self.types(j, A, a), ["ringing", "answer"])
        self.assertEqual(len(self.calls(j)[0]["legs"]), 2)
        self.send(j, A, a, "end")
        self.assertEqual([e["code"] for e in self.events(j, B, h2["leg"], "end")], [200])
        self.assertEqual(self.events(j, B, h1["leg"], "end")[0]["code"], 487)  # still only one END
        self.assertEqual(len(self.events(j, B, h1["leg"], "end")), 1)

        # Both answer at once (synchronously, in offer order): the first answer wins.
        j.cmd(B, "clear")
        a = self.originate(j, "grp:race")
        f1, f2 = self.the_offer(j, "peerb:f1"), self.the_offer(j, "peerb:f2")
        self.assertEqual([e["target"] for e in self.events(j, A, a, "answer")], ["peerb:f1"])
        self.assertEqual(self.types(j, B, f2["leg"]), ["offer", "end"])
        self.assertEqual(self.events(j, B, f2["leg"], "end")[0]["code"], 487)
        self.assertEqual(self.types(j, B, f1["leg"]), ["offer"])
        self.send(j, B, f1["leg"], "end")
        self.assertEqual([e["code"] for e in self.events(j, A, a, "end")], [200])

        # Everyone rejects: A gets REJECT 486, nothing is left over.
        a = self.originate(j, "grp:busy")
        rej = self.events(j, A, a, "reject")
        self.assertEqual([e["code"] for e in rej], [486])
        self.assertEqual(self.types(j, A, a), ["reject"])
        self.assertEqual(self.calls(j), [])
        self.send(j, A, a, "end", expect=JN_ERR_NOT_FOUND)
        cdrs = self.cdrs(j)
        self.assertEqual([(c["to"], c["answered_by"], c["code"]) for c in cdrs],
                         [("grp:all", "peerb:h2", 200), ("grp:race", "peerb:f1", 200), ("grp:busy", None, 486)])

    def test_hunt(self):
        routes = [{"match": "exact", "pattern": "grp:hunt", "targets": ["peerb:hu1", "peerb:hu2"],
                   "strategy": "hunt", "timeout_ms": 300},
                  {"match": "exact", "pattern": "grp:next", "targets": ["peerb:hr1", "peerb:hr2"],
                   "strategy": "hunt", "timeout_ms": 300}]
        j = self.start(routes=routes, b=b_conf("none", {"peerb:hu2": "answer", "peerb:hr1": "reject",
                                                        "peerb:hr2": "answer"}))
        t0 = time.monotonic()
        a = self.originate(j, "grp:hunt")
        first = self.the_offer(j)
        self.assertEqual(first["target"], "peerb:hu1")  # only the first target so far
        self.assertEqual(self.events(j, A, a), [])
        second = wait_until(lambda: [e for e in self.events(j, B, type="offer") if e["target"] == "peerb:hu2"],
                            what="the offer to the second hunt target")[0]
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual(second["call_id"], first["call_id"])
        # The first target's leg ended (408) before the second was offered.
        b_log = self.events(j, B)
        self.assertEqual([(e["leg"], e["type"]) for e in b_log],
                         [(first["leg"], "offer"), (first["leg"], "end"), (second["leg"], "offer")])
        self.assertEqual(b_log[1]["code"], 408)
        # The second answered at once.
        self.assertEqual([e["target"] for e in self.events(j, A, a, "answer")], ["peerb:hu2"])
        self.assertEqual(self.types(j, A, a), ["ringing", "answer"])
        self.send(j, A, a, "end")
        self.assertEqual(self.types(j, B, first["leg"]), ["offer", "end"])  # nothing more for the loser

        # A target that rejects moves the hunt on at once, without waiting for the timeout.
        j.cmd(B, "clear")
        a = self.originate(j, "grp:next")
        self.assertEqual([e["target"] for e in self.events(j, B, type="offer")], ["peerb:hr1", "peerb:hr2"])
        self.assertEqual([e["target"] for e in self.events(j, A, a, "answer")], ["peerb:hr2"])
        self.send(j, A, a, "end")
        cdrs = self.cdrs(j)
        self.assertEqual([(c["to"], c["answered_by"], c["code"]) for c in cdrs],
                         [("grp:hunt", "peerb:hu2", 200), ("grp:next", "peerb:hr2", 200)])

    def test_ring_timeout(self):
        j = self.start(b=b_conf("ring"), server={"ring_timeout_ms": 1500})
        t0 = time.monotonic()
        a = self.originate(j, "peerb:nobody")
        b = self.the_offer(j)["leg"]
        self.assertEqual(self.types(j, A, a), ["ringing"])
        rej = wait_until(lambda: self.events(j, A, a, "reject"), timeout=5, what="REJECT 408")
        self.assertGreaterEqual(time.monotonic() - t0, 1.4)
        self.assertEqual([(e["code"], e["reason"]) for e in rej], [(408, "ring timeout")])
        self.assertEqual([(e["type"], e["code"]) for e in self.events(j, B, b)], [("offer", 0), ("end", 408)])
        self.assertEqual(self.calls(j), [])
        self.send(j, B, b, "answer", expect=JN_ERR_NOT_FOUND)
        cdrs = self.cdrs(j)
        self.assertEqual([(c["answered_by"], c["code"], c["ended_by"]) for c in cdrs], [(None, 408, "timeout")])

    # -- plugin lifecycle during calls ----------------------------------------------------------------
    def test_hot_reload_during_ringing_call(self):
        j = self.start(b=b_conf("ring", extra='register = ["dev:kept"]\n'))
        a = self.originate(j, "peerb:desk")
        b = self.the_offer(j)["leg"]
        self.assertEqual(j.cmd(B, "info")["generation"], 0)

        r = j.api("POST", f"/api/v1/plugins/{B}/reload", expect=200)
        self.assertEqual(r.get("generation"), 1, r)
        info = j.cmd(B, "info")
        self.assertEqual((info["generation"], info["restored"]), (1, True))  # a new instance answers now
        self.assertEqual(list(info["routes"]), ["dev:kept"])
        self.assertEqual([e["leg"] for e in self.events(j, B, type="offer")], [b])  # its log survived
        self.assertEqual(self.lookup(j, "dev:kept")["targets"], [{"uri": "dev:kept", "plugin": B}])
        self.assertEqual(self.calls(j)[0]["state"], "ringing")

        # The new instance answers with the handle the old one was given: the call survived.
        self.send(j, B, b, "answer")
        self.assertEqual(self.types(j, A, a), ["ringing", "answer"])
        self.send(j, A, a, "dtmf", dtmf="9")
        self.assertEqual([e["dtmf"] for e in self.events(j, B, b, "dtmf")], ["9"])
        self.send(j, A, a, "end")
        self.assertEqual([e["code"] for e in self.events(j, B, b, "end")], [200])
        self.assertEqual([(c["answered_by"], c["code"]) for c in self.cdrs(j)], [("peerb:desk", 200)])

    def test_unload_mid_call(self):
        j = self.start(routes=STATIC_ROUTES, b=b_conf("answer", {"peerb:slow": "ring"}, 'register = ["dev:gone"]\n'))
        up = self.originate(j, "svc:help")
        self.assertEqual(self.types(j, A, up), ["ringing", "answer"])
        ringing = self.originate(j, "peerb:slow")
        self.assertEqual(self.types(j, A, ringing), ["ringing"])
        self.assertEqual(len(self.calls(j)), 2)

        j.api("POST", f"/api/v1/plugins/{B}/unload", expect=200)
        # The answered call ends with END 503; the ringing one is rejected with 503.
        self.assertEqual([e["code"] for e in self.events(j, A, up, "end")], [503])
        self.assertEqual([e["code"] for e in self.events(j, A, ringing, "reject")], [503])
        self.assertEqual(self.calls(j), [])
        self.send(j, A, up, "end", expect=JN_ERR_NOT_FOUND)
        self.assertEqual(sorted((c["to"], c["code"], c["ended_by"]) for c in self.cdrs(j)),
                         [("peerb:slow", 503, "system"), ("svc:help", 503, "system")])
        # Its namespace and dynamic routes went with it.
        table = j.api("GET", "/api/v1/routes", expect=200)
        self.assertEqual((table["namespaces"], table["dynamic"]), ({"peera": A}, []))
        for uri in ["peerb:x", "svc:help", "dev:gone"]:
            self.lookup(j, uri, expect=404)
            self.originate(j, uri, expect=JN_ERR_NOT_FOUND)

    # A plugin going away must not be offered the rest of a hunt (it was, before the core asked
    # CallEndpoints::available): an offer to a departing or unloaded plugin fails like REJECT 503.
    def test_unload_during_hunt_to_the_same_plugin(self):
        routes = [{"match": "exact", "pattern": "grp:h", "targets": ["peerb:u1", "peerb:u2"], "strategy": "hunt"}]
        j = self.start(routes=routes, b=b_conf("answer", {"peerb:u1": "ring"}))
        a = self.originate(j, "grp:h")
        self.assertEqual(self.types(j, A, a), ["ringing"])
        j.api("POST", f"/api/v1/plugins/{B}/unload", expect=200)
        self.assertEqual(self.types(j, A, a), ["ringing", "reject"])
        self.assertEqual(self.calls(j), [])

    def test_hunt_to_an_unloaded_plugin(self):
        routes = [{"match": "exact", "pattern": "grp:h", "targets": ["peera:w1", "peerb:w2"], "strategy": "hunt"}]
        j = self.start(routes=routes, a=b_conf("ring"), b=b_conf("answer"))
        a = self.originate(j, "grp:h")
        w1 = [e for e in self.events(j, A, type="offer") if e["target"] == "peera:w1"][0]["leg"]
        j.api("POST", f"/api/v1/plugins/{B}/unload", expect=200)
        self.send(j, A, w1, "reject", code=480)
        # The next target's plugin is gone: A should be told now, not at the ring timeout (10 s).
        rej = wait_until(lambda: self.events(j, A, a, "reject"), timeout=1.0, what="REJECT at A")
        self.assertEqual(rej[0]["code"], 503)


if __name__ == "__main__":
    main()
