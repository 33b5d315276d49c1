"""rtp-relay's conf keys are type- and range-checked: a bad value refuses the start with
file:line, the key and the reason, instead of being read as something else (a negative
max_sessions used to mean "unlimited", a negative timeout_s "never"). The media ports come from
the core's named range (port_range); the deprecated port_min/port_max still work.
Ports: 22000-22099 (test_anchor's band, which these short-lived servers never bind)."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, main  # noqa: E402
from ngclient import NgClient, sdp, sdp_port  # noqa: E402

BASE = {"ng_listen": "", "port_min": 22000, "port_max": 22099}


class ConfTest(JunctionTest):
    def test_bad_values_are_refused_with_file_line_key_and_reason(self):
        cases = [({"max_sessions": -1}, "max_sessions", "must be an integer from 1 to 4194304, not -1"),
                 ({"max_sessions": 0}, "max_sessions", "not 0"),
                 ({"max_sessions": 1.5}, "max_sessions", "must be an integer"),
                 ({"timeout_s": -5}, "timeout_s", r"must be 0 \(never\) or seconds up to 86400, not -5"),
                 ({"ssrc_change_limit": -1}, "ssrc_change_limit", "not -1"),
                 ({"rcvbuf": -1}, "rcvbuf", "not -1"),
                 ({"port_min": "30000"}, "port_min", "must be an integer"),
                 ({"port_min": 80}, "port_min", "not 80"),
                 ({"port_max": 70000}, "port_max", "not 70000"),
                 ({"port_min": 22000, "port_max": 22001}, "port_max", r"at least port_min \+ 3"),
                 ({"publish": "yes"}, "publish", "must be true or false"),
                 ({"latching": "sometimes"}, "latching", "must be one of symmetric, strict, off"),
                 ({"interface": "localhost"}, "interface", "must be an IP address"),
                 ({"control_topic": 7}, "control_topic", "must be a string"),
                 ({"max_session": 5}, "max_session", "unknown key"),
                 ({"port_range": "media"}, "port_range", "cannot be combined with the deprecated port_min/port_max")]
        for extra, key, words in cases:
            with self.subTest(key=key, value=extra):
                j = self.server(plugins={"rtp-relay": dict(BASE, **extra)})
                j.start(expect_ready=False)
                rc = j.wait_exit(30)
                j.proc = None  # exited on purpose: nothing for tearDown to check
                self.assertEqual(rc, 1, j.log())
                self.assertRegex(j.log(), r"rtp-relay\.toml:\d+: " + key + ": .*" + words)
                self.assertNotIn("junction ready", j.log())

    def test_a_bad_value_in_a_reload_keeps_the_running_instance(self):
        j = self.server(plugins={"rtp-relay": BASE}).start()
        j.write_plugin_conf("rtp-relay", dict(BASE, max_sessions=-3))
        status, body = j.request("POST", "/api/v1/plugins/rtp-relay/reload")
        self.assertEqual(status, 422, body)
        self.assertIn("max_sessions: must be an integer from 1 to 4194304, not -3", body["error"])
        j.wait_for_log(r"rtp-relay\.toml:\d+: max_sessions: must be an integer from 1 to 4194304, not -3")
        self.assertEqual(j.api("GET", "/api/v1/plugins/rtp-relay", expect=200)["generation"], 0)
        self.assertEqual(j.cmd("rtp-relay", "stats")["reloads"], 0)

    def test_good_values_at_the_edges_start(self):
        j = self.server(plugins={"rtp-relay": dict(BASE, max_sessions=1, timeout_s=0, ssrc_change_limit=0, rcvbuf=0,
                                                   port_min=65530, port_max=65535)}).start()
        self.assertEqual(j.cmd("rtp-relay", "stats")["sessions"], 0)

    def test_a_port_range_the_core_lacks_refuses_the_start(self):
        j = self.server(plugins={"rtp-relay": {"ng_listen": "", "port_range": "rtp"}})
        j.write_core(dict(j.core, ports={"media": {"min": 22000, "max": 22099}}))
        j.start(expect_ready=False)
        rc = j.wait_exit(30)
        j.proc = None  # exited on purpose
        self.assertNotEqual(rc, 0, j.log())
        self.assertIn("port_range 'rtp': the core has no such range (add [ports.rtp] min/max to junction.toml)", j.log())
        self.assertNotIn("junction ready", j.log())

    def test_the_default_range_missing_falls_back_with_a_warning(self):
        # A core conf from before port ranges (no [ports.media]) and no port_range in the relay's
        # conf: it still starts, on its own default range, and says how to move on.
        j = self.server(plugins={"rtp-relay": {"ng_listen": ""}}).start()
        j.wait_for_log(r"the core has no \[ports\.media\] range; using the relay's own ports 30000-39999 \(deprecated")
        self.assertEqual(j.cmd("rtp-relay", "stats")["port_range"], None)

    def test_deprecated_port_min_max_still_allocate(self):
        ng_port = free_port(socket.SOCK_DGRAM)
        j = self.server(plugins={"rtp-relay": dict(BASE, ng_listen=f"127.0.0.1:{ng_port}")}).start()
        j.wait_for_log(r"port_min/port_max are deprecated")
        ng = NgClient(ng_port)
        self.addCleanup(ng.close)
        o = ng.cmd("offer", call_id="old", from_tag="f", sdp=sdp(5000))
        self.assertEqual(o["result"], "ok", o)
        self.assertTrue(22000 <= sdp_port(o["sdp"]) <= 22098, o["sdp"])
        self.assertEqual(j.cmd("rtp-relay", "stats")["port_range"], None)


if __name__ == "__main__":
    main()
