"""verto-ws conferences, signalling (Python Verto clients, media "none"): a dialled number routed to
conference:<n>-<domain>@<domain>, channelPvtData after the answer, LiveArray bootstrap -> bootObj
then add / modify / del with consecutive wireSerno, conf-control from moderators only (mute, kick,
lock), chat to every member, layout-info on the info channel, cman bootstrap from a socket with no
call (object-form bootObj with node_uuid, PIN moderators), a re-attached page gets its pvtData and
a fresh bootObj, an intercom-json screen's call as a member, hot reload keeps members and serials.
test_conference_media.py proves the mixed audio with browsers."""
import json
import os
import re
import sys

from verto_env import PLUGIN, VertoTest, fake_sdp, main, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "intercom-json", "tests"))

DOMAIN = "test.local"
ROOM = f"3000-{DOMAIN}"
LA = f"conference-liveArray.{ROOM}@{DOMAIN}"
MOD = f"conference-mod.{ROOM}@{DOMAIN}"
CHAT = f"conference-chat.{ROOM}@{DOMAIN}"
INFO = f"conference-info.{ROOM}@{DOMAIN}"
ROUTES = [{"match": "regex", "pattern": r"^verto:(3\d{3})$", "targets": [f"conference:$1-{DOMAIN}@{DOMAIN}"]}]
CONFERENCE = {"domain": DOMAIN, "moderators": ["1001"], "moderator_pin": "4321", "max_members": 4}


def la_event(c, action, pred=None):
    """The next verto.event on the room's laChannel with data.action == action."""
    return c.wait_request("verto.event", lambda p: p.get("eventChannel") == LA and isinstance(p.get("data"), dict)
                          and p["data"].get("action") == action and (pred is None or pred(p["data"])))["data"]


def pvt(c, action="conference-liveArray-join"):
    return c.wait_request("verto.event", lambda p: p.get("eventType") == "channelPvtData" and p["pvtData"]["action"] == action)


