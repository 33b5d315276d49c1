"""ABI checks: a plugin of another major, a .so without the info symbol, and a plugin built
against an older minor (shorter vtable). None may crash the core or disturb a loaded plugin."""
import os
import struct

from junction_test import JunctionTest, free_port, udp_socket, main


class AbiTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{self.port}", "echo": True}},
                             extra_plugin_confs={"abi-major2": {}, "abi-noinfo": {},
                                                 "abi-old-minor": {"listen": f"127.0.0.1:{free_port()}"}})
        self.j.start()
        self.peer = udp_socket()

    def echo_roundtrip(self, port, n=50):
        for i in range(n):
            self.peer.sendto(struct.pack(">Q", i) + b"abi", ("127.0.0.1", port))
        got = [self.peer.recvfrom(2048)[0] for _ in range(n)]
        self.assertEqual(sorted(struct.unpack(">Q", g[:8])[0] for g in got), list(range(n)))

    def test_major_mismatch_refused_naming_both_versions(self):
        self.echo_roundtrip(self.port)
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-major2"})
        self.assertEqual(status, 422, body)
        self.assertIn("ABI 2.0", body["error"])
        self.assertIn("ABI 1.", body["error"])
        self.assertNotIn("factory was called", self.j.log())
        self.assertEqual([p["name"] for p in self.j.api("GET", "/api/v1/plugins", expect=200)], ["udp-counter"])
        self.echo_roundtrip(self.port)  # the loaded plugin never noticed

    def test_missing_info_symbol_refused(self):
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-noinfo"})
        self.assertEqual(status, 422, body)
        self.assertIn("no junction_plugin_info symbol", body["error"])
        self.assertNotIn("factory was called", self.j.log())
        self.echo_roundtrip(self.port)

    def test_older_minor_with_short_vtable_loads_and_serves(self):
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-old-minor"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["abi"], "1.0")
        old_port = int(open(os.path.join(self.j.dir, "plugins", "abi-old-minor.toml")).read().split(":")[-1].strip().strip('"'))
        self.echo_roundtrip(old_port)
        # Hooks past its vtable (on_admin) must not be called: the core answers for it.
        status, body = self.j.request("POST", "/api/v1/plugins/abi-old-minor/cmd/stats", {})
        self.assertEqual(status, 404, body)
        # Reload without save/restore hooks: works, nothing to carry over.
        status, body = self.j.request("POST", "/api/v1/plugins/abi-old-minor/reload")
        self.assertEqual(status, 200, body)
        self.echo_roundtrip(old_port)
        self.echo_roundtrip(self.port)

    def test_server_refuses_to_start_with_a_refused_plugin_enabled(self):
        j = self.server(plugins={"abi-major2": {}})
        j.start(expect_ready=False)
        self.assertEqual(j.wait_exit(), 1)
        self.assertIn("ABI 2.0", j.log())
        self.assertIn("refusing to start", j.log())
        j.proc = None


if __name__ == "__main__":
    main()
