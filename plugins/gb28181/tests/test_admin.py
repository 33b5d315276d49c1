"""gb28181 admin API and `junction ctl`: provisioning in the core's store (add / update / delete /
list / show, refusals with their reason), devices survive a restart, the live view (online,
address, transport, last keepalive), a command reaching a TCP-registered device over its
connection, the shipped conf sample starting as it is, snapshot uploads stored and fetched."""
import json
import os
import re

from gb_env import DEV1, DEV2, DEV3, NAME, GbTest, free_port
from junction_test import main

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gb28181.toml")


class AdminTest(GbTest):
    def test_add_update_delete_list_show(self):
        d = self.provision(DEV1, name="gate", charset="utf-8")
        self.assertEqual(d["id"], DEV1)
        self.assertTrue(d["password_set"])
        self.assertNotIn("password", d)
        self.assertFalse(d["online"])
        self.cmd("add", {"id": DEV1, "password": "x"}, expect=409)
        self.assertIn("20 digits", self.cmd("add", {"id": "123"}, expect=400)["error"])
        self.assertIn("charset", self.cmd("add", {"id": DEV2, "charset": "latin1"}, expect=400)["error"])
        self.assertIn("unknown field", self.cmd("add", {"id": DEV2, "colour": "red"}, expect=400)["error"])
        self.cmd("add", "not an object", expect=400)
        self.provision(DEV2)
        u = self.cmd("update", {"id": DEV1, "name": "north gate", "media_transport": "tcp-passive"})
        self.assertEqual(u["name"], "north gate")
        self.assertEqual(u["media_transport"], "tcp-passive")
        self.assertEqual(u["charset"], "utf-8")  # untouched fields stay
        self.cmd("update", {"id": DEV3}, expect=404)
        lst = self.cmd("list")
        self.assertEqual(lst["total"], 2)
        self.assertEqual([x["id"] for x in lst["devices"]], [DEV1, DEV2])
        self.assertEqual(self.cmd("list", {"limit": 1, "offset": 1})["devices"][0]["id"], DEV2)
        self.cmd("delete", {"id": DEV2})
        self.cmd("show", {"id": DEV2}, expect=404)
        self.cmd("delete", {"id": DEV2}, expect=404)
        self.assertIn("unknown command", self.cmd("frobnicate", expect=404)["error"])
        # The store keeps them across a restart.
        self.j.stop()
        self.j.start()
        self.j.wait_for_log(r"gb28181: platform .* 1 device\(s\) provisioned")
        self.assertEqual(self.show(DEV1)["name"], "north gate")

    def test_live_view_and_online_filter(self):
        self.registered_device(DEV1, transport="tcp")
        self.provision(DEV2)
        s = self.show(DEV1)
        self.assertTrue(s["online"])
        self.assertEqual(s["transport"], "TCP")
        self.assertTrue(re.match(r"127\.0\.0\.1:\d+$", s["address"]))
        self.assertIn("connection", s)
        self.assertEqual([x["id"] for x in self.cmd("list", {"online": True})["devices"]], [DEV1])
        self.assertEqual([x["id"] for x in self.cmd("list", {"online": False})["devices"]], [DEV2])
        st = self.stats()
        self.assertEqual((st["provisioned"], st["registered"]), (2, 1))
        self.assertEqual(self.metric("gb_devices_provisioned"), 2)

    def test_a_query_reaches_a_tcp_device_over_its_connection(self):
        d = self.registered_device(DEV1, transport="tcp")
        r = self.cmd("query", {"id": DEV1, "type": "DeviceInfo"})
        self.assertEqual(r["outcome"], "ok")
        self.assertEqual(r["cmd"], "DeviceInfo")
        self.assertEqual(d.wait_message("DeviceInfo")["sn"], r["sn"])
        # A TCP device has only the connection it opened: the query came over it.
        self.assertEqual(len(d.find("tcp_connected")), 1)
        self.assertEqual(self.stats()["registered"], 1)
        self.assertEqual(self.metric("gb_queries_total", type="DeviceInfo"), 1)
        # offline / unknown devices are refused at once
        self.provision(DEV2)
        self.assertIn("offline", self.cmd("query", {"id": DEV2, "type": "DeviceInfo"}, expect=409)["error"])
        self.cmd("query", {"id": DEV3, "type": "DeviceInfo"}, expect=404)
        self.assertIn("type", self.cmd("query", {"id": DEV1, "type": "Nope"}, expect=400)["error"])

    def test_ctl_reaches_the_verbs(self):
        rc, out, err = self.j.ctl("cmd", NAME, "add", json.dumps({"id": DEV1, "password": "pw"}))
        self.assertEqual(rc, 0, err)
        rc, out, err = self.j.ctl("cmd", NAME, "show", json.dumps({"id": DEV1}))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["id"], DEV1)
        rc, out, err = self.j.ctl("cmd", NAME, "show", json.dumps({"id": DEV2}))
        self.assertEqual(rc, 1)
        self.registered_device(DEV2)
        rc, out, err = self.j.ctl("devices", NAME)
        self.assertEqual(rc, 0, err)
        rows = [line.split() for line in out.splitlines()[1:]]
        self.assertEqual([(r[0], r[1], r[2]) for r in rows], [(NAME, DEV1, "132"), (NAME, DEV2, "132")])
        self.assertIn("127.0.0.1:", out)


