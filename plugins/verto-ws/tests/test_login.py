"""verto-ws login: passwords (PBKDF2 in the store), tokens from the admin API, -32000 / -32001,
clientReady, sessid rules (another user's sessid refused, the same user's punts the old socket)."""
from verto_env import PLUGIN, VertoTest, main


class Login(VertoTest):
    def test_password_login_and_client_ready(self):
        self.start()
        c = self.client()
        r = c.login("1001@example.com", "pw1001")
        self.assertEqual(r["result"]["message"], "logged in")
        self.assertEqual(r["result"]["sessid"], c.sessid)
        ready = c.wait_request("verto.clientReady")
        self.assertEqual(ready["reattached_sessions"], [])
        # the store holds a KDF record, never the password
        users = self.j.cmd(PLUGIN, "users")["users"]
        self.assertEqual(sorted(u["user"] for u in users), ["1001", "1002"])
        self.assertTrue(all("hash" not in u for u in users))
        self.assertIn(r"login 1001 (password)", self.j.wait_for_log(r"login 1001 \(password\)"))

    def test_wrong_password_unknown_user_and_no_credentials(self):
        self.start()
        c = self.client()
        r = c.call("login", {})  # credential-less first login of a reconnecting client
        self.assertEqual(r["error"]["code"], -32000)
        self.assertEqual(c.login("1001", "nope")["error"]["code"], -32001)
        self.assertEqual(c.login("9999", "pw")["error"]["code"], -32001)
        # nothing but login before a login
        self.assertEqual(c.call("verto.subscribe", {"eventChannel": "chat.x"})["error"]["code"], -32000)
        # the socket is still usable: the right password works
        self.assertEqual(c.login("1001", "pw1001")["result"]["message"], "logged in")

    def test_token_login_and_revoke(self):
        self.start()
        tok = self.j.cmd(PLUGIN, "token-issue", {"user": "1002", "ttl_s": 3600})
        self.assertEqual(tok["user"], "1002")
        c = self.client()
        r = c.login("1002", "x", token=tok["token"])
        self.assertEqual(r["result"]["message"], "logged in")
        # a token does not log in as somebody else
        self.assertEqual(self.client().login("1001", "x", token=tok["token"])["error"]["code"], -32001)
        self.assertEqual(self.j.cmd(PLUGIN, "token-revoke", {"token": tok["token"]})["revoked"], 1)
        self.assertEqual(self.client().login("1002", "x", token=tok["token"])["error"]["code"], -32001)
        self.assertEqual(self.client().login("", "", token="not-a-token")["error"]["code"], -32001)
        # deleting a user revokes its tokens and its password
        tok2 = self.j.cmd(PLUGIN, "token-issue", {"user": "1002"})
        self.assertEqual(self.j.cmd(PLUGIN, "user-del", {"user": "1002"})["tokens_revoked"], 1)
        self.assertEqual(self.client().login("", "", token=tok2["token"])["error"]["code"], -32001)
        self.assertEqual(self.client().login("1002", "pw1002")["error"]["code"], -32001)

    def test_user_managed_with_junction_ctl(self):
        self.start()
        rc, out, err = self.j.ctl("cmd", PLUGIN, "user-add", '{"user":"carol","password":"s3cret!"}')
        self.assertEqual(rc, 0, err)
        c = self.client()
        self.assertEqual(c.login("carol", "s3cret!")["result"]["message"], "logged in")

    def test_sessid_of_another_user_is_in_use(self):
        self.start()
        a = self.logged_in("1001")
        b = self.client(sessid=a.sessid)
        r = b.login("1002", "pw1002")
        self.assertEqual(r["error"]["code"], -32001)
        self.assertIn("Session in use", r["error"]["message"])
        # the holder is undisturbed
        self.assertIn("result", a.call("echo", {"x": 1}))

    def test_second_socket_with_live_sessid_punts_the_first(self):
        self.start()
        a = self.logged_in("1001")
        b = self.client(sessid=a.sessid)
        b.login_ok("1001", "pw1001")
        a.wait_request("verto.punt")
        a.wait_closed()
        self.assertIn("result", b.call("echo", {}))


class Wss(VertoTest):
    def test_login_over_wss_with_the_configured_certificate(self):
        import os
        import shutil
        import socket
        import ssl
        import sys
        import tempfile
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "integration"))
        from test_tls_endpoints import make_pki
        pki = tempfile.mkdtemp(prefix="jn-pki-")
        self.addCleanup(shutil.rmtree, pki, True)
        make_pki(pki)
        self.start(tls_cert=os.path.join(pki, "server.pem"), tls_key=os.path.join(pki, "server.key"))
        self.j.wait_for_log(r"verto listening on wss://")
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
        tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10), server_hostname="127.0.0.1")
        real = socket.create_connection
        socket.create_connection = lambda *a, **k: tls  # WsClient opens its socket this way
        try:
            c = self.client()
        finally:
            socket.create_connection = real
        self.assertEqual(c.login("1001", "pw1001")["result"]["message"], "logged in")
        # plain ws:// on the same port is not served
        with self.assertRaises((ConnectionError, OSError)):
            self.client().call("echo", {})


class TokenExpiry(VertoTest):
    def test_an_expired_token_is_refused(self):
        from verto_env import wait_until
        self.start()
        tok = self.j.cmd(PLUGIN, "token-issue", {"user": "1001", "ttl_s": 2})
        self.assertEqual(self.client().login("", "", token=tok["token"])["result"]["message"], "logged in")
        # no event marks the expiry: poll until the clock passes it (at most the ttl)
        wait_until(lambda: "error" in self.client().login("", "", token=tok["token"]), timeout=10, interval=0.2,
                   what="the token to expire")
        self.j.wait_for_log(r"login refused for .*: token expired")


class ShippedConf(VertoTest):
    def test_shipped_conf_and_sample_load(self):
        """conf/plugins/verto-ws.toml and the plugin's sample parse and serve (port swapped for a free one)."""
        import os
        import re
        from verto_env import free_port
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
        for path in ("conf/plugins/verto-ws.toml", "plugins/verto-ws/verto-ws.toml"):
            with open(os.path.join(root, path)) as f:
                text = f.read()
            self.assertIn('listen = "127.0.0.1:8082"', text)
            port = free_port()
            j = self.server(plugins={PLUGIN: re.sub(r'127\.0\.0\.1:8082', f"127.0.0.1:{port}", text)})
            j.start()
            j.wait_for_log(rf"verto listening on ws://127\.0\.0\.1:{port}/verto")
            self.port = port
            c = self.client(headers={"Origin": "http://127.0.0.1"})
            self.assertEqual(c.call("login", {})["error"]["code"], -32000)
            c.close()
            j.stop()


if __name__ == "__main__":
    main()
