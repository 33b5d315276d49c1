"""rest-sip-capture end to end: the REST API (every method, good and bad input, both 409s), the
SIP side against sipp (digest, RTP from pcaps of an ffmpeg clip) and a Python UAS (recvonly vs
sendrecv, DTMF as telephone-event, INFO, BYE both ways, CANCEL, re-INVITE hold, busy, the RTP
inactivity timeout), status events to a test backend (in order, through refusals), RTMP to
nginx-rtmp read back with ffprobe (when the build has sdk/rtmp's publisher), hot reload."""
import http.client
import json
import os
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capture_env import FPS, Backend, Media, Nginx, SipStreamUas, SipUas, Sipp, ffprobe, have_tools  # noqa: E402
from junction_test import JunctionTest, free_port, wait_until  # noqa: E402

PLUGIN = "rest-sip-capture"
TOKEN = "k" * 40
_MEDIA = {}


def media():
    if "m" not in _MEDIA:
        _MEDIA["m"] = Media(tempfile.mkdtemp(prefix="capture-media-"))
    return _MEDIA["m"]


@unittest.skipUnless(have_tools(), "needs ffmpeg, ffprobe, sipp and nginx with the rtmp module")
class CaptureTest(JunctionTest):
    conf_over = {}

    def setUp(self):
        super().setUp()
        self.backend = Backend(fail_first=getattr(self, "backend_fail_first", 0))
        self.rest_port = free_port()
        conf = {"listen": f"127.0.0.1:{self.rest_port}", "sip_listen": f"127.0.0.1:{free_port()}",
                "port_range": "capture", "backend_url": self.backend.url(), "backend_backoff_ms": 50,
                "rtmp_reconnect_ms": 200, "rtmp_reconnect_max_ms": 500, "keyframe_interval_ms": 300}
        conf.update(self.conf_over)
        self.j = self.server(plugins={PLUGIN: conf}, server={"media_loops": 1})
        self.j.core.setdefault("ports", {})["capture"] = {"min": 43000, "max": 43999}
        self.j.write_core(self.j.core)
        self.j.start()
        self.cleanups = []

    def tearDown(self):
        for c in reversed(self.cleanups):
            c()
        self.backend.close()
        super().tearDown()

    # -- REST ------------------------------------------------------------------------------------
    def rest(self, method, body=None, raw=None, token=None, http_method="POST"):
        conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=30)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(http_method, "/rest-api/" + method, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode()
        cors = r.getheader("Access-Control-Allow-Origin")
        r.close()
        conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        if r.status < 500:
            self.assertEqual(cors, "*", "CORS header on every answer")
        return r.status, parsed

    def startup(self, uas_port, call_id="c1", **kw):
        body = {"callId": call_id, "callee": "10000", "sipDomain": "127.0.0.1", "sipPort": str(uas_port),
                "sipLogin": "10009", "sipPassword": "1234", "hasAudio": True, "hasVideo": True}
        body.update(kw)
        return self.rest("call/startup", body)

    def find(self, call_id):
        st, body = self.rest("call/find", {"callId": call_id})
        return body[0] if st == 200 else None

    def wait_status(self, call_id, status, timeout=15):
        return wait_until(lambda: (lambda c: c if c and c["status"] == status else None)(self.find(call_id)), timeout,
                          f"call {call_id} {status}")

    def capture(self, call_id):
        for c in self.j.cmd(PLUGIN, "captures")["calls"]:
            if c["callId"] == call_id:
                return c
        return None

    def uas(self, **kw):
        u = SipUas(**kw)
        self.cleanups.append(u.close)
        return u

    def rtmp_available(self):
        return self.j.cmd(PLUGIN, "stats")["rtmp_available"]


class RestTest(CaptureTest):
    def test_bad_input_names_the_field(self):
        cases = [({"callee": "1", "sipDomain": "127.0.0.1", "hasAudio": "true"}, "hasAudio"),
                 ({"callee": "1", "sipDomain": "127.0.0.1", "hasVideo": "false"}, "hasVideo"),
                 ({"callee": "1", "sipDomain": "127.0.0.1", "sipLogin": "Ralf C12441@host.com"}, "sipLogin"),
                 ({"callee": "1", "sipDomain": "127.0.0.1", "sipAuthenticationName": "Ralf C"}, "sipAuthenticationName"),
                 ({"sipDomain": "127.0.0.1"}, "callee"),
                 ({"callee": "1"}, "sipDomain"),
                 ({"callee": "1", "sipDomain": "127.0.0.1", "rtmpUrl": "http://x/live", "rtmpStream": "s"}, "rtmpUrl"),
                 ({"callee": "1", "sipDomain": "127.0.0.1", "rtmpUrl": "rtmp://127.0.0.1/live"}, "rtmpStream"),
                 ({"callee": "1", "sipDomain": "127.0.0.1", "sipPort": "x"}, "sipPort")]
        for body, field in cases:
            st, r = self.rest("call/startup", body)
            self.assertEqual(st, 400, body)
            self.assertEqual(r["field"], field, r)
            self.assertTrue(r["error"])
        st, r = self.rest("call/startup", raw="{not json")
        self.assertEqual(st, 400)
        st, r = self.rest("call/send_dtmf", {"callId": "x", "dtmf": "9z"})
        self.assertEqual((st, r["field"]), (400, "dtmf"))
        st, r = self.rest("call/find", {})
        self.assertEqual(st, 400)
        st, r = self.rest("push/startup", {"rtmpUrl": "rtmp://127.0.0.1/live", "rtmpStream": "s"})
        self.assertEqual((st, r["field"]), (400, "callId"))
        st, r = self.rest("push/terminate", {"rtmpUrl": "nope", "rtmpStream": "s"})
        self.assertEqual((st, r["field"]), (400, "rtmpUrl"))
        self.assertEqual(self.rest("call/nothing", {})[0], 404)
        self.assertEqual(self.rest("call/find_all", http_method="GET")[0], 405)
        # unknown calls: 404
        self.assertEqual(self.rest("call/find", {"callId": "none"})[0], 404)
        self.assertEqual(self.rest("call/find_all")[0], 404)
        self.assertEqual(self.rest("call/terminate", {"callId": "none"})[0], 404)
        self.assertEqual(self.rest("call/send_dtmf", {"callId": "none", "dtmf": "1"})[0], 404)
        self.assertEqual(self.rest("push/startup", {"callId": "none", "rtmpUrl": "rtmp://127.0.0.1/live", "rtmpStream": "s"})[0], 404)
        self.assertEqual(self.rest("push/terminate", {"rtmpUrl": "rtmp://127.0.0.1/live", "rtmpStream": "s"})[0], 404)
        self.j.wait_for_log(r"/call/startup refused \(400\): hasAudio must be a JSON boolean")

    def test_conflicts_find_and_terminate(self):
        u = self.uas()
        url = "rtmp://127.0.0.1:1/live"
        st, r = self.startup(u.port, "c1", rtmpUrl=url, rtmpStream="s1")
        self.assertEqual(st, 200, r)
        self.assertEqual(r["callId"], "c1")
        self.wait_status("c1", "ESTABLISHED")
        # 409: the same callId; the same rtmpUrl + rtmpStream under another callId
        st, r = self.startup(u.port, "c1")
        self.assertEqual(st, 409, r)
        self.assertIn("callId", r["error"])
        st, r = self.startup(u.port, "c2", rtmpUrl=url + "/", rtmpStream="s1")
        self.assertEqual(st, 409, r)
        self.assertIn("in use by call c1", r["error"])
        st, r = self.rest("push/startup", {"callId": "c1", "rtmpUrl": url, "rtmpStream": "s1"})
        self.assertEqual(st, 409)
        # another stream on the same server is fine
        st, r = self.startup(u.port, "c2", rtmpUrl=url, rtmpStream="s2", hasAudio=False)
        self.assertEqual(st, 200, r)
        self.wait_status("c2", "ESTABLISHED")
        st, calls = self.rest("call/find_all")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(c["callId"] for c in calls), ["c1", "c2"])
        c = calls[0]
        for field in ("callId", "status", "sipStatus", "rtmpUrl", "rtmpStream", "rtmpStreamStatus", "caller", "callee",
                      "hasAudio", "hasVideo", "incoming", "visibleName", "sdp", "mediaProvider", "isMsrp"):
            self.assertIn(field, c)
        self.assertEqual(c["sipStatus"], 200)
        self.assertFalse(c["incoming"])
        self.assertIn("m=audio", c["sdp"])
        st, r = self.rest("call/find", {"rtmpUrl": url, "status": "ESTABLISHED"})
        self.assertEqual((st, len(r)), (200, 2))
        st, r = self.rest("call/find", {"callee": "10000", "callId": "c2"})
        self.assertEqual((st, [x["callId"] for x in r]), (200, ["c2"]))
        # the operator's view: junction ctl lists the captures with their rates; metrics
        rc, out, err = self.j.ctl("cmd", PLUGIN, "captures")
        self.assertEqual(rc, 0, err)
        self.assertIn('"c2"', out)
        self.assertIn("videoKbps", out)
        st, metrics = self.j.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertRegex(metrics, r'capture_calls_total\{[^}]*plugin="rest-sip-capture"[^}]*\} 2')
        self.assertEqual(self.rest("call/terminate", {"callId": "c1"})[0], 200)
        u.wait(lambda: any(m.startswith("BYE ") for m in u.requests), what="BYE")
        self.assertEqual(self.find("c1")["status"], "FINISH")
        # the callId of an ended call may be used again; its stream too
        st, r = self.startup(u.port, "c1", rtmpUrl=url, rtmpStream="s1")
        self.assertEqual(st, 200, r)

    def test_bearer_token(self):
        self.j.stop()
        self.j.write_plugin_conf(PLUGIN, dict(self.j.plugins[PLUGIN], api_token=TOKEN))
        self.j.start()
        st, r = self.rest("call/find_all")
        self.assertEqual(st, 401)
        self.assertEqual(self.rest("call/find_all", token="wrong" * 8)[0], 401)
        self.assertEqual(self.rest("call/find_all", token=TOKEN)[0], 404)  # authorised: no calls


