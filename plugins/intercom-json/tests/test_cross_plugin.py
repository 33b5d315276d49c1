"""Across plugins: routing goes through the core, so a call_req whose dest belongs to another
plugin goes there, and a call from another plugin to an intercom: address rings the family's
screens. call-peer-a/-b (tests/plugins/call-peer) stand in for the other plugins; the stream
addresses travel in the neutral media description (jn_media_stream.addr/params)."""
from intercom_env import (BoxTest, INNER_SCREEN, OUTER_BOX, main, wait_until)

A, B = "call-peer-a", "call-peer-b"


def params(p):
    out = {}
    for part in p.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v.replace("%3B", ";").replace("%3D", "=").replace("%25", "%")
    return out


class CrossPluginTest(BoxTest):
    def start(self, routes=None, b="answer"):
        return self.start_box(plugins={A: {"on_offer": "ring"}, B: {"on_offer": b}}, routes=routes)

    def events(self, j, plugin, type=None):
        return [e for e in j.cmd(plugin, "events") if type is None or e["type"] == type]

    def test_call_req_to_another_plugins_address(self):
        j = self.start()
        s = self.screen(j, "screen-1")
        s.call("x1", src={"id": "101", "audio_stream_id": "56780"}, dest={"id": "peerb:desk", "video_stream_id": "567801"})
        acc = s.expect("call_accept", sid="x1")["values"]
        # call-peer-b answered with PCMA at 127.0.0.1:40000: the screen is told where that is.
        self.assertEqual(acc["dest"]["audiostreamid"], "rtp://127.0.0.1:40000")
        offer = self.events(j, B, "offer")[0]
        self.assertEqual((offer["from"], offer["to"]), ("intercom:room/101", "peerb:desk"))
        streams = {(m["kind"], params(m["params"]).get("side")): m for m in offer["media"]}
        # The screen's stream ids, as the community network reaches them (the box's SRS).
        audio = streams[("audio", "src")]
        self.assertEqual(audio["addr"], "11.0.1.22:954")
        self.assertEqual(params(audio["params"])["url"], "http://11.0.1.22:954/stream/56780")
        self.assertEqual(params(audio["params"])["id"], "56780")
        self.assertEqual(params(streams[("video", "dest")]["params"])["url"], "http://11.0.1.22:954/stream/567801")
        data = [m for m in offer["media"] if m["kind"] == "data"][0]
        self.assertEqual((data["format"], params(data["params"])["sid"], params(data["params"])["src_type"]),
                         ("intercom-call", "x1", str(INNER_SCREEN)))

        s.open_door("x1")
        wait_until(lambda: self.events(j, B, "info"), what="open-door info at call-peer-b")
        self.assertEqual(self.events(j, B, "info")[0]["info_type"], "open-door")
        s.end("x1")
        wait_until(lambda: self.events(j, B, "end"), what="end at call-peer-b")

    def test_another_plugin_calls_a_family(self):
        j = self.start()
        s1, s2 = self.screen(j, "screen-1"), self.screen(j, "screen-2")
        r = j.cmd(A, "originate", {"from": "peera:gate", "to": "intercom:room/101"})
        self.assertEqual(r["status"], 0)
        leg = r["leg"]
        reqs = [s.expect("call_req") for s in (s1, s2)]
        sid = reqs[0]["values"]["sid"]
        for req in reqs:
            v = req["values"]
            self.assertEqual((v["src"]["id"], v["src"]["type"], v["dest"]["id"]), ("peera:gate", OUTER_BOX, "101"))
            # call-peer-a offered PCMA at 127.0.0.1:30001: a foreign stream stays as it is.
            self.assertTrue(v["src"]["audiostreamid"].startswith("rtp://127.0.0.1:"), v)
        wait_until(lambda: self.events(j, A, "ringing"), what="ringing at call-peer-a")
        s1.accept(sid, dest={"audio_stream_id": "56781"})
        s2.expect("call_end", sid=sid)
        answer = wait_until(lambda: self.events(j, A, "answer"), what="answer at call-peer-a")[0]
        urls = {params(m["params"]).get("url") for m in answer["media"] if m["kind"] != "data"}
        self.assertIn("http://11.0.1.22:954/stream/56781", urls)
        self.assertEqual(answer["target"], "intercom:room/101")
        s1.open_door(sid)
        wait_until(lambda: self.events(j, A, "info"), what="open-door at call-peer-a")
        j.cmd(A, "send", {"leg": leg, "type": "end", "reason": "done"})
        self.assertEqual(s1.expect("call_end", sid=sid)["values"]["reason"], "done")
        wait_until(lambda: self.calls(j) == [], what="call gone")

    def test_static_routes_reach_and_leave_the_intercom_namespace(self):
        routes = [{"match": "prefix", "pattern": "room:", "targets": ["intercom:room/${rest}"]},
                  {"match": "exact", "pattern": "intercom:room/900", "targets": ["peerb:concierge"]}]
        j = self.start(routes=routes, b="ring")
        s = self.screen(j, "screen-1")
        r = j.cmd(A, "originate", {"from": "peera:gate", "to": "room:101"})
        self.assertEqual(r["status"], 0)
        sid = s.expect("call_req")["values"]["sid"]
        s.reject(sid, "busy")
        rej = wait_until(lambda: self.events(j, A, "reject"), what="reject at call-peer-a")[0]
        self.assertEqual((rej["code"], rej["reason"]), (486, "busy"))
        # dest 900 is sent to call-peer-b by a conf route, not to a family.
        door = self.outer_box(j)
        door.call("c9", dest={"id": "900"})
        offer = wait_until(lambda: self.events(j, B, "offer"), what="offer at call-peer-b")[0]
        self.assertEqual((offer["to"], offer["target"]), ("intercom:room/900", "peerb:concierge"))
        door.end("c9")
        wait_until(lambda: self.events(j, B, "end"), what="cancel at call-peer-b")
        self.assertEqual(self.box_calls(j), [])



if __name__ == "__main__":
    main()
