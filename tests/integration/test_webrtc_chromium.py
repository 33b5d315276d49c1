#!/usr/bin/env python3
"""sdk/webrtc against a real browser (issue 15): headless Chromium makes an offer (fake camera and
microphone, a data channel), build/tools/webrtc_peer_tool answers it with sdk/webrtc alone (sdp.hpp
answer, PeerConnection: ICE-lite, DTLS-SRTP, SCTP) on a loopback UDP port, and media and data flow
both ways, bundled or not (one transport per m-line): the browser decodes our video (H.264 packetization-mode 1 from libx264, or VP8 from
libvpx) and hears our A-law tone (audio energy > 0); the tool depacketizes the browser's audio and
video into whole frames starting with a keyframe; a data-channel message comes back echoed; no
SRTP packet fails authentication.

Loopback only: Chromium gathers no loopback candidates and would check (and so be answered) from
the machine's other addresses, so the test re-runs itself in a network namespace that has nothing
but `lo` (`unshare -n`, as plugins/verto-ws/tests/test_media.py does); without that permission it
is skipped. Uses the suite's browser harness (tests/lib/cdp.py): skipped, with the reason, where
it, Chromium or ffmpeg is missing."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import loopback_netns  # noqa: E402

NETNS = loopback_netns.enter(__name__ == "__main__")

from junction_test import BUILD, main, wait_until  # noqa: E402

try:
    from cdp import Browser, StaticServer, have_chromium  # noqa: E402
except ImportError:  # the browser harness comes with the verto-ws work
    Browser = None

TOOL = os.path.join(BUILD, "tools", "webrtc_peer_tool")
FFMPEG = shutil.which("ffmpeg")

OFFER_JS = """(async (bundle) => {
  window.pc = new RTCPeerConnection({bundlePolicy: bundle ? 'balanced' : 'max-compat'});
  pc.ontrack = e => {
    if (e.track.kind !== 'audio') return;
    window.player = new Audio();
    player.srcObject = new MediaStream([e.track]);
    player.play();
  };
  const s = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 320, height: 240}});
  for (const t of s.getTracks()) pc.addTrack(t, s);
  window.msgs = [];
  window.dc = pc.createDataChannel('chat');
  dc.onmessage = e => msgs.push(e.data);
  dc.onopen = () => dc.send('hello from chromium');
  const o = await pc.createOffer();
  // A client that does not bundle (max-compat, no a=group:BUNDLE): one transport per m-line.
  if (!bundle) o.sdp = o.sdp.split('\\r\\n').filter(l => !l.startsWith('a=group:BUNDLE')).join('\\r\\n');
  await pc.setLocalDescription(o);
  return pc.localDescription.sdp;
})"""

STATS_JS = """(async () => {
  const out = {};
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp') out[r.kind] = {packets: r.packetsReceived, frames: r.framesDecoded || 0,
                                                 energy: r.totalAudioEnergy || 0, lost: r.packetsLost};
  });
  return JSON.stringify(out);
})()"""


@unittest.skipUnless(NETNS, "needs a network namespace with only loopback (unshare -n)")
@unittest.skipUnless(Browser is not None, "tests/lib/cdp.py (the browser harness) is not in this tree")
@unittest.skipUnless(Browser is not None and have_chromium(), "chromium is not installed")
@unittest.skipUnless(FFMPEG, "ffmpeg is not installed")
class WebrtcChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="jn-webrtc-")
        www = os.path.join(cls.tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<html><body>sdk/webrtc interop</body></html>")
        cls.h264 = os.path.join(cls.tmp, "v.h264")
        cls.ivf = os.path.join(cls.tmp, "v.ivf")
        src = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "4"]
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *src, "-c:v", "libx264", "-profile:v",
                        "baseline", "-bf", "0", "-g", "50", "-pix_fmt", "yuv420p", "-f", "h264", cls.h264], check=True)
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *src, "-c:v", "libvpx", "-b:v", "1M", "-g",
                        "50", "-deadline", "realtime", "-f", "ivf", cls.ivf], check=True)
        cls.server = StaticServer(www)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, codec, bundle=True):
        video = self.h264 if codec == "H264" else self.ivf
        with Browser(extra_flags=["--allow-loopback-in-peer-connection"]) as b:
            page = b.new_page(self.server.origin + "/index.html")
            offer = page.evaluate(OFFER_JS + ("(true)" if bundle else "(false)"))
            self.assertEqual("a=group:BUNDLE" in offer, bundle)
            offer_path = os.path.join(self.tmp, "offer.sdp")
            with open(offer_path, "w") as f:
                f.write(offer)
            args = [TOOL, offer_path, video, "8"] + (["vp8"] if codec == "VP8" else [])
            tool = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
            try:
                lines = []
                answer = None
                for line in tool.stdout:
                    lines.append(line.rstrip())
                    if line.startswith("ANSWER "):
                        answer = base64.b64decode(line.split()[1]).decode()
                        break
                self.assertIsNotNone(answer, "\n".join(lines))
                negotiated = next(l for l in lines if l.startswith("NEGOTIATED "))
                self.assertIn(f"video(1): {codec} ", negotiated)
                self.assertIn("audio(0): PCMA pt 8 sendrecv", negotiated)
                page.evaluate("pc.setRemoteDescription({type: 'answer', sdp: %s})" % json.dumps(answer))
                page.wait_for("pc.connectionState === 'connected'", timeout=15)
                page.wait_for("msgs.length > 0", timeout=10)
                self.assertEqual(page.evaluate("msgs[0]"), "echo:hello from chromium")

                def decoded():
                    s = json.loads(page.evaluate(STATS_JS))
                    v, a = s.get("video", {}), s.get("audio", {})
                    return s if v.get("frames", 0) >= 50 and a.get("energy", 0) > 0 else None
                stats = wait_until(decoded, timeout=15, what="the browser decoding our video and playing our audio",
                                   interval=0.2)
                self.assertEqual(stats["video"]["lost"], 0)
                rest, _ = tool.communicate(timeout=30)
            finally:
                if tool.poll() is None:
                    tool.kill()
                    tool.communicate()
        out = rest.splitlines()
        self.assertIn("CHANNEL_MSG stream=0 binary=0 text=hello from chromium", out)
        m = re.search(r"^STATS (.*)$", rest, re.M)
        self.assertIsNotNone(m, rest)
        st = dict(kv.split("=", 1) for kv in m.group(1).split())
        self.assertGreater(int(st["audio_in"]), 50)
        self.assertGreater(int(st["video_in"]), 20)
        self.assertGreaterEqual(int(st["video_keyframes_in"]), 1)
        self.assertEqual(st["srtp_in_failed"], "0")
        self.assertEqual(st["rtp_unknown_pt"], "0")
        self.assertEqual(st["transports"], "1" if bundle else "3")

    def test_h264_both_ways(self):
        self.call("H264")

    def test_vp8_both_ways(self):
        self.call("VP8")

    def test_no_bundle_one_transport_per_m_line(self):
        self.call("H264", bundle=False)


if __name__ == "__main__":
    main()