class SipTest(CaptureTest):
    def offer_dir(self, sdp):
        audio, video = sdp.split("m=video")
        d = lambda s: "sendrecv" if "a=sendrecv" in s else "recvonly" if "a=recvonly" in s else None  # noqa: E731
        return d(audio), d(video)

    def test_recvonly_vs_sendrecv(self):
        u = self.uas()
        for i, (a, v) in enumerate([(True, True), (False, False), (False, True)]):
            st, r = self.startup(u.port, f"d{i}", hasAudio=a, hasVideo=v)
            self.assertEqual(st, 200, r)
            u.wait(lambda: len(u.invites) > i, what="INVITE")
            sdp = u.invites[i].split("\r\n\r\n", 1)[1]
            self.assertEqual(self.offer_dir(sdp), ("sendrecv" if a else "recvonly", "sendrecv" if v else "recvonly"))
            self.assertIn("a=rtpmap:8 PCMA/8000", sdp)
            self.assertIn("a=rtpmap:0 PCMU/8000", sdp)
            self.assertIn("packetization-mode=1", sdp)
            self.assertIn("packetization-mode=0", sdp)
            self.assertIn("telephone-event/8000", sdp)

    def test_dtmf_rfc2833_and_info(self):
        u = self.uas()
        self.startup(u.port, "t1")
        self.wait_status("t1", "ESTABLISHED")
        self.assertEqual(self.rest("call/send_dtmf", {"callId": "t1", "dtmf": "1#", "type": "RFC2833"})[0], 200)

        def events():
            out = []
            for p in u.audio_pkts:
                if len(p) >= 16 and p[1] & 0x7F == 101:
                    out.append((p[12], bool(p[13] & 0x80)))
            return out
        u.wait(lambda: (11, True) in events(), what="telephone-event packets")
        ev = events()
        self.assertIn((1, False), ev)
        self.assertIn((1, True), ev)
        self.assertLess(ev.index((1, True)), ev.index((11, False)), "digits in order")
        self.assertEqual(self.rest("call/send_dtmf", {"callId": "t1", "dtmf": "5", "type": "INFO"})[0], 200)
        u.wait(lambda: any(m.startswith("INFO ") and "Signal=5" in m for m in u.requests), what="INFO dtmf-relay")

    def test_bye_from_peer_hold_and_keyframe_info(self):
        u = self.uas()
        self.startup(u.port, "b1")
        self.wait_status("b1", "ESTABLISHED")
        # no keyframe yet: the device is asked with SIP INFO picture_fast_update
        u.wait(lambda: any(m.startswith("INFO ") and "picture_fast_update" in m for m in u.requests), what="INFO fast update")
        u.request("INVITE", u.sdp("sendonly"))
        self.wait_status("b1", "HOLD")
        u.request("INVITE", u.sdp("sendrecv"))
        self.wait_status("b1", "ESTABLISHED")
        u.request("BYE")
        c = self.wait_status("b1", "FINISH")
        self.assertIn("BYE", c["info"])

    def test_register_first_with_digest(self):
        u = self.uas()
        st, r = self.startup(u.port, "reg1", sipRegisterRequired=True, sipAuthenticationName="10009")
        self.assertEqual(st, 200, r)
        self.wait_status("reg1", "ESTABLISHED")
        self.assertEqual(len(u.registered), 1)  # the second REGISTER carried a digest the UAS verified
        self.assertIn('username="10009"', u.header(u.registered[0], "Authorization"))
        regs = [i for i, m in enumerate(u.requests) if m.startswith("REGISTER ")]
        inv = [i for i, m in enumerate(u.requests) if m.startswith("INVITE ")]
        self.assertEqual(len(regs), 2)
        self.assertLess(regs[-1], inv[0], "REGISTER before the INVITE")
        ev = self.backend.wait(lambda e: any(x["status"] == "ESTABLISHED" for x in e))
        self.assertEqual([x["status"] for x in ev][:3], ["NEW", "REGISTERING", "TRYING"])

    def test_busy_and_cancel(self):
        busy = self.uas(code=486)
        self.startup(busy.port, "busy")
        self.assertEqual(self.wait_status("busy", "BUSY")["sipStatus"], 486)
        ringing = self.uas(answer=False)
        self.startup(ringing.port, "cancel")
        self.wait_status("cancel", "RING")
        self.assertEqual(self.rest("call/terminate", {"callId": "cancel"})[0], 200)
        ringing.wait(lambda: any(m.startswith("CANCEL ") for m in ringing.requests), what="CANCEL")
        self.assertEqual(self.find("cancel")["status"], "FINISH")

