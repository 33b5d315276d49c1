"""sdk/sip against real SIP software: sipp (sip-tester) drives the sip-registrar test plugin.

- REGISTER with digest over UDP and TCP (sipp's [authentication]); a wrong password gets 403;
  a replayed nonce-count gets 403 (a Python client replays the Authorization sipp cannot);
- sipp as UAS answers the stack's INVITE and receives its ACK and its BYE;
- a sipp UAC INVITE gets 100/180/200; the dialog is torn down by sipp (BYE) or by the stack;
- a device registered over TCP is reached over that same connection (a MESSAGE).
Loopback only; ports from the harness's free_port; synchronisation on log lines and sipp's exit.
"""
import hashlib
import os
import re
import secrets
import socket

from junction_test import JunctionTest, free_port, main, wait_until
from sipp import SippRuns

SCEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")
PLUGIN = "sip-registrar"


def port_taken(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def digest(user, realm, password, method, uri, nonce, nc, cnonce, qop="auth"):
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    return hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode()).hexdigest()


class SipSippTest(SippRuns, JunctionTest):
    SIPP_SCENARIOS = SCEN

    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.j = self.server(plugins={PLUGIN: {
            "udp_listen": f"127.0.0.1:{self.port}", "tcp_listen": f"127.0.0.1:{self.port}",
            "users": {"alice": "secret", "bob": "hunter2"}, "realm": "junction.test"}})
        self.j.start()
        self.j.wait_for_log("sip-registrar: listening")

    # -- registrar ---------------------------------------------------------------------------------
    def test_register_digest_udp_and_tcp(self):
        remote = f"127.0.0.1:{self.port}"
        self.run_sipp("register_auth.xml", remote, "u1", users=[("alice", "secret")])
        self.j.wait_for_log(r"REGISTER user=alice from 127\.0\.0\.1:\d+ over UDP -> 200")
        self.run_sipp("register_auth.xml", remote, "t1", users=[("bob", "hunter2")])
        self.j.wait_for_log(r"REGISTER user=bob from 127\.0\.0\.1:\d+ over TCP -> 200")
        # sipp closes its connection when done: the binding made over it goes with it
        self.j.wait_for_log(r"connection closed: 1 binding\(s\) removed")
        b = self.j.cmd(PLUGIN, "bindings")
        self.assertEqual(list(b), ["alice@127.0.0.1"])
        self.assertEqual(b["alice@127.0.0.1"][0]["transport"], "UDP")
        self.assertTrue(b["alice@127.0.0.1"][0]["contact"].startswith("sip:alice@127.0.0.1:"))
        self.assertEqual(self.j.cmd(PLUGIN, "stats")["register_ok"], 2)

    def test_wrong_password_is_403(self):
        remote = f"127.0.0.1:{self.port}"
        for transport in ("u1", "t1"):
            self.run_sipp("register_403.xml", remote, transport, users=[("alice", "not-the-password")])
        self.j.wait_for_log(r"REGISTER user=alice .* refused 403 \(wrong credentials\)")
        self.assertEqual(self.j.cmd(PLUGIN, "bindings"), {})
        self.assertEqual(self.j.cmd(PLUGIN, "stats")["register_ok"], 0)

    def test_replayed_nonce_count_is_refused(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        lport = s.getsockname()[1]
        dest = ("127.0.0.1", self.port)
        call_id = secrets.token_hex(8)
        uri = f"sip:127.0.0.1:{self.port}"

        def register(cseq, branch, auth=None):
            msg = (f"REGISTER {uri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
                   f"From: <sip:alice@127.0.0.1>;tag=py1\r\nTo: <sip:alice@127.0.0.1>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
                   f"Contact: <sip:alice@127.0.0.1:{lport}>\r\nExpires: 600\r\n"
                   + (f"Authorization: {auth}\r\n" if auth else "") + "Content-Length: 0\r\n\r\n")
            s.sendto(msg.encode(), dest)
            return msg

        def reply():
            data, _ = s.recvfrom(65535)
            text = data.decode()
            return int(text.split(" ", 2)[1]), text

        register(1, "z9hG4bK" + secrets.token_hex(8))
        code, text = reply()
        self.assertEqual(code, 401)
        ch = re.search(r"WWW-Authenticate: Digest (.*)\r\n", text).group(1)
        nonce = re.search(r'nonce="([^"]+)"', ch).group(1)
        self.assertIn('realm="junction.test"', ch)
        self.assertIn('qop="auth"', ch)
        cnonce = "c0ffee"
        resp = digest("alice", "junction.test", "secret", "REGISTER", uri, nonce, "00000001", cnonce)
        auth = (f'Digest username="alice", realm="junction.test", nonce="{nonce}", uri="{uri}", '
                f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"')
        branch = "z9hG4bK" + secrets.token_hex(8)
        first = register(2, branch, auth)
        code, text = reply()
        self.assertEqual(code, 200)
        # RFC 3581: the source port in rport=, and received= with it
        self.assertIn(f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport={lport};received=127.0.0.1\r\n", text)
        # The same datagram again is a retransmission: the transaction answers 200 again, the
        # registrar does not see it (no replay verdict).
        s.sendto(first.encode(), dest)
        code, _ = reply()
        self.assertEqual(code, 200)
        # A new request with the same nonce and nc: a replay, refused.
        register(3, "z9hG4bK" + secrets.token_hex(8), auth)
        code, text = reply()
        self.assertEqual(code, 403)
        self.j.wait_for_log(r"REGISTER user=alice .* refused 403 \(nonce-count replayed\)", timeout=5)
        # nc=2 with the same nonce is a fresh request: accepted.
        resp2 = digest("alice", "junction.test", "secret", "REGISTER", uri, nonce, "00000002", cnonce)
        register(4, "z9hG4bK" + secrets.token_hex(8), auth.replace(resp, resp2).replace("nc=00000001", "nc=00000002"))
        code, _ = reply()
        self.assertEqual(code, 200)
        self.assertEqual(self.j.cmd(PLUGIN, "stats")["register_ok"], 2)
        s.close()

    def test_tcp_registered_device_is_reached_over_its_connection(self):
        c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        buf = b""

        def read_msg():
            nonlocal buf
            while True:
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    head = buf[:end].decode()
                    m = re.search(r"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                    n = int(m.group(1)) if m else 0
                    if len(buf) >= end + 4 + n:
                        msg, buf = buf[:end + 4 + n].decode(), buf[end + 4 + n:]
                        return msg
                chunk = c.recv(65535)
                if not chunk:
                    raise AssertionError("connection closed")
                buf += chunk

        uri = f"sip:127.0.0.1:{self.port}"
        # A device behind NAT: its Contact names an address nobody can reach; only the connection works.
        def register(cseq, auth=None):
            c.sendall((f"REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/TCP 10.255.0.1:5060;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
                       f"From: <sip:bob@127.0.0.1>;tag=t{cseq}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: tcpreg\r\n"
                       f"CSeq: {cseq} REGISTER\r\nContact: <sip:bob@10.255.0.1:5060;transport=tcp>\r\nExpires: 600\r\n"
                       + (f"Authorization: {auth}\r\n" if auth else "") + "Content-Length: 0\r\n\r\n").encode())
        register(1)
        text = read_msg()
        self.assertTrue(text.startswith("SIP/2.0 401"), text)
        self.assertIn("received=127.0.0.1", text)  # the real source, not the Via's 10.255.0.1
        nonce = re.search(r'nonce="([^"]+)"', text).group(1)
        resp = digest("bob", "junction.test", "hunter2", "REGISTER", uri, nonce, "00000001", "ab")
        register(2, f'Digest username="bob", realm="junction.test", nonce="{nonce}", uri="{uri}", response="{resp}", '
                    f'qop=auth, nc=00000001, cnonce="ab"')
        text = read_msg()
        self.assertTrue(text.startswith("SIP/2.0 200"), text)
        c.sendall(b"\r\n\r\n")  # a CRLF keepalive gets its pong
        wait_until(lambda: c.recv(2) == b"\r\n", what="the keepalive pong")
        r = self.j.cmd(PLUGIN, "message", {"aor": "bob@127.0.0.1", "text": "over your connection"})
        self.assertEqual(r["transport"], "TCP")
        msg = read_msg()
        self.assertTrue(msg.startswith("MESSAGE sip:bob@10.255.0.1:5060;transport=tcp SIP/2.0"), msg)
        self.assertTrue(msg.endswith("over your connection"))
        via = re.search(r"Via: SIP/2\.0/TCP [^;]+;branch=(\S+?);", msg).group(1)
        cseq = re.search(r"CSeq: (.*)\r\n", msg).group(1)
        c.sendall((f"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:{self.port};branch={via};rport\r\n"
                   f"{re.search(r'(From: .*)', msg).group(1)}\r\n{re.search(r'(To: .*)', msg).group(1)};tag=dev\r\n"
                   f"{re.search(r'(Call-ID: .*)', msg).group(1)}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode())
        # closing the connection removes the binding bound to it
        c.close()
        self.j.wait_for_log(r"connection closed: 1 binding\(s\) removed")
        self.assertEqual(self.j.cmd(PLUGIN, "bindings"), {})

    # -- calls -------------------------------------------------------------------------------------
    def test_sipp_uas_answers_the_stacks_invite_and_gets_ack_and_bye(self):
        for transport, sipp_t in (("udp", "u1"), ("tcp", "t1")):
            uas = self.sipp("uas.xml", None, sipp_t)
            kind = socket.SOCK_STREAM if sipp_t == "t1" else socket.SOCK_DGRAM
            wait_until(lambda: port_taken(uas.port, kind), timeout=10, what="sipp listening")
            n = self.j.cmd(PLUGIN, "call", {"to": f"sip:service@127.0.0.1:{uas.port}", "transport": transport})["call"]
            self.j.wait_for_log(rf"call {n} answered, ACK sent")
            self.j.cmd(PLUGIN, "bye", {"call": n})
            self.j.wait_for_log(rf"call {n} BYE answered 200")
            self.finished(uas)
            calls = {c["call"]: c for c in self.j.cmd(PLUGIN, "calls")}
            self.assertEqual(calls[n]["state"], "ended")

    def test_uac_target_by_name_is_resolved_by_the_core(self):
        # "localhost" goes through the core's JN_DNS_SIP (RFC 3263; answered without a query)
        uas = self.sipp("uas.xml", None, "u1")
        wait_until(lambda: port_taken(uas.port, socket.SOCK_DGRAM), timeout=10, what="sipp listening")
        n = self.j.cmd(PLUGIN, "call", {"to": f"sip:service@localhost:{uas.port}"})["call"]
        self.j.wait_for_log(rf"call {n} resolved to 127\.0\.0\.1:{uas.port}")
        self.j.wait_for_log(rf"call {n} answered, ACK sent")
        self.j.cmd(PLUGIN, "bye", {"call": n})
        self.j.wait_for_log(rf"call {n} BYE answered 200")
        self.finished(uas)

    def test_reload_in_the_middle_of_an_invite_loses_nothing(self):
        uas = self.sipp("uas_slow.xml", None, "u1")
        wait_until(lambda: port_taken(uas.port, socket.SOCK_DGRAM), timeout=10, what="sipp listening")
        n = self.j.cmd(PLUGIN, "call", {"to": f"sip:service@127.0.0.1:{uas.port}"})["call"]
        self.j.wait_for_log(rf"call {n} ringing \(180\)")
        status, body = self.j.request("POST", f"/api/v1/plugins/{PLUGIN}/reload")
        self.assertEqual(status, 200, body)
        self.j.wait_for_log(r"restored 1 transaction\(s\), 1 dialog\(s\), 1 call\(s\)")
        # sipp's 200 comes after the reload: the new instance's transaction takes it and ACKs it
        self.j.wait_for_log(rf"call {n} answered, ACK sent")
        self.j.cmd(PLUGIN, "bye", {"call": n})
        self.j.wait_for_log(rf"call {n} BYE answered 200")
        self.finished(uas)

    def test_tcp_stream_with_a_lying_content_length_is_closed(self):
        c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        c.sendall(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKlie\r\n"
                  b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: lie\r\nCSeq: 1 OPTIONS\r\n"
                  b"Content-Length: 12abc\r\n\r\n")
        self.assertEqual(c.recv(100), b"")  # closed, nothing answered
        c.close()
        # and the stack still serves others
        self.run_sipp("register_auth.xml", f"127.0.0.1:{self.port}", "t1", users=[("alice", "secret")])

    def test_sipp_uac_invite_gets_100_180_200_and_bye_from_sipp(self):
        remote = f"127.0.0.1:{self.port}"
        for t in ("u1", "t1"):
            self.run_sipp("uac.xml", remote, t)
        self.j.wait_for_log(r"call 1 ACK received")
        self.j.wait_for_log(r"call 2 ended by the peer \(BYE\)")
        states = [c["state"] for c in self.j.cmd(PLUGIN, "calls")]
        self.assertEqual(states, ["ended", "ended"])
        self.assertEqual(self.j.cmd(PLUGIN, "stats")["dialogs"], 0)

    def test_sipp_uac_call_torn_down_by_the_stack(self):
        remote = f"127.0.0.1:{self.port}"
        uac = self.sipp("uac_remote_bye.xml", remote, "u1")
        line = self.j.wait_for_log(r"call (\d+) ACK received")
        n = int(re.search(r"call (\d+) ACK", line).group(1))
        self.j.cmd(PLUGIN, "bye", {"call": n})
        self.j.wait_for_log(rf"call {n} BYE answered 200")
        self.finished(uac)


if __name__ == "__main__":
    main()
