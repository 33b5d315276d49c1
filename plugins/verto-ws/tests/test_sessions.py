"""verto-ws sessions: a lost socket detaches the session (answered calls kept, unanswered ended),
a reconnect with the same sessid gets verto.attach for each answered call and clientReady with
them, the detach timeout ends a call nobody re-attached; hot reload keeps sockets and calls."""
from verto_env import PLUGIN, VertoTest, main, wait_until


class Sessions(VertoTest):
    def answered_call(self):
        a, b = self.logged_in("1001"), self.logged_in("1002")
        call_id, _ = a.invite("1002")
        inv = b.wait_request("verto.invite")
        b.answer(inv["callID"])
        a.wait_request("verto.answer")
        return a, b, call_id, inv

    def test_reconnect_attaches_answered_call(self):
        self.start(detach_timeout_ms=60000)
        a, b, call_id, inv = self.answered_call()
        a.close()
        self.j.wait_for_log(r"session .* of 1001 detached")
        # the far side is not told anything: the call is up
        self.assertFalse(b.has_request("verto.bye"))
        a2 = self.client(sessid=a.sessid)
        self.assertEqual(a2.call("login", {})["error"]["code"], -32000)  # verto.js: credential-less first
        self.assertIn("result", a2.login("1001", "pw1001"))
        att = a2.wait_request("verto.attach")
        self.assertEqual(att["callID"], call_id)
        self.assertTrue(att["sdp"].startswith("v=0"))  # the far side's SDP, for the fresh PeerConnection
        ready = a2.wait_request("verto.clientReady")
        self.assertEqual(ready["reattached_sessions"], [call_id])
        a2.result("verto.attach", {"dialogParams": {"callID": call_id}, "sdp": "v=0\r\n"})
        # the call still works end to end
        a2.result("verto.info", {"dialogParams": {"callID": call_id}, "dtmf": "7"})
        self.assertEqual(b.wait_request("verto.info", lambda p: "dtmf" in p)["dtmf"], "7")
        b.bye(inv["callID"])
        self.assertEqual(a2.wait_request("verto.bye")["callID"], call_id)

    def test_detach_timeout_ends_the_call(self):
        self.start(detach_timeout_ms=300)
        a, b, call_id, inv = self.answered_call()
        a.close()
        bye = b.wait_request("verto.bye")
        self.assertEqual(bye["callID"], inv["callID"])
        self.assertEqual(bye["cause"], "NO_ANSWER")  # 408 detach-timeout
        self.j.wait_for_log(r"not re-attached within detach_timeout_ms")

    def test_unanswered_call_ends_with_its_socket(self):
        self.start()
        a, b = self.logged_in("1001"), self.logged_in("1002")
        a.invite("1002")
        inv = b.wait_request("verto.invite")
        a.close()
        self.assertEqual(b.wait_request("verto.bye")["callID"], inv["callID"])

    def test_hot_reload_keeps_socket_session_and_call(self):
        self.start(detach_timeout_ms=60000)
        a, b, call_id, inv = self.answered_call()
        a.result("verto.subscribe", {"eventChannel": "chat.room"})
        r = self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.assertGreaterEqual(r["generation"], 1)
        self.j.wait_for_log(r"restored 2 connection\(s\), 2 session\(s\), 2 call\(s\)")
        # same sockets, same subscriptions, same call
        b.result("verto.broadcast", {"eventChannel": "chat.room", "data": "after reload"})
        self.assertEqual(a.wait_request("verto.event")["data"], "after reload")
        a.result("verto.info", {"dialogParams": {"callID": call_id}, "dtmf": "9"})
        self.assertEqual(b.wait_request("verto.info", lambda p: "dtmf" in p)["dtmf"], "9")
        a.bye(call_id)
        self.assertEqual(b.wait_request("verto.bye")["callID"], inv["callID"])


if __name__ == "__main__":
    main()
