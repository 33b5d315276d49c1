"""verto-ws call signalling through the core's routing table: browser -> browser user, browser ->
another plugin (call-peer-b) with early media, answer, DTMF, INFO, bye both ways with causes;
inbound calls from another plugin; hold/unhold, display, chat; -32002 for an unknown call."""
from verto_env import PLUGIN, VertoTest, fake_sdp, main, wait_until

PEER = {"call-peer-b": {"on_offer": "ring"}, "call-peer-a": {"on_offer": "none"}}


class Calls(VertoTest):
    def peer_events(self, name, type_=None):
        ev = self.j.cmd(name, "events")
        return [e for e in ev if type_ is None or e["type"] == type_]

    def test_browser_to_browser_user(self):
        self.start()
        a, b = self.logged_in("1001"), self.logged_in("1002")
        sdp_a = fake_sdp("aaaa")
        call_id, r = a.invite("1002", sdp=sdp_a, name="Alice")
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        self.assertEqual(r["result"]["callID"], call_id)
        inv = b.wait_request("verto.invite")
        # the caller's SDP (a header) and name (from_name) reach the B-leg through the core's OFFER
        self.assertEqual(inv["sdp"], sdp_a)
        self.assertEqual(inv["caller_id_name"], "Alice")
        self.assertEqual(inv["caller_id_number"], "verto:1001")
        self.assertNotEqual(inv["callID"], call_id)  # each leg has its own callID
        sdp_b = fake_sdp("bbbb")
        self.assertEqual(b.answer(inv["callID"], sdp_b)["result"]["message"], "CALL ANSWERED")
        ans = a.wait_request("verto.answer")
        self.assertEqual(ans["callID"], call_id)
        self.assertEqual(ans["sdp"], sdp_b)
        # DTMF and chat cross to the other leg
        self.assertIn("result", a.call("verto.info", {"dialogParams": {"callID": call_id}, "dtmf": "12#"}))
        self.assertEqual(b.wait_request("verto.info", lambda p: "dtmf" in p)["dtmf"], "12#")
        self.assertIn("result", b.call("verto.info", {"dialogParams": {"callID": inv["callID"]}, "msg": {"to": "1001", "body": "hi"}}))
        msg = a.wait_request("verto.info", lambda p: "msg" in p)
        self.assertEqual(msg["msg"]["body"], "hi")
        self.assertEqual(msg["msg"]["from"], "1002")
        # hold / unhold / toggleHold
        r = a.result("verto.modify", {"dialogParams": {"callID": call_id}, "action": "hold"})
        self.assertEqual(r["holdState"], "held")
        self.assertEqual(b.wait_request("verto.info", lambda p: "holdState" in p)["holdState"], "held")
        self.assertEqual(a.result("verto.modify", {"dialogParams": {"callID": call_id}, "action": "toggleHold"})["holdState"], "active")
        # display
        a.result("verto.display", {"dialogParams": {"callID": call_id}, "display_name": "Alice", "display_number": "1001"})
        self.assertEqual(b.wait_request("verto.display")["display_name"], "Alice")
        # bye from the callee: the caller hears NORMAL_CLEARING
        r = b.bye(inv["callID"])
        self.assertEqual(r["result"]["message"], "CALL ENDED")
        bye = a.wait_request("verto.bye")
        self.assertEqual(bye["callID"], call_id)
        self.assertEqual(bye["cause"], "NORMAL_CLEARING")
        self.assertEqual(bye["causeCode"], 16)
        self.assertEqual(a.call("verto.bye", {"dialogParams": {"callID": call_id}})["error"]["code"], -32002)

    def test_call_to_offline_user_and_unknown_route(self):
        self.start()
        a = self.logged_in("1001")
        call_id, r = a.invite("1002")
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        bye = a.wait_request("verto.bye")
        self.assertEqual(bye["callID"], call_id)
        self.assertEqual(bye["cause"], "NO_USER_RESPONSE")  # 480 offline
        call_id, r = a.invite("nosuchscheme:x")
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        bye = a.wait_request("verto.bye")
        self.assertEqual(bye["cause"], "NO_ROUTE_DESTINATION")

    def test_declined_inbound_call(self):
        self.start()
        a, b = self.logged_in("1001"), self.logged_in("1002")
        call_id, _ = a.invite("1002")
        inv = b.wait_request("verto.invite")
        b.bye(inv["callID"], cause="CALL_REJECTED")
        self.assertEqual(a.wait_request("verto.bye")["cause"], "CALL_REJECTED")

    def test_browser_to_other_plugin_early_media_answer_bye(self):
        self.start(plugins=PEER)
        a = self.logged_in("1001")
        call_id, r = a.invite("peerb:door")
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        offer = wait_until(lambda: self.peer_events("call-peer-b", "offer"), what="offer at call-peer-b")[0]
        self.assertEqual(offer["from"], "verto:1001")
        self.assertEqual(offer["media"][0]["format"], "OPUS")
        leg = offer["leg"]
        self.j.cmd("call-peer-b", "send", {"leg": leg, "type": "ringing", "media": True})
        self.assertEqual(a.wait_request("verto.media")["callID"], call_id)
        self.j.cmd("call-peer-b", "send", {"leg": leg, "type": "answer"})
        self.assertEqual(a.wait_request("verto.answer")["callID"], call_id)
        a.result("verto.info", {"dialogParams": {"callID": call_id}, "dtmf": "5"})
        dtmf = wait_until(lambda: self.peer_events("call-peer-b", "dtmf"), what="dtmf at call-peer-b")
        self.assertEqual(dtmf[0]["dtmf"], "5")
        self.j.cmd("call-peer-b", "send", {"leg": leg, "type": "info", "info_type": "open-door", "info_body": "{\"door\":1}"})
        info = a.wait_request("verto.info", lambda p: "info" in p)
        self.assertEqual(info["info"], {"type": "open-door", "body": {"door": 1}})
        self.j.cmd("call-peer-b", "send", {"leg": leg, "type": "end", "code": 486, "reason": "busy"})
        bye = a.wait_request("verto.bye")
        self.assertEqual((bye["cause"], bye["causeCode"]), ("USER_BUSY", 17))

    def test_inbound_call_from_other_plugin(self):
        self.start(plugins=PEER)
        b = self.logged_in("1002")
        r = self.j.cmd("call-peer-a", "originate", {"from": "peera:lobby", "to": "verto:1002"})
        self.assertEqual(r["status"], 0)
        inv = b.wait_request("verto.invite")
        self.assertEqual(inv["caller_id_number"], "peera:lobby")
        wait_until(lambda: self.peer_events("call-peer-a", "ringing"), what="ringing at call-peer-a")
        b.answer(inv["callID"])
        ans = wait_until(lambda: self.peer_events("call-peer-a", "answer"), what="answer at call-peer-a")[0]
        self.assertEqual(ans["media"][0]["format"], "OPUS")
        b.bye(inv["callID"])
        end = wait_until(lambda: self.peer_events("call-peer-a", "end"), what="end at call-peer-a")[0]
        self.assertEqual(end["code"], 200)

    def test_unknown_call_and_bad_params(self):
        self.start()
        a = self.logged_in("1001")
        self.assertEqual(a.call("verto.answer", {"dialogParams": {"callID": "nope"}})["error"]["code"], -32002)
        self.assertEqual(a.call("verto.info", {"dialogParams": {"callID": "nope"}, "dtmf": "1"})["error"]["code"], -32002)
        self.assertEqual(a.call("verto.invite", {"dialogParams": {}})["error"]["code"], -32602)
        self.assertEqual(a.call("verto.invite", {"sdp": "garbage", "dialogParams": {"callID": "x", "destination_number": "1"}})["error"]["code"], -32602)
        self.assertEqual(a.call("verto.nosuch", {})["error"]["code"], -32601)


