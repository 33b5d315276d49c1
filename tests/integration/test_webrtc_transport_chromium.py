"""sdk/webrtc Transport against a real browser, without any signalling plugin: headless Chromium
(fake audio device) offers, tests/tools/webrtc_transport_peer answers as an ICE-lite DTLS-SRTP
endpoint on 127.0.0.1, for both a=setup roles. Asserts that ICE and DTLS connect on both sides,
that the browser decrypts the RTP we protect (its inbound-rtp packetsReceived grows), that we
decrypt its RTP and RTCP with no SRTP failure, and that both report the same SRTP suite.
(The Verto client harness is verto-ws's; this isolates the transport layer from signalling.)

Loopback only: the test re-runs itself in a network namespace with nothing but `lo` (`unshare -n`,
as test_webrtc_chromium.py and verto-ws's media test do), so nothing the browser sends (checks
from other addresses, mDNS) leaves it; without that permission it is skipped.
"""
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import loopback_netns  # noqa: E402

NETNS = loopback_netns.enter(__name__ == "__main__")

from junction_test import BUILD, main  # noqa: E402

TOOL = os.path.join(BUILD, "tools", "webrtc_transport_peer")

PAGE = """<html><body><script>
async function main() {
  const pc = new RTCPeerConnection();
  const s = await navigator.mediaDevices.getUserMedia({audio: true});
  s.getTracks().forEach(t => pc.addTrack(t, s));
  await pc.setLocalDescription(await pc.createOffer());
  const ans = await (await fetch('/offer', {method: 'POST', body: pc.localDescription.sdp})).text();
  await pc.setRemoteDescription({type: 'answer', sdp: ans});
  const out = {};
  // getStats has no event: look every 250 ms, for at most 30 s, until our echo has come back.
  for (let i = 0; i < 120; i++) {
    await new Promise(r => setTimeout(r, 250));
    (await pc.getStats()).forEach(x => {
      if (x.type == 'inbound-rtp') out.in_packets = x.packetsReceived;
      if (x.type == 'outbound-rtp') out.out_packets = x.packetsSent;
      if (x.type == 'transport') { out.dtls = x.dtlsState; out.srtp = x.srtpCipher; out.tls = x.tlsVersion; }
    });
    out.ice = pc.iceConnectionState;
    if (out.in_packets > 20) break;
  }
  await fetch('/result', {method: 'POST', body: JSON.stringify(out)});
}
main().catch(e => fetch('/result', {method: 'POST', body: JSON.stringify({error: String(e)})}));
</script></body></html>"""

# Chromium's srtpCipher names -> ours.
SUITES = {"SRTP_AEAD_AES_128_GCM": "AEAD_AES_128_GCM", "SRTP_AES128_CM_HMAC_SHA1_80": "AES_CM_128_HMAC_SHA1_80"}


@unittest.skipUnless(NETNS, "needs a network namespace with only loopback (unshare -n)")
@unittest.skipUnless(shutil.which("chromium"), "chromium not installed")
class TransportChromium(unittest.TestCase):
    def run_role(self, role):
        tool = subprocess.Popen([TOOL], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (tool.kill(), tool.wait()))
        info = dict(tool.stdout.readline().strip().split(" ", 1) for _ in range(4))
        page_result, got_result = {}, threading.Event()
        ours = {}
        got_ours = threading.Event()

        def read_tool():
            for line in tool.stdout:
                if line.startswith("RESULT "):
                    ours.update(json.loads(line[7:]))
                    got_ours.set()
        threading.Thread(target=read_tool, daemon=True).start()

        def answer(offer):
            fp = re.search(r"a=fingerprint:(\S+ \S+)", offer).group(1)
            mid = re.search(r"a=mid:(\S+)", offer).group(1)
            tool.stdin.write(f"{role} {fp}\n")
            tool.stdin.flush()
            port = info["PORT"]
            # We answer as the DTLS server with a=setup:passive, as the client with active.
            setup = "active" if role == "client" else "passive"
            return "\r\n".join([
                "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=ice-lite", f"a=group:BUNDLE {mid}",
                f"m=audio {port} UDP/TLS/RTP/SAVPF 111", "c=IN IP4 127.0.0.1",
                f"a=ice-ufrag:{info['UFRAG']}", f"a=ice-pwd:{info['PWD']}", f"a=fingerprint:{info['FP']}",
                f"a=setup:{setup}", f"a=mid:{mid}", "a=sendrecv", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2",
                "a=ssrc:287454020 cname:junction", f"a=candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host",
                "a=end-of-candidates", ""])

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(PAGE.encode())

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                reply = answer(body).encode() if self.path == "/offer" else b""
                self.send_response(200)
                self.end_headers()
                self.wfile.write(reply)
                if self.path == "/result":
                    page_result.update(json.loads(body))
                    got_result.set()

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        profile = tempfile.mkdtemp(prefix="jn-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        # Loopback candidates only matter to the browser's side; the tool ignores anything else.
        chrome = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--disable-background-networking", "--use-fake-ui-for-media-stream",
                                   "--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
                                   f"--user-data-dir={profile}", f"http://127.0.0.1:{srv.server_address[1]}/"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (chrome.kill(), chrome.wait()))
        self.assertTrue(got_result.wait(60), "the page never reported")
        self.assertTrue(got_ours.wait(60), "the tool never reported")
        self.assertNotIn("error", page_result, page_result)
        # The browser's view: connected, and it decrypted RTP we protected.
        self.assertEqual(page_result.get("dtls"), "connected", page_result)
        self.assertEqual(page_result.get("tls"), "FEFD", page_result)  # DTLS 1.2
        self.assertGreater(page_result.get("in_packets", 0), 20, page_result)
        # Ours: connected, its RTP and RTCP decrypted, nothing failed.
        self.assertEqual(ours["state"], "connected", ours)
        self.assertGreaterEqual(ours["rtp_in"], 100, ours)
        self.assertGreaterEqual(ours["rtcp_in"], 1, ours)
        self.assertEqual(ours["srtp_in_failed"], 0, ours)
        self.assertEqual(ours["unauthorized"], 0, ours)
        self.assertEqual(SUITES.get(page_result.get("srtp")), ours["suite"], (page_result, ours))
        return page_result, ours

    def test_we_are_dtls_server(self):
        self.run_role("server")

    def test_we_are_dtls_client(self):
        self.run_role("client")


if __name__ == "__main__":
    main()