class SippTest(CaptureTest):
    # sipp's scenario has no place for the INFO picture_fast_update a real device takes (the
    # Python UAS checks it); RTCP PLI/FIR still go out.
    conf_over = {"keyframe_sip_info": False}

    def test_digest_with_sipp_and_pcap_media(self):
        m = media()
        s = Sipp("uas_auth_pcap.xml", m)
        self.cleanups.append(s.kill)
        st, r = self.startup(s.port, "pc1")
        self.assertEqual(st, 200, r)
        self.wait_status("pc1", "ESTABLISHED")
        # every frame of the clip arrives depacketized (the pcap plays in real time)
        c = wait_until(lambda: (lambda x: x if x and x["videoFrames"] >= m.frames - 2 and x["audioFrames"] >= len(m.audio) - 5 else None)(self.capture("pc1")),
                       m.seconds + 15, "the clip's frames")
        self.assertLessEqual(c["videoFrames"], m.frames)
        self.assertEqual(self.rest("call/terminate", {"callId": "pc1"})[0], 200)
        rc, log = s.wait(30)
        self.assertEqual(rc, 0, log)  # sipp checked the digest and got its BYE



def tcp_listening(port):
    """A socket listens on 127.0.0.1:port (read from /proc: no probe connection disturbs sipp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(ln.split()[1] == want and ln.split()[3] == "0A" for ln in f.readlines()[1:])


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 signed by it, and another CA's server certificate."""
    import subprocess

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca, srv in (("ca", "server"), ("other-ca", "other-server")):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
            "-days", "2", "-subj", f"/CN=capture test {ca}")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{srv}.key", "-out", f"{srv}.csr", "-subj", "/CN=127.0.0.1")
        run("x509", "-req", "-in", f"{srv}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{srv}.pem", "-days", "2", "-extfile", "ext.cnf")


