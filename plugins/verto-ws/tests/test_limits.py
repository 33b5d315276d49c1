"""verto-ws transport limits and bad input: Origin allow-list (403), oversize messages, bad JSON,
unknown methods, batches, the request rate limit, the login timeout, verto.ping after idle; bad
input on one socket disturbs no other call."""
from verto_env import PLUGIN, VertoTest, main, wait_until
from verto.verto_client import VertoClient


class Limits(VertoTest):
    def test_origin_allow_list(self):
        self.start(allowed_origins=["https://app.example"], allow_no_origin=False)
        with self.assertRaises(ConnectionError) as e:
            VertoClient(self.port, headers={"Origin": "https://evil.example"})
        self.assertIn("403", str(e.exception))
        self.j.wait_for_log(r"origin 'https://evil.example' is not in allowed_origins")
        with self.assertRaises(ConnectionError):
            VertoClient(self.port)  # no Origin, not allowed by this conf
        c = self.client(headers={"Origin": "https://app.example"})
        self.assertIn("result", c.call("echo", {"x": 1}))

    def test_bad_input_is_answered_and_disturbs_no_call(self):
        self.start(max_message=4096)
        a, b = self.logged_in("1001"), self.logged_in("1002")
        call_id, _ = a.invite("1002")
        inv = b.wait_request("verto.invite")
        b.answer(inv["callID"])
        a.wait_request("verto.answer")
        m = self.logged_in("1001")
        m.send("{not json")
        m.send('{"jsonrpc":"2.0","method":"verto.subscribe","params":{"eventChannel":"' + "x" * 5000 + '"},"id":99}')
        m.send(b"\x00\x01binary")
        errs = wait_until(lambda: [x for x in list(m.raw) if "error" in x][:3] if sum("error" in x for x in list(m.raw)) >= 3 else None,
                          what="three error replies")
        self.assertTrue(all(e["error"]["code"] == -32600 for e in errs))
        self.assertEqual(m.call("verto.nope", {})["error"]["code"], -32601)
        # a batch: one reply array, in order, ours sessid-stamped
        m.send([{"jsonrpc": "2.0", "method": "echo", "params": {"n": 1}, "id": "a"},
                {"jsonrpc": "2.0", "method": "verto.nope", "id": "b"}])
        self.assertEqual(m.reply("a")["result"]["n"], 1)
        self.assertEqual(m.reply("b")["error"]["code"], -32601)
        # the call of the other two is untouched
        a.result("verto.info", {"dialogParams": {"callID": call_id}, "dtmf": "1"})
        self.assertEqual(b.wait_request("verto.info", lambda p: "dtmf" in p)["dtmf"], "1")
        self.assertFalse(a.has_request("verto.bye") or b.has_request("verto.bye"))

    def test_rate_limit(self):
        self.start(rate_per_s=1, rate_burst=5)
        c = self.logged_in("1001")
        codes = []
        for i in range(10):
            r = c.call("echo", {"i": i})
            codes.append(r.get("error", {}).get("code", 0))
        self.assertIn(-32003, codes)
        self.assertEqual(codes[0], 0)

    def test_bad_limit_closes(self):
        self.start(bad_limit=3)
        c = self.logged_in("1001")
        for _ in range(3):
            c.send("garbage")
        c.wait_closed()
        self.j.wait_for_log(r"3 bad messages \(bad_limit\)")

    def test_login_timeout_and_idle_ping(self):
        # login_timeout_ms leaves a loaded machine time to log `idle` in; `lazy` never logs in.
        self.start(login_timeout_ms=1500, idle_ping_ms=200, idle_timeout_ms=100000)
        lazy = self.client()
        idle = self.logged_in("1001")
        lazy.wait_closed()
        self.j.wait_for_log(r"no login within login_timeout_ms")
        ping = idle.wait_request("verto.ping")
        self.assertIn("serno", ping)
        self.assertFalse(idle.closed)


if __name__ == "__main__":
    main()
