"""The core's DNS and outbound HTTP services through the ABI (dns_resolve / on_dns, http_request /
on_http_response, cancel), driven by the io-echo test plugin against peers written here: a small
DNS server ([dns] servers points the core at it) and an HTTP server. The core-side classes have
their own unit tests (tests/unit/test_dns.cpp, test_http_client.cpp: every record type, TLS with
a self-signed CA, redirects, limits); this checks the plumbing a plugin sees: answers arrive in
the hooks with the right contents, failures carry a status and a reason, a cancelled request
never answers, an answer pending across a hot reload reaches the new instance, and (ABI 2.3)
streamed responses arrive in on_http_chunk, decoded, then end in on_http_response, or stop at a
cancel with nothing after it."""
import http.server
import socket
import struct
import threading

from junction_test import JunctionTest, free_port, main, wait_until

JN_OK = 0
JN_DNS_OK, JN_DNS_NXDOMAIN = 0, 2
RECORDS = {"cam.example": "10.1.2.3", "web.example": "127.0.0.1"}


class DnsServer:
    """Answers A questions from RECORDS, NXDOMAIN otherwise; counts the questions."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.questions = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                return
            qid, flags, qd = struct.unpack(">HHH", data[:6])
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode())
                i += 1 + data[i]
            qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
            question = data[12:i + 5]
            name = ".".join(labels)
            self.questions.append((name, qtype))
            ip = RECORDS.get(name)
            if ip is None:
                reply = struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
            elif qtype != 1:
                reply = struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question  # no data
            else:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
                reply = struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer
            self.sock.sendto(reply, addr)

    def close(self):
        self.sock.close()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        if self.path in ("/live", "/endless"):
            self.send_response(200)
            self.send_header("Content-Type", "video/x-flv")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for piece in (b"FLV", b"\x01\x05", b"tags"):
                    self.chunk(piece)
                if self.path == "/live":
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.rfile.read(1)  # the stream never ends: until the client leaves
            except OSError:
                pass  # a broken pipe or a reset: the client left (a cancel after the first piece may
                # come while the later pieces are still being written)
            if self.path == "/endless":
                self.server.client_closed.set()
            return
        if self.path == "/hang":
            self.server.hung.set()
            self.rfile.read(1)  # until the client closes
            self.server.client_closed.set()
            return
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        code = 500 if self.path == "/fail" else 200
        body = b'{"path":"%s"}' % self.path.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Seen-Host", self.headers.get("Host", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Token", self.headers.get("X-Token", ""))
        self.end_headers()
        self.wfile.write(body)


class NetServicesTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.dns = DnsServer()
        self.addCleanup(self.dns.close)
        self.web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.web.hung, self.web.client_closed = threading.Event(), threading.Event()
        self.web.daemon_threads = True
        threading.Thread(target=self.web.serve_forever, daemon=True).start()
        self.addCleanup(self.web.server_close)
        self.addCleanup(self.web.shutdown)
        self.hport = self.web.server_address[1]
        self.j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                                  "http_listen": f"127.0.0.1:{free_port()}"}})
        self.j.write_core(dict(self.j.core, dns={"servers": [f"127.0.0.1:{self.dns.port}"]}))
        self.j.start()

    def cmd(self, verb, body):
        return self.j.cmd("io-echo", verb, body)

    def test_dns_answers_and_failures(self):
        r = self.cmd("resolve", {"name": "cam.example"})
        self.assertEqual((r["status"], r["addresses"], r["ttl"]), (JN_DNS_OK, ["10.1.2.3"], 60), r)
        r = self.cmd("resolve", {"name": "nope.example"})
        self.assertEqual(r["status"], JN_DNS_NXDOMAIN, r)
        self.assertNotEqual(r["error"], "")
        asked = len(self.dns.questions)
        r = self.cmd("resolve", {"name": "127.0.0.9"})  # a literal: answered without a query
        self.assertEqual((r["status"], r["addresses"]), (JN_DNS_OK, ["127.0.0.9"]))
        self.assertEqual(len(self.dns.questions), asked)
        self.assertIn(("cam.example", 1), self.dns.questions)
        r = self.cmd("resolve", {"name": "web.example", "type": "SIP", "port": 5070})  # explicit port: A only
        self.assertEqual((r["status"], r["targets"]), (JN_DNS_OK, [[1, "127.0.0.1", 5070]]), r)
        self.assertEqual(self.cmd("resolve", {"name": "bad..name"})["status"], 5)  # JN_DNS_BADNAME

    def test_http_requests_answers_redirects_errors(self):
        url = f"http://web.example:{self.hport}"  # resolved through the core's DNS
        r = self.cmd("fetch", {"url": url + "/hello"})
        self.assertEqual((r["status"], r["error"], r["body"]), (200, "", '{"path":"/hello"}'), r)
        self.assertEqual(r["headers"]["X-Seen-Host"], f"web.example:{self.hport}")
        r = self.cmd("fetch", {"url": url + "/fail"})
        self.assertEqual(r["status"], 500)
        r = self.cmd("fetch", {"url": url + "/moved"})
        self.assertEqual((r["status"], r["headers"]["Location"]), (302, "/ok"))  # not followed by default
        r = self.cmd("fetch", {"url": url + "/moved", "follow": True})
        self.assertEqual((r["status"], r["redirects"], r["body"]), (200, 1, '{"path":"/ok"}'), r)
        r = self.cmd("fetch", {"url": url + "/echo", "method": "POST", "body": "payload", "headers": {"X-Token": "t1"}})
        self.assertEqual((r["status"], r["body"], r["headers"]["X-Token"]), (200, "payload", "t1"))
        r = self.cmd("fetch", {"url": f"http://127.0.0.1:{free_port()}/"})  # nobody listens
        self.assertEqual(r["status"], 0)
        self.assertIn("refused", r["error"])
        r = self.cmd("fetch", {"url": f"https://127.0.0.1:{self.hport}/"})  # TLS to a plain server
        self.assertEqual(r["status"], 0)
        self.assertNotEqual(r["error"], "")
        self.assertEqual(self.cmd("fetch", {"url": "ftp://x/"})["status"], -1)  # JN_ERR_INVALID, at once
        self.j.wait_for_log(r"http_request ftp://x/: refused")

    def test_a_cancelled_request_never_answers(self):
        r = self.cmd("fetch", {"url": f"http://127.0.0.1:{self.hport}/hang", "detach": True, "timeout_ms": 2000})
        self.assertEqual(r["status"], JN_OK, r)
        self.assertTrue(self.web.hung.wait(10), "the request never reached the server")
        c = self.cmd("cancel", {"handle": r["handle"]})
        self.assertEqual((c["cancel"], c["cancel_again"]), (JN_OK, -2))  # then JN_ERR_NOT_FOUND
        self.assertTrue(self.web.client_closed.wait(10), "the cancelled request's connection was not closed")
        r = self.cmd("fetch", {"url": f"http://127.0.0.1:{self.hport}/after"})  # a later request completes
        self.assertEqual(r["status"], 200)
        st = self.cmd("net_stats", {})
        self.assertEqual((st["http_answers"], st["detached"]), (1, 0))  # only the later one answered

    def test_a_streamed_response_arrives_in_pieces_then_ends(self):
        base = f"http://127.0.0.1:{self.hport}"
        r = self.cmd("fetch", {"url": base + "/live", "stream": True})
        self.assertEqual((r["status"], r["error"], r["body"]), (200, "", ""), r)  # the end: no body
        self.assertEqual((r["heads"], r["chunk_status"], r["headers"]["Content-Type"]), (1, 200, "video/x-flv"), r)
        self.assertEqual("".join(r["pieces"]), "FLV\x01\x05tags")  # chunked decoded, in order
        self.assertFalse(r["wrong_handle"])
        r = self.cmd("fetch", {"url": base + "/fail", "stream": True})  # an error status is a status
        self.assertEqual((r["status"], r["chunk_status"], r["error"], "".join(r["pieces"])), (500, 500, "", '{"path":"/fail"}'), r)
        r = self.cmd("fetch", {"url": f"http://127.0.0.1:{free_port()}/", "stream": True})  # nobody listens
        self.assertEqual((r["status"], r["heads"], r["pieces"]), (0, 0, []), r)
        self.assertIn("refused", r["error"])

    def test_a_cancelled_stream_gets_nothing_more(self):
        r = self.cmd("fetch", {"url": f"http://127.0.0.1:{self.hport}/endless", "stream": True, "cancel_after": 1})
        self.assertEqual((r["status"], r["heads"], r["cancel"]), (200, 1, JN_OK), r)
        self.assertTrue("".join(r["pieces"]).startswith("FLV"), r)
        self.assertTrue(self.web.client_closed.wait(10), "the cancelled stream's connection was not closed")
        r = self.cmd("fetch", {"url": f"http://127.0.0.1:{self.hport}/after"})  # a later request completes
        self.assertEqual(r["status"], 200)
        st = self.cmd("net_stats", {})
        self.assertEqual((st["http_answers"], st["chunks_after_cancel"]), (1, 0))  # no piece, no end after the cancel

    def test_an_answer_pending_across_a_reload_reaches_the_new_instance(self):
        done = {}

        def fetch():
            done["r"] = self.cmd("fetch", {"url": f"http://127.0.0.1:{self.hport}/hang", "timeout_ms": 3000})
        t = threading.Thread(target=fetch)
        t.start()
        self.assertTrue(self.web.hung.wait(10))
        status, body = self.j.request("POST", "/api/v1/plugins/io-echo/reload")
        self.assertEqual(status, 200, body)
        t.join(20)
        self.assertIn("timeout", done["r"]["error"])  # delivered to the new instance, which answered it
        self.assertEqual(self.cmd("net_stats", {})["http_answers"], 1)


if __name__ == "__main__":
    main()
