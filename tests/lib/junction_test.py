"""Test harness: runs the real junction binary on a private conf and talks to it.

Synchronisation is by events, never sleeps: the server's log lines are read as they come
(wait_for_log), the admin API answers when it is ready, UDP peers wait on their sockets.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import http.client

BUILD = os.environ.get("JN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("JN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PLUGIN_DIR = os.path.join(BUILD, "plugins")
TOKEN = "t" * 48
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer",
                     "WARNING: ThreadSanitizer")


# Ports handed to servers under test come from this band: below the kernel's ephemeral range
# (32768+, where every port-0 bind of any concurrently running test lands) and above the relay
# tests' port bands (10000-23999). A port taken from the ephemeral range could be handed by the
# kernel to another test's socket before the server under test binds it (seen as a flaky
# "Address already in use").
FREE_PORT_BAND = (24000, 32000)


_HANDED_OUT = set()  # ports this test process was given: two calls never get the same one


def free_port(kind=socket.SOCK_STREAM):
    """A port free now on 127.0.0.1 and 0.0.0.0 for both TCP and UDP, from FREE_PORT_BAND, and
    never one handed out before in this process (a test that asks for two ports before binding
    either must not get the same one twice)."""
    for _ in range(1000):
        port = random.randrange(*FREE_PORT_BAND)
        if port in _HANDED_OUT:
            continue
        socks = []
        try:
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                for host in ("127.0.0.1", "0.0.0.0"):
                    t = socket.socket(socket.AF_INET, k)
                    socks.append(t)
                    t.bind((host, port))
                    if host == "127.0.0.1":
                        t.close()  # 0.0.0.0 and 127.0.0.1 on the same port conflict: check one at a time
            _HANDED_OUT.add(port)
            return port
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no free port in %d-%d" % FREE_PORT_BAND)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def to_toml(d, prefix=""):
    """A small TOML writer: scalars first, then [tables], then [[arrays of tables]]."""
    lines, tables, arrays = [], [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{k}"
        out += f"\n[{name}]\n" + to_toml(v, name + ".")
    for k, items in arrays:
        for item in items:
            out += f"\n[[{prefix}{k}]]\n" + to_toml(item, prefix + k + ".")
    return out


class Junction:
    """One server process with its own state dir, conf and ports."""

    def __init__(self, plugins=None, routes=None, server=None, plugin_dir=PLUGIN_DIR, enabled=None, extra_plugin_confs=None):
        self.dir = tempfile.mkdtemp(prefix="jn-test-")
        self.admin_port = free_port()
        self.plugins = plugins or {}
        os.makedirs(os.path.join(self.dir, "plugins"))
        core = {
            "server": dict({"log_level": "info", "state_dir": os.path.join(self.dir, "var"), "ring_timeout_ms": 10000}, **(server or {})),
            "admin": {"listen": f"127.0.0.1:{self.admin_port}", "token": TOKEN},
            "plugins": {"dir": plugin_dir, "conf_dir": os.path.join(self.dir, "plugins"),
                        "enabled": list(self.plugins.keys()) if enabled is None else enabled},
        }
        if routes:
            core["routes"] = routes
        self.conf_path = os.path.join(self.dir, "junction.toml")
        self.write_core(core)
        for name, conf in dict(self.plugins, **(extra_plugin_confs or {})).items():
            self.write_plugin_conf(name, conf)
        self.proc = None
        self.lines = []
        self.cond = threading.Condition()

    def write_core(self, core):
        self.core = core
        with open(self.conf_path, "w") as f:
            f.write(to_toml(core))

    def write_plugin_conf(self, name, conf):
        with open(os.path.join(self.dir, "plugins", name + ".toml"), "w") as f:
            f.write(conf if isinstance(conf, str) else to_toml(conf))

    # -- process -------------------------------------------------------------------------------
    def start(self, expect_ready=True, timeout=60):
        # free_port() checks a port, the server binds it later: a parallel test (or a media plugin
        # of one) can take it in between. The admin port is the harness's own choice, so when the
        # server exits on exactly that, it picks another and starts again (twice at most).
        for attempt in range(3):
            with self.cond:
                self.lines = []  # a restart must not match the previous run's lines
            self.proc = subprocess.Popen([os.path.join(BUILD, "junction"), "--config", self.conf_path],
                                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()
            if not expect_ready:
                return self
            try:
                self.wait_for_log(r"junction ready", timeout)
                return self
            except AssertionError:
                taken = f"admin API on 127.0.0.1:{self.admin_port}: address in use"
                if attempt == 2 or taken not in self.log():
                    raise
                self.proc.wait(timeout=30)
                self.admin_port = free_port()
                self.write_core(dict(self.core, admin=dict(self.core["admin"], listen=f"127.0.0.1:{self.admin_port}")))
        return self

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF marker
            self.cond.notify_all()

    def wait_for_log(self, pattern, timeout=30, start=0):
        """Blocks until a log line matches; returns it. Fails if the process exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise AssertionError(f"junction exited before logging /{pattern}/:\n" + self.log())
                    if rx.search(line):
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line /{pattern}/ within {timeout}s:\n" + self.log())
                self.cond.wait(left)

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def wait_exit(self, timeout=60):
        rc = self.proc.wait(timeout)
        with self.cond:
            self.cond.wait_for(lambda: self.lines and self.lines[-1] is None, timeout)
        return rc

    def stop(self, timeout=60):
        """SIGTERM, then the exit code; sanitizer reports and a non-zero exit fail the test."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        self.proc.stderr.close()
        self.proc = None
        text = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                raise AssertionError("sanitizer report:\n" + text[-20000:])
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    # -- admin API -------------------------------------------------------------------------------
    def request(self, method, path, body=None, token=TOKEN, raw_body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=60)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        ctype = resp.getheader("Content-Type", "")
        try:
            parsed = json.loads(text) if "json" in ctype else text
        except ValueError:
            parsed = text
        return resp.status, parsed

    def api(self, method, path, body=None, expect=None):
        status, data = self.request(method, path, body)
        if expect is not None and status != expect:
            raise AssertionError(f"{method} {path} -> {status} {data}, expected {expect}")
        return data

    def cmd(self, plugin, verb, body=None, expect=200):
        return self.api("POST", f"/api/v1/plugins/{plugin}/cmd/{verb}", body if body is not None else {}, expect)

    def ctl(self, *args, env=None):
        p = subprocess.run([os.path.join(BUILD, "junction"), "ctl", "--config", self.conf_path, *args],
                           capture_output=True, text=True, timeout=60, env=env)
        return p.returncode, p.stdout, p.stderr


class JunctionTest(unittest.TestCase):
    """Base class: self.servers are stopped (exit code checked) and cleaned up after each test."""

    def setUp(self):
        self.servers = []

    def server(self, **kw):
        j = Junction(**kw)
        self.servers.append(j)
        return j

    def tearDown(self):
        failures = []
        for j in self.servers:
            try:
                if j.proc is not None:
                    rc = j.stop()
                    if rc != 0:
                        failures.append(f"junction exited with {rc}:\n{j.log()[-5000:]}")
            except AssertionError as e:
                failures.append(str(e))
            finally:
                j.cleanup()
        if failures:
            raise AssertionError("\n".join(failures))


def wait_until(predicate, timeout=5.0, what="condition", interval=0.01):
    """Retries predicate() until it returns something truthy, for state that has no event to wait
    on (e.g. a count read through an admin command). Returns the value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def udp_socket(timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


SKIPPED_EXIT = 77  # ctest's SKIP_RETURN_CODE for integration tests (tests/CMakeLists.txt)


def main():
    """Runs the file's tests. A file whose every test was skipped (a missing peer or permission)
    exits 77, which ctest reports as "Skipped", never as "Passed": nothing was shown."""
    prog = unittest.main(verbosity=2, exit=False)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun and len(r.skipped) == r.testsRun:
        print(f"all {r.testsRun} tests skipped: reported to ctest as skipped", file=sys.stderr)
        sys.exit(SKIPPED_EXIT)
    sys.exit(0)