class ShippedSampleTest(GbTest):
    def setUp(self):
        # Not the fixture's conf: the sample file itself, with its port moved off 5060.
        from junction_test import JunctionTest
        JunctionTest.setUp(self)
        self._sim = None
        self.events = None

    def test_sample_conf_starts(self):
        port = free_port()
        with open(SAMPLE) as f:
            text = f.read().replace("127.0.0.1:5060", f"127.0.0.1:{port}")
        self.j = self.server(plugins={NAME: text})
        self.j.start()
        self.j.wait_for_log(rf"gb28181: platform 34020000002000000001 \(domain 3402000000, realm 3402000000\) listening on udp 127\.0\.0\.1:{port} and tcp")


class SnapshotTest(GbTest):
    """Snapshots (图像抓拍): SnapShotConfig opens an upload session on the platform's own HTTP
    endpoint; the device's JPEGs are stored in the core's store and listed / fetched by admin."""

    def setUp(self):
        self.snap_port = free_port()
        self.conf_over = {"snapshot_listen": f"127.0.0.1:{self.snap_port}"}
        super().setUp()

    def upload(self, url, body, ctype="image/jpeg", method="POST"):
        import http.client
        import urllib.parse
        u = urllib.parse.urlparse(url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request(method, u.path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        data = json.loads(r.read() or b"{}")
        c.close()
        return r.status, data

    def test_snapshot_session_upload_list_fetch(self):
        import base64
        d = self.registered_device(DEV1)
        r = self.cmd("config", {"id": DEV1, "type": "SnapShotConfig", "snap_num": 2, "interval_s": 1})
        self.assertEqual(r["outcome"], "ok", r)
        cfg = d.wait("config", name="SnapShotConfig")["value"]
        url, sid = cfg["UploadURL"], cfg["SessionID"]
        self.assertEqual(url, f"http://127.0.0.1:{self.snap_port}/snapshot/{DEV1}/{sid}")
        jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
        self.assertEqual(self.upload(url, jpeg), (201, {"device": DEV1, "session_id": sid, "file": "1.jpg", "bytes": len(jpeg)}))
        mp = (b"--B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cam2.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
              + b"\xff\xd8\xff\xe1second image" + b"\r\n--B0--\r\n")
        st, _ = self.upload(url, b"GIF89a....")
        self.assertEqual(st, 415)
        self.assertEqual(self.upload(url, mp, "multipart/form-data; boundary=B0")[0], 201)
        self.assertEqual(self.upload(url, jpeg)[0], 409)  # SnapNum 2: the session is full
        self.assertEqual(self.upload(f"http://127.0.0.1:{self.snap_port}/snapshot/{DEV1}/{'f' * 32}", jpeg)[0], 404)
        self.assertEqual(self.upload(url, jpeg, method="GET")[0], 405)
        lst = self.cmd("snapshots", {"id": DEV1})["snapshots"]
        self.assertEqual(sorted(x["file"] for x in lst), ["1.jpg", "cam2.jpg"])
        got = self.cmd("snapshot", {"id": DEV1, "session_id": sid, "file": "1.jpg"})
        self.assertEqual(base64.b64decode(got["jpeg_base64"]), jpeg)
        got = self.cmd("snapshot", {"id": DEV1, "session_id": sid, "file": "cam2.jpg"})
        self.assertEqual(base64.b64decode(got["jpeg_base64"]), b"\xff\xd8\xff\xe1second image")
        self.cmd("snapshot", {"id": DEV1, "session_id": sid, "file": "9.jpg"}, expect=404)
        self.assertEqual(self.metric("gb_snapshots_stored_total"), 2)
        self.j.wait_for_log(r"snapshot upload POST from .* refused 415 \(not a JPEG image\)")


if __name__ == "__main__":
    main()
