"""TLS on the core's own TCP listen/connect (ABI 2.1 jn_tcp_options.tls), and HTTP endpoints with TLS (http_listen with a certificate and key): HTTPS and WSS served with
the configured certificate, verified by a client that trusts the test's own CA (made here with
the openssl command), refused by a client that does not, plain HTTP on the TLS port refused;
a missing or mismatched key file refused at listen with the reason. The client side of TLS
(verification, hostname checks) is tested in tests/unit/test_http_client.cpp."""
import os
import socket
import ssl
import subprocess
import tempfile

from junction_test import JunctionTest, free_port, main
from ws_client import WsClient


def make_pki(d):
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it, plus another CA."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
            "-days", "2", "-subj", f"/CN=junction test {ca}")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


class TlsWsClient(WsClient):
    """WsClient over a TLS socket."""

    def __init__(self, port, cafile, path="/ws"):
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        real = socket.create_connection
        socket.create_connection = lambda *a, **k: tls  # WsClient opens its socket this way
        try:
            super().__init__("127.0.0.1", port, path)
        finally:
            socket.create_connection = real


class TlsEndpointTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.pki = tempfile.mkdtemp(prefix="jn-pki-")
        make_pki(self.pki)
        self.port = free_port()
        self.j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                                  "http_listen": f"127.0.0.1:{self.port}",
                                                  "tls_cert": os.path.join(self.pki, "server.pem"),
                                                  "tls_key": os.path.join(self.pki, "server.key")}})
        self.j.start()

    def test_https_and_wss_with_the_configured_certificate(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /x?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        self.assertIn(b'"query":"a=1"', data)
        ws = TlsWsClient(self.port, os.path.join(self.pki, "ca.pem"))
        ws.send("over tls")
        self.assertEqual(ws.recv(), (1, b"echo:over tls"))
        ws.close()

    def test_a_client_that_does_not_trust_the_ca_refuses_and_plain_http_is_not_served(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "other-ca.pem"))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                reply = s.recv(4096)
            except ConnectionResetError:
                reply = b""  # the TLS layer hung up on a plain request
        self.assertFalse(reply.startswith(b"HTTP/1.1"), reply[:100])  # no plain answer on a TLS port
        # The endpoint still serves TLS clients afterwards.
        ok = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with ok.wrap_socket(raw, server_hostname="127.0.0.1") as s2:
                s2.sendall(b"GET /y HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                self.assertTrue(s2.recv(4096).startswith(b"HTTP/1.1 200"))

    def test_unreadable_or_missing_key_is_refused_at_listen(self):
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                             "http_listen": f"127.0.0.1:{free_port()}",
                                             "tls_cert": os.path.join(self.pki, "server.pem"),
                                             "tls_key": os.path.join(self.pki, "missing.key")}})
        j.start(expect_ready=False)
        self.assertNotEqual(j.wait_exit(), 0)
        self.assertIn("cannot read TLS file", j.log())
        self.assertIn("missing.key", j.log())
        j.proc = None


class TlsTcpTest(JunctionTest):
    """jn_tcp_options.tls (ABI 2.1): a plugin's framed TCP listener speaks TLS with its configured
    certificate; a plain client is refused before the plugin hears of it; a plugin's outgoing
    connection verifies the server against the CA it names (and is refused with the reason when
    that CA did not sign it)."""

    def setUp(self):
        super().setUp()
        self.pki = tempfile.mkdtemp(prefix="jn-pki-")
        make_pki(self.pki)
        self.tcp_port = free_port()
        self.j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{self.tcp_port}",
                                                  "http_listen": f"127.0.0.1:{free_port()}",
                                                  "tcp_tls_cert": os.path.join(self.pki, "server.pem"),
                                                  "tcp_tls_key": os.path.join(self.pki, "server.key")}})
        self.j.start()

    def read_frame(self, s):
        data = b""
        while b"\0" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed after {data!r}")
            data += chunk
        return data.split(b"\0", 1)[0].decode()

    def test_tls_listener_serves_verified_clients_and_refuses_plain_ones(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"hel")
                s.sendall(b"lo\0second\0")
                self.assertRegex(self.read_frame(s), r"^echo:\d+:hello$")
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=10) as plain:
            plain.sendall(b"not tls\0")
            try:
                reply = plain.recv(4096)
            except ConnectionResetError:
                reply = b""
        self.assertNotIn(b"echo:", reply)
        self.j.wait_for_log(r"tcp from 127\.0\.0\.1:\d+: TLS handshake failed")
        from junction_test import wait_until
        # Both gone; only the TLS client's close was heard (the plain one never reached the plugin).
        wait_until(lambda: self.j.cmd("io-echo", "stats")["closed"] == 1, what="the TLS client's close")
        stats = self.j.cmd("io-echo", "stats")
        self.assertEqual((stats["tcp_conns"], stats["closed"]), (0, 1), stats)

    def tls_server(self, ready, result, ready_event):
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.load_cert_chain(os.path.join(self.pki, "server.pem"), os.path.join(self.pki, "server.key"))
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(15)
        ready.append(lsock.getsockname()[1])
        ready_event.set()
        try:
            conn, _ = lsock.accept()
            with srv.wrap_socket(conn, server_side=True) as s:
                s.settimeout(15)
                result.append(self.read_frame(s))
                s.sendall(b"from-python\0")
        except Exception as e:  # reported to the test thread, which asserts on it
            result.append(f"error: {e!r}")
        finally:
            lsock.close()

    def test_outgoing_tls_connection_verifies_the_server(self):
        import threading
        ready, result, bound = [], [], threading.Event()
        t = threading.Thread(target=self.tls_server, args=(ready, result, bound))
        t.start()
        self.assertTrue(bound.wait(15), "the test's TLS server did not bind")
        r = self.j.cmd("io-echo", "connect", {"addr": f"127.0.0.1:{ready[0]}", "tls": True,
                                               "ca_file": os.path.join(self.pki, "ca.pem")})
        self.assertEqual(r["status"], 0, r)
        t.join(20)
        self.assertEqual(result, ["hello-from-plugin"])  # sent after CONNECTED, i.e. after the handshake
        # A server signed by a CA the connection does not trust: refused, the reason logged.
        ready2, result2, bound2 = [], [], threading.Event()
        t2 = threading.Thread(target=self.tls_server, args=(ready2, result2, bound2))
        t2.start()
        self.assertTrue(bound2.wait(15), "the test's TLS server did not bind")
        r = self.j.cmd("io-echo", "connect", {"addr": f"127.0.0.1:{ready2[0]}", "tls": True,
                                               "ca_file": os.path.join(self.pki, "other-ca.pem")})
        self.assertEqual(r["status"], 0, r)
        self.j.wait_for_log(r"certificate verification failed for 127\.0\.0\.1")
        t2.join(20)
        self.assertTrue(result2 and result2[0].startswith("error:"), result2)
        from junction_test import wait_until
        wait_until(lambda: self.j.cmd("io-echo", "stats")["connect_failures"] == 1, what="the refused connection reported")


if __name__ == "__main__":
    main()
