"""gb28181 against sipp (sip-tester): devices register with digest over UDP and TCP, as in the
document's 基本注册流程 (REGISTER to sip:<platform>@ip:port, 401, REGISTER with Authorization,
200 OK carrying the GB Date), and a wrong password gets 403. Loopback only; synchronisation on
sipp's exit and the server's log lines."""
import os
import shutil
import subprocess
import tempfile

from gb_env import DOMAIN, GbTest, PASSWORD, PLATFORM, free_port
from junction_test import main

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")


class Sipp:
    def __init__(self, scenario, remote, transport, users, calls=None):
        self.dir = tempfile.mkdtemp(prefix="jn-gb-sipp-")
        path = os.path.join(self.dir, "users.csv")
        with open(path, "w") as f:
            f.write("SEQUENTIAL\n" + "".join(
                f"{u};[authentication username={u} password={p}];{PLATFORM};{DOMAIN};\n" for u, p in users))
        args = [SIPP, remote, "-sf", os.path.join(SCEN, scenario), "-m", str(calls or len(users)), "-i", "127.0.0.1",
                "-p", str(free_port()), "-t", transport, "-inf", path, "-nostdin", "-timeout", "30", "-timeout_error",
                "-trace_err", "-recv_timeout", "20000"]
        self.proc = subprocess.Popen(args, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def wait(self, timeout=90):
        out, _ = self.proc.communicate(timeout=timeout)
        self.output = out
        return self.proc.returncode

    def logs(self):
        text = ""
        for name in os.listdir(self.dir):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f"--- {name}\n" + f.read()[-4000:]
        return text

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class GbSippTest(GbTest):
    def setUp(self):
        super().setUp()
        self.sipps = []

    def tearDown(self):
        for s in self.sipps:
            s.close()
        super().tearDown()

    def run_sipp(self, scenario, transport, users):
        s = Sipp(scenario, f"127.0.0.1:{self.port}", transport, users)
        self.sipps.append(s)
        rc = s.wait()
        self.assertEqual(rc, 0, f"sipp failed ({rc}):\n{s.output[-3000:]}\n{s.logs()}\n--- junction\n{self.j.log()[-4000:]}")

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
