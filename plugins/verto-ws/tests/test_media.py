"""verto-ws WebRTC media with real browsers: the server terminates each browser's WebRTC
(ICE-lite, DTLS-SRTP, sdk/webrtc's PeerConnection) and bridges the frames over the bus, no
transcoding. Two headless Chromium pages (fake camera and microphone) call each other: both
decode the other's video (getStats framesDecoded) and hear its audio (totalAudioEnergy > 0).

Loopback only: Chromium gathers no loopback candidates and would talk from the machine's other
addresses, so the test runs in its own network namespace that has nothing but `lo` (it re-runs
itself under `unshare -n`; without that permission the tests are skipped)."""
import json
import os
import sys
import unittest

import loopback_netns  # noqa: E402 (tests/lib, on PYTHONPATH)
from junction_test import wait_until  # noqa: E402

NETNS = loopback_netns.enter(__name__ == "__main__")

from verto_env import PLUGIN, main  # noqa: E402
import cdp  # noqa: E402
import test_browser  # noqa: E402


@unittest.skipUnless(NETNS, "needs a network namespace with only loopback (unshare -n)")
class Media(test_browser.Browser):
    def start(self, **kw):
        kw.setdefault("media", "webrtc")
        kw.setdefault("server", {"media_loops": 2})  # legs' sockets spread over two media loops
        return super().start(**kw)

    def test_browser_to_browser_audio_and_video_through_the_server(self):
        self.start()
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        inv = self.call_between(a, b)
        # the far side's SDP is the server's (ICE-lite, our fingerprint), not the other browser's
        self.assertIn("a=ice-lite", inv["sdp"])
        self.assertIn("127.0.0.1", inv["sdp"])
        self.j.wait_for_log(r"media: audio")
        for p in (a, b):
            p.wait_for("v.calls.get(cid).pc.connectionState === 'connected'", timeout=30, what="PeerConnection connected")
        for p in (a, b):
            s = p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0 && s.audioEnergy > 0, 30000)", timeout=40)
            self.assertGreater(s["framesDecoded"], 0)
            self.assertGreater(s["audioEnergy"], 0)
        # each PeerConnection runs on its leg's media loop: the far leg's frames were handed there
        # from the control loop's bus subscription, and not one RTP/RTCP datagram left from the
        # control thread (the counter is kept by thread id in MediaLeg::send_datagram)
        for user in ("1001", "1002"):
            m = self.leg_media(user)
            self.assertIn(m["loop"], (1, 2))
            self.assertGreater(m["audio_tx"]["frames"], 0)
            self.assertGreater(m["video_tx"]["frames"], 0)
            self.assertEqual(m["rtp_sent_on_control_loop"], 0, m)
            # single owner, no lock: every PeerConnection call checked it ran on the leg's loop
            # (the media path did run through the check) and none came from another thread
            self.assertGreater(m["owner_checks"], 0, m)
        s = self.j.cmd(PLUGIN, "sessions")
        self.assertEqual((s["owner_violations"], s["reports_dropped"]), (0, 0))
        self.assertNotEqual(self.leg_media("1001")["loop"], self.leg_media("1002")["loop"])
        # DTMF both ways it can come: verto.info, and RFC 4733 telephone-event in the browser's RTP
        a.evaluate("v.dtmf(cid, '5')")
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.dtmf)")["dtmf"], "5")
        a.evaluate("v.calls.get(cid).pc.getSenders().find(s => s.track && s.track.kind === 'audio').dtmf.insertDTMF('7', 100)")
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.dtmf)")["dtmf"], "7")
        b.evaluate("v.hangup(cid)")
        self.assertEqual(a.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    def test_page_reload_reattaches_with_fresh_media(self):
        self.start(detach_timeout_ms=60000)
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        a.evaluate("v.waitStats(cid, s => s.framesDecoded > 0, 30000)", timeout=40)
        sessid, cid = a.evaluate("v.sessid"), a.evaluate("cid")
        a.reload()
        a.wait_for("window.pageReady")
        self.j.wait_for_log(r"session .* of 1001 detached")
        a.evaluate(f"window.v = new VertoClient('ws://127.0.0.1:{self.port}/verto', {{sessid: {json.dumps(sessid)}}}); "
                   f"window.cid = {json.dumps(cid)}; v.connect().then(() => true)")
        ready = a.evaluate(f"v.loginLikeVertoJs('1001', {json.dumps(self.users['1001'])})")
        self.assertEqual(ready["reattached_sessions"], [cid])
        self.j.wait_for_log(r"media re-attached")
        # the new page's PeerConnection answered the server's fresh offer and decodes 1002's video again
        s = a.evaluate("v.waitStats(cid, s => s.connection === 'connected' && s.framesDecoded > 0, 30000)", timeout=40)
        self.assertGreater(s["framesDecoded"], 0)
        b.evaluate("v.hangup(cid)")
        a.evaluate("v.waitFor('verto.bye')")

    def test_plugin_hot_reload_renews_the_media_of_a_call(self):
        self.start()
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        for p in (a, b):
            p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0, 30000)", timeout=40)
        mark = len(self.j.lines)
        r = self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.assertGreaterEqual(r["generation"], 1)
        # sockets and calls kept; each browser gets a fresh offer (verto.attach) and decodes again
        self.j.wait_for_log(r"fresh media offered after the reload", start=mark)
        for p in (a, b):
            self.assertFalse(p.evaluate("v.closed"))
            p.wait_for("v.inbox.length >= 0 && v.calls.get(cid).direction === 'attached'", what="re-attached PeerConnection")
            s = p.evaluate("v.waitStats(cid, s => s.connection === 'connected' && s.framesDecoded > 0, 30000)", timeout=40)
            self.assertGreater(s["framesDecoded"], 0)
        a.evaluate("v.hangup(cid)")
        self.assertEqual(b.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    def leg_media(self, user):
        """The media stats of the one call of `user`'s session (the `sessions` admin verb)."""
        for s in self.j.cmd(PLUGIN, "sessions")["sessions"]:
            if s["user"] == user and s["calls"]:
                return s["calls"][0].get("media") or {}
        return {}

    def wait_held_frames(self, user, more_than, what):
        """Until the server has held back more than `more_than` frames of `user`'s page (not
        published while held): proof that the page kept sending and that time passed on the
        media path (an event, not a delay)."""
        return wait_until(lambda: self.leg_media(user).get("held_frames_in", 0) > more_than, timeout=20, what=what)

    def test_hold_stops_the_media_and_unhold_resumes_it(self):
        self.start()
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        for p in (a, b):
            p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0 && s.audioEnergy > 0, 30000)", timeout=40)
        # the energy each page hears in 100 audio frames (2 s) of the call, for comparison below
        active = {}
        for p, user in ((a, "1001"), (b, "1002")):
            sent = self.leg_media(user)["audio_tx"]["frames"]
            e0 = p.evaluate("v.mediaStats(cid)")["audioEnergy"]
            wait_until(lambda: self.leg_media(user)["audio_tx"]["frames"] > sent + 100, timeout=20, what="100 audio frames sent")
            active[p] = p.evaluate("v.mediaStats(cid)")["audioEnergy"] - e0
            self.assertGreater(active[p], 0)
        r = a.evaluate("v.hold(cid, 'hold')")
        self.assertEqual(r["holdState"], "held")
        # events: the other user is told, and its leg got the re-offer (inactive) and holds too
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.holdState)")["holdState"], "held")
        self.j.wait_for_log(r"call \S+ held by the far side \(re-offer\)")
        self.assertTrue(self.leg_media("1001")["held"])
        self.assertTrue(self.leg_media("1002")["held"])
        # frames keep arriving from both browsers and are held back: neither page receives any
        self.wait_held_frames("1001", 25, "frames held back from 1001's page")
        self.wait_held_frames("1002", 25, "frames held back from 1002's page")
        before = {p: p.evaluate("v.mediaStats(cid)") for p in (a, b)}
        n1, n2 = self.leg_media("1001")["held_frames_in"], self.leg_media("1002")["held_frames_in"]
        # 100 audio frames of each page later (2 s, held back: video frames count too, so more)
        self.wait_held_frames("1001", n1 + 100, "2 s of held frames for 1001")
        self.wait_held_frames("1002", n2 + 100, "2 s of held frames for 1002")
        for p in (a, b):
            after = p.evaluate("v.mediaStats(cid)")
            self.assertEqual(after["audioPackets"], before[p]["audioPackets"])
            self.assertEqual(after["videoPackets"], before[p]["videoPackets"])
            self.assertEqual(after["framesDecoded"], before[p]["framesDecoded"])
            # what a page still "hears" is its own concealment fading out: far below a call's
            held_energy = after["audioEnergy"] - before[p]["audioEnergy"]
            self.assertLess(held_energy, active[p] / 10, f"energy while held {held_energy}, in a call {active[p]}")
        # unhold: both pages receive, decode and hear again
        self.assertEqual(a.evaluate("v.hold(cid, 'unhold')")["holdState"], "active")
        self.assertEqual(b.evaluate("v.waitFor('verto.info', p => p.holdState === 'active')")["holdState"], "active")
        for p in (a, b):
            e, f = before[p]["audioEnergy"], before[p]["framesDecoded"]
            s = p.evaluate(f"v.waitStats(cid, s => s.audioEnergy > {e} + 1e-4 && s.framesDecoded > {f} + 5, 30000)", timeout=40)
            self.assertGreater(s["audioEnergy"], e)
        self.assertFalse(self.leg_media("1001")["held"])
        self.assertFalse(self.leg_media("1002")["held"])
        # toggleHold holds again
        self.assertEqual(b.evaluate("v.hold(cid, 'toggleHold')")["holdState"], "held")
        self.assertEqual(a.evaluate("v.waitFor('verto.info', p => p.holdState === 'held')")["holdState"], "held")
        a.evaluate("v.hangup(cid)")
        self.assertEqual(b.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    def test_update_media_renegotiates_on_the_same_transport_or_restarts_ice(self):
        self.start()
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        self.call_between(a, b)
        for p in (a, b):
            p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0 && s.audioEnergy > 0, 30000)", timeout=40)
        # the caller renegotiates (same ICE credentials): answered on the running transport
        r = a.evaluate("v.updateMedia(cid)")
        self.assertEqual(r["action"], "updateMedia")
        self.assertIn("a=ice-lite", r["sdp"])
        self.j.wait_for_log(r"media updated \(same transport\)")
        s0 = a.evaluate("v.mediaStats(cid)")
        s = a.evaluate(f"v.waitStats(cid, s => s.connection === 'connected' && s.framesDecoded > {s0['framesDecoded']} + 5 && s.audioEnergy > {s0['audioEnergy']}, 30000)", timeout=40)
        self.assertEqual(s["connection"], "connected")
        # the callee restarts ICE: new credentials toward the same transport, DTLS goes on
        mark = len(self.j.lines)
        r = b.evaluate("v.updateMedia(cid, {iceRestart: true})")
        self.assertIn("a=ice-ufrag:", r["sdp"])
        self.j.wait_for_log(r"media updated \(same transport\)", start=mark)
        wait_until(lambda: self.leg_media("1002").get("ice_restarts", 0) == 1, timeout=10, what="the ICE restart counted")
        s0 = b.evaluate("v.mediaStats(cid)")
        s = b.evaluate(f"v.waitStats(cid, s => s.connection === 'connected' && s.framesDecoded > {s0['framesDecoded']} + 5 && s.audioEnergy > {s0['audioEnergy']}, 30000)", timeout=40)
        self.assertEqual(s["connection"], "connected")
        # a bad SDP is refused with a reason and ends only this call
        err = a.evaluate("v.rpc('verto.modify', {dialogParams: {callID: cid}, action: 'updateMedia', sdp: 'v=0 garbage'})"
                         ".then(m => m.error)")
        self.assertEqual(err["code"], -32602)
        a.evaluate("v.hangup(cid)")
        self.assertEqual(b.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    def exchange(self, a, b, label):
        """Text and binary both ways on channel `label` of the call between pages a and b."""
        for src, dst, n in ((a, b, 1), (b, a, 2)):
            src.evaluate(f"v.sendChannel(cid, {json.dumps(label)}, 'text {label} {n}')")
            m = dst.evaluate(f"v.waitChannelMessage(cid, m => m.label === {json.dumps(label)} && m.text)")
            self.assertEqual(m["text"], f"text {label} {n}")
            src.evaluate(f"v.sendChannel(cid, {json.dumps(label)}, [0, {n}, 128, 255])")
            m = dst.evaluate(f"v.waitChannelMessage(cid, m => m.label === {json.dumps(label)} && m.bytes)")
            self.assertEqual(m["bytes"], [0, n, 128, 255])

    def test_data_channels_between_browsers_through_a_hot_reload(self):
        self.start(data_channels=True)
        a, b = self.page(), self.page()
        self.login(a, "1001")
        self.login(b, "1002")
        r = a.evaluate("v.invite('1002', {audio: true, video: true, data: 'chat'}).then(r => (window.cid = r.callID, r))")
        self.assertEqual(r["message"], "CALL CREATED")
        inv = b.evaluate("v.waitFor('verto.invite')")
        self.assertIn("m=application", inv["sdp"])  # the server offers data channels to the callee
        b.evaluate(f"window.cid = {json.dumps(inv['callID'])}; v.answer(cid)")
        a.evaluate("v.waitFor('verto.answer')")
        self.assertIn("m=application", a.evaluate("v.calls.get(cid).remote"))
        a.evaluate("v.calls.get(cid).dcOpened")   # 1001's channel is open to the server (DCEP ack)
        b.evaluate("v.waitChannel(cid, 'chat')")  # and the server opened it toward 1002 (DCEP open)
        self.exchange(a, b, "chat")
        # hot reload: usrsctp stays initialised, its output goes through the pinned glue; the new
        # instance renews each browser's PeerConnection (verto.attach) with data channels again
        mark = len(self.j.lines)
        self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.j.wait_for_log(r"fresh media offered after the reload", start=mark)
        for p in (a, b):
            p.wait_for("v.calls.get(cid).direction === 'attached' && v.calls.get(cid).pc.connectionState === 'connected'",
                       timeout=30, what="re-attached PeerConnection")
        self.assertFalse(any("data channels off" in line for line in self.j.lines[mark:]))
        a.evaluate("v.openChannel(cid, 'after-reload')")
        b.evaluate("v.waitChannel(cid, 'after-reload')")
        self.exchange(a, b, "after-reload")
        for user in ("1001", "1002"):
            self.assertGreaterEqual(self.leg_media(user)["dc_messages_in"], 2)
        a.evaluate("v.hangup(cid)")
        self.assertEqual(b.evaluate("v.waitFor('verto.bye')")["cause"], "NORMAL_CLEARING")

    # the signalling tests of test_browser.py are not repeated here
    test_login_variants = test_subscribe_and_broadcast = test_page_from_another_origin_is_refused = None
    test_call_between_two_browser_users = test_plugin_hot_reload_during_a_browser_call = None
    test_reload_attaches_and_second_tab_punts = None


GB_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gb28181", "tests")
sys.path.insert(0, GB_TESTS)
from media_env import DEV1, GbMediaTest  # noqa: E402
from verto_env import free_port, verto_conf  # noqa: E402


@unittest.skipUnless(NETNS, "needs a network namespace with only loopback (unshare -n)")
class GbCamera(GbMediaTest):
    """A browser calls a GB/T 28181 camera channel (gb:<device>/<channel>): the simulated device's
    PS-over-RTP H.264 is demuxed by gb28181 onto the bus and sent to the browser as RTP H.264
    (packetization-mode 1), no transcoding; Chromium decodes it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.web = cdp.StaticServer(test_browser.PAGE_DIR)
        cls.browser = cdp.Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.web.close()

    def setUp(self):
        self.verto_port = free_port()
        self.plugins_extra = dict(GbMediaTest.plugins_extra, **{
            "verto-ws": verto_conf(self.verto_port, media="webrtc", allowed_origins=[self.web.origin])})
        super().setUp()
        self.j.cmd("verto-ws", "user-add", {"user": "1001", "password": "pw1001"})

    def tearDown(self):
        for p in self.browser.pages:
            p.close()
        self.browser.pages = []
        super().tearDown()

    def test_browser_decodes_the_camera_h264(self):
        dev = self.media_device(DEV1)
        ch = dev.channels[0]["DeviceID"]
        p = self.browser.new_page(self.web.origin + "/page.html")
        p.wait_for("window.pageReady")
        p.evaluate(f"window.v = new VertoClient('ws://127.0.0.1:{self.verto_port}/verto'); v.connect().then(() => true)")
        p.evaluate("v.loginLikeVertoJs('1001', 'pw1001')")
        r = p.evaluate(f"v.invite('gb:{DEV1}/{ch}', {{audio: true, video: true}}).then(r => (window.cid = r.callID, r))")
        self.assertEqual(r["message"], "CALL CREATED")
        dev.wait("invite", timeout=15)
        p.evaluate("v.waitFor('verto.answer', () => true, 30000)")
        p.wait_for("v.calls.get(cid).remoteSet === true", what="the server's answer applied")
        self.j.wait_for_log(r"media: .*video\(1\): H264")
        s = p.evaluate("v.waitStats(cid, s => s.framesDecoded > 0, 30000)", timeout=40)
        self.assertEqual(s["videoCodec"], "video/H264")
        self.assertGreater(s["framesDecoded"], 0)
        p.evaluate("v.hangup(cid)")
        dev.wait("bye_received", timeout=15)


if __name__ == "__main__":
    main()
