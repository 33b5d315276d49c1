#!/usr/bin/env python3
"""gb28181 keepalive phase under a profiler: starts the server as run.py does (10 000 devices
provisioned, all registered by sipp at 1000/s), then attaches a tool to the server's PID for the
keepalive run only and prints the run's figures (docs/benchmarks.md, gb registrar section).

  bench/gb_register/profile.py [--tool clock|syscalls|record] [--calls 40000] [--build build] [--out DIR]

  clock     perf stat -e task-clock,context-switches,raw_syscalls:sys_enter  (CPU time exactly, not in ticks)
  syscalls  perf stat of epoll_wait / recvmmsg / sendmmsg / all syscalls
  record    perf record -F 2999 --call-graph dwarf  (then: perf report -i DIR/perf.data --children)
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench", "sip_register"))
_spec = importlib.util.spec_from_file_location("gb_register_run", os.path.join(HERE, "run.py"))
gb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gb)

TOOLS = {
    "clock": lambda out, pid: ["perf", "stat", "-e", "task-clock,context-switches,raw_syscalls:sys_enter", "-o",
                               os.path.join(out, "perf-stat.txt"), "-p", str(pid)],
    "syscalls": lambda out, pid: ["perf", "stat", "-e", "syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvmmsg,"
                                  "syscalls:sys_enter_sendmmsg,raw_syscalls:sys_enter,context-switches,task-clock",
                                  "-o", os.path.join(out, "perf-stat.txt"), "-p", str(pid)],
    "record": lambda out, pid: ["perf", "record", "-F", "2999", "--call-graph", "dwarf,16384", "-o",
                                os.path.join(out, "perf.data"), "-p", str(pid)],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", choices=sorted(TOOLS), default="clock")
    ap.add_argument("--calls", type=int, default=40000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    import junction_test as jt
    from junction_test import Junction, free_port
    build = os.path.abspath(a.build)
    jt.BUILD = build
    out = os.path.abspath(a.out)
    with tempfile.TemporaryDirectory(prefix="jn-bench-gb-prof-") as wd:
        csv = os.path.join(wd, "devices.csv")
        gb.users_csv(csv)
        port = free_port()
        j = Junction(plugins={"gb28181": {"sip_id": gb.PLATFORM, "udp_listen": f"127.0.0.1:{port}", "tcp_listen": "",
                                          "log_each": False, "max_expires_s": 86400, "log_level": "warn"}},
                     server={"log_level": "warn"}, plugin_dir=os.path.join(build, "plugins"))
        try:
            j.start(expect_ready=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    j.cmd("gb28181", "stats")
                    break
                except Exception:
                    time.sleep(0.1)
            j.cmd("gb28181", "add", {"devices": [{"id": i, "password": "secret"} for i in gb.ids()]}, expect=201)
            print("register", gb.measure([j.proc.pid], gb.REGISTER, port, csv, 20000, a.rate, wd, "reg"), flush=True)
            tool = subprocess.Popen(TOOLS[a.tool](out, j.proc.pid), stdout=subprocess.DEVNULL)
            time.sleep(1)  # the tool attached (no event to wait on: perf says nothing when it is ready)
            print("keepalive", gb.measure([j.proc.pid], gb.KEEPALIVE, port, csv, a.calls, a.rate, wd, "ka"), flush=True)
            tool.send_signal(2)
            tool.wait()
        finally:
            j.stop()
            j.cleanup()
    if a.tool != "record":
        with open(os.path.join(out, "perf-stat.txt")) as f:
            sys.stdout.write(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