class TransportTest(CaptureTest):
    """SIP toward the server over TCP (sipp -t t1) and TLS (a Python UAS: Debian's sipp has no
    TLS), chosen per call by sipTransport or for all by conf sip_transport."""

    def setUp(self):
        self.pki = tempfile.mkdtemp(prefix="capture-pki-")
        make_pki(self.pki)
        self.conf_over = {"keyframe_sip_info": False, "sip_tls_ca_file": os.path.join(self.pki, "ca.pem")}
        super().setUp()

    def test_sip_over_tcp_with_sipp(self):
        m = media()
        s = Sipp("uas_auth_pcap.xml", m, extra=["-t", "t1"])  # sipp listens on TCP only
        self.cleanups.append(s.kill)
        wait_until(lambda: tcp_listening(s.port), 10, "sipp listening on TCP")  # a refused connect fails the call
        st, r = self.startup(s.port, "tcp1", sipTransport="TCP")
        self.assertEqual(st, 200, r)
        self.wait_status("tcp1", "ESTABLISHED")  # digest challenge and answer over the connection
        wait_until(lambda: (lambda x: x and x["videoFrames"] >= m.frames - 2)(self.capture("tcp1")), m.seconds + 15, "frames")
        self.assertEqual(self.rest("call/terminate", {"callId": "tcp1"})[0], 200)
        rc, log = s.wait(30)
        self.assertEqual(rc, 0, log)  # sipp checked the digest and got its BYE, over TCP

    def test_sip_over_tls_both_ways(self):
        u = SipStreamUas(cert=os.path.join(self.pki, "server.pem"), key=os.path.join(self.pki, "server.key"))
        self.cleanups.append(u.close)
        st, r = self.startup(u.port, "tls1", sipTransport="TLS")
        self.assertEqual(st, 200, r)
        self.wait_status("tls1", "ESTABLISHED")
        inv = u.invites[-1]
        self.assertRegex(SipUas.header(inv, "Via"), r"^SIP/2\.0/TLS ")
        self.assertIn(";transport=tls>", SipUas.header(inv, "Contact"))
        # the ACK came over the same connection; a BYE from the device over it ends the call
        u.wait(lambda: any(x.startswith("ACK ") for x in u.requests), what="ACK")
        ack = next(x for x in u.requests if x.startswith("ACK "))
        self.assertRegex(SipUas.header(ack, "Via"), r"^SIP/2\.0/TLS ", "the dialog's requests say TLS too")
        self.assertEqual(len(u.conns), 1, "one TLS connection for the whole dialog")
        u.request("BYE")
        self.wait_status("tls1", "FINISH")
        u.wait(lambda: any(x.startswith("SIP/2.0 200") and "BYE" in (SipUas.header(x, "CSeq") or "") for x in u.requests),
               what="200 to the BYE over TLS")

    def test_tls_to_an_untrusted_server_fails_with_the_reason(self):
        u = SipStreamUas(cert=os.path.join(self.pki, "other-server.pem"), key=os.path.join(self.pki, "other-server.key"))
        self.cleanups.append(u.close)
        st, r = self.startup(u.port, "tls2", sipTransport="TLS")
        self.assertEqual(st, 200, r)
        c = self.wait_status("tls2", "FAILED")
        self.assertIn("TLS", c["info"])
        self.assertEqual(u.invites, [], "nothing sent to a server whose certificate is not trusted")
        self.j.wait_for_log(r"call tls2: cannot connect to the SIP server over TLS")

    def test_bad_sip_transport_is_a_400_naming_the_field(self):
        st, r = self.startup(5060, "bad1", sipTransport="SCTP")
        self.assertEqual(st, 400)
        self.assertEqual(r["field"], "sipTransport")


