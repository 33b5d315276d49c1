"""The core's stream and web services as a plugin sees them: framed TCP (split and coalesced
frames, oversize, orderly close), HTTP endpoints (sync and async replies), WebSocket, application
events; and all connections surviving a hot reload of the plugin that uses them."""
import http.client
import json
import socket

from junction_test import JunctionTest, free_port, main
from ws_client import WsClient


class TcpPeer:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, raw):
        self.s.sendall(raw)

    def frame(self):
        while b"\0" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        f, self.buf = self.buf.split(b"\0", 1)
        return f.decode()

    def closed(self):
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


class PluginIoTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.tcp_port, self.http_port = free_port(), free_port()
        self.j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{self.tcp_port}",
                                                  "http_listen": f"127.0.0.1:{self.http_port}",
                                                  "max_frame": 64, "events_topic": "alarm/"}})
        self.j.start()

    def http(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, json.loads(data)

    def test_tcp_framing(self):
        a, b = TcpPeer(self.tcp_port), TcpPeer(self.tcp_port)
        a.send(b"hel")
        a.send(b"lo\0wor")                     # split across segments
        self.assertRegex(a.frame(), r"^echo:\d+:hello$")
        a.send(b"ld\0one\0two\0")              # several in one segment
        self.assertEqual([a.frame().split(":", 2)[2] for _ in range(3)], ["world", "one", "two"])
        a.send(b"x" * 100 + b"\0after\0")       # oversize: error reply, then resync
        self.assertEqual(a.frame(), "error:oversize:100")
        self.assertTrue(a.frame().endswith(":after"))
        b.send(b"other\0")                      # the other connection never noticed
        self.assertTrue(b.frame().endswith(":other"))
        a.send(b"close\0")
        self.assertEqual(a.frame(), "bye")       # flushed before the close
        self.assertTrue(a.closed())
        stats = self.j.cmd("io-echo", "stats")
        self.assertEqual(stats["oversize"], 1)

    def test_sip_framing(self):
        """JN_FRAME_SIP over a real socket: messages byte by byte and coalesced, keepalive ping,
        and a stream whose Content-Length lies is closed with the reason logged."""
        port = free_port()
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{port}", "http_listen": f"127.0.0.1:{free_port()}",
                                             "tcp_framing": "sip", "max_frame": 2048}})
        j.start()
        reg = b"REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
        msg = b"MESSAGE sip:a SIP/2.0\r\nl: 5\r\n\r\nhello"
        a, b = TcpPeer(port), TcpPeer(port)
        for i in range(len(reg)):
            a.send(reg[i:i + 1])
        self.assertRegex(a.frame(), r"^sip:\d+:%d$" % len(reg))
        a.send(b"\r\n\r\n" + msg + reg)
        self.assertEqual(a.frame(), "pong")
        self.assertTrue(a.frame().endswith(":%d" % len(msg)))
        self.assertTrue(a.frame().endswith(":%d" % len(reg)))
        a.send(b"INVITE sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab")
        self.assertTrue(a.frame().startswith("error:oversize:"))
        self.assertTrue(a.closed())
        j.wait_for_log("two different Content-Length values")
        b.send(msg)                              # the other connection is untouched
        self.assertTrue(b.frame().endswith(":%d" % len(msg)))

    def test_http_and_websocket(self):
        self.assertEqual(self.http("GET", "/x?a=1"), (200, {"method": "GET", "path": "/x", "query": "a=1", "body": ""}))
        self.assertEqual(self.http("POST", "/p", "payload")[1]["body"], "payload")
        self.assertEqual(self.http("GET", "/missing")[0], 404)

    def test_websocket_upgrade_is_the_plugins_decision(self):
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}", "http_listen": f"127.0.0.1:{free_port()}",
                                             "ws_allow_origin": "https://app.example", "ws_protocol": "verto"}})
        j.start()
        port = int(j.plugins["io-echo"]["http_listen"].rsplit(":", 1)[1])
        with self.assertRaises(ConnectionError) as e:  # another site's page: refused before any WebSocket
            WsClient("127.0.0.1", port, "/ws", headers={"Origin": "https://evil.example"})
        self.assertIn(" 403 ", str(e.exception))
        with self.assertRaises(ConnectionError):  # no Origin at all: refused too
            WsClient("127.0.0.1", port, "/ws")
        ws = WsClient("127.0.0.1", port, "/ws?room=7", headers={"Origin": "https://app.example",
                                                                 "Sec-WebSocket-Protocol": "chat, verto"})
        self.assertIn("Sec-WebSocket-Protocol: verto", ws.head)
        ws.send("hi")
        self.assertEqual(ws.recv(), (1, b"echo:hi"))
        opened = j.cmd("io-echo", "last_open")
        self.assertEqual((opened["path"], opened["query"], opened["subprotocol"]), ("/ws", "room=7", "verto"))
        self.assertGreaterEqual(opened["headers"], 3)  # host, origin, upgrade, ...
        ws.close()
        # A client offering no subprotocol (browser Verto clients) is accepted without one.
        ws = WsClient("127.0.0.1", port, "/ws", headers={"Origin": "https://app.example"})
        self.assertNotIn("Sec-WebSocket-Protocol", ws.head)
        ws.close()

    def test_http_headers_both_ways(self):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        c.request("GET", "/headers", headers={"Origin": "https://app.example", "User-Agent": "jn-test/1"})
        r = c.getresponse()
        body = json.loads(r.read())
        self.assertEqual(r.status, 302)
        self.assertEqual(r.getheader("Location"), "/elsewhere")
        self.assertEqual(r.getheader("X-Echo"), "yes")
        self.assertEqual(body["headers"]["origin"], "https://app.example")
        self.assertEqual(body["headers"]["user-agent"], "jn-test/1")
        self.assertEqual(body["headers"]["host"], f"127.0.0.1:{self.http_port}")
        c.close()
        status, body = self.http("GET", "/bad-header")
        self.assertEqual(status, 200)
        self.assertEqual(body["refused_status"], -1)  # JN_ERR_INVALID, and no header was sent
        self.j.wait_for_log("header 'X-Evil' refused")
        ws = WsClient("127.0.0.1", self.http_port, "/ws")
        ws.send("hi")
        self.assertEqual(ws.recv(), (1, b"echo:hi"))
        ws.send(b"\x00\x01bin")
        self.assertEqual(ws.recv(), (2, b"echo:\x00\x01bin"))
        # An application event published through the admin API reaches the subscribed plugin.
        self.j.api("POST", "/api/v1/events", {"topic": "alarm/door", "data": {"id": 7}}, expect=202)
        self.assertEqual(ws.recv(), (1, b'event:alarm/door:{"id":7}'))
        self.j.api("POST", "/api/v1/events", {"topic": "other/x", "data": {}}, expect=202)
        ws.send("after")
        self.assertEqual(ws.recv(), (1, b"echo:after"), "an event outside the subscribed prefix was delivered")
        ws.close()

    def test_connections_survive_reload(self):
        tcp = TcpPeer(self.tcp_port)
        tcp.send(b"before\0")
        cookie = tcp.frame().split(":")[1]
        ws = WsClient("127.0.0.1", self.http_port, "/ws")
        ws.send("before")
        self.assertEqual(ws.recv(), (1, b"echo:before"))
        tcp.send(b"partial-fr")                  # half a frame buffered in the core across the swap
        for _ in range(5):
            r = self.j.api("POST", "/api/v1/plugins/io-echo/reload", expect=200)
            self.assertTrue(r["old_unloaded"])
        tcp.send(b"ame\0")
        self.assertEqual(tcp.frame(), f"echo:{cookie}:partial-frame")  # same connection, same cookie
        ws.send("after")
        self.assertEqual(ws.recv(), (1, b"echo:after"))
        self.assertEqual(self.http("GET", "/y")[0], 200)
        stats = self.j.cmd("io-echo", "stats")
        self.assertEqual((stats["tcp_conns"], stats["ws_conns"], stats["reloads"]), (1, 1, 5))
        ws.close()

    def test_outgoing_connection(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(10)
        port = server.getsockname()[1]
        r = self.j.cmd("io-echo", "connect", {"addr": f"127.0.0.1:{port}"})
        self.assertEqual(r["status"], 0)
        conn, _ = server.accept()
        peer = TcpPeer.__new__(TcpPeer)
        peer.s, peer.buf = conn, b""
        self.assertEqual(peer.frame(), "hello-from-plugin")   # sent on JN_TCP_CONNECTED
        peer.send(b"ping\0")
        self.assertTrue(peer.frame().endswith(":ping"))
        conn.close()
        server.close()
        # A refused connect is reported as JN_TCP_CLOSED (never CONNECTED).
        dead = free_port()
        n = len(self.j.lines)
        self.assertEqual(self.j.cmd("io-echo", "connect", {"addr": f"127.0.0.1:{dead}"})["status"], 0)
        self.j.wait_for_log(r"\[io-echo\] outgoing connection failed \(status -5\)", start=n)
        self.assertEqual(self.j.cmd("io-echo", "stats")["connect_failures"], 1)
        status, body = self.j.request("POST", "/api/v1/plugins/io-echo/cmd/connect", {"addr": "not-an-address"})
        self.assertEqual((status, body["status"]), (400, -1))

    def test_unload_closes_everything_it_held(self):
        tcp = TcpPeer(self.tcp_port)
        tcp.send(b"x\0")
        tcp.frame()
        ws = WsClient("127.0.0.1", self.http_port, "/ws")
        self.j.api("POST", "/api/v1/plugins/io-echo/unload", expect=200)
        self.assertTrue(tcp.closed())
        with self.assertRaises(ConnectionRefusedError):  # the listener is gone
            socket.create_connection(("127.0.0.1", self.tcp_port), timeout=2)
        self.assertEqual(self.j.api("GET", "/metrics", expect=200).count("junction_resources_open 0"), 1)
        ws.sock.close()

    def test_asynchronous_stop_finishes_after_the_hook_that_says_stop_done(self):
        # on_stop answers JN_PENDING; host->stop_done() comes from inside a hook (on_stop itself, a
        # timer, twice from a timer). The instance must outlive that hook (the plugin logs through
        # itself after the call: a destroyed instance / unmapped code would crash the server or
        # trip ASan), and the unload then completes without the timeout's warning.
        for mode in ("inline", "timer", "twice"):
            with self.subTest(mode=mode):
                j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                                     "http_listen": f"127.0.0.1:{free_port()}", "async_stop": mode}},
                                server={"stop_timeout_ms": 60000})
                j.start()
                n = len(j.lines)
                j.api("POST", "/api/v1/plugins/io-echo/unload", expect=200)
                j.wait_for_log(r"\[io-echo\] stop_done said (inside on_stop|from on_timer; the instance is still alive)", start=n)
                j.wait_for_log(r"plugin io-echo unloaded", start=n)
                self.assertNotIn("did not finish stopping in time", j.log())
                self.assertEqual([p["name"] for p in j.api("GET", "/api/v1/plugins", expect=200)], [])
                self.assertIsNone(j.proc.poll())  # the server is still running

    def test_asynchronous_stop_without_stop_done_ends_at_the_timeout(self):
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                             "http_listen": f"127.0.0.1:{free_port()}", "async_stop": "never"}},
                        server={"stop_timeout_ms": 200})
        j.start()
        n = len(j.lines)
        j.api("POST", "/api/v1/plugins/io-echo/unload", expect=200)
        j.wait_for_log(r"\[io-echo\] did not finish stopping in time", start=n)
        j.wait_for_log(r"plugin io-echo unloaded", start=n)
        self.assertEqual([p["name"] for p in j.api("GET", "/api/v1/plugins", expect=200)], [])


if __name__ == "__main__":
    main()
