"""gb28181 and the field deviations of real devices (DESIGN.md "Field facts", seeds README), each
as a simulator quirk mode against the real plugin:
- UTF-8 bodies labelled GB2312 (and real GB18030 ones) both decode to the right text;
- an unsolicited partial catalog never wipes the known channels;
- a NAT mapping change between keepalives (new UDP source port, Via/Contact unchanged): the
  platform follows the source and reaches the device there;
- a reboot (new Call-ID, lower CSeq) is a new registration, not an error;
- unescaped '&' in text and the document's '<! --' comments are scrubbed, not refused."""
import gb_device_sim as gb
from gb_env import DEV1, DEV2, GbTest
from junction_test import main


def named_channels(dev_id, names):
    chans = gb.default_channels(dev_id, len(names))
    for c, n in zip(chans, names):
        c["Name"] = n
    return chans


class QuirkTest(GbTest):
    def catalog(self, dev_id):
        r = self.cmd("query", {"id": dev_id, "type": "Catalog"})
        self.assertEqual(r["outcome"], "ok", r)
        return r

    def names(self, dev_id):
        return {c["id"]: c["name"] for c in self.cmd("channels", {"id": dev_id})["channels"]}

    def test_utf8_labelled_gb2312_and_real_gb18030_both_decode(self):
        names = ["东门 入口", "停车场 北", "Lobby 大厅"]
        real = self.registered_device(DEV1, channels=named_channels(DEV1, names))
        liar = self.registered_device(DEV2, channels=named_channels(DEV2, names), quirks={"utf8_as_gb2312"})
        for d in (real, liar):
            self.catalog(d.id)
            self.assertEqual(sorted(self.names(d.id).values()), sorted(names))
        # the bytes on the wire really differed: GB18030 from one, UTF-8 under a GB2312 label from the other
        gb_bytes, utf8_bytes = "东门 入口".encode("gb18030"), "东门 入口".encode("utf-8")
        self.assertTrue(any(gb_bytes in m for m in real.sent) and not any(utf8_bytes in m for m in real.sent))
        self.assertTrue(any(utf8_bytes in m and b'encoding="GB2312"' in m for m in liar.sent))

    def test_unsolicited_partial_catalog_never_wipes_known_channels(self):
        d = self.registered_device(DEV1, channels=5)
        self.catalog(DEV1)
        self.assertEqual(len(self.names(DEV1)), 5)
        changed = dict(d.channels[2], Name="Renamed by the device")
        # SumNum 5, one item, an SN nobody asked for
        self.assertEqual(self.sim.run(d.send_unsolicited_catalog([changed])), 200)
        names = self.names(DEV1)
        self.assertEqual(len(names), 5)
        self.assertEqual(names[changed["DeviceID"]], "Renamed by the device")
        # and a later full query still aggregates normally
        r = self.catalog(DEV1)
        self.assertEqual((r["data"]["sum_num"], r["data"]["received"]), (5, 5))

    def test_nat_change_between_keepalives(self):
        d = self.registered_device(DEV1)
        self.assertEqual(self.sim.run(d.keepalive()), 200)
        old = d.local_port
        new = self.sim.run(d.nat_rebind())
        self.assertEqual(self.sim.run(d.keepalive()), 200)
        self.j.wait_for_log(rf"device {DEV1} address changed 127\.0\.0\.1:{old} -> 127\.0\.0\.1:{new} over UDP")
        self.assertEqual(self.show(DEV1)["address"], f"127.0.0.1:{new}")
        # the platform reaches it at the new source (the old socket is closed)
        mark = d.mark()
        r = self.cmd("query", {"id": DEV1, "type": "DeviceInfo"})
        self.assertEqual(r["outcome"], "ok", r)
        self.assertEqual(d.wait_message("DeviceInfo", since=mark)["sn"], r["sn"])

    def test_reboot_with_a_new_call_id_and_lower_cseq_is_a_new_registration(self):
        d = self.registered_device(DEV1)
        self.assertEqual(self.sim.run(d.register()), 200)  # a refresh: CSeq grows
        before = d.find("registered")[-1]
        self.assertEqual(self.sim.run(d.reboot()), 200)
        after = d.find("registered")[-1]
        self.assertNotEqual(after["call_id"], before["call_id"])
        self.assertLess(after["cseq"], before["cseq"])
        self.j.wait_for_log(rf"REGISTER {DEV1} from .* -> 200 \(new registration: rebooted")
        v = self.show(DEV1)
        self.assertTrue(v["online"], v)
        self.assertEqual(self.sim.run(d.keepalive()), 200)
        self.assertEqual(self.cmd("query", {"id": DEV1, "type": "DeviceStatus"})["outcome"], "ok")

    def test_unescaped_ampersand_and_bang_comments_are_scrubbed(self):
        amp = self.registered_device(DEV1, name="Gate A&B 东门", channels=named_channels(DEV1, ["Door A&B", "R&D 楼"]),
                                     quirks={"raw_amp", "bang_comments"})
        self.assertEqual(self.sim.run(amp.keepalive()), 200)  # a keepalive with a '<! --' comment
        self.assertTrue(any(b"<! --" in m for m in amp.sent))
        self.catalog(DEV1)
        self.assertEqual(sorted(self.names(DEV1).values()), ["Door A&B", "R&D 楼"])
        self.assertTrue(any(b"Door A&B" in m for m in amp.sent))  # it really was unescaped on the wire
        r = self.cmd("query", {"id": DEV1, "type": "DeviceInfo"})
        self.assertEqual(r["data"]["DeviceName"], "Gate A&B 东门")
        status, sn = self.sim.run(amp.send_alarm(description="Smoke & fire"))
        self.assertEqual(status, 200)
        self.assertEqual(amp.wait("alarm_response", sn=sn)["result"], "OK")

    def test_all_quirks_at_once_over_tcp(self):
        d = self.registered_device(DEV2, transport="tcp", channels=named_channels(DEV2, ["大门 A&B"]),
                                   quirks={"utf8_as_gb2312", "raw_amp", "bang_comments"})
        self.assertEqual(self.sim.run(d.keepalive()), 200)
        self.catalog(DEV2)
        self.assertEqual(list(self.names(DEV2).values()), ["大门 A&B"])


if __name__ == "__main__":
    main()
