"""gb28181 device control (设备控制) through the admin API, verified by the device simulator:
- PTZ / FI / preset / cruise / scan codes: the device checks each PTZCmd (A5 header, check nibble,
  the sum of bytes 1-7) and records what it asks for; the document's C++ sample is the truth
  (left = 0x02, down = 0x04, not the table's repeated row);
- commands without a Response (无应答: PTZ, TeleBoot, IFrame) end with the MESSAGE's 200;
- commands with a Response (有应答: record, guard, alarm reset, home position, DeviceConfig)
  wait for it: Result OK -> ok, Result ERROR -> device_error, nothing -> timeout;
- DeviceConfig BasicParam and SnapShotConfig (SessionID 32-128 characters, checked by the device)."""
from gb_env import DEV1, NAME, GbTest
from junction_test import main


def result_of(data):
    """The device's <Result> in a control's admin reply (commands.hpp documents "result"; the
    implementation passes the Response's fields through, "Result")."""
    return data.get("result", data.get("Result"))


class ControlTest(GbTest):
    def setUp(self):
        super().setUp()
        self.d = self.registered_device(DEV1)

    def control(self, verb, expect=200, **kw):
        status, body = self.j.request("POST", f"/api/v1/plugins/{NAME}/cmd/{verb}", dict({"id": DEV1}, **kw))
        self.assertEqual(status, expect, body)
        return body

    def ptz(self, verb="ptz", **kw):
        mark = self.d.mark()
        r = self.control(verb, **kw)
        self.assertEqual((r["outcome"], r["sip_status"]), ("ok", 200), r)
        ev = self.d.wait_ptz(since=mark)
        self.assertEqual(ev["sn"], r["sn"])
        return ev

    def test_ptz_directions_speeds_and_zoom_reach_the_device_with_a_valid_checksum(self):
        ev = self.ptz(tilt=1, speed=0xFA)
        self.assertEqual(ev["hex"], "A50F010800FA00B7")  # the document's "up" sample, byte for byte
        ev = self.ptz(pan=-1, speed=0xFA)
        self.assertEqual((ev["command"], ev["pan"], ev["pan_speed"]), (0x02, "left", 0xFA))
        ev = self.ptz(tilt=-1, tilt_speed=0x40)
        self.assertEqual((ev["command"], ev["tilt"], ev["tilt_speed"]), (0x04, "down", 0x40))
        ev = self.ptz(pan=1, tilt=1, pan_speed=10, tilt_speed=20)
        self.assertEqual((ev["command"], ev["pan"], ev["tilt"], ev["pan_speed"], ev["tilt_speed"]), (0x09, "right", "up", 10, 20))
        ev = self.ptz(zoom=1, zoom_speed=10)
        self.assertEqual((ev["hex"], ev["zoom"]), ("A50F01100000A065", "in"))  # the table's zoom-in row
        ev = self.ptz(zoom=-1, zoom_speed=3)
        self.assertEqual((ev["zoom"], ev["zoom_speed"]), ("out", 3))
        ev = self.ptz(stop=True)
        self.assertEqual(ev["hex"], "A50F0100000000B5")
        ev = self.ptz(code="A50F0106FAFA00AF")  # the table's left-down row, passed through
        self.assertEqual((ev["pan"], ev["tilt"]), ("left", "down"))
        self.assertEqual(self.d.find("ptz_refused"), [])
        # a code with a wrong checksum is refused by the platform before anything is sent
        n = len(self.d.find("message"))
        self.assertIn("checksum", self.control("ptz", expect=400, code="A50F010800FA00B8")["error"])
        self.assertEqual(len(self.d.find("message")), n)

    def test_fi_preset_cruise_scan(self):
        ev = self.ptz("fi", iris=1, iris_speed=0x30)
        self.assertEqual((ev["action"], ev["iris"], ev["iris_speed"]), ("fi", "open", 0x30))
        ev = self.ptz("fi", focus=-1, focus_speed=0x20)
        self.assertEqual((ev["action"], ev["focus"], ev["focus_speed"]), ("fi", "near", 0x20))
        for op, action in (("set", "preset_set"), ("call", "preset_call"), ("delete", "preset_delete")):
            ev = self.ptz("preset", op=op, index=7)
            self.assertEqual((ev["action"], ev["data2"]), (action, 7))
        self.control("preset", expect=400, op="call", index=0)
        ev = self.ptz("cruise", op="add", group=2, value=5)
        self.assertEqual((ev["action"], ev["data1"], ev["data2"]), ("cruise_add", 2, 5))
        ev = self.ptz("cruise", op="start", group=2)
        self.assertEqual((ev["action"], ev["data1"]), ("cruise_start", 2))
        ev = self.ptz("scan", op="start", group=1)
        self.assertEqual((ev["action"], ev["data1"], ev["data2"]), ("scan", 1, 0))
        ev = self.ptz("scan", op="speed", group=1, value=0x123)
        self.assertEqual((ev["action"], ev["data2"], ev["data3"]), ("scan_speed", 0x23, 0x1))

    def test_commands_without_a_response_end_with_the_messages_200(self):
        for verb, name, value in (("teleboot", "TeleBoot", "Boot"), ("iframe", None, "Send")):
            mark = self.d.mark()
            r = self.control(verb)
            self.assertEqual((r["outcome"], r["sip_status"]), ("ok", 200), r)
            ev = self.d.wait("control", since=mark)
            self.assertEqual(ev["value"], value)
            if name:
                self.assertEqual(ev["name"], name)
            self.assertNotIn("Result", r["data"] or {})  # ended by the 200, not by a Response

    def test_commands_with_a_response_wait_for_it(self):
        cases = [("record", {"start": True}, "RecordCmd", "Record"), ("record", {"start": False}, "RecordCmd", "StopRecord"),
                 ("guard", {"set": True}, "GuardCmd", "SetGuard"), ("guard", {"set": False}, "GuardCmd", "ResetGuard"),
                 ("alarm_reset", {}, "AlarmCmd", "ResetAlarm")]
        for verb, args, name, value in cases:
            mark = self.d.mark()
            r = self.control(verb, **args)
            self.assertEqual(r["outcome"], "ok", r)
            self.assertEqual(result_of(r["data"]), "OK")
            ev = self.d.wait("control", since=mark, name=name)
            self.assertEqual((ev["value"], ev["sn"]), (value, r["sn"]))
            self.assertEqual(self.d.wait("response_sent", since=mark)["cmd"], "DeviceControl")
        mark = self.d.mark()
        r = self.control("home", enabled=True, reset_time_s=30, preset=3)
        self.assertEqual(r["outcome"], "ok", r)
        ev = self.d.wait("control", since=mark, name="HomePosition")
        self.assertEqual(ev["value"], {"Enabled": "1", "ResetTime": "30", "PresetIndex": "3"})

    def test_device_error_and_a_missing_response(self):
        self.d.response_result = "ERROR"
        r = self.control("guard", expect=502, set=True)
        self.assertEqual(r["outcome"], "device_error", r)
        self.d.response_result = "OK"
        self.d.silent.add("DeviceControl")
        mark = self.d.mark()
        r = self.control("record", expect=504, start=True)
        self.assertEqual(r["outcome"], "timeout", r)
        self.assertEqual(self.d.wait("control", since=mark)["name"], "RecordCmd")  # it got there; no Response came

    def test_device_config_basic_param_and_snapshot(self):
        mark = self.d.mark()
        r = self.control("config", type="BasicParam", name="大门 Camera", expiration=3600, heartbeat_interval=30, heartbeat_count=3)
        self.assertEqual((r["outcome"], result_of(r["data"])), ("ok", "OK"), r)
        ev = self.d.wait("config", since=mark, name="BasicParam")
        self.assertEqual(ev["value"]["Name"], "大门 Camera")
        self.assertEqual((ev["value"]["Expiration"], ev["value"]["HeartBeatInterval"], ev["value"]["HeartBeatCount"]), ("3600", "30", "3"))
        sid = "snap-" + "0123456789abcdef" * 2
        mark = self.d.mark()
        r = self.control("config", type="SnapShotConfig", snap_num=3, interval_s=2, upload_url="http://127.0.0.1:1/upload", session_id=sid)
        self.assertEqual(r["outcome"], "ok", r)
        ev = self.d.wait("config", since=mark, name="SnapShotConfig")
        self.assertEqual(ev["value"], {"SnapNum": "3", "Interval": "2", "UploadURL": "http://127.0.0.1:1/upload", "SessionID": sid})
        # a SessionID the document does not allow never leaves the platform
        n = len(self.d.find("message"))
        self.control("config", expect=400, type="SnapShotConfig", snap_num=1, interval_s=1, upload_url="http://127.0.0.1:1/u",
                     session_id="short")
        self.assertEqual(len(self.d.find("message")), n)


if __name__ == "__main__":
    main()
