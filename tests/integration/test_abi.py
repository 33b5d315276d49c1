"""ABI checks: plugins of another major (1.x, 3.x), a .so without the info symbol, a plugin with a
vtable shorter than the core's, plugins built against the frozen 2.0 and 2.1 headers using the
fields those versions added, the 2.2 state directory, and a plugin built against the frozen 2.2
header keeping whole-body outbound HTTP on a 2.3 core (streaming added). None may crash the core or
disturb a loaded plugin."""
import os
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from junction_test import JunctionTest, free_port, udp_socket, main


class AbiTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.j = self.server(plugins={"udp-counter": {"listen": f"127.0.0.1:{self.port}", "echo": True}},
                             extra_plugin_confs={"abi-major1": {}, "abi-major3": {}, "abi-noinfo": {},
                                                 "abi-short-vtable": {"listen": f"127.0.0.1:{free_port()}"},
                                                 "abi-frozen-2-0": {"listen": f"0.0.0.0:{free_port()}"},
                                                 "abi-frozen-2-1": {"listen": f"127.0.0.1:{free_port()}"},
                                                 "abi-frozen-2-2": {"listen": f"127.0.0.1:{free_port()}"}})
        self.j.start()
        self.peer = udp_socket()

    def echo_roundtrip(self, port, n=50):
        for i in range(n):
            self.peer.sendto(struct.pack(">Q", i) + b"abi", ("127.0.0.1", port))
        got = [self.peer.recvfrom(2048)[0] for _ in range(n)]
        self.assertEqual(sorted(struct.unpack(">Q", g[:8])[0] for g in got), list(range(n)))

    def refused(self, name, claimed):
        self.echo_roundtrip(self.port)
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": name})
        self.assertEqual(status, 422, body)
        self.assertIn(f"built for ABI {claimed}", body["error"])
        self.assertRegex(body["error"], r"this core speaks ABI 2\.\d+ ")
        self.assertNotIn("factory was called", self.j.log())
        self.assertEqual([p["name"] for p in self.j.api("GET", "/api/v1/plugins", expect=200)], ["udp-counter"])
        self.echo_roundtrip(self.port)  # the loaded plugin never noticed

    def test_a_1x_plugin_is_refused_naming_both_majors(self):
        self.refused("abi-major1", "1.2")

    def test_a_newer_major_is_refused_too(self):
        self.refused("abi-major3", "3.0")

    def test_frozen_2_0_plugin_loads_and_uses_2_0_fields(self):
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-frozen-2-0"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["abi"], "2.0")
        port = int(open(os.path.join(self.j.dir, "plugins", "abi-frozen-2-0.toml")).read().split(":")[-1].strip().strip('"'))
        # A wildcard bind: each datagram is answered from the address it was sent to (jn_buf.dst
        # read by the plugin, JN_SEND_FROM honoured by the core), with the TOS it asked for.
        for dst in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            s = udp_socket()
            s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
            s.sendto(b"ping", (dst, port))
            data, anc, _flags, src = s.recvmsg(2048, socket.CMSG_SPACE(4))
            self.assertEqual(data, f"dst={dst}:{port} ping".encode())
            self.assertEqual(src, (dst, port))
            tos = [c for c in anc if c[0] == socket.IPPROTO_IP and c[1] == socket.IP_TOS]
            self.assertEqual(len(tos), 1, anc)
            self.assertEqual(tos[0][2][0], 0xB8)
            s.close()

    def test_frozen_2_1_plugin_loads_and_uses_2_1_fields(self):
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-frozen-2-1"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["abi"], "2.1")
        port = int(open(os.path.join(self.j.dir, "plugins", "abi-frozen-2-1.toml")).read().split(":")[-1].strip().strip('"'))
        # work_submit / on_work_done (2.1): each datagram comes back uppercased by a worker.
        for i in range(20):
            self.peer.sendto(f"job {i} abc".encode(), ("127.0.0.1", port))
        got = sorted(self.peer.recvfrom(2048)[0] for _ in range(20))
        self.assertEqual(got, sorted(f"JOB {i} ABC".encode() for i in range(20)))
        # The core hands the 2.2 create args (state_dir appended: 48 bytes on LP64); the 2.1
        # plugin read them through its own, shorter, layout and works.
        self.peer.sendto(b"size?", ("127.0.0.1", port))
        self.assertEqual(self.peer.recvfrom(2048)[0], b"args=48")
        self.echo_roundtrip(self.port)

    def test_frozen_2_2_plugin_keeps_whole_http_bodies_on_a_2_3_core(self):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for piece in (b"hello", b" ", b"world"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    self.wfile.write(b"nope")
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        base = f"http://127.0.0.1:{srv.server_address[1]}"

        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-frozen-2-2"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["abi"], "2.2")
        port = int(open(os.path.join(self.j.dir, "plugins", "abi-frozen-2-2.toml")).read().split(":")[-1].strip().strip('"'))
        # A 2.2 request (96 bytes, no stream field) gets the whole, decoded body in on_http_response
        # (the last hook of its shorter vtable), as on a 2.2 core.
        self.peer.sendto(f"get {base}/chunked".encode(), ("127.0.0.1", port))
        self.assertEqual(self.peer.recvfrom(65536)[0], b"200 11 hello world")
        self.peer.sendto(f"get {base}/missing".encode(), ("127.0.0.1", port))
        self.assertEqual(self.peer.recvfrom(65536)[0], b"404 4 nope")
        # It reads 2.2's create args (state_dir) through its own layout.
        self.peer.sendto(b"args?", ("127.0.0.1", port))
        self.assertEqual(self.peer.recvfrom(2048)[0], b"args=48 state_dir=1")
        self.echo_roundtrip(self.port)

    def test_each_slot_gets_its_state_directory(self):
        # 2.2: <server.state_dir>/plugins/<slot>/ exists once a plugin is created, for any ABI 2.x
        # plugin (the 2.1 one cannot read the path, the directory is there all the same), and it
        # survives a reload.
        base = os.path.join(self.j.dir, "var", "plugins")
        self.assertTrue(os.path.isdir(os.path.join(base, "udp-counter")), os.listdir(base) if os.path.isdir(base) else base)
        self.assertFalse(os.path.exists(os.path.join(base, "abi-frozen-2-1")))
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-frozen-2-1"})
        self.assertEqual(status, 201, body)
        self.assertTrue(os.path.isdir(os.path.join(base, "abi-frozen-2-1")))
        open(os.path.join(base, "udp-counter", "keep"), "w").write("x")
        status, body = self.j.request("POST", "/api/v1/plugins/udp-counter/reload")
        self.assertEqual(status, 200, body)
        self.assertEqual(open(os.path.join(base, "udp-counter", "keep")).read(), "x")
        self.echo_roundtrip(self.port)

    def test_missing_info_symbol_refused(self):
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-noinfo"})
        self.assertEqual(status, 422, body)
        self.assertIn("no junction_plugin_info symbol", body["error"])
        self.assertNotIn("factory was called", self.j.log())
        self.echo_roundtrip(self.port)

    def test_short_vtable_loads_and_serves(self):
        status, body = self.j.request("POST", "/api/v1/plugins", {"name": "abi-short-vtable"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["abi"], "2.0")
        old_port = int(open(os.path.join(self.j.dir, "plugins", "abi-short-vtable.toml")).read().split(":")[-1].strip().strip('"'))
        self.echo_roundtrip(old_port)
        # Hooks past its vtable (on_admin) must not be called: the core answers for it.
        status, body = self.j.request("POST", "/api/v1/plugins/abi-short-vtable/cmd/stats", {})
        self.assertEqual(status, 404, body)
        # Reload without save/restore hooks: works, nothing to carry over.
        status, body = self.j.request("POST", "/api/v1/plugins/abi-short-vtable/reload")
        self.assertEqual(status, 200, body)
        self.echo_roundtrip(old_port)
        self.echo_roundtrip(self.port)

    def test_server_refuses_to_start_with_a_refused_plugin_enabled(self):
        j = self.server(plugins={"abi-major1": {}})
        j.start(expect_ready=False)
        self.assertEqual(j.wait_exit(), 1)
        self.assertRegex(j.log(), r"built for ABI 1\.2, this core speaks ABI 2\.\d+ ")
        self.assertIn("refusing to start", j.log())
        j.proc = None


if __name__ == "__main__":
    main()
