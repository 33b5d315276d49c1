"""Shared fixture of the gb28181 integration tests: a junction with the gb28181 plugin on free
loopback ports (UDP and TCP on the same port), devices provisioned through the admin API, and
the device simulator (tests/lib/gb_device_sim.py) pointed at it.

    class MyTest(GbTest):
        conf_over = {"keepalive_interval_s": 1}      # plugin conf overrides
        def test_x(self):
            self.provision(DEV1)                     # admin "add" with PASSWORD
            dev = self.device(DEV1, transport="tcp")  # a simulated device (closed in tearDown)
            self.assertEqual(self.sim.run(dev.register()), 200)
            self.j.wait_for_log(r"REGISTER 3402.* -> 200")
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, wait_until  # noqa: E402,F401

NAME = "gb28181"
PLATFORM = "34020000002000000001"
DOMAIN = PLATFORM[:10]
PASSWORD = "12345678"
DEV1 = "34020000001320000001"
DEV2 = "34020000001320000002"
DEV3 = "34020000001320000003"


def plugin_conf(port, **over):
    conf = {"sip_id": PLATFORM, "udp_listen": f"127.0.0.1:{port}", "tcp_listen": f"127.0.0.1:{port}",
            "t1_ms": 100, "t2_ms": 400, "t4_ms": 500, "query_timeout_ms": 3000}
    conf.update(over)
    return conf


class EventTap:
    """The core events under a topic prefix, as the io-echo test plugin relays them over its
    WebSocket ("event:TOPIC:JSON"): a test waits on them instead of polling."""

    def __init__(self, http_port):
        from ws_client import WsClient
        self.ws = WsClient("127.0.0.1", http_port, "/ws", timeout=30)
        self.seen = []

    def next(self, topic, **match):
        """The next event on exactly this topic whose JSON has the given fields; earlier others are kept."""
        import json
        for i, (t, data) in enumerate(self.seen):
            if t == topic and all(data.get(k) == v for k, v in match.items()):
                return self.seen.pop(i)[1]
        while True:
            _, payload = self.ws.recv()
            text = payload.decode()
            if not text.startswith("event:"):
                continue
            t, _, body = text[len("event:"):].partition(":")
            data = json.loads(body)
            if t == topic and all(data.get(k) == v for k, v in match.items()):
                return data
            self.seen.append((t, data))

    def close(self):
        self.ws.close()


class GbTest(JunctionTest):
    """One junction per test with gb28181 (conf_over merged into its conf) and plugins_extra
    beside it; self.sim is a started simulator aimed at it (stopped in tearDown). With
    events_topic set (e.g. "gb/"), self.events is an EventTap on that prefix."""
    conf_over = {}
    plugins_extra = {}
    routes = None
    sim_defaults = {}
    events_topic = None
    core_limits = None  # the core's [limits] (e.g. {"tcp_max_conns_per_ip": 0} for many TCP devices)

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.conf = plugin_conf(self.port, **self.conf_over)
        plugins = {NAME: self.conf}
        plugins.update(self.plugins_extra)
        if self.events_topic:
            self.tap_port = free_port()
            plugins["io-echo"] = {"tcp_listen": f"127.0.0.1:{free_port()}", "http_listen": f"127.0.0.1:{self.tap_port}",
                                  "events_topic": self.events_topic}
        self.j = self.server(plugins=plugins, routes=self.routes)
        if self.core_limits:
            self.j.core["limits"] = dict(self.core_limits)
            self.j.write_core(self.j.core)
        self.j.start()
        self.j.wait_for_log(r"gb28181: platform \d+ .* listening")
        self._sim = None
        self.events = EventTap(self.tap_port) if self.events_topic else None

    @property
    def sim(self):
        if self._sim is None:
            import gb_device_sim
            self._sim = gb_device_sim.Simulator(server=("127.0.0.1", self.port), platform_id=PLATFORM,
                                                **self.sim_defaults).start()
        return self._sim

    def tearDown(self):
        try:
            if self.events is not None:
                self.events.close()
            if self._sim is not None:
                self._sim.stop()
        finally:
            super().tearDown()

    # -- admin -------------------------------------------------------------------------------------
    def cmd(self, verb, body=None, expect=200):
        return self.j.cmd(NAME, verb, body, expect)

    def provision(self, device_id, password=PASSWORD, **fields):
        body = dict({"id": device_id, "password": password}, **fields)
        if password is None:
            del body["password"]
        return self.cmd("add", body, expect=201)

    def provision_many(self, ids, password=PASSWORD):
        r = self.cmd("add", {"devices": [{"id": i, "password": password} for i in ids]}, expect=201)
        assert r["added"] == len(ids), r

    def show(self, device_id, expect=200):
        return self.cmd("show", {"id": device_id}, expect)

    def stats(self):
        return self.cmd("stats")

    # -- devices -----------------------------------------------------------------------------------
    def device(self, device_id, password=PASSWORD, **kw):
        return self.sim.add_device(device_id, password, **kw)

    def registered_device(self, device_id, password=PASSWORD, provision=True, **kw):
        """Provisioned, simulated and registered (200), with the platform's log line seen."""
        if provision:
            self.provision(device_id, password)
        d = self.device(device_id, password, **kw)
        self.assertEqual(self.sim.run(d.register()), 200)
        self.j.wait_for_log(rf"REGISTER {device_id} from .* -> 200")
        return d

    # -- metrics -----------------------------------------------------------------------------------
    def metric(self, name, **labels):
        """Sum of a metric's series in /metrics (those carrying every given label)."""
        text = self.j.api("GET", "/metrics", expect=200)
        total, found = 0.0, False
        for line in text.splitlines():
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.eE+-]+)$", line)
            if not m:
                continue
            if any(f'{k}="{v}"' not in (m.group(1) or "") for k, v in labels.items()):
                continue
            total += float(m.group(2))
            found = True
        return total if found else None