class AvSyncTest(CaptureTest):
    def test_sender_reports_put_audio_on_the_video_clock(self):
        """Both tracks arrive together, but the device's RTCP SRs say the audio's first sample was
        taken 500 ms after the video's first frame: the audio moves 500 ms on the output clock."""
        import struct as st
        u = self.uas()
        self.startup(u.port, "sync1")
        self.wait_status("sync1", "ESTABLISHED")
        inv = u.invites[-1]
        aport, vport = (int(x) for x in __import__("re").findall(r"a=rtcp:(\d+)", inv))

        def sr(ssrc, ntp_s, ntp_frac, rtp_ts):
            return st.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, ntp_s, ntp_frac, rtp_ts, 0, 0)
        u.video.sendto(sr(0x1234, 1000, 0, 0), ("127.0.0.1", vport))
        u.audio.sendto(sr(0x5678, 1000, 1 << 31, 0), ("127.0.0.1", aport))  # +0.5 s
        u.send_rtp(media())
        c = self.capture("sync1")
        self.assertTrue(c["avAlignedBySr"], c)
        self.assertLess(abs(c["avShiftMs"] - 500), 80, c)


class TimeoutTest(CaptureTest):
    conf_over = {"rtp_timeout_ms": 1000}

    def test_rtp_inactivity_fails_the_call(self):
        u = self.uas()
        self.startup(u.port, "quiet")
        self.wait_status("quiet", "ESTABLISHED")
        c = self.wait_status("quiet", "FAILED")
        self.assertEqual(c["info"], "FAILED_BY_RTP_ACTIVITY")
        u.wait(lambda: any(m.startswith("BYE ") for m in u.requests), what="BYE after the timeout")
        self.j.wait_for_log(r"no RTP for 1000 ms")


class BackendTest(CaptureTest):
    backend_fail_first = 2

    def test_every_status_in_order_through_refusals(self):
        u = self.uas()
        self.startup(u.port, "e1", appKey="myApp")
        self.wait_status("e1", "ESTABLISHED")
        self.rest("call/terminate", {"callId": "e1"})
        ev = self.backend.wait(lambda e: any(x["status"] == "FINISH" for x in e), what="FINISH event")
        self.assertEqual([x["status"] for x in ev], ["NEW", "TRYING", "RING", "ESTABLISHED", "FINISH"])
        self.assertTrue(all(x["callId"] == "e1" and x["appKey"] == "myApp" for x in ev))
        self.assertEqual(self.backend.refused, 2)  # two refusals, retried, nothing lost
        self.assertEqual(self.j.cmd(PLUGIN, "stats")["events_failed"], 2)


class ReloadTest(CaptureTest):
    def test_call_survives_a_reload(self):
        u = self.uas()
        self.startup(u.port, "r1")
        self.wait_status("r1", "ESTABLISHED")
        m = media()
        u.send_rtp(m, audio=True, video=False)
        before = wait_until(lambda: self.capture("r1")["audioFrames"] >= len(m.audio) - 2 and self.capture("r1"), 10, "audio")
        self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.j.wait_for_log(r"restored 1 calls")
        self.assertEqual(self.find("r1")["status"], "ESTABLISHED")
        u.send_rtp(m, audio=True, video=False)  # the same sockets still deliver
        # the counters go on across the reload
        wait_until(lambda: self.capture("r1")["audioFrames"] >= before["audioFrames"] + len(m.audio) - 2, 10, "audio after reload")
        self.assertGreater(before["audioFrames"], 0)
        self.rest("call/terminate", {"callId": "r1"})
        u.wait(lambda: any(x.startswith("BYE ") for x in u.requests), what="BYE after reload (the dialog survived)")