class Conference(VertoTest):
    users = {"1001": "pw1001", "1002": "pw1002", "1003": "pw1003"}

    def start_conf(self, plugins=None, **conf):
        return self.start(plugins=plugins, routes=ROUTES, conference=dict(CONFERENCE, **conf))

    def member(self, user, number="3000"):
        """A logged-in client in the room: its call answered, its pvtData, its channels subscribed."""
        c = self.logged_in(user)
        call_id, r = c.invite(number, name="Name" + user)
        self.assertEqual(r["result"]["message"], "CALL CREATED")
        self.assertEqual(c.wait_request("verto.answer")["callID"], call_id)
        p = pvt(c)
        self.assertEqual(p["eventChannel"], c.sessid)
        c.call_id, c.pvt = call_id, p["pvtData"]
        chans = [LA, CHAT, INFO] + ([MOD] if "modChannel" in p["pvtData"] else [])
        r = c.result("verto.subscribe", {"eventChannel": chans})
        self.assertEqual(sorted(r["subscribedChannels"]), sorted(chans))
        return c

    def bootstrap(self, c):
        r = c.result("verto.broadcast", {"eventChannel": LA, "data": {"liveArray": {
            "command": "bootstrap", "context": LA, "name": ROOM, "obj": {}}}})
        self.assertEqual(r["delivered"], 1)
        return la_event(c, "bootObj")

    def test_join_livearray_moderation_chat(self):
        self.start_conf()
        a = self.member("1001")
        pd = a.pvt
        # the document's pvtData: a moderator gets the mod channel
        self.assertEqual((pd["callID"], pd["laChannel"], pd["laName"], pd["role"], pd["chatID"], pd["modChannel"], pd["chatChannel"],
                          pd["infoChannel"], pd["canvasCount"]),
                         (a.call_id, LA, ROOM, "moderator", f"conf+{ROOM}@{DOMAIN}", MOD, CHAT, INFO, 1))
        self.assertEqual(pd["conferenceMemberID"], "1")
        # layout-info on the info channel once subscribed
        li = a.wait_request("verto.event", lambda p: p.get("eventChannel") == INFO)
        self.assertEqual(li["eventData"]["contentType"], "layout-info")
        self.assertEqual(li["eventData"]["canvasInfo"]["layoutName"], "1x1")
        boot = self.bootstrap(a)
        self.assertEqual((boot["name"], boot["wireSerno"]), (ROOM, -1))
        self.assertEqual(len(boot["data"]), 1)
        key, m = boot["data"][0]
        self.assertEqual(key, a.call_id)
        self.assertEqual(m[:4], ["0001", "1001", "Name1001", ""])  # media "none": no codec
        st = json.loads(m[4])
        self.assertEqual(st["audio"], {"muted": False, "deaf": False, "onHold": False, "talking": False, "floor": False, "energyScore": 0})
        self.assertTrue(st["isModerator"])
        self.assertEqual((m[5], m[6]), ({}, None))

        b = self.member("1002")
        self.assertEqual(b.pvt["role"], "participant")
        self.assertNotIn("modChannel", b.pvt)
        add = la_event(a, "add")
        # a's own add was wireSerno 1 (before it subscribed): b's is 2, at index 1
        self.assertEqual((add["hashKey"], add["wireSerno"], add["arrIndex"], add["data"][0]), (b.call_id, 2, 1, "0002"))
        self.assertFalse(json.loads(add["data"][4])["isModerator"])
        bb = self.bootstrap(b)
        self.assertEqual([k for k, _ in bb["data"]], [a.call_id, b.call_id])
        # a participant may not use the mod channel: not subscribed, command refused
        self.assertEqual(b.result("verto.subscribe", {"eventChannel": MOD})["unauthorizedChannels"], [MOD])
        r = b.call("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "kick", "id": "1"}})
        self.assertEqual(r["error"]["code"], -32001)
        self.j.wait_for_log(r"may not send on conference-mod\.3000")
        # a non-member cannot listen either
        c = self.logged_in("1003")
        self.assertEqual(c.result("verto.subscribe", {"eventChannel": [LA, CHAT]})["unauthorizedChannels"], [LA, CHAT])

        # moderator mutes b: answered, and a modify on every member's laChannel
        r = a.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "mute", "id": "0002"}})
        self.assertEqual(r["response"], "OK mute 0002")
        for cl in (a, b):
            mod = la_event(cl, "modify")
            self.assertEqual((mod["hashKey"], mod["wireSerno"]), (b.call_id, 3))
            self.assertTrue(json.loads(mod["data"][4])["audio"]["muted"])
        self.assertEqual(a.wait_request("verto.event", lambda p: p.get("eventChannel") == MOD)["data"]["response"], "OK mute 0002")
        r = a.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "unmute", "id": 2}})
        self.assertEqual(la_event(b, "modify")["wireSerno"], 4)
        self.assertFalse(json.loads(la_event(a, "modify")["data"][4])["audio"]["muted"])
        # unknown command / member: clear errors
        self.assertEqual(a.call("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "explode", "id": 2}})["error"]["code"], -32602)
        self.assertEqual(a.call("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "mute", "id": 99}})["error"]["code"], -32602)

        # chat reaches every member
        r = b.result("verto.broadcast", {"eventChannel": CHAT, "data": {"action": "send", "message": "hello room", "type": "message"}})
        self.assertEqual(r["delivered"], 2)
        for cl in (a, b):
            ch = cl.wait_request("verto.event", lambda p: p.get("eventChannel") == CHAT)["data"]
            self.assertEqual((ch["message"], ch["from"], ch["fromDisplay"], ch["direction"]), ("hello room", "1002", "Name1002", "outbound"))

        # lock: nobody else joins
        a.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "lock"}})
        call_id, _ = c.invite("3000")
        self.assertEqual(c.wait_request("verto.bye")["callID"], call_id)
        a.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "unlock"}})

        # kick: b's call ends (verto.bye), b's socket gets the part pvtData, the others a del
        r = a.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "kick", "id": "2"}})
        self.assertEqual(r["response"], "OK kicked 0002")
        self.assertEqual(b.wait_request("verto.bye")["callID"], b.call_id)
        self.assertEqual(pvt(b, "conference-liveArray-part")["pvtData"]["laChannel"], LA)
        d = la_event(a, "del")
        self.assertEqual((d["hashKey"], d["wireSerno"]), (b.call_id, 5))
        # the last member leaves: the room is destroyed
        self.assertEqual(len(self.j.cmd(PLUGIN, "conferences")["conferences"][0]["members"]), 1)
        a.bye(a.call_id)
        wait_until(lambda: self.j.cmd(PLUGIN, "conferences")["conferences"] == [], what="room destroyed")
        self.j.wait_for_log(r"conference 3000-test\.local destroyed")

    def test_cman_bootstrap_without_a_call(self):
        self.start_conf()
        a = self.member("1001")
        b = self.member("1002")
        # a socket with no call: pvtData + the object-form bootObj (node_uuid added)
        w = self.logged_in("1003")
        r = w.result("verto.broadcast", {"eventChannel": "cman.bootstrap", "data": {"conferenceName": "3000", "domain": DOMAIN}})
        self.assertEqual(r["laChannel"], LA)
        pd = pvt(w)["pvtData"]
        self.assertEqual((pd["laChannel"], pd["laName"], pd["role"]), (LA, ROOM, "participant"))
        self.assertNotIn("modChannel", pd)
        boot = w.wait_request("verto.event", lambda p: p.get("eventChannel") == LA)["data"]
        self.assertEqual((boot["action"], boot["wireSerno"], boot["name"]), ("bootObj", -1, ROOM))
        self.assertEqual([k for k, _ in boot["data"]], [a.call_id, b.call_id])
        obj = boot["data"][1][1]
        self.assertEqual((obj["memberID"], obj["cidNumber"], obj["cidName"], obj["uuid"], obj["email"]), ("2", "1002", "Name1002", b.call_id, ""))
        self.assertEqual(obj["status"]["audio"]["muted"], False)
        self.assertEqual(obj["node_uuid"], r["node_uuid"])
        self.assertRegex(obj["node_uuid"], r"^[0-9a-f-]{36}$")
        # now allowed on the room's channels (not the mod channel): sees the next change
        r = w.result("verto.subscribe", {"eventChannel": [LA, MOD]})
        self.assertEqual((r["subscribedChannels"], r["unauthorizedChannels"]), ([LA], [MOD]))
        b.bye(b.call_id)
        self.assertEqual(la_event(w, "del")["hashKey"], b.call_id)
        # with the profile's PIN, a moderator: the mod channel, and commands work
        p = self.logged_in("1002")
        p.result("verto.broadcast", {"eventChannel": "cman.bootstrap", "data": {"conferenceName": "3000", "domain": DOMAIN, "pin": "4321"}})
        self.assertEqual(pvt(p)["pvtData"]["modChannel"], MOD)
        r = p.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "deaf", "id": "1"}})
        self.assertEqual(r["response"], "OK deaf 0001")
        self.assertTrue(json.loads(la_event(w, "modify")["data"][4])["audio"]["deaf"])
        # a wrong PIN: a participant; bad input: a clear error
        q = self.logged_in("1003")
        q.result("verto.broadcast", {"eventChannel": "cman.bootstrap", "data": {"conferenceName": "3000", "domain": DOMAIN, "pin": "0000"}})
        self.assertEqual(pvt(q)["pvtData"]["role"], "participant")
        self.assertEqual(q.call("verto.broadcast", {"eventChannel": "cman.bootstrap", "data": {"conferenceName": "no spaces"}})["error"]["code"], -32602)

    def test_reattached_page_gets_pvtdata_and_fresh_bootobj(self):
        self.start_conf()
        a = self.member("1001")
        b = self.member("1002")
        la_event(a, "add")
        a.close()
        # the page comes back with its sessid: the call re-attaches, pvtData again, a fresh bootObj
        a2 = self.client(sessid=a.sessid)
        a2.login_ok("1001", "pw1001")
        self.assertEqual(a2.wait_request("verto.attach")["callID"], a.call_id)
        self.assertEqual(pvt(a2)["pvtData"]["callID"], a.call_id)
        a2.result("verto.subscribe", {"eventChannel": [LA]})
        boot = self.bootstrap(a2)
        self.assertEqual([k for k, _ in boot["data"]], [a.call_id, b.call_id])

    def test_hot_reload_keeps_members_and_serials(self):
        self.start_conf()
        a = self.member("1001")
        b = self.member("1002")
        self.assertEqual(la_event(a, "add")["wireSerno"], 2)
        self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.j.wait_for_log(r"restored \d+ connection")
        boot = self.bootstrap(a)
        self.assertEqual([k for k, _ in boot["data"]], [a.call_id, b.call_id])
        # the serial goes on from where it was; moderation still works
        a.result("verto.broadcast", {"eventChannel": MOD, "data": {"application": "conf-control", "command": "mute", "id": "2"}})
        self.assertEqual(la_event(b, "modify")["wireSerno"], 3)
        b.bye(b.call_id)
        self.assertEqual(la_event(a, "del")["wireSerno"], 4)

    def test_full_room_and_bad_names(self):
        self.start_conf(max_members=1)
        a = self.member("1001")
        b = self.logged_in("1002")
        call_id, _ = b.invite("3000")
        self.assertEqual(b.wait_request("verto.bye")["cause"], "USER_BUSY")  # 486 conference full
        self.j.wait_for_log(r"rejected: full")
        call_id, _ = b.invite("conference:bad name")
        self.assertEqual(b.wait_request("verto.bye")["callID"], call_id)
        self.assertEqual(len(self.j.cmd(PLUGIN, "conferences")["conferences"]), 1)
        a.bye(a.call_id)

    def test_media_answer_codec_and_unmixable_caller(self):
        """media = "webrtc" without a browser: the conference answers the caller's Opus (the mixer
        ticks on a media loop); a caller offering only G.722 is refused 488, not joined."""
        self.start(routes=ROUTES, conference=CONFERENCE, media="webrtc", server={"media_loops": 2})
        a = self.logged_in("1001")
        a_call, _ = a.invite("3000", sdp=fake_sdp("opus"))
        ans = a.wait_request("verto.answer")
        self.assertIn("a=rtpmap:111 opus/48000/2", ans["sdp"])
        conf = self.j.cmd(PLUGIN, "conferences")["conferences"][0]
        self.assertEqual(conf["members"][0]["codec"], "opus@48000")
        wait_until(lambda: (self.j.cmd(PLUGIN, "conferences")["conferences"][0]["mixer"] or {}).get("ticks", 0) > 2, what="mixer ticks")
        self.assertIn(self.j.cmd(PLUGIN, "conferences")["conferences"][0]["mixer"]["loop"], (1, 2))
        b = self.logged_in("1002")
        g722 = fake_sdp("g722").replace("111 0\r\n", "9\r\n").replace("a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:9 G722/8000\r\n")
        call_id, _ = b.invite("3000", sdp=g722)
        self.assertEqual(b.wait_request("verto.bye")["causeCode"], 88)  # INCOMPATIBLE_DESTINATION
        self.j.wait_for_log(r"rejected: no Opus, PCMA or PCMU audio offered")
        self.assertEqual(len(self.j.cmd(PLUGIN, "conferences")["conferences"][0]["members"]), 1)
        a.bye(a_call)
        wait_until(lambda: self.j.cmd(PLUGIN, "conferences")["conferences"] == [], what="room destroyed")

    def test_intercom_screen_joins(self):
        from intercom_env import INNER_SCREEN, Screen, box_conf
        from junction_test import free_port
        iport = free_port()
        self.start_conf(plugins={"intercom-json": box_conf(iport)})
        a = self.member("1001")
        s = Screen(iport, name="screen-1")
        self.addCleanup(s.close)
        tok = self.j.cmd("intercom-json", "issue-token", {"device": "screen-1", "type": INNER_SCREEN, "room": "101"})["token"]
        self.assertEqual(s.join(tok)["name"], "join_accept")
        s.call("x1", src={"id": "101", "audio_stream_id": "56780"}, dest={"id": f"conference:3000-{DOMAIN}@{DOMAIN}"})
        s.expect("call_accept", sid="x1")
        add = la_event(a, "add")
        self.assertEqual((add["data"][0], add["data"][1], add["wireSerno"]), ("0002", "room/101", 2))
        s.end("x1")
        self.assertEqual(la_event(a, "del")["hashKey"], add["hashKey"])
    def test_conf_samples_load_and_bad_conference_keys_are_refused(self):
        from verto_env import free_port, verto_conf
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
        for sample in ("conf/plugins/verto-ws.toml", "plugins/verto-ws/verto-ws.toml"):
            with self.subTest(sample=sample):
                with open(os.path.join(root, sample)) as f:
                    text = f.read()
                # its profile example enabled, on a free port
                text = text.replace("# [conference.profiles.board]", "[conference.profiles.board]").replace("# max_members = 10", "max_members = 10")
                text = text.replace("# [conference.rooms]", "[conference.rooms]").replace('# "3000" = "board"', '"3000" = "board"')
                text = text.replace('listen = "127.0.0.1:8082"', f'listen = "127.0.0.1:{free_port()}"')
                j = self.server(plugins={PLUGIN: text}).start()
                j.wait_for_log(r"verto listening on")
        cases = [({"rate": 44100}, "conference.rate", "must be 8000, 16000 or 48000"),
                 ({"moderators": "1001"}, "conference.moderators", "must be an array of user names"),
                 ({"rooms": {"3000": "nope"}}, "conference.rooms.3000", "must name a profile"),
                 ({"profiles": {"p": {"domain": "x"}}}, "conference.profiles.p.domain", "unknown key"),
                 ({"max_members": 0}, "conference.max_members", "not 0")]
        for extra, key, words in cases:
            with self.subTest(key=key):
                j = self.server(plugins={PLUGIN: verto_conf(free_port(), conference=dict(CONFERENCE, **extra))})
                j.start(expect_ready=False)
                rc = j.wait_exit(30)
                j.proc = None  # exited on purpose
                self.assertNotEqual(rc, 0, j.log())
                self.assertRegex(j.log(), re.escape(key) + ": .*" + words)


if __name__ == "__main__":
    main()
