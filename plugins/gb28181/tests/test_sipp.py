"""gb28181 against sipp (sip-tester): devices register with digest over UDP and TCP, as in the
document's 基本注册流程 (REGISTER to sip:<platform>@ip:port, 401, REGISTER with Authorization,
200 OK carrying the GB Date), and a wrong password gets 403. Loopback only; synchronisation on
sipp's exit and the server's log lines."""
import os

from gb_env import DOMAIN, GbTest, PASSWORD, PLATFORM
from junction_test import main
from sipp import SippRuns


class GbSippTest(SippRuns, GbTest):
    SIPP_SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")

    def run_sipp(self, scenario, transport, users):
        return super().run_sipp(scenario, f"127.0.0.1:{self.port}", transport, calls=len(users), users=users,
                                user_fields=(PLATFORM, DOMAIN), prefix="jn-gb-sipp-")

    def test_register_with_digest_over_udp_and_tcp(self):
        udp = [f"340200000013200001{i:02d}" for i in range(10)]
        tcp = [f"340200000013200002{i:02d}" for i in range(10)]
        self.provision_many(udp + tcp)
        self.run_sipp("register_auth.xml", "u1", [(u, PASSWORD) for u in udp])
        self.run_sipp("register_auth.xml", "t1", [(u, PASSWORD) for u in tcp])
        for u in udp:
            self.j.wait_for_log(rf"REGISTER {u} from 127\.0\.0\.1:\d+ over UDP -> 200 \(new")
        for u in tcp:
            self.j.wait_for_log(rf"REGISTER {u} from 127\.0\.0\.1:\d+ over TCP -> 200 \(new")
        self.assertEqual(self.show(udp[0])["transport"], "UDP")
        self.assertTrue(self.show(udp[0])["online"])
        # sipp closes its TCP connection when it is done: the devices registered over it go offline
        for u in tcp:
            self.j.wait_for_log(rf"device {u} offline \(connection closed\)")
        self.assertFalse(self.show(tcp[0])["online"])
        self.assertEqual(self.metric("gb_registrations_total"), 20)
        self.assertEqual(self.stats()["registered"], 10)

    def test_wrong_password_is_403(self):
        self.provision_many(["34020000001320000301"])
        for transport in ("u1", "t1"):
            self.run_sipp("register_403.xml", transport, [("34020000001320000301", "not-the-password")])
        self.j.wait_for_log(r"REGISTER 34020000001320000301 from .* over TCP refused 403 \(wrong password\)")
        self.assertFalse(self.show("34020000001320000301")["online"])
        self.assertEqual(self.metric("gb_auth_failures_total", reason="wrong password"), 2)


if __name__ == "__main__":
    main()
