"""Self-test of the GB/T 28181 device simulator (tests/lib/gb_device_sim.py), the peer the gb28181
flow tests trust.

- It registers with digest over UDP and over TCP against the sip-registrar test plugin (a strict
  digest registrar on sdk/sip), refreshes, sends keepalives, unregisters; a wrong password gets 403.
- Many devices in one process (UDP and TCP, one connection per TCP device) all register.
- Its PTZ verifier accepts the document's commands and refuses a wrong checksum, both as a
  function and end to end (a MESSAGE from the stack gets 400 and the device records why).
- Its catalog splitter produces MESSAGEs whose SumNum and DeviceList Num agree, encoded GB18030
  under a GB2312 declaration; the quirk modes change exactly what they claim.
- SIP basics: a retransmitted request is answered with the same bytes; its own request over UDP is
  retransmitted per T1 until answered.
Loopback only; ports from free_port; synchronisation on events, log lines and socket reads.
"""
import asyncio
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from junction_test import JunctionTest, free_port, main  # noqa: E402
import gb_device_sim as gb  # noqa: E402

PLUGIN = "sip-registrar"
PLATFORM = "34020000002000000001"


def dev_id(i):
    return f"3402000000132{i:07d}"


class FakePlatform:
    """A raw UDP socket playing the platform (for flows sip-registrar does not drive)."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(10)
        self.port = self.s.getsockname()[1]
        self.n = 0

    def close(self):
        self.s.close()

    def recv(self):
        data, addr = self.s.recvfrom(65535)
        return gb.parse_message(data), addr

    def recv_request(self, method):
        while True:
            m, addr = self.recv()
            if m.is_request and m.method == method:
                return m, addr

    def request(self, dev, method, body=b"", extra=(), call_id=None, cseq=20, from_tag="plat1", to_tag=None):
        self.n += 1
        to = f"<sip:{dev.id}@3402000000>" + (f";tag={to_tag}" if to_tag else "")
        hs = [("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bKfp{self.n}"),
              ("From", f"<sip:{PLATFORM}@3402000000>;tag={from_tag}"), ("To", to),
              ("Call-ID", call_id or f"fp-{self.n}"), ("CSeq", f"{cseq} {method}"),
              ("Contact", f"<sip:{PLATFORM}@127.0.0.1:{self.port}>")] + list(extra)
        if body:
            hs.append(("Content-Type", gb.MANSCDP))
        self.s.sendto(gb.encode_message(f"{method} sip:{dev.id}@127.0.0.1:{dev.local_port} SIP/2.0", hs, body),
                      ("127.0.0.1", dev.local_port))
        while True:
            m, _ = self.recv()
            if not m.is_request:
                return m

    def answer(self, req, addr, status=200, reason="OK"):
        hs = [(n, v) for n, v in req.headers if gb._hname(n) in ("via", "from", "call-id", "cseq")]
        to = req.get("to")
        hs.append(("To", to if "tag=" in to else to + ";tag=plat"))
        self.s.sendto(gb.encode_message(f"SIP/2.0 {status} {reason}", hs), addr)


def query(cmd, did, sn, extra=""):
    return (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n'
            f'<DeviceID>{did}</DeviceID>\r\n{extra}</Query>\r\n').encode("gb18030")


class GbSimSelfTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.users = {dev_id(i): f"pw{i}" for i in range(1, 9)}
        self.j = self.server(plugins={PLUGIN: {
            "udp_listen": f"127.0.0.1:{self.port}", "tcp_listen": f"127.0.0.1:{self.port}", "users": self.users,
            "realm": "3402000000", "generated_users": 1000, "generated_prefix": "3402000000132100",
            "generated_password": "many", "log_each": True}})
        # the 1 000-device test opens 500 TCP connections from 127.0.0.1 (default limit: 64 per address)
        self.j.write_core(dict(self.j.core, limits={"tcp_max_conns_per_ip": 2000, "tcp_max_conns_per_listener": 2000}))
        self.j.start()
        self.j.wait_for_log("sip-registrar: listening")
        self.sim = gb.Simulator(server=("127.0.0.1", self.port), platform_id=PLATFORM).start()

    def tearDown(self):
        self.sim.stop()
        super().tearDown()

    # -- registration ------------------------------------------------------------------------------
    def test_register_refresh_keepalive_unregister_udp_and_tcp(self):
        for i, transport in ((1, "udp"), (2, "tcp")):
            d = self.sim.add_device(dev_id(i), f"pw{i}", transport=transport)
            self.assertEqual(self.sim.run(d.register()), 200)
            ev = d.wait_registered()
            self.assertEqual(ev["expires"], 3600)
            self.j.wait_for_log(rf"REGISTER user={dev_id(i)} from 127\.0\.0\.1:{d.local_port} over {transport.upper()} -> 200")
            b = self.j.cmd(PLUGIN, "bindings")[f"{dev_id(i)}@3402000000"]
            self.assertEqual(b[0]["transport"], transport.upper())
            self.assertEqual(b[0]["contact"], gb.addr_uri(d.contact))
            # a refresh reuses the cached nonce (nc=2) and keeps the Call-ID with a higher CSeq
            self.assertEqual(self.sim.run(d.register()), 200)
            again = d.wait("registered", since=ev["i"] + 1)
            self.assertEqual(again["call_id"], ev["call_id"])
            self.assertGreater(again["cseq"], ev["cseq"])
            # keepalive: a MANSCDP Notify/Keepalive MESSAGE the registrar answers 200
            self.assertEqual(self.sim.run(d.keepalive()), 200)
            line = self.j.wait_for_log(rf"MESSAGE from 127\.0\.0\.1:{d.local_port}: ")
            self.assertIn('encoding="GB2312"', line)
            self.j.wait_for_log(rf"<DeviceID>{dev_id(i)}</DeviceID>")
            self.assertEqual(self.sim.run(d.unregister()), 200)
            d.wait("unregistered")
            self.assertNotIn(f"{dev_id(i)}@3402000000", self.j.cmd(PLUGIN, "bindings"))

    def test_wrong_password_is_403_over_udp_and_tcp(self):
        for i, transport in ((3, "udp"), (4, "tcp")):
            d = self.sim.add_device(dev_id(i), "not-the-password", transport=transport)
            self.assertEqual(self.sim.run(d.register()), 403)
            ev = d.wait("register_failed")
            self.assertEqual(ev["status"], 403)
            self.assertFalse(d.registered)
        self.j.wait_for_log(rf"REGISTER user={dev_id(4)} .* refused 403 \(wrong credentials\)")
        self.assertEqual(self.j.cmd(PLUGIN, "bindings"), {})

    def test_reboot_registers_with_a_new_call_id_and_lower_cseq(self):
        d = self.sim.add_device(dev_id(5), "pw5")
        self.assertEqual(self.sim.run(d.register()), 200)
        self.assertEqual(self.sim.run(d.register()), 200)
        before = d.find("registered")[-1]
        self.assertEqual(self.sim.run(d.reboot()), 200)
        after = d.find("registered")[-1]
        self.assertNotEqual(after["call_id"], before["call_id"])
        self.assertLess(after["cseq"], before["cseq"])

    def test_nat_rebind_sends_from_a_new_port_with_the_old_via(self):
        d = self.sim.add_device(dev_id(5), "pw5")
        self.assertEqual(self.sim.run(d.register()), 200)
        old = d.local_port
        new = self.sim.run(d.nat_rebind())
        self.assertNotEqual(new, old)
        self.assertEqual(self.sim.run(d.keepalive()), 200)  # the answer follows rport to the new port
        self.j.wait_for_log(rf"MESSAGE from 127\.0\.0\.1:{new}: ")
        self.assertIn(f"127.0.0.1:{old};rport;branch=".encode(), d.sent[-1])  # Via unchanged: the device cannot know

    def test_a_thousand_devices_udp_and_tcp_register_in_one_process(self):
        ids = [f"3402000000132100{i}" for i in range(1000)]

        async def make():
            out = []
            for n, did in enumerate(ids):
                out.append(await self.sim.new_device(did, "many", transport="tcp" if n % 2 else "udp", auto_refresh=False))
            return out
        devs = self.sim.run(make())
        res = self.sim.run(self.sim.register_all(devs, concurrency=200), timeout=300)
        self.assertEqual(sorted(k for k, v in res.items() if v != 200), [])
        self.assertEqual(len(self.j.cmd(PLUGIN, "bindings")), 1000)
        # each TCP device has its own connection: 500 distinct local ports, all still open
        tcp_ports = {d.local_port for d in devs if d.transport == "tcp"}
        self.assertEqual(len(tcp_ports), 500)
        self.assertEqual(self.j.cmd(PLUGIN, "stats")["register_ok"], 1000)

    # -- PTZ -----------------------------------------------------------------------------------------
    def test_ptz_verifier_accepts_the_documents_commands_and_refuses_a_wrong_checksum(self):
        # The document's C++ sample (seeds README: left = 0x02, down = 0x04; last byte = sum mod 256)
        self.assertEqual(gb.ptz_cmd(0x08, 0, 0xFA), "A50F010800FA00B7")   # up, the document's sample
        self.assertEqual(gb.ptz_cmd(0x02, 0xFA), "A50F0102FA0000B1")      # left
        self.assertEqual(gb.ptz_cmd(0x04, 0, 0xFA), "A50F010400FA00B3")   # down
        self.assertEqual(gb.ptz_cmd(0x10, 0, 0, 0xA), "A50F01100000A065")  # zoom in, the table's row
        for ok in ("A50F010800FA00B7", "A50F0101FA0000B0", "A50F0100000000B5", "A50F014400FA00F3"):
            b, why = gb.check_ptz_cmd(ok)
            self.assertIsNone(why, ok)
            self.assertEqual(b.hex().upper(), ok)
        for bad, reason in (("A50F010800FA00B8", "checksum"), ("A50F010800FA00", "8 bytes"), ("B50F010800FA00C7", "A5"),
                            ("A50E010800FA00B6", "nibble"), ("A50F010800FA00ZZ", "hex")):
            b, why = gb.check_ptz_cmd(bad)
            self.assertIsNone(b, bad)
            self.assertIn(reason, why)
        d = gb.describe_ptz(gb.check_ptz_cmd("A50F010AFAFA00B3")[0])
        self.assertEqual((d["pan"], d["tilt"], d["pan_speed"], d["tilt_speed"]), ("left", "up", 0xFA, 0xFA))

    def test_device_refuses_a_wrong_ptz_checksum_from_the_stack_with_400(self):
        d = self.sim.add_device(dev_id(6), "pw6", transport="tcp")
        self.assertEqual(self.sim.run(d.register()), 200)

        def control(cmd):
            return ('<?xml version="1.0" encoding="UTF-8"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n'
                    f'<SN>130</SN>\r\n<DeviceID>{dev_id(6)}</DeviceID>\r\n<PTZCmd>{cmd}</PTZCmd>\r\n</Control>\r\n')
        self.j.cmd(PLUGIN, "message", {"aor": f"{dev_id(6)}@3402000000", "text": control("A50F010800FA00B8")})
        ev = d.wait("ptz_refused")
        self.assertIn("checksum wrong: B8, expected B7", ev["reason"])
        self.assertTrue(d.sent[-1].startswith(b"SIP/2.0 400 Bad Request (PTZCmd checksum wrong"), d.sent[-1][:80])
        self.assertEqual(d.find("ptz"), [])
        self.j.cmd(PLUGIN, "message", {"aor": f"{dev_id(6)}@3402000000", "text": control("A50F010800FA00B7")})
        ev = d.wait_ptz()
        self.assertEqual((ev["hex"], ev["tilt"], ev["tilt_speed"]), ("A50F010800FA00B7", "up", 0xFA))
        self.assertTrue(d.sent[-1].startswith(b"SIP/2.0 200 OK"))

    # -- bodies ------------------------------------------------------------------------------------
    def test_catalog_splitter_produces_sumnum_consistent_messages(self):
        d = gb.Device(self.sim, dev_id(7), "x", channels=7)
        d.channels[0]["Name"] = "东门 摄像机"
        bodies = d.catalog_bodies(4711, d.channels, 3)
        self.assertEqual(len(bodies), 3)
        seen = []
        for body in bodies:
            self.assertTrue(body.startswith(b'<?xml version="1.0" encoding="GB2312"?>'))
            root = gb.decode_body(body)
            self.assertEqual(root.tag, "Response")
            self.assertEqual(gb.child_text(root, "CmdType"), "Catalog")
            self.assertEqual(gb.child_text(root, "SN"), "4711")
            self.assertEqual(gb.child_text(root, "SumNum"), "7")
            dl = root.find("DeviceList")
            self.assertEqual(int(dl.get("Num")), len(dl.findall("Item")))
            seen += [gb.child_text(it, "DeviceID") for it in dl.findall("Item")]
        self.assertEqual([len(gb.decode_body(b).find("DeviceList")) for b in bodies], [3, 3, 1])
        self.assertEqual(seen, [c["DeviceID"] for c in d.channels])
        self.assertEqual(len(set(seen)), 7)
        # GB18030 bytes, not UTF-8
        self.assertIn("东门 摄像机".encode("gb18030"), bodies[0])
        self.assertNotIn("东门 摄像机".encode("utf-8"), bodies[0])
        self.assertEqual(gb.child_text(gb.decode_body(bodies[0]).find("DeviceList/Item"), "Name"), "东门 摄像机")

    def test_quirk_modes_change_the_bodies_as_claimed(self):
        plain = gb.Device(self.sim, dev_id(8), "x")
        utf8 = gb.Device(self.sim, dev_id(8), "x", quirks={"utf8_as_gb2312"})
        amp = gb.Device(self.sim, dev_id(8), "x", quirks={"raw_amp"})
        bang = gb.Device(self.sim, dev_id(8), "x", quirks={"bang_comments"})
        for dv in (plain, utf8, amp, bang):
            dv.name = "大门 A&B"
        def info(dv):
            return dv.alarm_body(9, description=dv.name)
        self.assertIn("大门 A&amp;B".encode("gb18030"), info(plain))
        self.assertEqual(gb.child_text(gb.decode_body(info(plain)), "AlarmDescription"), "大门 A&B")
        u = info(utf8)
        self.assertTrue(u.startswith(b'<?xml version="1.0" encoding="GB2312"?>'))
        self.assertIn("大门 A&amp;B".encode("utf-8"), u)  # UTF-8 under a GB2312 label
        a = info(amp)
        self.assertIn("大门 A&B".encode("gb18030"), a)
        with self.assertRaisesRegex(ValueError, "malformed XML"):
            gb.decode_body(a)  # a strict parser refuses it: the platform needs its pre-scrub
        c = info(bang)
        self.assertIn(b"<! --", c)
        with self.assertRaisesRegex(ValueError, "malformed XML"):
            gb.decode_body(c)

    # -- SIP basics --------------------------------------------------------------------------------
    def test_retransmitted_request_is_answered_with_the_same_bytes(self):
        d = self.sim.add_device(dev_id(1), "pw1")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>DeviceStatus</CmdType>\r\n<SN>7</SN>\r\n'
                f'<DeviceID>{dev_id(1)}</DeviceID>\r\n</Query>\r\n').encode()
        req = gb.encode_message(f"MESSAGE sip:{dev_id(1)}@127.0.0.1:{d.local_port} SIP/2.0", [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{s.getsockname()[1]};rport;branch=z9hG4bKretrans1"),
            ("From", f"<sip:{PLATFORM}@3402000000>;tag=p1"), ("To", f"<sip:{dev_id(1)}@3402000000>"),
            ("Call-ID", "retrans-1"), ("CSeq", "20 MESSAGE"), ("Content-Type", gb.MANSCDP)], body)
        s.sendto(req, ("127.0.0.1", d.local_port))
        first, _ = s.recvfrom(65535)
        s.sendto(req, ("127.0.0.1", d.local_port))
        again, _ = s.recvfrom(65535)
        self.assertTrue(first.startswith(b"SIP/2.0 200 OK\r\n"), first)
        self.assertEqual(again, first)
        self.assertIn(f";rport={s.getsockname()[1]};".encode(), first)  # RFC 3581 filled in by the device
        self.assertIn(b";received=127.0.0.1\r\n", first)
        self.assertEqual(len(d.find("message", cmd="DeviceStatus")), 1)  # handled once
        d.wait("retransmitted_request", method="MESSAGE")
        s.close()

    def test_own_udp_request_is_retransmitted_per_t1_until_answered(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        sim = gb.Simulator(server=("127.0.0.1", s.getsockname()[1]), platform_id=PLATFORM).start()
        try:
            d = sim.add_device(dev_id(2), "pw2")
            fut = asyncio.run_coroutine_threadsafe(d.keepalive(), sim.loop)
            first, addr = s.recvfrom(65535)
            again, _ = s.recvfrom(65535)  # T1 later, nothing answered: the same request again
            self.assertEqual(again, first)
            m = gb.parse_message(first)
            self.assertTrue(m.branch.startswith("z9hG4bK"))
            self.assertRegex(m.get("via"), r";rport;branch=")
            resp = gb.encode_message("SIP/2.0 200 OK", [(n, v) for n, v in m.headers if n in ("Via", "From", "Call-ID", "CSeq")] +
                                     [("To", m.get("to") + ";tag=x")])
            s.sendto(resp, addr)
            self.assertEqual(fut.result(10), 200)
            self.assertGreaterEqual(len(d.find("retransmit", method="MESSAGE")), 1)
        finally:
            sim.stop()
            s.close()

    # -- device flows against a raw platform ---------------------------------------------------------
    def platform_and_device(self, **kw):
        p = FakePlatform()
        self.addCleanup(p.close)
        sim = gb.Simulator(server=("127.0.0.1", p.port), platform_id=PLATFORM).start()
        self.addCleanup(sim.stop)
        return p, sim, sim.add_device(dev_id(1), "pw", **kw)


    def test_keepalive_runs_on_its_interval_and_stops_on_the_switch(self):
        d = self.sim.add_device(dev_id(7), "x")  # the registrar answers MESSAGE 200 without a registration
        self.sim.call(d.start_keepalive, 0.05)
        first = d.wait("keepalive", status=200)
        second = d.wait("keepalive", since=first["i"] + 1, status=200)
        d.wait("keepalive", since=second["i"] + 1, status=200)  # a third, on the device's own timer
        self.sim.call(d.stop_keepalive)
        self.assertFalse(d.keepalive_on)
        self.assertIsNone(d._keepalive_task)

    def test_cli_registers_devices_and_exits(self):
        out = subprocess.run([sys.executable, gb.__file__, "--server", f"127.0.0.1:{self.port}", "--devices", "3",
                              "--prefix", "3402000000132", "--password", "pw1", "--transport", "tcp", "--keepalive", "0",
                              "--duration", "0.01"], capture_output=True, text=True, timeout=60)
        # only dev_id(1) has password pw1: one registers, two are refused 403
        self.assertEqual(out.returncode, 1, out.stderr)
        res = json.loads(out.stdout.splitlines()[0])
        self.assertEqual(res["registered"], 1)
        self.assertEqual(sorted(res["failed"].values()), [403, 403])

    # -- digest variants against a raw platform -----------------------------------------------------
    def digest_round(self, challenge_header, challenge, status=401):
        p, sim, d = self.platform_and_device()
        fut = asyncio.run_coroutine_threadsafe(d.register(), sim.loop)
        m, addr = p.recv_request("REGISTER")
        self.assertIsNone(m.get("authorization"))
        hs = [(n, v) for n, v in m.headers if gb._hname(n) in ("via", "from", "call-id", "cseq")] + [
            ("To", m.get("to") + ";tag=r1"), (challenge_header, challenge)]
        p.s.sendto(gb.encode_message(f"SIP/2.0 {status} Unauthorized", hs), addr)
        m2, addr = p.recv_request("REGISTER")
        self.assertEqual(m2.get("call-id"), m.get("call-id"))
        self.assertEqual(m2.cseq[0], m.cseq[0] + 1)
        self.assertNotEqual(m2.branch, m.branch)
        return p, fut, m2, addr

    def ok(self, p, m, addr):
        hs = [(n, v) for n, v in m.headers if gb._hname(n) in ("via", "from", "call-id", "cseq")] + [
            ("To", m.get("to") + ";tag=r1"), ("Contact", m.get("contact") + ";expires=120")]
        p.s.sendto(gb.encode_message("SIP/2.0 200 OK", hs), addr)

    def test_legacy_digest_without_qop_over_407_with_opaque(self):
        p, fut, m, addr = self.digest_round("Proxy-Authenticate",
                                            'Digest realm="hik", nonce="a8afe6fcbee6331d89d3eb0d3d19ce39", '
                                            'opaque="a853e4f25298413f9bf3a9aa6767857d", algorithm=MD5', status=407)
        auth = m.get("proxy-authorization")
        self.assertIsNotNone(auth)
        self.assertIsNone(m.get("authorization"))
        ch = gb.parse_challenge(auth)
        self.assertNotIn("qop", ch)
        self.assertNotIn("nc", ch)
        self.assertEqual(ch["opaque"], "a853e4f25298413f9bf3a9aa6767857d")
        self.assertEqual(ch["uri"], m.uri)
        md5 = lambda x: hashlib.md5(x.encode()).hexdigest()  # noqa: E731
        want = md5(f"{md5(dev_id(1) + ':hik:pw')}:a8afe6fcbee6331d89d3eb0d3d19ce39:{md5('REGISTER:' + m.uri)}")
        self.assertEqual(ch["response"], want)  # RFC 2069: H(HA1:nonce:HA2)
        self.ok(p, m, addr)
        self.assertEqual(fut.result(10), 200)

    def test_stale_nonce_is_answered_once_more_and_a_second_refusal_fails(self):
        p, fut, m, addr = self.digest_round("WWW-Authenticate", 'Digest realm="r", nonce="n1", qop="auth", algorithm=MD5')
        first = gb.parse_challenge(m.get("authorization"))
        self.assertEqual((first["nc"], first["qop"], first["nonce"]), ("00000001", "auth", "n1"))
        hs = [(n, v) for n, v in m.headers if gb._hname(n) in ("via", "from", "call-id", "cseq")] + [
            ("To", m.get("to") + ";tag=r1"), ("WWW-Authenticate", 'Digest realm="r", nonce="n2", qop="auth", stale=true')]
        p.s.sendto(gb.encode_message("SIP/2.0 401 Unauthorized", hs), addr)
        m3, addr = p.recv_request("REGISTER")
        again = gb.parse_challenge(m3.get("authorization"))
        self.assertEqual((again["nonce"], again["nc"]), ("n2", "00000001"))
        hs = [(n, v) for n, v in m3.headers if gb._hname(n) in ("via", "from", "call-id", "cseq")] + [
            ("To", m3.get("to") + ";tag=r1"), ("WWW-Authenticate", 'Digest realm="r", nonce="n3", qop="auth"')]
        p.s.sendto(gb.encode_message("SIP/2.0 401 Unauthorized", hs), addr)
        self.assertEqual(fut.result(10), 401)  # the credentials were refused: no third try

    def test_catalog_and_record_queries_are_answered_in_several_messages(self):
        p, sim, d = self.platform_and_device(channels=5, catalog_per_message=2)
        r = p.request(d, "MESSAGE", query("Catalog", d.id, 71))
        self.assertEqual(r.status, 200)
        items = []
        for _ in range(3):
            m, addr = p.recv_request("MESSAGE")
            root = gb.decode_body(m.body, m.get("content-type"))
            self.assertEqual((root.tag, gb.child_text(root, "CmdType"), gb.child_text(root, "SN"), gb.child_text(root, "SumNum")),
                             ("Response", "Catalog", "71", "5"))
            items += [gb.child_text(i, "DeviceID") for i in root.find("DeviceList")]
            p.answer(m, addr)
        self.assertEqual(items, [c["DeviceID"] for c in d.channels])
        d.wait("response_sent", cmd="Catalog", index=2)
        self.assertEqual([e["status"] for e in d.find("response_sent", cmd="Catalog")], [200, 200, 200])
        r = p.request(d, "MESSAGE", query("RecordInfo", d.channels[0]["DeviceID"], 72,
                                          "<StartTime>2026-12-07T00:00:00</StartTime>\r\n<EndTime>2026-12-07T23:00:00</EndTime>\r\n"))
        self.assertEqual(r.status, 200)
        starts = []
        for _ in range(3):  # 5 records, 2 per message
            m, addr = p.recv_request("MESSAGE")
            root = gb.decode_body(m.body)
            self.assertEqual((gb.child_text(root, "CmdType"), gb.child_text(root, "SumNum")), ("RecordInfo", "5"))
            rl = root.find("RecordList")
            self.assertEqual(int(rl.get("Num")), len(rl))
            starts += [gb.child_text(i, "StartTime") for i in rl]
            p.answer(m, addr)
        self.assertEqual(len(set(starts)), 5)
        self.assertEqual(starts, sorted(starts, reverse=True))  # newest first: the platform has to sort

    def test_unknown_query_and_malformed_body_get_400(self):
        p, sim, d = self.platform_and_device()
        self.assertEqual(p.request(d, "MESSAGE", query("NoSuchQuery", d.id, 1)).status, 400)
        r = p.request(d, "MESSAGE", b'<?xml version="1.0"?><Query><CmdType>Catalog</CmdType>')
        self.assertEqual(r.status, 400)
        self.assertIn("malformed XML", d.wait("bad_body")["reason"])
        self.assertEqual(p.request(d, "MESSAGE", query("Catalog", "34020000001329999999", 2)).status, 404)

    def test_control_with_a_response_and_device_config(self):
        p, sim, d = self.platform_and_device()
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n<SN>5</SN>\r\n'
                f'<DeviceID>{d.id}</DeviceID>\r\n<RecordCmd>Record</RecordCmd>\r\n</Control>\r\n').encode()
        self.assertEqual(p.request(d, "MESSAGE", body).status, 200)
        m, addr = p.recv_request("MESSAGE")
        root = gb.decode_body(m.body)
        self.assertEqual([gb.child_text(root, k) for k in ("CmdType", "SN", "Result")], ["DeviceControl", "5", "OK"])
        p.answer(m, addr)
        self.assertEqual(d.wait("control", name="RecordCmd")["value"], "Record")
        snap = (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<Control>\r\n<CmdType>DeviceConfig</CmdType>\r\n<SN>6</SN>\r\n'
                f'<DeviceID>{d.id}</DeviceID>\r\n<SnapShotConfig><SnapNum>1</SnapNum><Interval>1</Interval>'
                f'<UploadURL>http://127.0.0.1/up</UploadURL><SessionID>short</SessionID></SnapShotConfig>\r\n</Control>\r\n').encode()
        self.assertEqual(p.request(d, "MESSAGE", snap).status, 400)  # SessionID must be 32-128 characters
        self.assertEqual(p.request(d, "MESSAGE", snap.replace(b"short", b"a" * 32)).status, 200)
        m, addr = p.recv_request("MESSAGE")
        self.assertEqual(gb.child_text(gb.decode_body(m.body), "CmdType"), "DeviceConfig")
        p.answer(m, addr)
        self.assertEqual(d.wait("config", name="SnapShotConfig")["value"]["SessionID"], "a" * 32)

    def test_snapshot_config_uploads_the_images_then_reports_them(self):
        got = []

        class Up(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers["Content-Length"])
                got.append((self.path, self.headers["Content-Type"], self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        httpd = http.server.HTTPServer(("127.0.0.1", 0), Up)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        p, sim, d = self.platform_and_device(snapshot_upload=True)
        sid = "Session-" + "ab12" * 8
        url = f"http://127.0.0.1:{httpd.server_address[1]}/snap/upload?token=t1"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<Control>\r\n<CmdType>DeviceConfig</CmdType>\r\n<SN>8</SN>\r\n'
                f'<DeviceID>{d.id}</DeviceID>\r\n<SnapShotConfig><SnapNum>2</SnapNum><Interval>1</Interval>'
                f'<UploadURL>{url}</UploadURL><SessionID>{sid}</SessionID></SnapShotConfig>\r\n</Control>\r\n').encode()
        self.assertEqual(p.request(d, "MESSAGE", body).status, 200)
        m, addr = p.recv_request("MESSAGE")  # the DeviceConfig Response first
        self.assertEqual(gb.child_text(gb.decode_body(m.body), "CmdType"), "DeviceConfig")
        p.answer(m, addr)
        m, addr = p.recv_request("MESSAGE")  # then, after the uploads, the transfer-complete notification
        root = gb.decode_body(m.body)
        self.assertEqual((root.tag, gb.child_text(root, "CmdType"), gb.child_text(root, "SessionID")),
                         ("Notify", "UploadSnapShotFinished", sid))
        ids = [e.text for e in root.find("SnapShotList")]
        p.answer(m, addr)
        self.assertEqual(len(got), 2)
        self.assertEqual({(g[0], g[1]) for g in got}, {("/snap/upload?token=t1", "image/jpeg")})
        self.assertTrue(all(g[2].startswith(b"\xff\xd8") and g[2].endswith(b"\xff\xd9") for g in got))
        self.assertEqual(len(set(ids)), 2)
        self.assertEqual(d.wait("snapshot_finished")["file_ids"], ids)

    def test_alarm_expects_200_then_the_platforms_response(self):
        p, sim, d = self.platform_and_device()
        fut = asyncio.run_coroutine_threadsafe(d.send_alarm(description="大门 报警"), sim.loop)
        m, addr = p.recv_request("MESSAGE")
        root = gb.decode_body(m.body)
        self.assertEqual((root.tag, gb.child_text(root, "CmdType"), gb.child_text(root, "AlarmDescription")),
                         ("Notify", "Alarm", "大门 报警"))
        p.answer(m, addr)
        status, sn = fut.result(10)
        self.assertEqual((status, sn), (200, int(gb.child_text(root, "SN"))))
        self.assertEqual(d.find("alarm_response"), [])
        resp = (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<Response>\r\n<CmdType>Alarm</CmdType>\r\n<SN>{sn}</SN>\r\n'
                f'<DeviceID>{d.id}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n').encode()
        self.assertEqual(p.request(d, "MESSAGE", resp).status, 200)
        self.assertEqual(d.wait("alarm_response", sn=sn)["result"], "OK")

    def test_catalog_subscription_notify_refresh_unsubscribe(self):
        p, sim, d = self.platform_and_device(channels=2)
        r = p.request(d, "SUBSCRIBE", query("Catalog", d.id, 9), extra=[("Event", "Catalog;id=7"), ("Expires", "600")],
                      call_id="sub-1", cseq=1)
        self.assertEqual(r.status, 200)
        dev_tag = gb.header_param(r.get("to"), "tag")
        self.assertTrue(dev_tag)
        self.assertEqual((r.get("expires"), r.get("event")), ("600", "Catalog;id=7"))
        d.wait("subscribed", cmd="Catalog", expires=600)
        new = gb.default_channels(d.id, 3)[2]
        fut = asyncio.run_coroutine_threadsafe(d.notify_catalog([("ADD", new), ("OFF", d.channels[0]["DeviceID"]),
                                                                 ("DEL", d.channels[1]["DeviceID"])]), sim.loop)
        m, addr = p.recv_request("NOTIFY")
        self.assertEqual(m.get("call-id"), "sub-1")
        self.assertEqual(gb.header_param(m.get("from"), "tag"), dev_tag)
        self.assertEqual(gb.header_param(m.get("to"), "tag"), "plat1")
        self.assertEqual(m.get("event"), "Catalog;id=7")
        self.assertRegex(m.get("subscription-state"), r"^active;expires=\d+$")
        self.assertTrue(m.uri.startswith(f"sip:{PLATFORM}@127.0.0.1:{p.port}"))  # the SUBSCRIBE's Contact
        root = gb.decode_body(m.body)
        self.assertEqual([(gb.child_text(i, "DeviceID"), gb.child_text(i, "Event")) for i in root.find("DeviceList")],
                         [(new["DeviceID"], "ADD"), (d.channels[0]["DeviceID"], "OFF"),
                          (gb.default_channels(d.id, 2)[1]["DeviceID"], "DEL")])
        p.answer(m, addr)
        self.assertEqual(fut.result(10), 200)
        # refresh in the dialog, then unsubscribe (Expires: 0) -> 200 and a final NOTIFY
        r = p.request(d, "SUBSCRIBE", b"", extra=[("Event", "Catalog;id=7"), ("Expires", "300")], call_id="sub-1", cseq=2, to_tag=dev_tag)
        self.assertEqual(r.status, 200)
        d.wait("subscription_refreshed", expires=300)
        r = p.request(d, "SUBSCRIBE", b"", extra=[("Event", "Catalog;id=7"), ("Expires", "0")], call_id="sub-1", cseq=3, to_tag=dev_tag)
        self.assertEqual(r.status, 200)
        m, addr = p.recv_request("NOTIFY")
        self.assertTrue(m.get("subscription-state").startswith("terminated"))
        p.answer(m, addr)
        d.wait("unsubscribed")
        self.assertIsNone(d.subscription("Catalog"))
        # a refresh of a dialog that is gone: 481
        r = p.request(d, "SUBSCRIBE", b"", extra=[("Event", "Catalog;id=7"), ("Expires", "300")], call_id="sub-1", cseq=4, to_tag=dev_tag)
        self.assertEqual(r.status, 481)


if __name__ == "__main__":
    main()
