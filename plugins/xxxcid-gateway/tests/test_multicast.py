"""cmd 154 sent to the multicast group (conf-enabled): answered by unicast for an online phone,
silence for an offline one."""
import socket

from xx_common import GatewayTest, CALLEE, DOOR
from door_sim import pack_resolve, RESOLVE
from junction_test import free_port, main

GROUP = "239.255.76.10"


class MulticastTest(GatewayTest):
    def setUp(self):
        # The port is picked when the server is about to bind it, not when the module is imported.
        self.mport = MPORT = free_port(socket.SOCK_DGRAM)
        self.conf_over = {"multicast_group": GROUP, "multicast_listen": f"0.0.0.0:{MPORT}", "multicast_iface": "127.0.0.1"}
        super().setUp()

    def test_resolve_over_multicast(self):
        MPORT = self.mport
        door = self.door()
        door.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        door.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        self.bind("42", "Y00020202020")
        self.phone(uid="42", room="Y00020202020")
        # Offline room first, then the online one: only the second is answered.
        door.send_raw(pack_resolve(DOOR, "127.0.0.1", CALLEE), to=(GROUP, MPORT))
        door.send_raw(pack_resolve(DOOR, "127.0.0.1", "S00020202020"), to=(GROUP, MPORT))
        ans = door.wait(lambda p: p["cmd"] == RESOLVE and p["type"] == 2, what="resolve answer")
        self.assertEqual(ans["resolved"], [("S00020202020", "127.0.0.1")])
        self.assertEqual(door.count(lambda p: p["cmd"] == RESOLVE), 1)
        self.assertEqual(self.stats()["resolve_silent"], 1)


if __name__ == "__main__":
    main()
