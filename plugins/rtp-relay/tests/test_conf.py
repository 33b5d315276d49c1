"""rtp-relay's conf keys are type- and range-checked: a bad value refuses the start with
file:line, the key and the reason, instead of being read as something else (a negative
max_sessions used to mean "unlimited", a negative timeout_s "never")."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, main  # noqa: E402

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
                 ({"max_session": 5}, "max_session", "unknown key")]
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


if __name__ == "__main__":
    main()
