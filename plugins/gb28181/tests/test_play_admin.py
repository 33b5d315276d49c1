"""gb28181 media-session admin verbs (play / stop / streams / playback / download /
playback_control) without media flowing: every refusal carries its reason, nothing is left
behind by a refused request, and a play on a registered device either INVITEs it (the media
ingest built in) or is refused with the reason that it is not. The media flows themselves are
the test_media_*.py files."""
import re

from gb_env import DEV1, DEV2, PLATFORM, GbTest, wait_until
from junction_test import main

CH1 = "34020000001310000001"
AUDIO = "34020000001370000001"  # the device's audio output channel (type 137)


class PlayAdminTest(GbTest):
    def server(self, **kw):
        # The core's [ports.media] range the receivers take their ports from: a private band
        # below the other tests' bands (9400-9499; free_port hands out 24000-32000, rtp-relay's tests 10000-23999).
        j = super().server(**kw)
        j.write_core(dict(j.core, ports={"media": {"min": 9400, "max": 9499}}))
        return j

    def test_refusals_name_their_reason(self):
        self.provision(DEV1)
        s = self.cmd("streams")
        self.assertEqual(s["sessions"], [])
        self.assertIn("media", s)
        self.assertIn("device", self.cmd("play", {"channel": CH1}, expect=400)["error"])
        self.assertIn("20 digits", self.cmd("play", {"device": DEV1, "channel": "123"}, expect=400)["error"])
        self.assertIn("no device", self.cmd("play", {"device": DEV2, "channel": CH1}, expect=404)["error"])
        self.assertIn("transport", self.cmd("play", {"device": DEV1, "channel": CH1, "transport": "sctp"}, expect=400)["error"])
        # provisioned, never registered
        self.assertIn("offline", self.cmd("play", {"device": DEV1, "channel": CH1}, expect=502)["error"])
        self.assertIn("offline", self.cmd("playback", {"device": DEV1, "channel": CH1, "start": 1697264152,
                                                       "end": 1697266715}, expect=502)["error"])
        self.assertIn("start < end", self.cmd("download", {"device": DEV1, "channel": CH1, "start": 20, "end": 10},
                                              expect=502)["error"])
        self.assertIn("no such session", self.cmd("stop", {"id": 42}, expect=404)["error"])
        self.assertIn("no such session", self.cmd("stop", {"channel": CH1}, expect=404)["error"])
        self.assertIn("action", self.cmd("playback_control", {"id": 1, "action": "rewind"}, expect=400)["error"])
        self.assertIn("no established session", self.cmd("playback_control", {"id": 1, "action": "pause"}, expect=400)["error"])
        self.assertIn("numbers", self.cmd("playback_control", {"id": 1, "action": "play", "scale": "fast"}, expect=400)["error"])
        self.assertEqual(self.cmd("streams")["sessions"], [])  # nothing left behind

    def test_play_on_a_registered_device(self):
        d = self.registered_device(DEV1)
        self.assertTrue(self.cmd("streams")["media"])
        v = self.cmd("play", {"device": DEV1, "channel": CH1})
        self.assertEqual(v["channel"], CH1)
        self.assertEqual(v["kind"], "Play")
        self.assertEqual(v["state"], "inviting")
        self.assertRegex(v["ssrc"], r"^0\d{9}$")  # live: 0 + domain digits + sequence
        self.assertTrue(9400 <= v["media_port"] <= 9499, v)  # from the core's range
        self.j.wait_for_log(rf"gb28181: INVITE Play {CH1} of {DEV1} \(udp, y={v['ssrc']}, port {v['media_port']}\)")
        # The simulated device answers the INVITE and streams: the session is established.
        self.j.wait_for_log(rf"gb28181: Play {CH1} established")
        self.assertEqual([x["id"] for x in self.cmd("streams")["sessions"]], [v["id"]])
        self.cmd("stop", {"id": v["id"]})
        self.j.wait_for_log(rf"Play {CH1} of {DEV1} ended: stopped by the operator")
        d.wait("bye_received")  # the device got the BYE

    def test_a_refused_invite_leaves_no_session(self):
        d = self.registered_device(DEV1)
        d.media.refuse_invite = 501
        v = self.cmd("play", {"device": DEV1, "channel": CH1})
        self.j.wait_for_log(rf"Play {CH1} of {DEV1} ended: INVITE answered 501")
        self.j.wait_for_log(rf"stream \d+ gb28181/{DEV1}/{CH1} closed: INVITE answered")
        self.assertEqual(self.cmd("streams")["sessions"], [])
        self.assertEqual(v["state"], "inviting")


