"""Shared setup for the verto-ws tests: a junction server with the plugin on a free port, users
created through the admin API, and Verto clients (tests/lib/verto) closed after each test."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lib"))

from junction_test import JunctionTest, free_port, main, wait_until  # noqa: E402,F401
from verto.verto_client import VertoClient, VertoError, fake_sdp  # noqa: E402,F401

PLUGIN = "verto-ws"


def verto_conf(port, **overrides):
    # media "none": these tests check the signalling (SDPs pass between browsers as they are);
    # test_media.py runs the WebRTC termination with real browsers.
    conf = {"listen": f"127.0.0.1:{port}", "kdf_iterations": 1000, "heartbeat_ms": 0, "media": "none",
            "channels": ["FSevent.heartbeat", "chat.*", "alarm/"]}
    conf.update(overrides)
    return conf


class VertoTest(JunctionTest):
    users = {"1001": "pw1001", "1002": "pw1002"}

    def setUp(self):
        super().setUp()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            try:
                c.close()
            except OSError:
                pass
        super().tearDown()

    def start(self, plugins=None, routes=None, server=None, **overrides):
        self.port = free_port()
        confs = {PLUGIN: verto_conf(self.port, **overrides)}
        confs.update(plugins or {})
        self.j = self.server(plugins=confs, routes=routes, server=server)
        self.j.start()
        self.j.wait_for_log(r"verto listening on")
        for user, pw in self.users.items():
            self.j.cmd(PLUGIN, "user-add", {"user": user, "password": pw})
        return self.j

    def client(self, **kw):
        c = VertoClient(self.port, **kw)
        self.clients.append(c)
        return c

    def logged_in(self, user, **kw):
        c = self.client(**kw)
        c.login_ok(user, self.users[user])
        return c
