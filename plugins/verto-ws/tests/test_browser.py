"""verto-ws with a real browser: headless Chromium (fake media devices) runs the suite's Verto
client (tests/lib/verto/verto_client.js) on a page served by the test, driven over the DevTools
protocol (tests/lib/cdp.py). Login (credential-less first, password, token, wrong password),
subscribe/broadcast between two pages, a call between two browser users with Chromium's own
offer/answer SDP (accepted by the other side's RTCPeerConnection), DTMF, chat, hold, bye from
each side, page reload -> verto.attach, a second tab -> verto.punt."""
import json
import os
import unittest

from verto_env import PLUGIN, VertoTest, main

import cdp

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lib", "verto")


@unittest.skipUnless(cdp.have_chromium(), "chromium is not installed")
class Browser(VertoTest):
    @classmethod
    def setUpClass(cls):
        cls.web = cdp.StaticServer(PAGE_DIR)
        cls.browser = cdp.Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.web.close()

    def setUp(self):
        super().setUp()
        self.pages = []

    def tearDown(self):
        for p in self.pages:
            p.close()
        self.browser.pages = []
        super().tearDown()

    def start(self, **kw):
        kw.setdefault("allowed_origins", [self.web.origin])
        kw.setdefault("allow_no_origin", True)
        return super().start(**kw)

    def page(self, name="v", sessid=None):
        p = self.browser.new_page(self.web.origin + "/page.html")
        self.pages.append(p)
        p.wait_for("window.pageReady")
        url = f"ws://127.0.0.1:{self.port}/verto"
        opts = json.dumps({"sessid": sessid} if sessid else {})
        p.evaluate(f"window.{name} = new VertoClient({json.dumps(url)}, {opts}); {name}.connect().then(() => true)")
        return p

    def login(self, p, user, name="v"):
        ready = p.evaluate(f"{name}.loginLikeVertoJs({json.dumps(user)}, {json.dumps(self.users[user])})")
        self.assertEqual(ready["reattached_sessions"], [])

    def test_login_variants(self):
        self.start()
        p = self.page()
        # credential-less first (-32000), then the password
        self.login(p, "1001")
        # wrong password, then a token from the admin API, on fresh sockets
        p2 = self.page("w")
        r = p2.evaluate("w.login('1002', 'wrong')")
        self.assertEqual(r["error"]["code"], -32001)
        tok = self.j.cmd(PLUGIN, "token-issue", {"user": "1002"})["token"]
        r = p2.evaluate(f"w.login('1002', '', {json.dumps(tok)})")
        self.assertEqual(r["result"]["message"], "logged in")
        self.assertEqual(r["result"]["sessid"], p2.evaluate("w.sessid"))
        self.j.wait_for_log(r"login 1002 \(token\)")

    def test_page_from_another_origin_is_refused(self):
        self.start(allowed_origins=["https://elsewhere.example"], allow_no_origin=False)
        p = self.browser.new_page(self.web.origin + "/page.html")
        self.pages.append(p)
        p.wait_for("window.pageReady")
        with self.assertRaises(cdp.CdpError):
            p.evaluate(f"new VertoClient('ws://127.0.0.1:{self.port}/verto').connect()")
        self.j.wait_for_log(r"origin 'http://127\.0\.0\.1:\d+' is not in allowed_origins")

    def test_subscribe_and_broadcast(self):
        self.start()
        a, b = self.page("v"), self.page("v")
        self.login(a, "1001")
        self.login(b, "1002")
        r = a.evaluate("v.result('verto.subscribe', {eventChannel: ['chat.lobby', 'forbidden']})")
        self.assertEqual(r["subscribedChannels"], ["chat.lobby"])
        self.assertEqual(r["unauthorizedChannels"], ["forbidden"])
        b.evaluate("v.result('verto.broadcast', {eventChannel: 'chat.lobby', data: {text: 'from b'}})")
        ev = a.evaluate("v.waitFor('verto.event', p => p.eventChannel === 'chat.lobby')")
        self.assertEqual(ev["data"], {"text": "from b"})
        self.assertEqual(ev["userid"], "1002")

    def call_between(self, a, b):
        r = a.evaluate("v.invite('1002').then(r => (window.cid = r.callID, r))")
        self.assertEqual(r["message"], "CALL CREATED")
        inv = b.evaluate("v.waitFor('verto.invite')")
        self.assertIn("m=audio", inv["sdp"])
        self.assertIn("m=video", inv["sdp"])
        b.evaluate(f"window.cid = {json.dumps(inv['callID'])}; v.answer(cid)")
        a.evaluate("v.waitFor('verto.answer')")
        # Chromium accepted the other Chromium's SDP as it came through the server
        a.wait_for("v.calls.get(cid).remoteSet === true && v.calls.get(cid).state === 'answered'")
        b.wait_for("v.calls.get(cid).remoteSet === true")
        # only loopback candidates ever cross (Chromium gathers none there): no check leaves loopback
        for sdp in (inv["sdp"], a.evaluate("v.calls.get(cid).remote")):
            for line in sdp.split("\r\n"):
                if line.startswith("a=candidate:"):
                    self.assertIn(line.split(" ")[4], ("127.0.0.1", "::1"))
        return inv

    def test_call_between_two_browser_users(self):
        self.start()
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        a.evaluate("v.dtmf(cid, '123')")
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.dtmf)")["dtmf"], "123")
        b.evaluate("v.chat(cid, '1001', 'hello')")
        self.assertEqual(a.evaluate("v.waitFor('verto.info', p => p.msg)")["msg"]["body"], "hello")
        self.assertEqual(a.evaluate("v.hold(cid, 'hold')")["holdState"], "held")
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.holdState)")["holdState"], "held")
        self.assertEqual(a.evaluate("v.hold(cid, 'unhold')")["holdState"], "active")
        # bye from the caller this time
        self.assertEqual(a.evaluate("v.hangup(cid)")["message"], "CALL ENDED")
        self.assertEqual(b.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")
        # and a second call, hung up by the callee
        self.call_between(a, b)
        b.evaluate("v.hangup(cid)")
        self.assertEqual(a.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    def test_plugin_hot_reload_during_a_browser_call(self):
        self.start()
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        r = self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.assertGreaterEqual(r["generation"], 1)
        self.j.wait_for_log(r"restored 2 connection\(s\), 2 session\(s\), 2 call\(s\)")
        # the pages' sockets never closed, and the call goes on through the new instance
        self.assertFalse(a.evaluate("v.closed") or b.evaluate("v.closed"))
        a.evaluate("v.dtmf(cid, '4')")
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.dtmf)")["dtmf"], "4")
        b.evaluate("v.hangup(cid)")
        self.assertEqual(a.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    def test_reload_attaches_and_second_tab_punts(self):
        self.start(detach_timeout_ms=60000)
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        sessid, cid = a.evaluate("v.sessid"), a.evaluate("cid")
        a.reload()  # the page (and its socket) goes; the server keeps the call
        a.wait_for("window.pageReady")
        self.j.wait_for_log(r"session .* of 1001 detached")
        a.evaluate(f"window.v = new VertoClient('ws://127.0.0.1:{self.port}/verto', {{sessid: {json.dumps(sessid)}}}); v.connect().then(() => true)")
        ready = a.evaluate(f"v.loginLikeVertoJs('1001', {json.dumps(self.users['1001'])})")
        self.assertEqual(ready["reattached_sessions"], [cid])
        a.wait_for(f"v.calls.get({json.dumps(cid)}) && v.calls.get({json.dumps(cid)}).state === 'answered'", what="verto.attach answered")
        self.j.wait_for_log(r"re-attached by 1001")
        # a second tab with the same sessid punts the first
        t = self.page("v2", sessid=sessid)
        t.evaluate(f"v2.loginLikeVertoJs('1001', {json.dumps(self.users['1001'])})")
        a.evaluate("v.waitFor('verto.punt')")
        a.evaluate("v.waitClosed()")
        # the call moved to the new tab: a bye from the far side reaches it
        b.evaluate("v.hangup(cid)")
        self.assertEqual(t.evaluate("v2.waitFor('verto.bye')")["callID"], cid)


if __name__ == "__main__":
    main()