class GbRoutingTest(GbTest):
    """Calls from another plugin (call-peer-a) to gb:<channel>: refused with the reason when the
    channel is unknown or its device offline; for a registered device the call rings while the
    platform INVITEs it, and is rejected with the INVITE's outcome when the stream cannot start
    (the simulated device is told to answer INVITE 501; restart_attempts = 1: no retry)."""
    conf_over = {"play": {"restart_attempts": 1}}
    plugins_extra = {"call-peer-a": {"on_offer": "none"}}

    def server(self, **kw):
        j = super().server(**kw)
        j.write_core(dict(j.core, ports={"media": {"min": 9500, "max": 9599}}))
        return j

    def originate(self, to):
        r = self.j.cmd("call-peer-a", "originate", {"from": "peera:desk/1", "to": to})
        self.assertEqual(r["status"], 0, r)
        return r["leg"]

    def events_of(self, leg, *types):
        got = []

        def seen():
            got[:] = [e for e in self.j.cmd("call-peer-a", "events") if e["leg"] == leg and e["type"] in types]
            return got
        wait_until(seen, timeout=10, what=f"{types} on leg {leg}")
        return got

    def test_unknown_channel_and_offline_device_are_rejected(self):
        self.provision(DEV1)
        leg = self.originate("gb:" + CH1)
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 404)
        self.assertIn("catalog", e["reason"])
        leg = self.originate(f"gb:{DEV1}/{CH1}")
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 480)
        self.assertIn("offline", e["reason"])
        leg = self.originate("gb:12345")
        self.assertIn("20-digit", self.events_of(leg, "reject")[0]["reason"])

    def test_call_rings_then_gets_the_invite_outcome(self):
        d = self.registered_device(DEV1)
        d.media.refuse_invite = 501
        leg = self.originate(f"gb:{DEV1}/{CH1}")
        self.events_of(leg, "ringing")
        self.j.wait_for_log(rf"gb28181: INVITE Play {CH1} of {DEV1}")
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 503)
        self.assertIn("INVITE answered 501", e["reason"])
        self.assertEqual(self.cmd("streams")["sessions"], [])

    def test_playback_call_invites_with_its_time_span(self):
        d = self.registered_device(DEV1)
        d.media.refuse_invite = 501
        leg = self.originate(f"gb:{DEV1}/{CH1};playback=1697264152-1697266715")
        self.events_of(leg, "ringing")
        self.j.wait_for_log(rf"gb28181: INVITE Playback {CH1} of {DEV1} \(udp, y=1\d{{9}}")
        e = self.events_of(leg, "reject")[0]
        self.assertEqual(e["code"], 503)
        self.assertIn("INVITE answered 501", e["reason"])
        leg = self.originate(f"gb:{DEV1}/{CH1};playback=20-10")
        self.assertIn("start < end", self.events_of(leg, "reject")[0]["reason"])



class BroadcastTest(GbTest):
    """语音广播 signalling: the broadcast verb notifies the device; the device's INVITE for audio
    (here from a raw UDP socket, as the audio channel) is answered 200 with a sendonly PCMA
    answer from the platform's sender port and its y=; BYE ends it. An INVITE nobody expects is 403."""

    def server(self, **kw):
        j = super().server(**kw)
        j.write_core(dict(j.core, ports={"media": {"min": 9600, "max": 9699}}))
        return j

    def invite(self, sock, user, call_id, port):
        sdp = (f"v=0\r\no={user} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {port} RTP/AVP 8\r\na=recvonly\r\na=rtpmap:8 PCMA/8000\r\ny=0100000077\r\n")
        lport = sock.getsockname()[1]
        msg = (f"INVITE sip:{PLATFORM}@127.0.0.1:{self.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{lport};rport;branch=z9hG4bK{call_id}\r\n"
               f"From: <sip:{user}@{PLATFORM[:10]}>;tag=dev{call_id}\r\nTo: <sip:{PLATFORM}@{PLATFORM[:10]}>\r\n"
               f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:{user}@127.0.0.1:{lport}>\r\nMax-Forwards: 70\r\n"
               f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        sock.sendto(msg.encode(), ("127.0.0.1", self.port))

    def final(self, sock):
        while True:
            data, _ = sock.recvfrom(65536)
            text = data.decode(errors="replace")
            if text.startswith("SIP/2.0 1"):
                continue
            return text

    def test_broadcast_invite_answered_and_ended(self):
        import socket
        d = self.registered_device(DEV1)
        d.media.broadcast_invites = False  # this test sends the device's audio INVITE by hand
        self.assertIn("source", self.cmd("broadcast", {"device": DEV1, "channel": AUDIO}, expect=400)["error"])
        self.assertIn("no device", self.cmd("broadcast", {"device": DEV2, "channel": AUDIO, "source": "x/audio"},
                                            expect=404)["error"])
        b = self.cmd("broadcast", {"device": DEV1, "channel": AUDIO, "source": "test/audio"})
        self.assertEqual(b["state"], "notified")
        self.cmd("broadcast", {"device": DEV1, "channel": AUDIO, "source": "test/audio"}, expect=409)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        try:
            self.invite(sock, "34020000001370000009", "nobody1", 40000)
            self.assertTrue(self.final(sock).startswith("SIP/2.0 403"))
            self.invite(sock, AUDIO, "bcast1", 40002)
            ok = self.final(sock)
            self.assertTrue(ok.startswith("SIP/2.0 200"), ok)
            body = ok.split("\r\n\r\n", 1)[1]
            self.assertRegex(body, r"m=audio (96\d\d) RTP/AVP 8")
            self.assertIn("a=sendonly", body)
            self.assertIn("y=0100000077", body)
            self.j.wait_for_log(rf"Broadcast to {AUDIO} established \(127.0.0.1:40002, udp, PCMA\)")
            self.assertEqual(self.cmd("broadcasts")["broadcasts"][0]["state"], "active")
            to_tag = re.search(r"\r\nTo: [^\r]*;tag=([^;\r]+)", ok).group(1)
            lport = sock.getsockname()[1]
            bye = (f"BYE sip:{PLATFORM}@127.0.0.1:{self.port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{lport};rport;branch=z9hG4bKbye1\r\n"
                   f"From: <sip:{AUDIO}@{PLATFORM[:10]}>;tag=devbcast1\r\nTo: <sip:{PLATFORM}@{PLATFORM[:10]}>;tag={to_tag}\r\n"
                   f"Call-ID: bcast1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            sock.sendto(bye.encode(), ("127.0.0.1", self.port))
            self.assertTrue(self.final(sock).startswith("SIP/2.0 200"))
            self.j.wait_for_log(rf"Broadcast to {AUDIO} ended: device BYE")
            self.assertEqual(self.cmd("broadcasts")["broadcasts"], [])
        finally:
            sock.close()


if __name__ == "__main__":
    main()
