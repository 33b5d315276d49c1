"""Shared set-up for the xxxcid-gateway integration tests: a junction with the plugin on free
ports, a bound resident, and the door/phone simulators."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from junction_test import JunctionTest, free_port, wait_until  # noqa: E402
from door_sim import DoorSim  # noqa: E402
from phone_sim import PhoneSim  # noqa: E402

NAME = "xxxcid-gateway"
UID, ROOM, COMMUNITY = "359608060142756", "Y00010108090", "花苑"
DOOR, CALLEE = "M00010100", "S00010108090"  # the document's door and the address it dials


def plugin_conf(**over):
    import socket
    ports = {k: free_port(socket.SOCK_DGRAM) for k in ("door", "phone", "video", "audio")}
    conf = {"door_listen": f"127.0.0.1:{ports['door']}", "phone_listen": f"127.0.0.1:{ports['phone']}",
            "door_video_listen": f"127.0.0.1:{ports['video']}", "door_audio_listen": f"127.0.0.1:{ports['audio']}",
            "retransmit_ms": 100, "max_retries": 12, "tombstone_ms": 300, "tick_ms": 20}
    conf.update(over)
    return conf, ports


class GatewayTest(JunctionTest):
    plugins_extra = {}
    routes = None

    def setUp(self):
        super().setUp()
        self.conf, self.ports = plugin_conf(**getattr(self, "conf_over", {}))
        plugins = {NAME: self.conf}
        plugins.update(self.plugins_extra)
        self.j = self.server(plugins=plugins, routes=self.routes)
        self.j.start()
        self.sims = []
        self.bind(UID, ROOM, COMMUNITY)

    def tearDown(self):
        for s in self.sims:
            s.close()
        super().tearDown()

    def bind(self, uid, room, community=COMMUNITY):
        r = self.j.cmd(NAME, "bind", {"uid": uid, "room": room, "community": community})
        self.assertEqual(r["bound"]["uid"], uid)
        return r

    def door(self, addr=DOOR, **kw):
        d = DoorSim(self.ports["door"], self.ports["video"], self.ports["audio"], addr=addr, **kw)
        self.sims.append(d)
        return d

    def phone(self, uid=UID, room=ROOM, **kw):
        p = PhoneSim(self.ports["phone"], uid=uid, room=room, **kw)
        self.sims.append(p)
        return p

    def stats(self):
        return self.j.cmd(NAME, "stats")

    def calls(self):
        return self.j.cmd(NAME, "calls")

    def metric(self, name):
        text = self.j.api("GET", "/metrics", expect=200)
        total = 0.0
        found = False
        for line in text.splitlines():
            m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.eE+-]+)$", line)
            if m:
                total += float(m.group(2))
                found = True
        return total if found else None

    def series(self, name):
        """The label sets of a metric's series in /metrics (without the core's plugin label)."""
        text = self.j.api("GET", "/metrics", expect=200)
        return sorted((m.group(1) or "").replace(f'plugin="{NAME}",', "") for m in (re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s", line)
                                                 for line in text.splitlines()) if m)

    def wait_until(self, pred, timeout=10.0):
        """Bounded polling of an admin command, where no event marks the condition."""
        return wait_until(pred, timeout)

    def answered_call(self, door, phone, callee=CALLEE):
        """Steps 3-6: the door calls, the phone gets 'call' and answers with 'call ok'."""
        mark = phone.mark()
        import threading
        result = {}
        t = threading.Thread(target=lambda: result.update(r=door.call(callee)))
        t.start()
        call = phone.wait("call", start=mark)
        phone.order("call ok", door.addr)
        t.join(30)
        self.assertEqual(result.get("r"), "answer")
        return call

    def talk(self, door, phone):
        """Steps 7-10."""
        mark = phone.mark()
        phone.order("talk", door.addr)
        door.wait(door.got(6), what="talk command")
        return phone.wait("talk begin", start=mark)
