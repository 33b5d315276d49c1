"""gb28181 registration redirect (注册重定向, GB/T 28181-2022): after a successful digest the
platform answers 302 with Contact sip:<server A id>@ip:port and Expires; the device registers at
server A (a second junction); when A refuses it, it comes back and is redirected again. The
policies: longest ID prefix (no match: it registers here) and least-loaded."""
from gb_env import DEV1, DEV2, NAME, PASSWORD, PLATFORM, GbTest, free_port, plugin_conf
from junction_test import main

SERVER_A = "34020000002000000002"
SERVER_B = "34020000002000000003"


class RedirectToServerATest(GbTest):
    def setUp(self):
        self.a_port = free_port()
        self.conf_over = {"redirect": {"enabled": True, "expires_s": 600, "servers": [
            {"id": SERVER_A, "address": f"127.0.0.1:{self.a_port}", "prefixes": ["3402000000"]}]}}
        super().setUp()
        conf_a = plugin_conf(self.a_port, sip_id=SERVER_A)
        self.a = self.server(plugins={NAME: conf_a})
        self.a.start()
        self.a.wait_for_log(r"gb28181: platform 34020000002000000002 .* listening")

    def test_302_to_server_a_then_back_after_a_refuses(self):
        self.provision(DEV1)
        self.a.cmd(NAME, "add", {"id": DEV1, "password": PASSWORD}, expect=201)
        d = self.device(DEV1)
        self.assertEqual(self.sim.run(d.register()), 200)
        ev = d.wait("redirected")
        self.assertEqual(ev["contact"], f"sip:{SERVER_A}@127.0.0.1:{self.a_port}")
        self.assertEqual(ev["expires"], "600")
        self.j.wait_for_log(rf"REGISTER {DEV1} from .* -> 302 to {SERVER_A}@127\.0\.0\.1:{self.a_port}")
        self.a.wait_for_log(rf"REGISTER {DEV1} from .* -> 200 \(new")
        self.assertTrue(self.a.cmd(NAME, "show", {"id": DEV1})["online"])
        self.assertFalse(self.show(DEV1)["online"])  # the redirect server keeps no registration
        self.assertEqual(self.metric("gb_redirects_total"), 1)
        # Server A stops accepting the device: its refresh there is refused ...
        self.a.cmd(NAME, "delete", {"id": DEV1})
        self.assertEqual(self.sim.run(d.register()), 403)
        # ... so it starts over at the redirect server (the document's step 7) and is sent to A again.
        self.a.cmd(NAME, "add", {"id": DEV1, "password": PASSWORD}, expect=201)
        mark = d.mark()
        d.platform_id, d.server = PLATFORM, ("127.0.0.1", self.port)
        self.assertEqual(self.sim.run(d.register()), 200)
        self.assertEqual(d.wait("redirected", since=mark)["contact"], f"sip:{SERVER_A}@127.0.0.1:{self.a_port}")
        self.assertEqual(self.metric("gb_redirects_total"), 2)
        self.assertEqual(self.cmd("redirects")["servers"][0]["devices"], 1)

    def test_no_redirect_without_a_good_digest(self):
        self.provision(DEV1)
        d = self.device(DEV1, password="wrong")
        self.assertEqual(self.sim.run(d.register()), 403)
        self.assertEqual(d.find("redirected"), [])
        self.assertIsNone(self.metric("gb_redirects_total"))

    def test_prefix_without_match_registers_here(self):
        other = "11010000001320000001"
        self.provision(other)
        d = self.device(other)
        self.assertEqual(self.sim.run(d.register()), 200)
        self.assertEqual(d.find("redirected"), [])
        self.assertTrue(self.show(other)["online"])


class LeastLoadedTest(GbTest):
    conf_over = {"redirect": {"enabled": True, "policy": "least_loaded", "servers": [
        {"id": SERVER_A, "address": "127.0.0.1:5070"}, {"id": SERVER_B, "address": "127.0.0.1:5080"}]}}

    def test_devices_are_spread_over_the_servers(self):
        ids = [f"340200000013200000{i:02d}" for i in range(1, 7)]
        targets = []
        for i in ids:
            self.provision(i)
            d = self.device(i, follow_redirect=False)
            self.assertEqual(self.sim.run(d.register()), 302)
            resp = [m for m in d.received if not m.is_request and m.status == 302][-1]
            targets.append(resp.get("contact"))
        self.assertEqual(sorted(set(targets)), [f"<sip:{SERVER_A}@127.0.0.1:5070>", f"<sip:{SERVER_B}@127.0.0.1:5080>"])
        loads = {s["server"]: s["devices"] for s in self.cmd("redirects")["servers"]}
        self.assertEqual(loads, {SERVER_A: 3, SERVER_B: 3})


if __name__ == "__main__":
    main()
