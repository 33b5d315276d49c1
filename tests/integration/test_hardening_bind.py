"""Every HTTP/WebSocket listener (the admin API, a plugin's http_listen) is bound to exactly the
configured address, read back from the kernel's socket tables (/proc/net/tcp, /proc/net/tcp6):
an endpoint configured on 127.0.0.1 must not listen on every interface."""
import http.client
import ipaddress
import os
import socket

from junction_test import JunctionTest, free_port, main


def listening(pid, port):
    """{(address, port)} of the TCP sockets of process pid in LISTEN state on port."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state != "0A" or inode not in inodes:  # 0A = LISTEN
                    continue
                hexaddr, hexport = local.split(":")
                if int(hexport, 16) != port:
                    continue
                # The kernel prints each 32-bit word in host (little-endian) order.
                raw = b"".join(bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, len(hexaddr), 8))
                found.add((str(ipaddress.ip_address(raw[:width])), port))
    return found


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class BindTest(JunctionTest):
    def test_admin_api_binds_the_configured_address_only(self):
        j = self.server(plugins={})
        j.start()
        self.assertEqual(listening(j.proc.pid, j.admin_port), {("127.0.0.1", j.admin_port)})
        self.assertEqual(j.api("GET", "/api/v1/health", expect=200)["status"], "ok")

    def io_echo(self, http_listen):
        tcp_port = free_port()
        j = self.server(plugins={"io-echo": {"tcp_listen": f"127.0.0.1:{tcp_port}", "http_listen": http_listen}})
        j.start()
        return j

    def get(self, host, port):
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("GET", "/hello")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    def test_plugin_endpoint_on_another_loopback_address(self):
        port = free_port()
        j = self.io_echo(f"127.0.0.2:{port}")
        self.assertEqual(listening(j.proc.pid, port), {("127.0.0.2", port)})
        self.assertEqual(self.get("127.0.0.2", port), 200)
        with self.assertRaises(ConnectionRefusedError):  # nothing on 127.0.0.1 (nor on *)
            self.get("127.0.0.1", port)

    def test_plugin_endpoint_on_ipv6_loopback(self):
        if not have_ipv6_loopback():
            self.skipTest("no IPv6 loopback on this machine")
        port = free_port()
        j = self.io_echo(f"[::1]:{port}")
        self.assertEqual(listening(j.proc.pid, port), {("::1", port)})
        self.assertEqual(self.get("::1", port), 200)
        with self.assertRaises(ConnectionRefusedError):
            self.get("127.0.0.1", port)

    def test_plugin_endpoint_on_a_host_name(self):
        port = free_port()
        first = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)[0][4][0]
        j = self.io_echo(f"localhost:{port}")
        self.assertEqual(listening(j.proc.pid, port), {(first, port)})
        self.assertEqual(self.get(first, port), 200)


if __name__ == "__main__":
    main()
