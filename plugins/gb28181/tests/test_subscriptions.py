"""gb28181 subscriptions (订阅与取订) against the device simulator:
- SUBSCRIBE to a device's catalog (Event: Catalog) and alarms (Event: presence, as the document's
  sample) with Expires; the device answers 200 and the admin result is ok;
- catalog NOTIFYs in the dialog (ADD/DEL/UPDATE/ON/OFF/VLOST/DEFECT) are applied to the channel
  list the platform keeps, over UDP and over a TCP device's connection;
- the platform refreshes before the granted time runs out (in the same dialog) and unsubscribes
  with Expires: 0."""
import gb_device_sim as gb
from gb_env import DEV1, DEV2, GbTest
from junction_test import main


class SubscriptionTest(GbTest):
    def channels(self, dev_id):
        return {c["id"]: c for c in self.cmd("channels", {"id": dev_id})["channels"]}

    def subscribe(self, dev_id, kind="Catalog", expires_s=600):
        r = self.cmd("subscribe", {"id": dev_id, "kind": kind, "expires_s": expires_s})
        self.assertEqual((r["outcome"], r["cmd"]), ("ok", f"Subscribe:{kind}"), r)
        return r

    def catalog_changes_are_applied(self, d):
        r = self.cmd("query", {"id": d.id, "type": "Catalog"})
        self.assertEqual(r["outcome"], "ok")
        self.subscribe(d.id)
        ev = d.wait("subscribed", cmd="Catalog")
        self.assertEqual(ev["expires"], 600)
        self.assertTrue(ev["event"].startswith("Catalog"), ev)
        c0, c1, c2 = (c["DeviceID"] for c in d.channels[:3])
        new = gb.default_channels(d.id, 5)[4]
        new["Name"] = "新 通道"
        self.assertEqual(self.sim.run(d.notify_catalog([("ADD", new)])), 200)
        ch = self.channels(d.id)
        self.assertEqual(ch[new["DeviceID"]]["name"], "新 通道")
        self.assertEqual(len(ch), 5)
        upd = dict(d.channels[0], Name="Renamed 0")
        self.assertEqual(self.sim.run(d.notify_catalog([("UPDATE", upd), ("OFF", c1), ("VLOST", c2)])), 200)
        ch = self.channels(d.id)
        self.assertEqual((ch[c0]["name"], ch[c1]["status"], ch[c2]["vlost"], ch[c2]["defect"]), ("Renamed 0", "OFF", True, False))
        self.assertEqual(self.sim.run(d.notify_catalog([("ON", c1), ("DEFECT", c2), ("DEL", c0)])), 200)
        ch = self.channels(d.id)
        self.assertNotIn(c0, ch)
        self.assertEqual((ch[c1]["status"], ch[c2]["defect"], len(ch)), ("ON", True, 4))
        self.assertEqual([e["status"] for e in d.find("notify_sent")], [200, 200, 200])

    def test_catalog_notify_add_del_update_on_off_vlost_defect_over_udp(self):
        d = self.registered_device(DEV1, channels=4)
        self.catalog_changes_are_applied(d)

    def test_catalog_notify_over_a_tcp_devices_connection(self):
        d = self.registered_device(DEV2, channels=4, transport="tcp")
        port = d.local_port
        self.catalog_changes_are_applied(d)
        self.assertEqual(d.local_port, port)  # the same connection throughout
        self.assertEqual(len(d.find("tcp_connected")), 1)

    def test_refresh_before_expiry_and_unsubscribe(self):
        d = self.registered_device(DEV1)
        self.subscribe(DEV1, expires_s=2)
        first = d.wait("subscribed", cmd="Catalog")
        self.assertEqual(first["expires"], 2)
        # the platform refreshes in the same dialog before the 2 s run out
        ref = d.wait("subscription_refreshed", timeout=10)
        self.assertEqual(ref["call_id"], first["call_id"])
        subs = self.cmd("subscriptions")["subscriptions"]
        self.assertTrue(any(s.get("device") == DEV1 for s in subs), subs)
        r = self.cmd("unsubscribe", {"id": DEV1, "kind": "Catalog"})
        self.assertEqual(r["unsubscribed"], "Catalog")
        un = d.wait("unsubscribed")
        self.assertEqual(un["call_id"], first["call_id"])
        self.assertIsNone(d.subscription("Catalog"))

    def test_alarm_subscription_and_an_alarm_notify(self):
        d = self.registered_device(DEV1)
        self.subscribe(DEV1, kind="Alarm")
        ev = d.wait("subscribed", cmd="Alarm")
        self.assertEqual(ev["event"].split(";")[0], "presence")  # the document's Event for alarms
        q = d.subscription("Alarm")
        self.assertIsNotNone(q)
        mark = d.mark()
        self.assertEqual(self.sim.run(d.notify_alarm(description="周界 入侵", alarm_type=5)), 200)
        # the alarm is acknowledged with a Response (Result OK) like a MESSAGE alarm
        self.assertEqual(d.wait("alarm_response", since=mark)["result"], "OK")
        self.j.wait_for_log(rf"alarm from {DEV1} channel {DEV1} type 5")


if __name__ == "__main__":
    main()
