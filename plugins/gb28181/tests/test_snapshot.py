"""gb28181 snapshots (图像抓拍), the document's flow end to end with the simulated device:
1. the platform sends DeviceConfig/SnapShotConfig (SnapNum, Interval, UploadURL, SessionID);
2-3. the device answers 200 and its Response; 4. it uploads its JPEGs to UploadURL over HTTP
(the platform's endpoint on the core's HTTP service, conf snapshot_listen); 5. it sends
Notify/UploadSnapShotFinished with the same SessionID -> 200 and the event gb/snapshot/<device>
(seen through io-echo). The images are then listed and fetched through the admin API, byte for
byte what the device sent; as a plain image/jpeg body and as a multipart form upload."""
import base64
import json

import gb_device_sim as gb
from gb_env import DEV1, DEV2, GbTest, free_port
from junction_test import main
from ws_client import WsClient


class SnapshotFlowTest(GbTest):
    def setUp(self):
        self.snap_port, ws_port = free_port(), free_port()
        self.conf_over = {"snapshot_listen": f"127.0.0.1:{self.snap_port}"}
        self.plugins_extra = {"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}", "http_listen": f"127.0.0.1:{ws_port}",
                                          "events_topic": "gb/snapshot/"}}
        super().setUp()
        self.ws = WsClient("127.0.0.1", ws_port, "/ws")
        self.addCleanup(self.ws.close)

    def snapshot_flow(self, dev_id, form, **kw):
        d = self.registered_device(dev_id, snapshot_upload=True, snapshot_form=form, **kw)
        r = self.cmd("config", {"id": dev_id, "type": "SnapShotConfig", "snap_num": 3, "interval_s": 1})
        self.assertEqual(r["outcome"], "ok", r)
        cfg = d.wait("config", name="SnapShotConfig")["value"]
        sid = cfg["SessionID"]
        self.assertEqual((cfg["SnapNum"], cfg["Interval"]), ("3", "1"))
        self.assertEqual(cfg["UploadURL"], f"http://127.0.0.1:{self.snap_port}/snapshot/{dev_id}/{sid}")
        fin = d.wait("snapshot_finished", timeout=30)
        self.assertEqual((fin["status"], fin["session_id"]), (200, sid))
        ups = d.find("snapshot_uploaded")
        self.assertEqual([u["status"] for u in ups], [201, 201, 201])
        self.assertEqual(fin["file_ids"], [u["file_id"] for u in ups])
        op, payload = self.ws.recv()
        topic, body = payload.decode().split(":", 2)[1:]
        ev = json.loads(body)
        self.assertEqual(topic, f"gb/snapshot/{dev_id}")
        self.assertEqual((ev["device"], ev["session_id"], ev["files"]), (dev_id, sid, fin["file_ids"]))
        stored = self.cmd("snapshots", {"id": dev_id, "session_id": sid})["snapshots"]
        self.assertEqual(len(stored), 3)
        for i, up in enumerate(ups):
            image = gb.Device.jpeg(f"{dev_id} {sid} {i}")
            self.assertEqual(up["bytes"], len(image))
            name = f"{up['file_id']}.jpg" if form == "multipart" else f"{i + 1}.jpg"
            got = self.cmd("snapshot", {"id": dev_id, "session_id": sid, "file": name})
            self.assertEqual(base64.b64decode(got["jpeg_base64"]), image)
        return d, sid

    def test_device_uploads_its_jpegs_then_reports_them(self):
        self.snapshot_flow(DEV1, "raw")
        self.assertEqual(self.metric("gb_snapshots_stored_total"), 3)

    def test_multipart_upload_named_by_the_devices_file_ids_over_tcp(self):
        self.snapshot_flow(DEV2, "multipart", transport="tcp")


if __name__ == "__main__":
    main()
