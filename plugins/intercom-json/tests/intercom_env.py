"""Shared setup for the intercom-json tests: a junction server with the plugin on a free port,
tokens from its admin API, and joined devices (intercom_peer) that are closed after each test."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from junction_test import JunctionTest, free_port, main, wait_until  # noqa: E402,F401
from intercom_peer import (INNER_BOX, INNER_SCREEN, OUTER_BOX, PROPERTY_APP, PROPERTY_CENTER,  # noqa: E402,F401
                           DialIn, OuterBox, PropertyApp, PropertyCenter, Screen)

PLUGIN = "intercom-json"
SECRET = "test-secret-0123456789"
HOME, COMMUNITY, CENTER = "192.168.1.22", "11.0.1.22", "http://11.0.0.10:954/stream/"


def box_conf(port, **overrides):
    conf = {"listen": f"127.0.0.1:{port}", "secret": SECRET, "keep_interval_ms": 60000, "keep_max_missed": 3,
            "bad_limit": 5, "bad_window_ms": 60000,
            "network": {"home_addr": HOME, "community_addr": COMMUNITY, "stream_port": 954, "stream_path": "/stream/",
                        "center_stream": CENTER}}
    conf.update(overrides)
    return conf


def metric(j, name, labels=None):
    """The sum of a metric's series read from /metrics (only those with `labels` in their label
    set when given); None when no series exists."""
    import re
    text = j.api("GET", "/metrics", expect=200)
    total, found = 0.0, False
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.eE+-]+)$", line)
        if m and (labels is None or labels in (m.group(1) or "")):
            total += float(m.group(2))
            found = True
    return total if found else None


def series(j, name):
    """The label sets of a metric's series in /metrics."""
    import re
    text = j.api("GET", "/metrics", expect=200)
    return sorted(m.group(1) or "" for m in (re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s", l) for l in text.splitlines()) if m)


class BoxTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            try:
                p.close()
            except OSError:
                pass
        super().tearDown()

    def start_box(self, plugins=None, routes=None, server=None, **conf):
        port = free_port()
        j = self.server(plugins=dict({PLUGIN: box_conf(port, **conf)}, **(plugins or {})), routes=routes, server=server)
        j.start()
        j.box_port = port
        return j

    def token(self, j, device, type=INNER_SCREEN, room="101", **kw):
        r = j.cmd(PLUGIN, "issue-token", dict({"device": device, "type": type, "room": room}, **kw))
        return r["token"]

    def connect(self, j, cls=Screen, name="peer"):
        p = cls(j.box_port, name=name)
        self.peers.append(p)
        return p

    def device(self, j, cls, device, room="101", type=None):
        """A joined device of class cls (its token's type is the class's CallPeerType)."""
        p = self.connect(j, cls, device)
        reply = p.join(self.token(j, device, type=type or cls.type, room=room))
        self.assertEqual(reply["name"], "join_accept", reply)
        self.assertEqual(reply["values"]["room_id"], room)
        return p

    def screen(self, j, device, room="101"):
        return self.device(j, Screen, device, room)

    def outer_box(self, j, device="door-2-1-1", room=""):
        return self.device(j, OuterBox, device, room)

    def prop_app(self, j, device="prop-app-1", room=""):
        return self.device(j, PropertyApp, device, room)

    def dial_in(self, cls=OuterBox, name="dialin"):
        d = DialIn(cls, name)
        self.addCleanup(d.close)
        return d

    def calls(self, j):
        return j.api("GET", "/api/v1/calls", expect=200)

    def box_calls(self, j):
        return j.cmd(PLUGIN, "calls")
