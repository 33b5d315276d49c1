"""gb28181 queries (设备查询, 文件检索) driven through the admin API against the device simulator:
- Catalog answered in several MESSAGEs (SumNum) is aggregated by device+SN into one result, also
  for a lower platform with thousands of channels; the channel list and its civil-code tree are
  kept by the platform;
- RecordInfo in several MESSAGEs (newest first) is merged and sorted by StartTime;
- DeviceInfo, DeviceStatus, ConfigDownload, PresetQuery and Alarm each return their fields;
- a query that times out returns what arrived (Partial) or nothing (Timeout);
- admin errors: unknown device 404, offline 409, bad type 400.
The simulator checks every query it receives (CmdType, SN, DeviceID) and records it."""
import gb_device_sim as gb
from gb_env import DEV1, DEV2, NAME, GbTest
from junction_test import main


class QueryTest(GbTest):
    def query(self, dev_id, qtype, expect=200, **kw):
        status, body = self.j.request("POST", f"/api/v1/plugins/{NAME}/cmd/query", dict({"id": dev_id, "type": qtype}, **kw))
        self.assertEqual(status, expect, body)
        return body

    def test_catalog_split_over_several_messages_is_aggregated(self):
        d = self.registered_device(DEV1, channels=7, catalog_per_message=2)
        mark = d.mark()
        r = self.query(DEV1, "Catalog")
        self.assertEqual((r["outcome"], r["cmd"], r["device"]), ("ok", "Catalog", DEV1))
        q = d.wait_message("Catalog", since=mark)
        self.assertEqual((q["root"], q["sn"], q["device_id"]), ("Query", r["sn"], DEV1))
        d.wait("response_sent", since=mark, cmd="Catalog", index=3)  # its 200 may come after the admin reply
        sent = d.find("response_sent", since=mark, cmd="Catalog")
        self.assertEqual([e["status"] for e in sent], [200, 200, 200, 200])  # 7 items, 2 per MESSAGE
        self.assertEqual((r["data"]["sum_num"], r["data"]["received"]), (7, 7))
        self.assertEqual(sorted(i["DeviceID"] for i in r["data"]["items"]), sorted(c["DeviceID"] for c in d.channels))
        by_id = {i["DeviceID"]: i for i in r["data"]["items"]}
        self.assertEqual(by_id[d.channels[3]["DeviceID"]]["Name"], d.channels[3]["Name"])
        chans = self.cmd("channels", {"id": DEV1})["channels"]
        self.assertEqual([c["id"] for c in chans], sorted(c["DeviceID"] for c in d.channels))
        self.assertTrue(all(c["status"] == "ON" for c in chans))

    def test_lower_platform_with_thousands_of_channels_and_its_civil_code_tree(self):
        # A lower platform: 3000 channels in 3 civil codes, 40 per MESSAGE (75 MESSAGEs).
        chans = gb.default_channels(DEV2, 3000)
        for i, c in enumerate(chans):
            c["CivilCode"] = ["340200", "340201", "340202"][i % 3]
        d = self.registered_device(DEV2, channels=chans, catalog_per_message=40)
        r = self.query(DEV2, "Catalog")
        self.assertEqual(r["outcome"], "ok", {k: v for k, v in r.items() if k != "data"})
        self.assertEqual((r["data"]["sum_num"], r["data"]["received"], len(r["data"]["items"])), (3000, 3000, 3000))
        self.assertEqual(d.wait("response_sent", cmd="Catalog", index=74)["count"], 75)
        self.assertEqual(len(self.cmd("channels", {"id": DEV2})["channels"]), 3000)
        tree = self.cmd("channels", {"id": DEV2, "tree": True})

        def walk(n, out):
            out.append(n)
            for c in n.get("children", []):
                walk(c, out)
            return out
        nodes = walk(tree, [])
        ids = {n["id"] for n in nodes}
        for civil in ("340200", "340201", "340202"):
            self.assertIn(civil, ids)
        self.assertEqual(sum(1 for n in nodes if n["id"] in {c["DeviceID"] for c in chans}), 3000)

    def test_business_group_and_virtual_organisation_tree(self):
        # A lower platform's catalog with a business group (type 215) holding a virtual
        # organisation (216) holding three cameras: the tree keeps that nesting.
        bg, vo = "3402000000215" + "0000001", "3402000000216" + "0000001"
        base = {"Manufacturer": "JunctionSim", "Owner": "Owner", "Address": "Address", "Parental": "1", "Secrecy": "0",
                "RegisterWay": "1", "SafetyWay": "0", "Status": "ON"}
        items = [dict(base, DeviceID=bg, Name="治安 业务分组", CivilCode="340200", ParentID=DEV2),
                 dict(base, DeviceID=vo, Name="东区 虚拟组织", ParentID=bg, BusinessGroupID=bg)]
        cams = gb.default_channels(DEV2, 3)
        for c in cams:
            c.update(ParentID=vo, BusinessGroupID=bg)
        self.registered_device(DEV2, channels=items + cams, catalog_per_message=2)
        r = self.query(DEV2, "Catalog")
        self.assertEqual((r["outcome"], r["data"]["received"]), ("ok", 5))
        tree = self.cmd("channels", {"id": DEV2, "tree": True})

        def find(n, node_id):
            if n.get("id") == node_id:
                return n
            for c in n.get("children", []):
                got = find(c, node_id)
                if got:
                    return got
            return None
        g = find(tree, bg)
        self.assertEqual((g["kind"], g["name"]), ("business_group", "治安 业务分组"))
        self.assertEqual([c["id"] for c in g["children"]], [vo])
        v = g["children"][0]
        self.assertEqual(v["kind"], "virtual_org")
        self.assertEqual(sorted(c["id"] for c in v["children"]), sorted(c["DeviceID"] for c in cams))
        self.assertTrue(all(c["kind"] == "channel" and c["status"] == "ON" for c in v["children"]))
        self.assertIsNotNone(find(find(tree, "340200"), bg))  # the group sits under its civil code

    def test_record_info_in_several_messages_is_merged_and_sorted(self):
        d = self.registered_device(DEV1, records_per_message=2)
        ch = d.channels[0]["DeviceID"]
        r = self.query(DEV1, "RecordInfo", target=ch, start_time="2026-12-07T00:00:00", end_time="2026-12-07T23:00:00")
        self.assertEqual(r["outcome"], "ok", r)
        q = d.wait_message("RecordInfo")
        self.assertEqual(q["device_id"], ch)
        self.assertEqual((q["fields"]["StartTime"], q["fields"]["EndTime"]), ("2026-12-07T00:00:00", "2026-12-07T23:00:00"))
        self.assertEqual(d.wait("response_sent", cmd="RecordInfo", index=2)["count"], 3)  # 5 records, 2 per MESSAGE
        starts = [i["StartTime"] for i in r["data"]["items"]]
        self.assertEqual(len(starts), 5)
        self.assertEqual(starts, sorted(starts))  # the device sent them newest first
        self.assertEqual(r["data"]["sum_num"], 5)
        self.assertTrue(all(i["DeviceID"] == ch for i in r["data"]["items"]))

    def test_each_query_returns_its_fields(self):
        d = self.registered_device(DEV1, name="东门 NVR", presets=[(1, "大门"), (7, "Parking")])
        r = self.query(DEV1, "DeviceInfo")
        self.assertEqual(r["outcome"], "ok", r)
        self.assertEqual((r["data"]["DeviceName"], r["data"]["Manufacturer"], r["data"]["Channel"]), ("东门 NVR", "JunctionSim", "4"))
        r = self.query(DEV1, "DeviceStatus")
        self.assertEqual((r["outcome"], r["data"]["Online"], r["data"]["Status"], r["data"]["Result"]), ("ok", "ONLINE", "OK", "OK"))
        r = self.query(DEV1, "ConfigDownload", config_type="BasicParam")
        self.assertEqual(r["outcome"], "ok", r)
        self.assertEqual(d.wait_message("ConfigDownload")["fields"]["ConfigType"], "BasicParam")
        self.assertEqual((r["data"]["BasicParam"]["Name"], r["data"]["BasicParam"]["HeartBeatInterval"]), ("东门 NVR", "60"))
        r = self.query(DEV1, "PresetQuery")
        self.assertEqual(r["outcome"], "ok", r)
        self.assertEqual([(p["PresetID"], p["PresetName"]) for p in r["data"]["PresetList"]], [("1", "大门"), ("7", "Parking")])
        r = self.query(DEV1, "Alarm", start_time="2026-12-07T00:00:00", end_time="2026-12-07T23:00:00")
        self.assertEqual((r["outcome"], r["data"]["Result"]), ("ok", "OK"))
        self.assertEqual(d.wait_message("Alarm")["root"], "Query")
        # each query went out once, with its own SN
        sns = [e["sn"] for e in d.find("message") if e["root"] == "Query"]
        self.assertEqual(len(sns), 5)
        self.assertEqual(len(set(sns)), 5)

    def test_timeout_returns_what_arrived(self):
        # 6 channels, 2 per MESSAGE, only the first 2 MESSAGEs sent: a partial result after the timeout
        d = self.registered_device(DEV1, channels=6, catalog_per_message=2, response_limit=2)
        r = self.query(DEV1, "Catalog", expect=504)
        self.assertEqual(r["outcome"], "partial", r)
        self.assertEqual((r["data"]["sum_num"], r["data"]["received"]), (6, 4))
        self.assertEqual(sorted(i["DeviceID"] for i in r["data"]["items"]), sorted(c["DeviceID"] for c in d.channels[:4]))
        # what arrived is kept as channels
        self.assertEqual(len(self.cmd("channels", {"id": DEV1})["channels"]), 4)
        # a device that answers 200 and then nothing: Timeout with no data
        d.silent.add("DeviceInfo")
        r = self.query(DEV1, "DeviceInfo", expect=504)
        self.assertEqual(r["outcome"], "timeout", r)
        d.wait_message("DeviceInfo")
        self.assertGreaterEqual(self.metric("gb_query_timeouts_total"), 2)

    def test_admin_errors(self):
        self.provision(DEV2)
        self.registered_device(DEV1)
        self.assertIn("no device", self.query("34020000001329999999", "Catalog", expect=404)["error"])
        self.assertIn("offline", self.query(DEV2, "Catalog", expect=409)["error"])
        self.assertIn("type must be", self.query(DEV1, "Nonsense", expect=400)["error"])


if __name__ == "__main__":
    main()
