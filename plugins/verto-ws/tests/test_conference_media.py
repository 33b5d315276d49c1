"""verto-ws conferences with real browsers: three headless Chromium pages dial 3000 (routed to
conference:3000-test.local@test.local), each sending its own tone (a WebAudio oscillator as its
microphone: 500, 1100 and 2300 Hz; one browser process, so one tone per page rather than
Chromium's browser-wide --use-file-for-fake-audio-capture). The server decodes their Opus, mixes on
a media loop and sends each page the mix minus itself: every page's analyser (WebAudio FFT on the
received track) shows the two other tones and not its own. The pages' LiveArray (bootObj, then
add / modify / del) ends at the server's wireSerno with consecutive serials; talking detection
shows in `modify`; a moderator's mute removes that tone from the others' mix; a hot reload of the
plugin keeps the room and the mixed audio.

Loopback only: the test re-runs itself in a network namespace with only `lo` (test_media.py)."""
import json
import os
import sys
import unittest

import loopback_netns  # noqa: E402 (tests/lib, on PYTHONPATH)

NETNS = loopback_netns.enter(__name__ == "__main__")

from verto_env import PLUGIN, main, wait_until  # noqa: E402
import test_browser  # noqa: E402

DOMAIN = "test.local"
ROOM = f"3000-{DOMAIN}"
LA = f"conference-liveArray.{ROOM}@{DOMAIN}"
MOD = f"conference-mod.{ROOM}@{DOMAIN}"
ROUTES = [{"match": "regex", "pattern": r"^verto:(3\d{3})$", "targets": [f"conference:$1-{DOMAIN}@{DOMAIN}"]}]
TONES = {"1001": 500, "1002": 1100, "1003": 2300, "door": 700, "screen": 1700}

# The page's microphone is an oscillator at window.toneHz; levels() reads the received track's
# spectrum (dB at each tone, the peak of +-2 bins) through an AnalyserNode.
PAGE_JS = """
window.audioCtx = new AudioContext();
(() => {
  const osc = audioCtx.createOscillator();
  osc.frequency.value = %(hz)d;
  const gain = audioCtx.createGain();
  gain.gain.value = 0.4;
  const dst = audioCtx.createMediaStreamDestination();
  osc.connect(gain).connect(dst);
  osc.start();
  // the tone as the microphone; the fake camera when video is asked for
  const orig = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const tracks = dst.stream.getAudioTracks();
    if (c && c.video) tracks.push(...(await orig({video: true})).getVideoTracks());
    return new MediaStream(tracks);
  };
})();
window.levels = (freqs) => {
  const c = v.calls.get(cid);
  if (!c || !c.audioEl || !c.audioEl.srcObject) return null;
  if (!c.analyser || c.analysed !== c.audioEl.srcObject) {
    const src = audioCtx.createMediaStreamSource(c.audioEl.srcObject);
    c.analyser = audioCtx.createAnalyser();
    c.analyser.fftSize = 8192;
    c.analyser.smoothingTimeConstant = 0.5;
    src.connect(c.analyser);
    c.analysed = c.audioEl.srcObject;
  }
  const bins = new Float32Array(c.analyser.frequencyBinCount);
  c.analyser.getFloatFrequencyData(bins);
  const hz = audioCtx.sampleRate / c.analyser.fftSize, out = {};
  for (const f of freqs) {
    const b = Math.round(f / hz);
    let m = -200;
    for (let i = b - 2; i <= b + 2; i++) m = Math.max(m, bins[i]);
    out[f] = m;
  }
  return out;
};
window.laEvents = () => v.inbox.filter(m => m.method === 'verto.event' && m.params.eventChannel === %(la)s).map(m => m.params.data);
true
"""


