"""gb28181 alarms (报警事件通知), the document's flow step by step, with the device simulator:
1. the device sends Notify/Alarm in a MESSAGE, 2. the platform answers 200, 3. the platform sends
a Response with Result OK (same SN), 4. the device answers 200 -- and the alarm is published on
the core as event alarm/gb/<device> (seen here by the io-echo test plugin, which forwards the
events of its topic to a WebSocket client). Over UDP and TCP, for the device and for a channel."""
import json

from gb_env import DEV1, DEV2, DEV3, GbTest, free_port
from junction_test import main
from ws_client import WsClient


class AlarmTest(GbTest):
    def setUp(self):
        self.ws_port = free_port()
        self.plugins_extra = {"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}", "http_listen": f"127.0.0.1:{self.ws_port}",
                                          "events_topic": "alarm/gb/"}}
        super().setUp()
        self.ws = WsClient("127.0.0.1", self.ws_port, "/ws")
        self.addCleanup(self.ws.close)

    def next_event(self):
        op, payload = self.ws.recv()
        text = payload.decode()
        self.assertTrue(text.startswith("event:"), text)
        _, topic, body = text.split(":", 2)
        return topic, json.loads(body)

    def alarm_flow(self, d, channel=None):
        mark = d.mark()
        status, sn = self.sim.run(d.send_alarm(device_id=channel, priority=1, method=5, description="视频动检 A&B",
                                               alarm_type=2, event_type=1))
        self.assertEqual(status, 200)                       # step 2
        resp = d.wait("alarm_response", since=mark, sn=sn)  # step 3 (the sim answered 200: step 4)
        self.assertEqual((resp["result"], resp["device_id"]), ("OK", channel or d.id))
        topic, ev = self.next_event()
        self.assertEqual(topic, f"alarm/gb/{d.id}")
        self.assertEqual((ev["device"], ev["channel"], ev["sn"]), (d.id, channel or d.id, sn))
        self.assertEqual((ev["priority"], ev["method"], ev["type"], ev["event_type"]), ("1", "5", "2", "1"))
        self.assertEqual(ev["description"], "视频动检 A&B")
        return ev

    def test_alarm_gets_200_then_a_response_and_reaches_the_core_over_udp(self):
        d = self.registered_device(DEV1)
        self.alarm_flow(d)

    def test_channel_alarm_over_tcp(self):
        d = self.registered_device(DEV2, transport="tcp")
        self.alarm_flow(d, channel=d.channels[1]["DeviceID"])
        self.assertEqual(len(d.find("tcp_connected")), 1)

    def test_alarm_from_an_unregistered_device_is_refused_and_publishes_nothing(self):
        self.provision(DEV3)
        quiet = self.device(DEV3)
        status, _ = self.sim.run(quiet.send_alarm())
        self.assertEqual(status, 403)
        self.assertEqual(quiet.find("alarm_response"), [])
        # the next event on the core is the registered device's alarm, not the refused one
        d = self.registered_device(DEV1)
        self.alarm_flow(d)


if __name__ == "__main__":
    main()