class MediaSignalling(VertoTest):
    """media = "webrtc" without browsers: what the server says in SDP, and bad SDP refused cleanly."""

    def test_server_offers_its_own_sdp_and_a_bad_answer_ends_the_call(self):
        self.start(media="webrtc")
        a, b = self.logged_in("1001"), self.logged_in("1002")
        call_id, r = a.invite("1002", sdp=fake_sdp("aaaa"))
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        inv = b.wait_request("verto.invite")
        # the callee is offered the server's media (ICE-lite, our port on 127.0.0.1, the caller's Opus/PCMU)
        self.assertIn("a=ice-lite", inv["sdp"])
        self.assertIn("typ host", inv["sdp"])
        self.assertIn("opus/48000", inv["sdp"])
        self.assertNotIn("ice-ufrag:aaaa", inv["sdp"])
        r = b.call("verto.answer", {"sdp": "v=0\r\n", "dialogParams": {"callID": inv["callID"]}})
        self.assertEqual(r["error"]["code"], -32602)
        bye = a.wait_request("verto.bye")
        self.assertEqual((bye["callID"], bye["cause"]), (call_id, "INCOMPATIBLE_DESTINATION"))
        self.j.wait_for_log(r"bad input .* verto.answer")

    def test_an_offer_that_is_not_webrtc_is_refused(self):
        self.start(media="webrtc")
        a = self.logged_in("1001")
        r = a.call("verto.invite", {"sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
                                    "dialogParams": {"callID": "c1", "destination_number": "1002"}})
        self.assertEqual(r["error"]["code"], -32602)


if __name__ == "__main__":
    main()