@unittest.skipUnless(NETNS, "needs a network namespace with only loopback (unshare -n)")
class ConferenceMedia(test_browser.Browser):
    users = {"1001": "pw1001", "1002": "pw1002", "1003": "pw1003"}

    def start(self, **kw):
        kw.setdefault("media", "webrtc")
        kw.setdefault("server", {"media_loops": 2})
        kw.setdefault("routes", ROUTES)
        kw.setdefault("conference", {"domain": DOMAIN, "moderators": ["1001"], "video": False})
        return super().start(**kw)

    def join(self, user, video=False):
        p = self.page()
        self.login(p, user)
        p.evaluate(PAGE_JS % {"hz": TONES[user], "la": json.dumps(LA)})
        p.evaluate(f"v.invite('3000', {{audio: true, video: {json.dumps(video)}}}).then(r => {{ window.cid = r.callID; return true; }})")
        pvt = p.evaluate("v.waitFor('verto.event', q => q.eventType === 'channelPvtData', 20000)", timeout=25)["pvtData"]
        self.assertEqual(pvt["laChannel"], LA)
        p.evaluate(f"v.result('verto.subscribe', {{eventChannel: [{json.dumps(LA)}]}}).then(() => true)")
        p.evaluate(f"v.result('verto.broadcast', {{eventChannel: {json.dumps(LA)}, data: {{liveArray: {{command: 'bootstrap', "
                   f"context: {json.dumps(LA)}, name: {json.dumps(ROOM)}, obj: {{}}}}}}}}).then(() => true)")
        p.wait_for("laEvents().some(d => d.action === 'bootObj')", what="bootObj")
        p.user = user
        return p

    def levels(self, p):
        return p.evaluate(f"levels({json.dumps(list(TONES.values()))})")

    def wait_hears(self, p, heard, not_heard, timeout=30, margin=30):
        """Until the page's received spectrum has each tone of `heard` at least `margin` dB above each of
        `not_heard` (its own tone: the mix-minus; a muted member's), each heard one louder than -50 dB
        (the analyser smooths: a tone that stops decays over a few polls)."""
        last = {}

        def ok():
            lv = self.levels(p)
            if not lv:
                return False
            last.update(lv)
            return all(lv[str(TONES[h])] > -50 and all(lv[str(TONES[h])] - lv[str(TONES[n])] >= margin for n in not_heard) for h in heard)
        try:
            wait_until(ok, timeout=timeout, what=f"{p.user} hears {heard} and not {not_heard}", interval=0.2)
        except AssertionError:
            raise AssertionError(f"{p.user}: levels {last}")
        if __import__("os").environ.get("JN_CONF_DEBUG"): print(p.user, heard, not_heard, last)
        return dict(last)

    def check_livearray(self, pages):
        """Every page: bootObj, then serials +1 each, ending at the server's wireSerno."""
        def server():
            return self.j.cmd(PLUGIN, "conferences")["conferences"][0]["wireSerno"]
        for p in pages:
            # talking changes may still come: until the page's last serial is the server's
            wait_until(lambda: p.evaluate("laEvents().length ? laEvents()[laEvents().length - 1].wireSerno : null") == server(),
                       timeout=20, what="LiveArray caught up", interval=0.1)
            ev = p.evaluate("laEvents()")
            # from the bootObj on (a change that came between the subscribe and the bootstrap is in it)
            boots = [i for i, e in enumerate(ev) if e["action"] == "bootObj"]
            self.assertEqual(len(boots), 1, p.user)
            ev = ev[boots[0]:]
            serials = [e["wireSerno"] for e in ev[1:]]
            self.assertEqual(serials, list(range(serials[0], serials[0] + len(serials))) if serials else [], p.user)
            # the page's model (bootObj + changes) has the server's members
            members = {k: d for k, d in ev[0]["data"]}
            for e in ev[1:]:
                if e["action"] == "del":
                    members.pop(e["hashKey"], None)
                else:
                    members[e["hashKey"]] = e["data"]
            srv = self.j.cmd(PLUGIN, "conferences")["conferences"][0]["members"]
            self.assertEqual(sorted(members), sorted(m["key"] for m in srv))

    def test_three_browsers_mix_minus_livearray_mute_and_reload(self):
        self.start()
        a, b, c = self.join("1001"), self.join("1002"), self.join("1003")
        for p in (a, b, c):
            p.wait_for("v.calls.get(cid).pc.connectionState === 'connected'", timeout=30, what="PeerConnection connected")
        # each hears the two others, not itself
        for p in (a, b, c):
            others = [u for u in self.users if u != p.user]
            self.wait_hears(p, others, [p.user])
        # talking detection reached LiveArray: a modify with talking true for every member
        for user in self.users:
            a.wait_for(f"laEvents().some(d => d.action === 'modify' && d.data[1] === '{user}' && JSON.parse(d.data[4]).audio.talking)",
                       what=f"{user} talking")
        conf = self.j.cmd(PLUGIN, "conferences")["conferences"][0]
        self.assertEqual([m["codec"] for m in conf["members"]], ["opus@48000"] * 3)
        self.assertGreater(conf["mixer"]["ticks"], 0)
        # the moderator mutes 1002: the others stop hearing its tone
        b_id = [m["id"] for m in conf["members"] if m["cid_number"] == "1002"][0]
        r = a.evaluate(f"v.result('verto.broadcast', {{eventChannel: {json.dumps(MOD)}, data: {{application: 'conf-control', "
                       f"command: 'mute', id: '{b_id}'}}}})")
        self.assertEqual(r["response"], f"OK mute {b_id:04d}")
        self.wait_hears(c, ["1001"], ["1002", "1003"], margin=45)
        self.check_livearray([a, b, c])
        # hot reload mid-conference: members and serials kept, the mix goes on (fresh media per browser)
        mark = len(self.j.lines)
        self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.j.wait_for_log(r"fresh media offered after the reload", start=mark)
        for p in (a, b, c):
            p.wait_for("v.calls.get(cid).direction === 'attached' && v.calls.get(cid).pc.connectionState === 'connected'",
                       timeout=30, what="re-attached")
        self.wait_hears(b, ["1001", "1003"], ["1002"])
        a.evaluate(f"v.result('verto.broadcast', {{eventChannel: {json.dumps(MOD)}, data: {{application: 'conf-control', "
                   f"command: 'unmute', id: '{b_id}'}}}}).then(() => true)")
        self.wait_hears(a, ["1002", "1003"], ["1001"])
        self.check_livearray([a, b, c])
        mixer = self.j.cmd(PLUGIN, "conferences")["conferences"][0]["mixer"]
        # the mixer is its loop's alone: the members' audio reached it through its ring (frames
        # in for each member, none dropped), every tick checked its owner, none from elsewhere
        self.assertEqual(mixer["loop"] in (1, 2), True, mixer)
        self.assertGreater(mixer["owner_checks"], 0, mixer)
        self.assertEqual(mixer["fed_dropped"], 0, mixer)
        self.assertEqual(len(mixer["members"]), 3, mixer)
        for mid, st in mixer["members"].items():
            self.assertGreater(st["frames_in"], 0, (mid, st))
        self.assertEqual(self.j.cmd(PLUGIN, "sessions")["owner_violations"], 0)
        if __import__("os").environ.get("JN_CONF_DEBUG"):
            print("mixer", {k: mixer[k] for k in ("loop", "ticks", "late_ticks", "busy_us")})
        c.evaluate("v.hangup(cid).then(() => true)")
        a.wait_for("laEvents().some(d => d.action === 'del')", what="del")
        self.check_livearray([a, b])

    def test_video_follows_the_floor(self):
        self.start(conference={"domain": DOMAIN, "moderators": ["1001"], "video": True})
        a, b = self.join("1001", video=True), self.join("1002", video=True)
        conf = self.j.cmd(PLUGIN, "conferences")["conferences"][0]
        self.assertIn(conf["video_codec"], ("VP8", "H264"))
        ids = {m["cid_number"]: m["id"] for m in conf["members"]}

        def vid_floor(user):
            a.evaluate(f"v.result('verto.broadcast', {{eventChannel: {json.dumps(MOD)}, data: {{application: 'conf-control', "
                       f"command: 'vid-floor', id: '{ids[user]}', value: 'force'}}}}).then(() => true)")

        def frames(p):
            return p.evaluate("v.mediaStats(cid)")["framesDecoded"]

        # b holds the video floor: a decodes b's camera (the floor followed the first talker before)
        vid_floor("1002")
        fa = frames(a)
        a.evaluate(f"v.waitStats(cid, s => s.framesDecoded > {fa + 10}, 30000)", timeout=40)
        # the moderator moves the floor to a: now b decodes more (a keyframe was asked for at the change)
        vid_floor("1001")
        fb = frames(b)
        b.evaluate(f"v.waitStats(cid, s => s.framesDecoded > {fb + 10}, 30000)", timeout=40)
        floor = self.j.cmd(PLUGIN, "conferences")["conferences"][0]["vid_floor"]
        self.assertEqual(floor, ids["1001"])
        mod = a.evaluate("laEvents().filter(d => d.action === 'modify' && d.data[1] === '1001').map(d => JSON.parse(d.data[4]).video.floor)")
        self.assertIn(True, mod)
        self.j.wait_for_log(r"conference 3000-test\.local: 1001 vid-floor: OK vid-floor 0001 forced")

    def test_door_station_member_is_heard_and_hears(self):
        """A non-browser member: an XXXCID door's call routed into the room. Its A-law (a 700 Hz
        tone, raw G.711 datagrams as the gateway relays them) is decoded into the mix the page
        hears; the door receives the page's 500 Hz tone mixed and re-encoded to A-law."""
        import array
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # deprecated since 3.11, still shipped: A-law both ways
        import math
        import threading
        import time
        xx_tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "xxxcid-gateway", "tests")
        sys.path.insert(0, xx_tests)
        import xx_common
        from door_sim import DoorSim
        conf, ports = xx_common.plugin_conf()
        self.start(plugins={"xxxcid-gateway": conf},
                   routes=ROUTES + [{"match": "regex", "pattern": r"^xxxcid:room/.*$", "targets": [f"conference:{ROOM}@{DOMAIN}"]}])
        self.j.cmd("xxxcid-gateway", "bind", {"uid": xx_common.UID, "room": xx_common.ROOM, "community": xx_common.COMMUNITY})
        a = self.join("1001")
        a.wait_for("v.calls.get(cid).pc.connectionState === 'connected'", timeout=30, what="PeerConnection connected")
        door = DoorSim(ports["door"], ports["video"], ports["audio"], addr=xx_common.DOOR)
        self.addCleanup(door.close)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=door.call(xx_common.CALLEE)), daemon=True)
        t.start()
        add = a.evaluate("v.waitFor('verto.event', q => q.data && q.data.action === 'add', 15000)")["data"]
        self.assertEqual(add["data"][1], "door/" + xx_common.DOOR)
        t.join(10)
        self.assertEqual(result.get("r"), "answer")
        conf_members = self.j.cmd(PLUGIN, "conferences")["conferences"][0]["members"]
        self.assertEqual([m["codec"] for m in conf_members], ["opus@48000", "PCMA@8000"])
        stop = threading.Event()

        def talk():  # the door's microphone: 20 ms A-law frames of a 700 Hz tone (media pacing, not a wait)
            n = 0
            while not stop.is_set():
                pcm = array.array("h", (int(12000 * math.sin(2 * math.pi * 700 * (n + i) / 8000)) for i in range(160)))
                door.send_audio(audioop.lin2alaw(pcm.tobytes(), 2))
                n += 160
                time.sleep(0.02)
        th = threading.Thread(target=talk, daemon=True)
        th.start()
        self.addCleanup(stop.set)
        a.user = "1001"
        self.wait_hears(a, ["door"], ["1001"])

        def goertzel(pcm, f):
            k = 2 * math.cos(2 * math.pi * f / 8000)
            s1 = s2 = 0.0
            for x in pcm:
                s1, s2 = x + k * s1 - s2, s1
            return s1 * s1 + s2 * s2 - k * s1 * s2

        def door_hears():
            rx = door.audio_rx[-10:]
            if len(rx) < 10:
                return False
            pcm = array.array("h", audioop.alaw2lin(b"".join(rx), 2))
            return goertzel(pcm, 500) > 100 * max(goertzel(pcm, 700), 1.0)  # the page's tone, not its own
        wait_until(door_hears, timeout=20, what="the door hears the page's tone and not its own", interval=0.1)
        stop.set()

    def test_intercom_screen_member_is_heard(self):
        """The issue's non-browser member: an intercom-json screen calls the room. The screen's
        stream lives on the box's stream server (a fake SRS here, HTTP-FLV: H.264 + A-law of a
        1700 Hz tone); intercom-json pulls it onto the bus because the far leg (the conference)
        takes bus streams, and the mixer decodes it into what the page hears."""
        import subprocess
        import tempfile
        ic_tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "intercom-json", "tests")
        sys.path.insert(0, ic_tests)
        from fake_srs import FakeSrs
        from intercom_env import INNER_SCREEN, Screen, box_conf
        from junction_test import free_port
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        flv = os.path.join(tmp.name, "screen.flv")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                        "-f", "lavfi", "-i", f"sine=frequency={TONES['screen']}:sample_rate=8000", "-t", "30",
                        "-c:v", "libx264", "-profile:v", "baseline", "-g", "10", "-pix_fmt", "yuv420p",
                        "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1", "-f", "flv", flv], check=True)
        srs = FakeSrs()
        self.addCleanup(srs.close)
        with open(flv, "rb") as f:
            srs.routes["/stream/56780"] = FakeSrs.flv(f.read(), paced=True)
        iport = free_port()
        self.start(plugins={"intercom-json": box_conf(iport, stream_pull_url=f"http://127.0.0.1:{srs.port}/stream/{{id}}",
                                                      stream_push_url="")})
        a = self.join("1001")
        a.wait_for("v.calls.get(cid).pc.connectionState === 'connected'", timeout=30, what="PeerConnection connected")
        s = Screen(iport, name="screen-1")
        self.addCleanup(s.close)
        tok = self.j.cmd("intercom-json", "issue-token", {"device": "screen-1", "type": INNER_SCREEN, "room": "101"})["token"]
        self.assertEqual(s.join(tok)["name"], "join_accept")
        s.call("x1", src={"id": "101", "audio_stream_id": "56780", "video_stream_id": "56780"},
               dest={"id": f"conference:{ROOM}@{DOMAIN}"})
        s.expect("call_accept", sid="x1")
        srs.wait_request("/stream/56780")
        members = self.j.cmd(PLUGIN, "conferences")["conferences"][0]["members"]
        self.assertEqual(sorted(m["codec"] for m in members), ["PCMA@8000", "opus@48000"])
        a.user = "1001"
        self.wait_hears(a, ["screen"], ["1001"])
        self.assertGreater(self.j.cmd("intercom-json", "pulls")[0]["audio_frames"], 0)
        s.end("x1")

    # the signalling tests of test_browser.py are not repeated here
    test_login_variants = test_subscribe_and_broadcast = test_page_from_another_origin_is_refused = None
    test_call_between_two_browser_users = test_plugin_hot_reload_during_a_browser_call = None
    test_reload_attaches_and_second_tab_punts = None


if __name__ == "__main__":
    main()