class RtmpTest(CaptureTest):
    conf_over = {"keyframe_sip_info": False}

    def setUp(self):
        super().setUp()
        if not self.rtmp_available():
            self.skipTest("built without sdk/rtmp's publisher")
        self.nginx = Nginx().start()
        self.cleanups.append(self.nginx.cleanup)

    def test_sipp_call_to_nginx_read_back_by_ffprobe(self):
        m = media()
        s = Sipp("uas_auth_pcap.xml", m)
        self.cleanups.append(s.kill)
        st, r = self.startup(s.port, "rt1", rtmpUrl=self.nginx.url(), rtmpStream="cap1")
        self.assertEqual(st, 200, r)
        self.backend.wait(lambda e: any(x["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE" for x in e), what="RTMP active")
        wait_until(lambda: (lambda x: x and x["videoFrames"] >= m.frames - 2)(self.capture("rt1")), m.seconds + 15, "frames")
        self.rest("call/terminate", {"callId": "rt1"})
        self.assertEqual(s.wait(30)[0], 0)
        self.nginx.stop()  # closes the recording
        codecs, pk = ffprobe(self.nginx.recording("cap1"))
        self.assertEqual(codecs.get("video"), "h264")
        self.assertEqual(codecs.get("audio"), "pcm_alaw")
        # the first GOP may go by before the publisher is up: at most one GOP short
        self.assertGreaterEqual(len(pk["video"]), m.frames - 26)
        self.assertLessEqual(len(pk["video"]), m.frames)
        self.assertEqual(pk["video"], sorted(pk["video"]), "video timestamps monotonic")
        self.assertEqual(pk["audio"], sorted(pk["audio"]), "audio timestamps monotonic")
        span = pk["video"][-1] - pk["video"][0]
        self.assertGreater(span, (len(pk["video"]) - 2) / 25.0 - 0.3)
        self.assertLess(span, m.seconds + 0.5)
        ev = self.backend.wait(lambda e: any(x["status"] == "FINISH" for x in e))
        statuses = [(x["status"], x["rtmpStreamStatus"]) for x in ev]
        self.assertEqual(statuses[0], ("NEW", "RTMP_STREAM_WAIT"))
        self.assertIn(("ESTABLISHED", "RTMP_STREAM_ACTIVE"), statuses)

    def test_names_resolved_through_the_core(self):
        """sipDomain and the RTMP host may be names: both go through the core's DNS service."""
        u = self.uas()
        url = self.nginx.url().replace("127.0.0.1", "localhost")
        st, r = self.startup(u.port, "dn1", sipDomain="localhost", rtmpUrl=url, rtmpStream="dns")
        self.assertEqual(st, 200, r)
        self.wait_status("dn1", "ESTABLISHED")
        self.assertTrue(u.invites[0].startswith(f"INVITE sip:10000@localhost:{u.port} SIP/2.0"))
        wait_until(lambda: self.find("dn1")["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE", 15, "RTMP via a name")

    def test_second_output_and_server_restart(self):
        u = self.uas()
        self.startup(u.port, "rt2", rtmpUrl=self.nginx.url(), rtmpStream="a")
        self.wait_status("rt2", "ESTABLISHED")
        st, r = self.rest("push/startup", {"callId": "rt2", "rtmpUrl": self.nginx.url(), "rtmpStream": "b"})
        self.assertEqual(st, 200, r)
        wait_until(lambda: all(p["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE" for p in self.find("rt2")["pushes"])
                   and len(self.find("rt2")["pushes"]) == 2, 15, "two active outputs")
        port = self.nginx.port
        self.nginx.stop()
        self.backend.wait(lambda e: any(x["rtmpStreamStatus"] == "RTMP_CONNECTION_LOST" for x in e), what="LOST")
        self.nginx = Nginx(port).start()
        self.cleanups.append(self.nginx.cleanup)
        wait_until(lambda: all(p["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE" for p in self.find("rt2")["pushes"]), 20,
                   "active again after the server's restart")
        self.assertEqual(self.rest("push/terminate", {"rtmpUrl": self.nginx.url(), "rtmpStream": "b"})[0], 200)
        st, r = self.rest("call/find", {"callId": "rt2"})
        self.assertIn("RTMP_STREAM_STOPPED", [p["rtmpStreamStatus"] for p in r[0]["pushes"]])

    def test_bus_stream_push_and_reload(self):
        """/push/startup with streamName pushes a bus stream (any plugin's; here the call's own
        rest-sip-capture/<callId>) to RTMP; a reload re-makes the RTMP connections."""
        m = media()
        s = Sipp("uas_auth_pcap.xml", m)
        self.cleanups.append(s.kill)
        self.startup(s.port, "bp1", rtmpUrl=self.nginx.url(), rtmpStream="own")
        self.wait_status("bp1", "ESTABLISHED")
        st, r = self.rest("push/startup", {"streamName": "rest-sip-capture/bp1", "rtmpUrl": self.nginx.url(), "rtmpStream": "bus"})
        self.assertEqual(st, 200, r)
        self.j.wait_for_log(r"RTMP rtmp://127.0.0.1:\d+/live/bus RTMP_STREAM_ACTIVE")
        wait_until(lambda: (lambda x: x and x["videoFrames"] >= m.frames - 2)(self.capture("bp1")), m.seconds + 15, "frames")
        bus = self.j.cmd(PLUGIN, "captures")["busPushes"]
        self.assertEqual(len(bus), 1)
        self.assertGreater(bus[0]["bytes"], 100000)  # the clip went out through the bus push
        # ending the bus push unpublishes: nginx closes its recording
        self.assertEqual(self.rest("push/terminate", {"rtmpUrl": self.nginx.url(), "rtmpStream": "bus"})[0], 200)
        self.j.wait_for_log(r"RTMP rtmp://127.0.0.1:\d+/live/bus RTMP_STREAM_STOPPED")
        rec = self.nginx.recording("bus")
        wait_until(lambda: ffprobe(rec)[0].get("video") == "h264" and len(ffprobe(rec)[1]["video"]) >= m.frames - 26, 10,
                   "the bus push's recording", interval=0.3)
        # a reload keeps the call's publishing RTMP connection (test_reload_mid_push_keeps_the_rtmp_stream)
        self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
        self.j.wait_for_log(r"restored 1 calls, 1 RTMP outputs kept, 0 reconnecting")
        self.rest("call/terminate", {"callId": "bp1"})
        self.assertEqual(s.wait(30)[0], 0)

    def test_reload_mid_push_keeps_the_rtmp_stream(self):
        """A hot reload while the call is pushing keeps the RTMP connection and the publisher's
        state: the backend sees no RTMP status change and nginx records one continuous stream."""
        m = media()
        u = self.uas()
        self.startup(u.port, "kr1", rtmpUrl=self.nginx.url(), rtmpStream="kept")
        self.wait_status("kr1", "ESTABLISHED")
        sender = threading.Thread(target=u.send_rtp, args=(m,))
        sender.start()
        try:
            wait_until(lambda: self.find("kr1")["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE", 15, "RTMP active")
            # mid-push: a keyframe has gone out and the clip is far from its end
            wait_until(lambda: self.capture("kr1")["videoFrames"] >= FPS + 5, 15, "a second of video")
            self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
            self.j.wait_for_log(r"restored 1 calls, 1 RTMP outputs kept, 0 reconnecting")
            self.assertLess(self.capture("kr1")["videoFrames"], m.frames - FPS, "the reload came mid-push")
        finally:
            sender.join()
        wait_until(lambda: self.capture("kr1")["videoFrames"] >= m.frames - 2, 15, "every frame")
        self.rest("call/terminate", {"callId": "kr1"})
        ev = self.backend.wait(lambda e: any(x["status"] == "FINISH" for x in e), what="FINISH")
        rtmp = [x["rtmpStreamStatus"] for x in ev]
        self.assertNotIn("RTMP_CONNECTION_LOST", rtmp)
        first_active = rtmp.index("RTMP_STREAM_ACTIVE")
        self.assertEqual(set(rtmp[first_active:]), {"RTMP_STREAM_ACTIVE"}, "no RTMP status change after ACTIVE")
        self.nginx.stop()  # closes the recording
        codecs, pk = ffprobe(self.nginx.recording("kept"))
        self.assertEqual(codecs.get("video"), "h264")
        self.assertEqual(codecs.get("audio"), "pcm_alaw")
        # one recording: a re-made publication would have restarted the file at the reload
        self.assertGreaterEqual(len(pk["video"]), m.frames - 26)
        self.assertEqual(pk["video"], sorted(pk["video"]), "video timestamps monotonic")
        self.assertEqual(pk["audio"], sorted(pk["audio"]), "audio timestamps monotonic")
        gaps = [b - a for a, b in zip(pk["video"], pk["video"][1:])]
        self.assertLess(max(gaps), 0.5, "no hole at the reload")
        span = pk["video"][-1] - pk["video"][0]
        self.assertGreater(span, (len(pk["video"]) - 2) / FPS - 0.3)
        self.assertLess(span, m.seconds + 0.5)


class AacTest(CaptureTest):
    """rtmp_audio = "aac": the call's G.711 goes out as AAC-LC (libavcodec), sequence header first."""
    conf_over = {"keyframe_sip_info": False, "rtmp_audio": "aac"}

    def setUp(self):
        super().setUp()
        if not self.rtmp_available():
            self.skipTest("built without sdk/rtmp's publisher")
        self.nginx = Nginx().start()
        self.cleanups.append(self.nginx.cleanup)

    def test_g711_pushed_as_aac(self):
        m = media()
        u = self.uas()
        self.startup(u.port, "aac1", rtmpUrl=self.nginx.url(), rtmpStream="aac")
        self.wait_status("aac1", "ESTABLISHED")
        wait_until(lambda: self.find("aac1")["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE", 15, "RTMP active")
        u.send_rtp(m)
        wait_until(lambda: self.capture("aac1")["audioFrames"] >= len(m.audio) - 2, 15, "every audio frame")
        self.rest("call/terminate", {"callId": "aac1"})
        self.backend.wait(lambda e: any(x["status"] == "FINISH" for x in e), what="FINISH")
        self.nginx.wait_log(r"publish: name='aac'[\s\S]*disconnect")  # nginx has read our last bytes
        self.nginx.stop()  # closes the recording
        codecs, pk = ffprobe(self.nginx.recording("aac"))
        self.assertEqual(codecs.get("video"), "h264")
        self.assertEqual(codecs.get("audio"), "aac")
        self.assertEqual(pk["audio"], sorted(pk["audio"]), "audio timestamps monotonic")
        # 1024 samples per AAC frame at 8 kHz: 128 ms each. At the call's end the encoder is
        # finished (the partial block as a short frame, then drained): every sample fed reaches
        # RTMP. The wait above allows the last two G.711 packets (40 ms) to come after terminate.
        # Unfinished, the last partial block and the frame inside the encoder's delay were lost:
        # the last frame started at least 0.25 s before the end.
        self.assertGreaterEqual(len(pk["audio"]), int(m.seconds * 8000 / 1024) + 1)
        self.assertGreater(pk["audio"][-1], m.seconds - 0.128 - 0.04 - 0.005,
                           f"the last AAC frame starts at {pk['audio'][-1]:.3f}s for {m.seconds}s sent")
        self.assertLess(pk["audio"][-1], m.seconds, "no frame after the end of what was sent")

    def test_aac_continues_across_a_reload(self):
        """A hot reload mid-call: the encoder's full blocks go out before the swap, the partial
        block and the next frame's time go to the next instance's encoder (no priming frame):
        the FLV's AAC timestamps go on in 128 ms steps with no gap, overlap or repeat."""
        m = media()
        u = self.uas()
        self.startup(u.port, "aac2", rtmpUrl=self.nginx.url(), rtmpStream="aacr")
        self.wait_status("aac2", "ESTABLISHED")
        sender = threading.Thread(target=u.send_rtp, args=(m,))
        sender.start()
        try:
            wait_until(lambda: self.find("aac2")["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE", 15, "RTMP active")
            wait_until(lambda: self.capture("aac2")["audioFrames"] >= 60, 15, "1.2 s of audio")
            self.j.api("POST", f"/api/v1/plugins/{PLUGIN}/reload", {}, expect=200)
            self.j.wait_for_log(r"restored 1 calls, 1 RTMP outputs kept, 0 reconnecting")
            self.assertLess(self.capture("aac2")["audioFrames"], len(m.audio) - 25, "the reload came mid-call")
        finally:
            sender.join()
        wait_until(lambda: self.capture("aac2")["audioFrames"] >= len(m.audio) - 2, 15, "every audio frame")
        self.rest("call/terminate", {"callId": "aac2"})
        self.backend.wait(lambda e: any(x["status"] == "FINISH" for x in e), what="FINISH")
        self.nginx.wait_log(r"publish: name='aacr'[\s\S]*disconnect")  # nginx has read our last bytes
        self.nginx.stop()
        codecs, pk = ffprobe(self.nginx.recording("aacr"))
        self.assertEqual(codecs.get("audio"), "aac")
        a = pk["audio"]
        # the first frame is the encoder's priming frame (at 0 with the first real one); after
        # it, every step is one frame (128 ms); a re-primed encoder would repeat a timestamp and
        # the frames lost at the swap would leave a hole
        steps = [round(y - x, 3) for x, y in zip(a[1:], a[2:])]
        self.assertEqual(set(steps), {0.128}, f"AAC timestamp steps {steps}")
        self.assertGreaterEqual(len(a), int(m.seconds * 8000 / 1024) + 1, "every block sent, the last as a short frame")


class AudioConfTest(JunctionTest):
    def test_bad_rtmp_audio_refused_with_the_key(self):
        j = self.server(plugins={PLUGIN: {"listen": f"127.0.0.1:{free_port()}", "sip_listen": f"127.0.0.1:{free_port()}",
                                          "port_range": "media", "rtmp_audio": "mp3"}})
        j.start(expect_ready=False)
        rc = j.wait_exit(30)
        j.proc = None  # exited on purpose: nothing for tearDown to check
        self.assertNotEqual(rc, 0, j.log())
        self.assertRegex(j.log(), r"rtmp_audio: .*must be \"g711\" or \"aac\"")
        self.assertNotIn("junction ready", j.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
