"""Across plugins: a GB/T 28181 camera alarm reaches a building-intercom screen. The simulated
device sends Notify/Alarm to gb28181, which publishes alarm/gb/<device> on the core; intercom-json
subscribes to alarm/ and sends seczone_emergency{port,name,message} to the joined screens (the
event names no room, so every family's screens get it; intercom-json README "Alarms").
The screens are intercom-json's own test peers (plugins/intercom-json/tests/intercom_peer.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "intercom-json", "tests"))

from gb_env import DEV1, DEV2, GbTest, free_port  # noqa: E402
from intercom_env import box_conf  # noqa: E402
from intercom_peer import INNER_SCREEN, Screen  # noqa: E402
from junction_test import main  # noqa: E402

BOX = "intercom-json"


class CrossPluginTest(GbTest):
    def setUp(self):
        self.box_port = free_port()
        self.plugins_extra = {BOX: box_conf(self.box_port)}
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            try:
                p.close()
            except OSError:
                pass
        super().tearDown()

    def screen(self, device, room):
        token = self.j.cmd(BOX, "issue-token", {"device": device, "type": INNER_SCREEN, "room": room})["token"]
        s = Screen(self.box_port, name=device)
        self.peers.append(s)
        reply = s.join(token)
        self.assertEqual(reply["name"], "join_accept", reply)
        return s

    def test_gb_alarm_reaches_intercom_screens_as_seczone_emergency(self):
        s1, s2 = self.screen("screen-101", "101"), self.screen("screen-102", "102")
        d = self.registered_device(DEV1)
        channel = DEV1[:10] + "134" + DEV1[13:]  # an alarm input channel of the device
        status, sn = self.sim.run(d.send_alarm(channel, description="周界 入侵 (gate 2)", alarm_type=5))
        self.assertEqual(status, 200)
        self.assertEqual(d.wait("alarm_response", sn=sn)["result"], "OK")
        for s in (s1, s2):
            v = s.expect("seczone_emergency")["values"]
            self.assertEqual((v["message"], v["name"]), ("周界 入侵 (gate 2)", "5"), v)
            self.assertEqual(v["port"], channel, v)  # the screen names the alarmed channel

    def test_each_alarm_of_each_device_arrives_once(self):
        s = self.screen("screen-101", "101")
        a = self.registered_device(DEV1)
        b = self.registered_device(DEV2, transport="tcp")
        for dev, text in ((a, "first"), (b, "second"), (a, "third")):
            status, _ = self.sim.run(dev.send_alarm(description=text))
            self.assertEqual(status, 200)
            self.assertEqual(s.expect("seczone_emergency")["values"]["message"], text)
        s.expect_none("seczone_emergency")


if __name__ == "__main__":
    main()
