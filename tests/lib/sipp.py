"""sipp (sip-tester) for the integration tests: one Sipp is one sipp process on loopback, its
scenario file, its users CSV and its logs in a temporary directory of its own. Its exit code says
whether every call passed (wait()); logs() and output are for the failure message."""
import os
import shutil
import subprocess
import tempfile

from junction_test import free_port

SIPP = shutil.which("sipp") or "/usr/bin/sipp"


class Sipp:
    def __init__(self, scenario, remote=None, transport="u1", calls=1, users=None, user_fields=(), auth=None,
                 keys=None, edit=None, timeout_s=30, extra=(), prefix="jn-sipp-"):
        """scenario: the XML file's path; remote: "ip:port" (None: sipp is a UAS and waits);
        users: [(user, password)] written to an -inf CSV (one line each, SEQUENTIAL; sipp's
        [authentication] field second, then user_fields); auth: (user, password) for -au / -ap;
        keys: {name: value} for -key; edit: text -> text applied to the scenario first (the edited
        copy lives in the run's directory)."""
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.port = free_port()
        self.output = ""
        if edit is not None:
            with open(scenario) as f:
                text = edit(f.read())
            scenario = os.path.join(self.dir, "scenario.xml")
            with open(scenario, "w") as f:
                f.write(text)
        args = [SIPP] + ([remote] if remote else []) + [
            "-sf", scenario, "-m", str(calls), "-i", "127.0.0.1", "-p", str(self.port), "-t", transport,
            "-nostdin", "-timeout", str(timeout_s), "-timeout_error", "-trace_err", "-trace_msg",
            "-recv_timeout", "20000"]
        if users is not None:
            path = os.path.join(self.dir, "users.csv")
            tail = "".join(f"{x};" for x in user_fields)
            with open(path, "w") as f:
                f.write("SEQUENTIAL\n" + "".join(
                    f"{u};[authentication username={u} password={p}];{tail}\n" for u, p in users))
            args += ["-inf", path]
        if auth is not None:
            args += ["-au", auth[0], "-ap", auth[1]]
        for k, v in (keys or {}).items():
            args += ["-key", k, str(v)]
        args += list(extra)
        self.proc = subprocess.Popen(args, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def wait(self, timeout=90):
        out, _ = self.proc.communicate(timeout=timeout)
        self.output = out
        return self.proc.returncode

    def logs(self, tail=6000):
        text = ""
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f"--- {name}\n" + f.read()[-tail:]
        return text

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class SippRuns:
    """Mixin for a unittest.TestCase: sipp() starts a run closed at tearDown (self.sipps, in
    order), run_sipp() waits for it and fails the test with sipp's output, its logs and the
    server's log tail; closing(x) closes anything else (a media sink) at tearDown too. The class
    sets SIPP_SCENARIOS (the scenarios' folder); self.j is the server when there is one."""
    SIPP_SCENARIOS = ""

    def setUp(self):
        super().setUp()
        self.sipps, self._closing = [], []

    def tearDown(self):
        for s in self.sipps + self._closing:
            s.close()
        super().tearDown()

    def closing(self, thing):
        self._closing.append(thing)
        return thing

    def sipp(self, scenario, *a, **kw):
        s = Sipp(os.path.join(self.SIPP_SCENARIOS, scenario), *a, **kw)
        self.sipps.append(s)
        return s

    def finished(self, s, rc=0):
        """Waits for the run's exit: rc, or the test fails with what sipp and the server said."""
        got = s.wait()
        server = getattr(self, "j", None)
        self.assertEqual(got, rc, f"sipp exit {got}, want {rc}:\n{s.output[-3000:]}\n{s.logs()}" +
                         (f"\n--- junction\n{server.log()[-4000:]}" if server is not None else ""))
        return s

    def run_sipp(self, scenario, *a, rc=0, **kw):
        return self.finished(self.sipp(scenario, *a, **kw), rc)
