"""gb28181 bad input: every malformed or misplaced request gets its SIP error (or, when it cannot
be answered, is dropped with a log line), and a registered device keeps working after each:
its keepalive still gets 200 over the same flow and it stays online with one registration.

Driven by the device simulator (tests/lib/gb_device_sim.py) and raw sockets for what no device
would send. Loopback only."""
import socket

import gb_device_sim as gb
from gb_env import DEV1, DEV2, DEV3, PLATFORM, GbTest
from junction_test import main


def manscdp(root, cmd, sn="1", did=DEV1, extra=""):
    return (f'<?xml version="1.0" encoding="GB2312"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n'
            f'<DeviceID>{did}</DeviceID>\r\n{extra}</{root}>\r\n').encode("gb18030")


class BadInputTest(GbTest):
    def setUp(self):
        super().setUp()
        self.dev = self.registered_device(DEV1)
        self.assertEqual(self.sim.run(self.dev.keepalive()), 200)

    def still_works(self, dev=None):
        """The registered device is untouched: a keepalive gets 200, it is online, registered once."""
        dev = dev or self.dev
        self.assertEqual(self.sim.run(dev.keepalive()), 200)
        v = self.show(dev.id)
        self.assertTrue(v["online"], v)
        self.assertEqual(v["registrations"], 1, v)
        self.assertEqual(v["address"], f"127.0.0.1:{dev.local_port}")

    def refused(self, method, code, why, body=b"", **kw):
        r = self.sim.run(self.dev.send_request(method, body, **kw))
        self.assertIsNotNone(r, f"{method}: no answer")
        self.assertEqual(r.status, code, f"{method} {body[:60]!r}: {r.first}")
        self.assertIn(why, r.reason)
        self.j.wait_for_log(rf"gb28181: {method} from {self.dev.id} at 127\.0\.0\.1:\d+ over UDP refused {code} \(" +
                            why.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.").replace("<", ".").replace(">", "."))
        return r

    def raw_udp(self, data, expect_answer):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        s.sendto(data if isinstance(data, bytes) else data.format(port=s.getsockname()[1]).encode(), ("127.0.0.1", self.port))
        if not expect_answer:
            return s.getsockname()[1]
        s.settimeout(5)
        return s.recv(65535)

    # -- SIP level -----------------------------------------------------------------------------------
    def test_malformed_sip_is_answered_400_or_dropped_with_a_log_line(self):
        port = self.raw_udp(b"hello, this is not SIP\r\n\r\n", expect_answer=False)
        self.j.wait_for_log(rf"sip: bad message from 127\.0\.0\.1:{port} over UDP: malformed request or status line")
        head = (f"MESSAGE sip:{PLATFORM}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{{port}};branch=z9hG4bK{{b}};rport\r\n"
                f"From: <sip:{DEV1}@3402000000>;tag=1\r\nTo: <sip:{PLATFORM}@3402000000>\r\n")
        port = self.raw_udp(head.replace("{b}", "nocid") + "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n", expect_answer=False)
        self.j.wait_for_log(rf"sip: bad message from 127\.0\.0\.1:{port} over UDP: missing mandatory header \(Call-ID\)")
        # A body shorter than its Content-Length: the Via is readable, so it gets its 400.
        answer = self.raw_udp(head.replace("{b}", "shortcl") + "Call-ID: short\r\nCSeq: 1 MESSAGE\r\nContent-Length: 99\r\n\r\nabc",
                              expect_answer=True)
        self.assertTrue(answer.startswith(b"SIP/2.0 400 "), answer[:80])
        self.still_works()

    def test_tcp_stream_with_a_lying_content_length_is_closed_and_no_one_else_notices(self):
        tdev = self.registered_device(DEV2, transport="tcp")
        c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(c.close)
        c.sendall(f"MESSAGE sip:{PLATFORM}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKlie\r\n"
                  f"From: <sip:{DEV2}@3402000000>;tag=1\r\nTo: <sip:{PLATFORM}@3402000000>\r\nCall-ID: lie\r\n"
                  f"CSeq: 1 MESSAGE\r\nContent-Length: 12abc\r\n\r\n".encode())
        self.assertEqual(c.recv(100), b"")  # closed, nothing answered
        self.still_works(tdev)  # the device's own connection is untouched
        self.still_works()

    def test_methods_the_platform_does_not_serve(self):
        self.refused("PUBLISH", 405, "method not served")
        self.refused("NOTIFY", 481, "NOTIFY outside a subscription")
        self.refused("SUBSCRIBE", 489, "the platform accepts no subscriptions")
        self.refused("BYE", 481, "no such dialog")
        self.refused("INFO", 481, "no such dialog")
        # A NOTIFY naming a dialog (a To tag) that is none of ours
        hs = [("From", f"<sip:{DEV1}@3402000000>;tag=dev"), ("To", f"<sip:{PLATFORM}@3402000000>;tag=notours"),
              ("Call-ID", "no-such-subscription"), ("CSeq", "2 NOTIFY"), ("Event", "Catalog"),
              ("Subscription-State", "active;expires=60")]
        self.refused("NOTIFY", 481, "no such dialog or subscription", manscdp("Notify", "Catalog"), headers=hs)
        self.still_works()

    # -- who may send --------------------------------------------------------------------------------
    def test_unknown_unregistered_and_misaddressed_senders(self):
        stranger = self.device(DEV3)  # never provisioned
        r = self.sim.run(stranger.send_request("MESSAGE", manscdp("Notify", "Keepalive", did=DEV3)))
        self.assertEqual((r.status, r.reason), (403, "Forbidden (unknown device)"))
        self.provision(DEV2)
        quiet = self.device(DEV2)  # provisioned, never registered: its keepalive gets 403 (so it registers)
        self.assertEqual(self.sim.run(quiet.keepalive()), 403)
        self.j.wait_for_log(rf"MESSAGE from {DEV2} .* refused 403 \(device not registered\)")
        self.refused("MESSAGE", 404, "not this platform", manscdp("Notify", "Keepalive"),
                     uri=f"sip:34020000002000000009@127.0.0.1:{self.port}")
        self.still_works()

    # -- bodies --------------------------------------------------------------------------------------
    def test_malformed_bodies_get_400_with_the_reason(self):
        cases = [
            (b"", "empty MESSAGE body"),
            (b'<?xml version="1.0"?>\r\n<Query><CmdType>Catalog</CmdType>', "not XML"),
            (b"<Foo><CmdType>X</CmdType><SN>1</SN></Foo>", "root element <Foo> is not Query/Control/Notify/Response"),
            (b"<Query><SN>1</SN><DeviceID>1</DeviceID></Query>", "<Query> has no CmdType"),
            (manscdp("Query", "Catalog", sn="abc"), "SN 'abc' is not an unsigned 32-bit integer"),
            (b"<Query>" * 40 + b"<CmdType>Catalog</CmdType>" + b"</Query>" * 40, "nested deeper than 32"),
            (b"\xff\xfe<\x00Q\x00", "body"),
        ]
        for body, why in cases:
            r = self.sim.run(self.dev.send_request("MESSAGE", body))
            self.assertEqual(r.status, 400, f"{body[:40]!r}: {r.first}")
            self.assertIn(why, r.reason)
        self.j.wait_for_log(r"refused 400 \(body: XML nested deeper than 32\)")
        self.still_works()

    def test_keepalive_survives_each_bad_input_of_another_device(self):
        other = self.registered_device(DEV2)
        for body in (b"<Notify><CmdType>Keepalive</CmdType>", b"<Notify>&unknown;</Notify>", b"\x00" * 100):
            r = self.sim.run(other.send_request("MESSAGE", body))
            self.assertEqual(r.status, 400)
        self.still_works()
        self.still_works(other)
        self.assertEqual(self.stats()["registered"], 2)

    def test_bad_notify_in_a_subscription_is_refused_and_the_subscription_goes_on(self):
        r = self.cmd("subscribe", {"id": DEV1, "kind": "Catalog", "expires_s": 600})
        self.assertEqual(r["outcome"], "ok", r)
        self.dev.wait("subscribed", cmd="Catalog")
        sub = self.dev.subscription("Catalog")
        # an undecodable body in the dialog: 400 with the reason
        self.assertEqual(self.sim.run(self.dev._send_notify(sub, b"<Notify><CmdType>Catalog</CmdType>")), 400)
        self.j.wait_for_log(rf"NOTIFY from {DEV1} .* refused 400 \(body: not XML")
        # items the command layer cannot use are skipped with a log line; the others apply
        good = gb.default_channels(DEV1, 6)[5]
        self.assertEqual(self.sim.run(self.dev.notify_catalog([("ADD", good), ("BOGUS", self.dev.channels[0]["DeviceID"])])), 200)
        self.j.wait_for_log(rf"catalog event 'BOGUS' for {self.dev.channels[0]['DeviceID']} from {DEV1} ignored")
        noid = self.dev.body("Notify")
        noid.add(noid.el("CmdType", "Catalog"), noid.el("SN", 77), noid.el("DeviceID", DEV1), noid.el("SumNum", 1),
                 noid.el("DeviceList", attrs={"Num": "1"}, children=[noid.el("Item", children=[noid.el("Name", "no id"), noid.el("Event", "ADD")])]))
        self.assertEqual(self.sim.run(self.dev._send_notify(sub, noid.encode())), 200)
        self.j.wait_for_log(rf"catalog item from {DEV1} without a valid DeviceID ignored")
        chans = {c["id"] for c in self.cmd("channels", {"id": DEV1})["channels"]}
        self.assertIn(good["DeviceID"], chans)
        self.assertEqual(len(chans), 1)  # only the good ADD (no catalog was queried before)
        # the dialog still works: a clean NOTIFY is applied
        self.assertEqual(self.sim.run(self.dev.notify_catalog([("DEL", good["DeviceID"])])), 200)
        self.assertEqual(self.cmd("channels", {"id": DEV1})["channels"], [])
        self.still_works()


if __name__ == "__main__":
    main()
