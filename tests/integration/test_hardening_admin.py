"""The admin API's start-time guards: a configured token shorter than 32 characters, and a
listener off loopback without admin.allow_remote, are refused with file:line and the reason;
with allow_remote the server starts and warns that the API has no TLS."""
import re

from junction_test import JunctionTest, free_port, main


class AdminGuardTest(JunctionTest):
    def refused(self, j, pattern):
        j.start(expect_ready=False)
        rc = j.wait_exit()
        j.proc = None
        self.assertEqual(rc, 2, j.log())
        self.assertRegex(j.log(), pattern)
        self.assertNotIn("junction ready", j.log())

    def with_admin(self, **admin):
        j = self.server(plugins={})
        j.core["admin"].update(admin)
        j.write_core(j.core)
        return j

    def test_short_token_refused(self):
        j = self.with_admin(token="s" * 31)
        self.refused(j, r"junction\.toml:\d+: admin\.token is 31 characters, at least 32 are required")

    def test_token_of_32_accepted(self):
        j = self.with_admin(token="s" * 32)
        j.start()
        status, _ = j.request("GET", "/api/v1/health", token="s" * 32)
        self.assertEqual(status, 200)

    def test_any_address_refused_without_allow_remote(self):
        for host in ("0.0.0.0", "*", "[::]", "192.0.2.1"):
            with self.subTest(host=host):
                j = self.with_admin(listen=f"{host}:{free_port()}")
                self.refused(j, r"junction\.toml:\d+: admin\.listen '%s:\d+' is not a loopback address; the admin API has no TLS"
                             % re.escape(host))

    def test_loopback_forms_accepted(self):
        for host in ("127.0.0.2", "localhost"):
            with self.subTest(host=host):
                j = self.with_admin(listen=f"{host}:{free_port()}")
                j.start()
                self.assertNotIn("NO TLS", j.log())
                j.stop()
                j.proc = None

    def test_allow_remote_starts_and_warns(self):
        port = free_port()
        j = self.with_admin(listen=f"0.0.0.0:{port}", allow_remote=True)
        j.start()
        self.assertRegex(j.log(), r"warn .*admin API listens on 0\.0\.0\.0:%d, off loopback .*NO TLS" % port)
        j.admin_port = port
        self.assertEqual(j.api("GET", "/api/v1/health", expect=200)["status"], "ok")

    def test_allow_remote_must_be_a_boolean(self):
        j = self.with_admin(allow_remote="yes")
        self.refused(j, r"junction\.toml:\d+: 'admin\.allow_remote' must be true or false, not string")


if __name__ == "__main__":
    main()
