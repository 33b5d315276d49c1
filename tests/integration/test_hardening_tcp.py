"""The core's limits on plugin TCP ([limits]), over real sockets against the io-echo test plugin:
connections per source IP and per listener, the default idle timeout, the connect timeout of
tcp_connect, and fd exhaustion (RLIMIT_NOFILE lowered on the running server): accepts stop
limits.fd_reserve fds short of the limit so other plugins can still bind, and EMFILE itself
neither spins nor leaves connections hanging. Every refusal is counted in
junction_tcp_refused_total{reason=...}."""
import re
import resource
import socket

from junction_test import JunctionTest, free_port, main, wait_until


class Peer:
    """A TCP client of io-echo (NUL-framed), optionally from a given loopback source address."""

    def __init__(self, port, source="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.bind((source, 0))
        self.s.connect(("127.0.0.1", port))

    def served(self):
        """True when the plugin answers an echo, False when the core closed the connection."""
        try:
            self.s.sendall(b"ping\0")
            data = b""
            while b"\0" not in data:
                chunk = self.s.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"echo:")
        except (ConnectionResetError, BrokenPipeError):
            return False

    def closed_by_server(self):
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


class TcpLimitsTest(JunctionTest):
    def setUp(self):
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        super().tearDown()

    def start(self, limits, **kw):
        self.tcp_port = free_port()
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{self.tcp_port}",
                                             "http_listen": f"127.0.0.1:{free_port()}"}}, **kw)
        j.core["limits"] = limits
        j.write_core(j.core)
        j.start()
        return j

    def peer(self, source="127.0.0.1"):
        p = Peer(self.tcp_port, source)
        self.peers.append(p)
        return p

    def refused(self, j, reason):
        m = re.search(r'^junction_tcp_refused_total\{plugin="io-echo",reason="%s"\} (\d+)$' % reason,
                      j.api("GET", "/metrics", expect=200), re.M)
        return int(m.group(1)) if m else 0

    def test_connections_per_source_ip(self):
        j = self.start({"tcp_max_conns_per_ip": 2})
        a, b = self.peer(), self.peer()
        self.assertTrue(a.served() and b.served())
        self.assertFalse(self.peer().served())            # a third from 127.0.0.1
        self.assertTrue(self.peer("127.0.0.2").served())  # another source has its own count
        self.assertEqual(self.refused(j, "ip_limit"), 1)
        a.close()                                         # its place is given back
        wait_until(lambda: j.cmd("io-echo", "stats")["tcp_conns"] == 2, what="the close to reach the plugin")
        self.assertTrue(self.peer().served())
        # The log line is written by the core's logger: wait for it rather than read it once.
        refused_line = re.compile(r"tcp_listen 127\.0\.0\.1:\d+: refused a connection from 127\.0\.0\.1 \(ip_limit")
        wait_until(lambda: refused_line.search(j.log()), what="the refusal's log line")

    def test_connections_per_listener(self):
        j = self.start({"tcp_max_conns_per_listener": 3})
        for src in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            self.assertTrue(self.peer(src).served())
        self.assertFalse(self.peer("127.0.0.4").served())
        self.assertEqual(self.refused(j, "listener_limit"), 1)
        self.assertEqual(j.cmd("io-echo", "stats")["tcp_conns"], 3)

    def test_default_idle_timeout_closes_a_silent_peer(self):
        # io-echo's listener sets no idle timeout of its own; the core's default applies.
        j = self.start({"tcp_idle_timeout_ms": 300})
        silent = self.peer()
        self.assertTrue(silent.closed_by_server())
        wait_until(lambda: j.cmd("io-echo", "stats")["closed"] == 1, what="the plugin to hear JN_TCP_CLOSED")

    def test_connect_timeout(self):
        # A listener whose accept queue is full: Linux drops further SYNs, so a connect hangs.
        blackhole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        port = blackhole.getsockname()[1]
        fillers = []
        for _ in range(2):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        try:
            j = self.start({"tcp_connect_timeout_ms": 300})
            self.assertEqual(j.cmd("io-echo", "connect", {"addr": f"127.0.0.1:{port}"})["status"], 0)
            j.wait_for_log(r"tcp_connect 127\.0\.0\.1:%d: no answer within limits\.tcp_connect_timeout_ms" % port)
            j.wait_for_log(r"outgoing connection failed \(status -12\)")  # JN_TCP_CLOSED, JN_ERR_TIMEOUT
            self.assertEqual(j.cmd("io-echo", "stats")["connect_failures"], 1)
            self.assertIn('junction_tcp_connect_timeouts_total{plugin="io-echo"} 1', j.api("GET", "/metrics"))
        finally:
            for f in fillers:
                f.close()
            blackhole.close()

    def lower_fd_limit(self, j, headroom):
        soft, hard = resource.prlimit(j.proc.pid, resource.RLIMIT_NOFILE)
        limit = j.fd_count() + headroom
        resource.prlimit(j.proc.pid, resource.RLIMIT_NOFILE, (limit, hard))
        return limit

    def test_fd_reserve_keeps_room_for_other_plugins(self):
        j = self.start({"fd_reserve": 16, "tcp_max_conns_per_ip": 0},
                       extra_plugin_confs={"udp-counter": {"listen": f"127.0.0.1:{free_port()}"}}, enabled=["io-echo"])
        self.lower_fd_limit(j, 20)
        served = sum(self.peer().served() for _ in range(30))
        self.assertGreater(served, 0)
        self.assertLess(served, 30)
        self.assertEqual(self.refused(j, "fd_limit"), 30 - served)
        # With the flood still connected, the admin API answers and another plugin can bind.
        j.api("POST", "/api/v1/plugins", {"name": "udp-counter"}, expect=201)
        j.api("POST", "/api/v1/plugins/udp-counter/unload", expect=200)

    def test_emfile_is_shed_and_counted(self):
        j = self.start({"fd_reserve": 0, "tcp_max_conns_per_ip": 0})
        self.lower_fd_limit(j, 6)
        flood = [self.peer() for _ in range(20)]
        results = [p.served() for p in flood]  # each is answered or closed: none left hanging
        self.assertIn(True, results)
        self.assertIn(False, results)
        for p in flood:
            p.close()
        # Once fds are free again, the server answers (the admin API could not accept meanwhile)
        # and the listener accepts as before, its spare fd back.
        wait_until(lambda: j.cmd("io-echo", "stats")["tcp_conns"] == 0, timeout=20, what="the flood to be gone")
        self.assertEqual(self.refused(j, "fd_exhausted"), results.count(False))
        self.assertTrue(self.peer().served())


if __name__ == "__main__":
    main()
