"""Section 5 of the document: the seven caller/callee/stream-server combinations and the
stream-address rewriting between the home network (screens) and the community network (door
units, property apps). The box in these tests: home 192.168.1.22, community 11.0.1.22, SRS on
954 under /stream/, center stream server http://11.0.0.10:954/stream/.

What the box does (plugin README, "Stream addresses"):
  - a screen is told bare stream ids (it prefixes its own home-network address R);
  - a door unit / property app is told full URLs on the box's community address (cases 1-4),
    on the center server (case 5, only other boxes see those), or the caller's own server
    untouched (cases 6, 7);
  - every spelling of the stream-id fields is accepted; the box writes audiostreamid/videostreamid.
"""
from intercom_env import (BoxTest, CENTER, INNER_SCREEN, OUTER_BOX, PROPERTY_APP, OuterBox, PropertyApp, main)

BOX = "http://11.0.1.22:954/stream/"


class StreamTest(BoxTest):
    def box_call(self, j, sid):
        calls = [c for c in self.box_calls(j) if c["a_side"] and c["caller_sid"] == sid]
        self.assertEqual(len(calls), 1, self.box_calls(j))
        return calls[0]

    def case_screen_calls_community(self, j, callee_cls, callee_type, device):
        """Cases 1 and 3: a screen calls a door unit / property app (the callee is dialled by
        dest.ip/port, as the document's case 1 fills it)."""
        s = self.screen(j, f"screen-{device}")
        listener = self.dial_in(callee_cls, device)
        # 室内屏填写: src.id (room), src.audio_stream_id, dest.ip/port, dest.video_stream_id
        s.call("c1", src={"id": "101", "audio_stream_id": "56780"},
               dest={"ip": "127.0.0.1", "port": listener.port, "type": callee_type, "video_stream_id": "567801"})
        callee = listener.accept()
        self.peers.append(callee)
        v = callee.expect("call_req", sid="c1")["values"]
        # 室内主机填写: both become addresses the community side reaches, on the box's SRS.
        self.assertEqual(v["src"]["audiostreamid"], BOX + "56780")
        self.assertEqual(v["dest"]["videostreamid"], BOX + "567801")
        self.assertNotIn("audio_stream_id", v["src"])
        self.assertEqual(self.box_call(j, "c1")["server"], "box")
        callee.accept("c1")
        a = s.expect("call_accept", sid="c1")["values"]
        # The screen is told ids: it pushes audio to R/56780 and pulls video from R/567801.
        self.assertEqual(a["src"], {"audiostreamid": "56780"})
        self.assertEqual(a["dest"], {"videostreamid": "567801"})
        s.end("c1")
        callee.expect("call_end", sid="c1")

    def case_community_calls_screen(self, j, caller):
        """Cases 2 and 4: a door unit / property app calls a family."""
        s = self.screen(j, f"screen-for-{caller.name}")
        # 室外机填写: src.id, src.ip, src.video_stream_id, dest.audio_tream_id (the document's spelling)
        caller.send("call_req", {"sid": "c2", "src": {"id": "2-1-1", "type": caller.type, "ip": "11.0.1.9",
                                                     "video_stream_id": "56780"},
                                 "dest": {"id": "101", "type": INNER_SCREEN, "audio_tream_id": "56781"}})
        v = s.expect("call_req", sid="c2")["values"]
        self.assertEqual(v["src"]["videostreamid"], "56780")   # ids for the screen, one spelling
        self.assertEqual(v["dest"]["audiostreamid"], "56781")
        self.assertEqual((v["src"]["id"], v["src"]["ip"]), ("2-1-1", "11.0.1.9"))
        s.accept("c2")
        a = caller.expect("call_accept", sid="c2")["values"]
        # The caller pushes its video to the box's SRS and pulls the screen's audio from it.
        self.assertEqual(a["src"], {"videostreamid": BOX + "56780"})
        self.assertEqual(a["dest"], {"audiostreamid": BOX + "56781"})
        self.assertEqual(self.box_call(j, "c2")["server"], "box")
        caller.end("c2")
        s.expect("call_end", sid="c2")

    def test_case_1_screen_calls_door_unit(self):
        j = self.start_box(dial_out=True)
        self.case_screen_calls_community(j, OuterBox, OUTER_BOX, "door-1")

    def test_case_2_door_unit_calls_screen(self):
        j = self.start_box()
        self.case_community_calls_screen(j, self.outer_box(j, "door-2"))

    def test_case_3_screen_calls_property_app(self):
        j = self.start_box(dial_out=True)
        self.case_screen_calls_community(j, PropertyApp, PROPERTY_APP, "app-3")

    def test_case_4_property_app_calls_screen(self):
        j = self.start_box()
        self.case_community_calls_screen(j, self.prop_app(j, "app-4"))

    def test_case_5_screen_calls_screen_through_the_center_server(self):
        j = self.start_box()
        a = self.screen(j, "screen-a", "101")
        b = self.screen(j, "screen-b", "102")
        a.call("c5", src={"id": "101", "audio_stream_id": "56780"},
               dest={"id": "102", "type": INNER_SCREEN, "audio_stream_id": "56781"})
        v = b.expect("call_req", sid="c5")["values"]
        # Both screens only ever see ids: they push and pull at R, the box's NAT forwards to S.
        self.assertEqual(v["src"]["audiostreamid"], "56780")
        self.assertEqual(v["dest"]["audiostreamid"], "56781")
        # The neutral description (what other plugins see) names the center stream server.
        c = self.box_call(j, "c5")
        self.assertEqual(c["server"], "center")
        self.assertEqual(c["src"]["audio"], CENTER + "56780")
        self.assertEqual(c["dest"]["audio"], CENTER + "56781")
        b.accept("c5")
        acc = a.expect("call_accept", sid="c5")["values"]
        self.assertEqual((acc["src"], acc["dest"]), ({"audiostreamid": "56780"}, {"audiostreamid": "56781"}))
        a.expect_none("call_req")  # the calling screen is not rung by its own call
        b.end("c5")
        a.expect("call_end", sid="c5")

    def test_case_6_door_unit_calls_property_app(self):
        j = self.start_box()
        door = self.outer_box(j, "door-6")
        app = self.prop_app(j, "app-6")
        # 室外机启动本地推流服务S: every address is on the door unit's own server, untouched.
        door.call("c6", src={"id": "2-1-1", "video_stream_id": "http://11.0.11.1:954/stream/56780"},
                  dest={"id": "app-6", "type": PROPERTY_APP, "video_stream_id": "http://11.0.11.1:954/stream/56782",
                        "audio_stream_id": "http://11.0.11.1:954/stream/56781"})
        v = app.expect("call_req", sid="c6")["values"]
        self.assertEqual(v["src"]["videostreamid"], "http://11.0.11.1:954/stream/56780")
        self.assertEqual(v["dest"]["videostreamid"], "http://11.0.11.1:954/stream/56782")
        self.assertEqual(v["dest"]["audiostreamid"], "http://11.0.11.1:954/stream/56781")
        self.assertEqual(self.box_call(j, "c6")["server"], "caller")
        app.accept("c6")
        a = door.expect("call_accept", sid="c6")["values"]
        self.assertEqual(a["src"]["videostreamid"], "http://11.0.11.1:954/stream/56780")
        app.end("c6")
        door.expect("call_end", sid="c6")

    def test_case_7_property_app_calls_door_unit(self):
        j = self.start_box()
        app = self.prop_app(j, "app-7")
        door = self.outer_box(j, "door-7")
        app.call("c7", src={"id": "app-7", "video_stream_id": "http://11.0.1.3:954/stream/56780",
                            "audiostreamid": "http://11.0.1.3:954/stream/56781"},
                 dest={"id": "door-7", "type": OUTER_BOX, "videostreamid": "http://11.0.1.3:954/stream/56782"})
        v = door.expect("call_req", sid="c7")["values"]
        self.assertEqual(v["src"], {"id": "app-7", "type": PROPERTY_APP, "ip": "127.0.0.1",
                                    "videostreamid": "http://11.0.1.3:954/stream/56780",
                                    "audiostreamid": "http://11.0.1.3:954/stream/56781"})
        self.assertEqual(v["dest"]["videostreamid"], "http://11.0.1.3:954/stream/56782")
        door.accept("c7")
        app.expect("call_accept", sid="c7")
        door.end("c7")
        app.expect("call_end", sid="c7")

    def test_home_network_urls_never_reach_the_community_side(self):
        """A screen that sends a full URL on the box's home address: the door unit gets it on
        the community address (it cannot reach 192.168.1.22)."""
        j = self.start_box()
        s = self.screen(j, "screen-url")
        door = self.outer_box(j, "door-url")
        s.call("u1", src={"audiostreamid": "http://192.168.1.22:954/stream/777"},
               dest={"id": "door-url", "type": OUTER_BOX})
        v = door.expect("call_req", sid="u1")["values"]
        self.assertEqual(v["src"]["audiostreamid"], BOX + "777")
        door.accept("u1", dest={"video_stream_id": "888"})
        a = s.expect("call_accept", sid="u1")["values"]
        self.assertEqual(a, {"sid": "u1", "src": {"audiostreamid": "777"}, "dest": {"videostreamid": "888"}})
        self.assertEqual(self.box_call(j, "u1")["dest"]["video"], BOX + "888")


if __name__ == "__main__":
    main()
