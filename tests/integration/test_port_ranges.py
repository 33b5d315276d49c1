"""The core's named port ranges ([ports.NAME]) and the port_bind service: an RTP/RTCP pair on an
even port and the next, a TCP listener, ports another process holds skipped, a full range refused
with JN_ERR_LIMIT and a log line, a closed socket's port given out again; and the conf checks
(overlapping ranges, a fixed listen port inside a range, UDP and TCP on the same port allowed).
Ports: this file's band 8900-8999."""
import socket

from junction_test import JunctionTest, free_port, main

JN_OK, JN_ERR_NOT_FOUND, JN_ERR_LIMIT = 0, -2, -9
LO, HI = 8900, 8909


def bound(proto, port, ip="127.0.0.1"):
    """Whether someone holds ip:port (a bind of ours fails)."""
    s = socket.socket(socket.AF_INET, proto)
    try:
        s.bind((ip, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


class PortRangeTest(JunctionTest):
    def start_server(self, ranges):
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{free_port()}",
                                             "http_listen": f"127.0.0.1:{free_port()}"}})
        j.write_core(dict(j.core, ports=ranges))
        return j

    def bind(self, j, **body):
        return j.cmd("io-echo", "port_bind", body)

    def test_pairs_tcp_busy_ports_exhaustion_and_reuse(self):
        j = self.start_server({"media": {"min": LO, "max": HI}})
        j.start()
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another process's port
        taken.bind(("127.0.0.1", LO + 3))
        self.addCleanup(taken.close)

        pairs = []
        for _ in range(4):  # 8900/1, (8902/3 has 8903 taken), 8904/5, 8906/7, 8908/9
            r = self.bind(j, range="media", ip="127.0.0.1", pair=True)
            self.assertEqual(r["status"], JN_OK, r)
            self.assertEqual(r["port"] % 2, 0)
            self.assertTrue(bound(socket.SOCK_DGRAM, r["port"]) and bound(socket.SOCK_DGRAM, r["port"] + 1))
            self.assertTrue(all(r["handles"]))
            pairs.append(r)
        self.assertEqual([p["port"] for p in pairs], [LO, LO + 4, LO + 6, LO + 8])
        self.assertFalse(bound(socket.SOCK_DGRAM, LO + 2), "the RTP half of a failed pair was not released")

        r = self.bind(j, range="media", ip="127.0.0.1", pair=True)
        self.assertEqual(r["status"], JN_ERR_LIMIT, r)
        j.wait_for_log(r"port_bind: no free port pair in range 'media' \(8900-8909\)")
        metrics = j.request("GET", "/metrics")[1]
        self.assertIn('junction_port_range_exhausted_total{range="media"} 1', metrics)

        # Closing a pair frees its ports; the next request gets them back.
        for h in pairs[1]["handles"]:
            self.assertEqual(j.cmd("io-echo", "udp_close", {"handle": h})["status"], JN_OK)
        r = self.bind(j, range="media", ip="127.0.0.1", pair=True)
        self.assertEqual((r["status"], r["port"]), (JN_OK, LO + 4), r)

        # A TCP listener comes from the same range (TCP ports are separate from UDP ones: the next
        # port of the cursor, 8906, is free for TCP).
        r = self.bind(j, range="media", ip="127.0.0.1", tcp=True)
        self.assertEqual((r["status"], r["port"]), (JN_OK, LO + 6), r)
        self.assertTrue(bound(socket.SOCK_STREAM, r["port"]))
        c = socket.create_connection(("127.0.0.1", r["port"]), timeout=5)
        c.close()
        self.assertEqual(self.bind(j, range="nope", ip="127.0.0.1")["status"], JN_ERR_NOT_FOUND)
        j.wait_for_log(r"no port range 'nope'")

    def test_conf_refuses_overlapping_ranges_and_listen_ports_inside_a_range(self):
        j = self.start_server({"a": {"min": LO, "max": HI}, "b": {"min": HI, "max": HI + 10}})
        j.start(expect_ready=False)
        self.assertEqual(j.wait_exit(), 2)  # a conf error
        self.assertIn("'ports.b' (8909-8919) overlaps 'ports.a' (8900-8909)", j.log())
        j.proc = None

        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{LO + 5}"}})
        j.write_core(dict(j.core, ports={"media": {"min": LO, "max": HI}}))
        j.start(expect_ready=False)
        self.assertEqual(j.wait_exit(), 2)  # a conf error
        self.assertIn("listen port 8905 lies in port range 'media' (8900-8909)", j.log())
        j.proc = None

    def test_udp_and_tcp_may_share_a_port_two_tcp_listens_may_not(self):
        port = free_port()
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{port}", "http_listen": f"127.0.0.1:{free_port()}"},
                                 "rtp-relay": {"ng_listen": f"127.0.0.1:{port}", "port_min": LO, "port_max": HI}})
        j.start()  # ng (UDP) and io-echo's TCP listener on one port: legal
        self.assertTrue(bound(socket.SOCK_STREAM, port) and bound(socket.SOCK_DGRAM, port))
        j.stop()
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{port}", "http_listen": f"127.0.0.1:{port}"}})
        j.start(expect_ready=False)
        self.assertEqual(j.wait_exit(), 2)  # a conf error
        self.assertIn(f"duplicate listen address 127.0.0.1:{port}", j.log())
        j.proc = None


if __name__ == "__main__":
    main()
