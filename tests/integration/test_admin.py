"""Admin API and `junction ctl`: every endpoint with good and bad input."""
import json
import os
import stat

from junction_test import JunctionTest, Junction, TOKEN, free_port, main


class AdminTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{self.port}"}})
        self.j.start()

    def test_every_endpoint_needs_the_token(self):
        paths = [("GET", "/api/v1/health"), ("GET", "/api/v1/plugins"), ("POST", "/api/v1/plugins"),
                 ("POST", "/api/v1/plugins/udp-counter/reload"), ("POST", "/api/v1/plugins/udp-counter/unload"),
                 ("GET", "/api/v1/routes"), ("GET", "/api/v1/calls"), ("GET", "/metrics"),
                 ("POST", "/api/v1/plugins/udp-counter/cmd/stats"), ("GET", "/api/v1/nothing")]
        for method, path in paths:
            for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
                status, body = self.j.request(method, path, {"name": "udp-counter"}, token=token)
                self.assertEqual(status, 401, (method, path, token, body))
                self.assertIn("error", body)
            status, body = self.j.request(method, path, raw_body="{}", token=None, headers={"Authorization": "Basic " + TOKEN})
            self.assertEqual(status, 401)
        # Nothing was unloaded or reloaded by the refused requests.
        plugins = self.j.api("GET", "/api/v1/plugins", expect=200)
        self.assertEqual(plugins[0]["generation"], 0)
        self.assertIn(f"junction_admin_unauthorized_total {len(paths) * 5}\n", self.j.api("GET", "/metrics", expect=200))

    def test_health(self):
        h = self.j.api("GET", "/api/v1/health", expect=200)
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["plugins"], 1)
        status, body = self.j.request("DELETE", "/api/v1/health")
        self.assertEqual(status, 405)

    def test_plugins_list_load_unload_reload(self):
        plugins = self.j.api("GET", "/api/v1/plugins", expect=200)
        self.assertEqual([p["name"] for p in plugins], ["udp-counter"])
        self.assertEqual(self.j.api("GET", "/api/v1/plugins/udp-counter", expect=200)["state_schema"], 1)
        self.assertEqual(self.j.api("POST", "/api/v1/plugins/udp-counter/unload", expect=200), {"unloaded": "udp-counter"})
        self.assertEqual(self.j.api("GET", "/api/v1/plugins", expect=200), [])
        loaded = self.j.api("POST", "/api/v1/plugins", {"name": "udp-counter"}, expect=201)
        self.assertEqual(loaded["name"], "udp-counter")
        r = self.j.api("POST", "/api/v1/plugins/udp-counter/reload", expect=200)
        self.assertTrue(r["ok"])
        self.assertEqual(r["generation"], 1)
        self.assertTrue(r["old_unloaded"])

    def test_bad_requests(self):
        cases = [
            ("POST", "/api/v1/plugins", "{not json", 400),
            ("POST", "/api/v1/plugins", "[1,2]", 400),
            ("POST", "/api/v1/plugins", json.dumps({"nom": "x"}), 400),
            ("POST", "/api/v1/plugins", json.dumps({"name": 5}), 400),
            ("POST", "/api/v1/plugins", json.dumps({"name": "../etc/passwd"}), 400),
            ("POST", "/api/v1/plugins", json.dumps({"name": "udp-counter"}), 409),
            ("POST", "/api/v1/plugins", json.dumps({"name": "nonexistent"}), 404),
            ("POST", "/api/v1/plugins/nonexistent/reload", "", 404),
            ("POST", "/api/v1/plugins/nonexistent/unload", "", 404),
            ("GET", "/api/v1/plugins/nonexistent", "", 404),
            ("POST", "/api/v1/plugins/nonexistent/cmd/stats", "{}", 404),
            ("POST", "/api/v1/plugins/udp-counter/cmd/stats", "{oops", 400),
            ("POST", "/api/v1/plugins/udp-counter/cmd/nosuch", "{}", 404),
            ("GET", "/api/v1/plugins/udp-counter/reload", "", 405),
            ("GET", "/api/v1/unknown", "", 404),
            ("GET", "/api/v2/health", "", 404),
            ("POST", "/api/v1/events", "{}", 400),
            ("GET", "/api/v1/routes/lookup", "", 400),
            ("GET", "/api/v1/routes/lookup?uri=nowhere:x", "", 404),
            ("PUT", "/api/v1/plugins/udp-counter/log_level", json.dumps({"level": "loud"}), 400),
        ]
        for method, path, body, expect in cases:
            status, data = self.j.request(method, path, raw_body=body if body else None)
            self.assertEqual(status, expect, (method, path, body, data))
            self.assertIsInstance(data, dict, (method, path, data))
            self.assertIn("error", data, (method, path))
        self.assertEqual(self.j.api("GET", "/api/v1/health", expect=200)["status"], "ok")

    def test_plugin_command_routes_and_calls_and_metrics(self):
        stats = self.j.cmd("udp-counter", "stats")
        self.assertEqual(stats["received"], 0)
        self.assertIsInstance(self.j.api("GET", "/api/v1/routes", expect=200), dict)
        self.assertEqual(self.j.api("GET", "/api/v1/calls", expect=200), [])
        metrics = self.j.api("GET", "/metrics", expect=200)
        self.assertIn("junction_bus_payload_copies_total 0", metrics)
        self.assertIn("junction_plugins_loaded 1", metrics)
        self.j.api("PUT", "/api/v1/plugins/udp-counter/log_level", {"level": "debug"}, expect=200)
        self.assertEqual(self.j.api("GET", "/api/v1/plugins/udp-counter", expect=200)["log_level"], "debug")
        self.assertEqual(self.j.api("POST", "/api/v1/events", {"topic": "alarm/test", "data": {"x": 1}}, expect=202)["published"], "alarm/test")

    def test_ctl(self):
        rc, out, err = self.j.ctl("--json", "health")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["status"], "ok")
        rc, out, _ = self.j.ctl("--json", "plugins")
        self.assertEqual(json.loads(out)[0]["name"], "udp-counter")
        rc, out, _ = self.j.ctl("--json", "reload", "udp-counter")
        self.assertEqual((rc, json.loads(out)["generation"]), (0, 1))
        rc, out, _ = self.j.ctl("cmd", "udp-counter", "stats")
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out)["reloads"], 1)
        for args in (("routes",), ("calls",), ("metrics",)):
            rc, out, err = self.j.ctl(*args)
            self.assertEqual(rc, 0, (args, err))
        rc, out, _ = self.j.ctl("unload", "udp-counter")
        self.assertEqual(rc, 0)
        rc, out, _ = self.j.ctl("--json", "unload", "udp-counter")
        self.assertEqual(rc, 1)
        self.assertIn("no plugin named", json.loads(out)["error"])
        rc, out, _ = self.j.ctl("load", "udp-counter")
        self.assertEqual(rc, 0)
        rc, out, _ = self.j.ctl("--json", "load", "nonexistent")
        self.assertEqual(rc, 1)
        self.assertIn("error", json.loads(out))
        rc, _, err = self.j.ctl("frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command", err)
        rc, _, err = self.j.ctl("reload")
        self.assertEqual(rc, 2)
        env = dict(os.environ, JUNCTION_TOKEN="wrong")
        rc, out, _ = self.j.ctl("--json", "health", env=env)
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["error"], "wrong token")

    def test_generated_token_file(self):
        j = self.server(plugins={})
        j.core["admin"]["token"] = ""
        j.write_core(j.core)
        j.start()
        path = os.path.join(j.dir, "var", "admin.token")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        self.assertEqual(mode, 0o600)
        token = open(path).read().strip()
        self.assertEqual(len(token), 64)
        status, _ = j.request("GET", "/api/v1/health", token=token)
        self.assertEqual(status, 200)
        status, _ = j.request("GET", "/api/v1/health", token=TOKEN)
        self.assertEqual(status, 401)
        rc, out, _ = j.ctl("health")  # ctl reads the token file
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    main()
