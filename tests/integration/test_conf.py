"""Bad configuration: the server refuses to start, exits non-zero, and says file:line and why."""
import os
import re

from junction_test import JunctionTest, Junction, free_port, main


class ConfTest(JunctionTest):
    def refused(self, j, pattern):
        j.start(expect_ready=False)
        rc = j.wait_exit()
        j.proc = None
        self.assertEqual(rc, 2, j.log())
        self.assertRegex(j.log(), pattern)
        self.assertNotIn("junction ready", j.log())
        return j.log()

    def test_unknown_key_in_core_conf(self):
        j = self.server(plugins={}, server={"log_levle": "debug"})
        self.refused(j, r"junction\.toml:\d+: unknown key 'server\.log_levle'")

    def test_wrong_type(self):
        j = self.server(plugins={}, server={"stop_timeout_ms": "soon"})
        self.refused(j, r"junction\.toml:\d+: 'server\.stop_timeout_ms' must be an integer, not string")

    def test_unknown_log_level(self):
        j = self.server(plugins={}, server={"log_level": "loud"})
        self.refused(j, r"unknown log level 'loud'")

    def test_missing_plugin_conf(self):
        j = self.server(plugins={}, enabled=["no-such-plugin"])
        self.refused(j, r"no-such-plugin\.toml: plugin 'no-such-plugin' is enabled but its conf file is missing")

    def test_missing_plugin_library(self):
        j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{free_port()}", "library": "/nonexistent/x.so"}})
        self.refused(j, r"library /nonexistent/x\.so not found")

    def test_duplicate_port(self):
        port = free_port()
        j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{port}"}})
        j.core["admin"]["listen"] = f"127.0.0.1:{port}"
        j.write_core(j.core)
        self.refused(j, r"udp-counter\.toml:1 \(listen\): duplicate listen address 127\.0\.0\.1:%d \(also used at .*admin\.listen" % port)

    def test_toml_syntax_error_has_line_and_column(self):
        j = self.server(plugins={})
        with open(j.conf_path, "a") as f:
            f.write("\n[server\n")
        self.refused(j, r"junction\.toml:\d+:\d+: ")

    def test_media_anchor_must_be_enabled(self):
        j = self.server(plugins={}, server={"media_anchor": "rtp-relay"})
        self.refused(j, r"junction\.toml:\d+: server\.media_anchor names 'rtp-relay', which is not in plugins\.enabled")

    def test_bad_route(self):
        j = self.server(plugins={}, routes=[{"match": "regex", "pattern": "([", "targets": ["x:y"]}])
        self.refused(j, r"junction\.toml:\d+")

    def test_unknown_strategy(self):
        j = self.server(plugins={}, routes=[{"match": "exact", "pattern": "a:b", "targets": ["x:y"], "strategy": "random"}])
        self.refused(j, r"junction\.toml:\d+: unknown strategy 'random'")

    def test_plugin_refuses_its_own_bad_key(self):
        j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{free_port()}", "ehco": True}})
        j.start(expect_ready=False)
        self.assertEqual(j.wait_exit(), 1)
        j.proc = None
        self.assertRegex(j.log(), r"udp-counter\.toml:\d+: ehco: unknown key")

    def test_check_mode_accepts_good_conf(self):
        import subprocess
        from junction_test import BUILD
        j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{free_port()}"}})
        p = subprocess.run([os.path.join(BUILD, "junction"), "--check", "--config", j.conf_path], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stdout)

    def test_sighup_with_bad_conf_keeps_running_conf(self):
        port = free_port()
        j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{port}"}})
        j.start()
        j.core["server"]["bogus"] = 1
        j.write_core(j.core)
        n = len(j.lines)
        j.proc.send_signal(1)  # SIGHUP
        j.wait_for_log(r"SIGHUP: configuration not applied.*unknown key 'server\.bogus'", start=n)
        self.assertEqual(j.api("GET", "/api/v1/health", expect=200)["status"], "ok")
        # A good change is applied: a new static route appears.
        del j.core["server"]["bogus"]
        j.core["routes"] = [{"match": "exact", "pattern": "a:b", "targets": ["c:d"]}]
        j.write_core(j.core)
        n = len(j.lines)
        j.proc.send_signal(1)
        j.wait_for_log(r"configuration re-read", start=n)
        routes = j.api("GET", "/api/v1/routes", expect=200)
        self.assertIn("a:b", str(routes))


if __name__ == "__main__":
    main()
