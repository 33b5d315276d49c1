"""gb28181 keepalive (保活): Notify/Keepalive -> 200; offline after interval x count without one
(short intervals here; the test waits on the offline event, never on a sleep); a keepalive from
a device that is not registered gets 403 and makes it register again; the policy for devices
that never send one; metrics."""
import socket

from gb_env import DEV1, DEV2, DEV3, DOMAIN, PLATFORM, GbTest
from junction_test import main


class KeepaliveTest(GbTest):
    events_topic = "gb/"
    conf_over = {"keepalive_interval_s": 1, "keepalive_count": 2}

    def test_keepalive_keeps_a_device_online_and_silence_takes_it_offline(self):
        alive = self.registered_device(DEV1)
        silent = self.registered_device(DEV2)
        self.sim.call(alive.start_keepalive, 0.2)
        self.assertEqual(self.sim.run(silent.keepalive()), 200)  # one, then nothing
        ev = self.events.next("gb/device/offline", device=DEV2)
        self.assertEqual(ev["reason"], "keepalive timeout")
        self.assertTrue(self.show(DEV1)["online"], "the device that keeps sending went offline too")
        self.assertFalse(self.show(DEV2)["online"])
        self.assertEqual(self.show(DEV2)["offline_reason"], "keepalive timeout")
        self.assertGreaterEqual(self.metric("gb_keepalives_total"), 2)
        self.assertEqual(self.metric("gb_offline_total", reason="keepalive timeout"), 1)
        self.assertEqual(self.metric("gb_devices_online"), 1)
        self.assertFalse([e for t, e in self.events.seen if t == "gb/device/offline" and e["device"] == DEV1])

    def test_keepalive_after_offline_is_403_and_the_device_registers_again(self):
        d = self.registered_device(DEV1)
        self.events.next("gb/device/online", device=DEV1)
        self.events.next("gb/device/offline", device=DEV1)  # strict: no keepalive since it registered
        mark = d.mark()
        self.sim.call(d.start_keepalive, 0.2)  # the device wakes up: its keepalive gets 403 ...
        d.wait("keepalive", since=mark, status=403)
        d.wait("registered", since=mark)       # ... so it registers again
        self.events.next("gb/device/online", device=DEV1)
        self.j.wait_for_log(rf"MESSAGE from {DEV1} .* refused 403 \(device not registered\)")
        self.assertEqual(self.show(DEV1)["registrations"], 2)

    def test_keepalive_from_an_unknown_device_is_403(self):
        d = self.device(DEV3)
        self.assertEqual(self.sim.run(d.keepalive()), 403)
        self.j.wait_for_log(rf"MESSAGE from {DEV3} .* refused 403 \(unknown device\)")
        self.assertEqual(self.metric("gb_bad_requests_total", code="403"), 1)

class RegistrationPolicyTest(GbTest):
    events_topic = "gb/"
    conf_over = {"keepalive_interval_s": 1, "keepalive_count": 2, "keepalive_policy": "registration"}

    def test_device_without_keepalive_stays_online_while_registered(self):
        quiet = self.registered_device(DEV1)
        talker = self.registered_device(DEV2)
        # The one that sent a keepalive once is held to the rule; the quiet one is not.
        self.assertEqual(self.sim.run(talker.keepalive()), 200)
        self.assertEqual(self.events.next("gb/device/offline", device=DEV2)["reason"], "keepalive timeout")
        s = self.show(DEV1)
        self.assertTrue(s["online"])
        self.assertGreater(s["offline_in_ms"], 2000)  # due at its registration's expiry, not the keepalive window
        self.assertIsNotNone(quiet)

    def test_last_keepalive_is_shown(self):
        d = self.registered_device(DEV1)
        self.assertIsNone(self.show(DEV1)["last_keepalive_ms_ago"])
        self.assertEqual(self.sim.run(d.keepalive()), 200)
        s = self.show(DEV1)
        self.assertIsNotNone(s["last_keepalive_ms_ago"])
        self.assertEqual(s["keepalives"], 1)

    def test_udp_retransmitted_keepalive_is_answered_again_and_counted_once(self):
        # stateless_keepalive (the default): no transaction absorbs the retransmission; the
        # plugin answers it again (the same bytes) but must not count it as a second keepalive.
        self.registered_device(DEV1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        lp = s.getsockname()[1]

        def keepalive(cseq):
            body = (f"<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n"
                    f"<SN>{cseq}</SN>\r\n<DeviceID>{DEV1}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")
            return (f"MESSAGE sip:{PLATFORM}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bKka{cseq};rport\r\n"
                    f"From: <sip:{DEV1}@{DOMAIN}>;tag=ka1\r\nTo: <sip:{PLATFORM}@{DOMAIN}>\r\nCall-ID: ka-retrans-{cseq}\r\n"
                    f"CSeq: {cseq} MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: Application/MANSCDP+xml\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

        answers = []
        for _ in range(2):  # the request, then its retransmission (same bytes)
            s.sendto(keepalive(1), ("127.0.0.1", self.port))
            answers.append(s.recvfrom(65535)[0])
        self.assertTrue(answers[0].startswith(b"SIP/2.0 200 "), answers[0])
        self.assertEqual(answers[0], answers[1])  # answered again, identically
        self.assertEqual(self.show(DEV1)["keepalives"], 1)
        self.assertEqual(self.metric("gb_keepalives_total"), 1)
        s.sendto(keepalive(2), ("127.0.0.1", self.port))  # a new keepalive counts
        self.assertTrue(s.recvfrom(65535)[0].startswith(b"SIP/2.0 200 "))
        s.close()
        self.assertEqual(self.show(DEV1)["keepalives"], 2)
        self.assertEqual(self.metric("gb_keepalives_total"), 2)


if __name__ == "__main__":
    main()
