#!/usr/bin/env python3
"""intercom-json benchmark: starts a release junction with only intercom-json on loopback, then
runs bench_intercom_json (a single-threaded epoll client) against it:
  1. calls: door/screen pairs placing call_req -> call_accept -> call_end in a loop;
     reports calls set up per second and per core of server CPU;
  2. conns: n screens join and stay connected; a seczone_emergency to every family must reach
     all of them; reports server RSS per connection.
Usage: bench/intercom-json/run.py [--build build] [--pairs 64] [--seconds 10] [--conns 10000]
Results are printed as JSON lines; docs/benchmarks.md records them."""
import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(SOURCE, "build"))
ap.add_argument("--pairs", type=int, default=64)
ap.add_argument("--seconds", type=int, default=10)
ap.add_argument("--conns", type=int, default=10000)
args = ap.parse_args()
os.environ["JN_BUILD_DIR"] = os.path.abspath(args.build)

# Both processes need a descriptor per connection.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

import junction_test  # noqa: E402

junction_test.BUILD = os.path.abspath(args.build)
SECRET = "bench-secret-0123456789"
BENCH = os.path.join(os.path.abspath(args.build), "bench", "intercom-json", "bench_intercom_json")


def server():
    port = junction_test.free_port()
    j = junction_test.Junction(plugins={"intercom-json": {"listen": f"127.0.0.1:{port}", "secret": SECRET,
                                                         "keep_interval_ms": 60000, "log_level": "warn",
                                                         # a load generator's door places calls back to
                                                         # back: the per-connection flood limit is off
                                                         "call_req_per_min": 0}},
                               plugin_dir=os.path.join(os.path.abspath(args.build), "plugins"))
    j.start()
    return j, port


def main():
    print(json.dumps({"host_cpus": os.cpu_count(), "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))
    j, port = server()
    try:
        r = subprocess.run([BENCH, "calls", str(port), SECRET, str(args.pairs), str(args.seconds), str(j.proc.pid)],
                           capture_output=True, text=True, timeout=args.seconds + 300)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            return 1
    finally:
        j.stop()
        j.cleanup()

    j, port = server()
    try:
        p = subprocess.Popen([BENCH, "conns", str(port), SECRET, str(args.conns), str(j.proc.pid)],
                             stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if "progress" in line:
                info = j.cmd("intercom-json", "info")  # before the alarm: the client exits once it has it
                print(json.dumps({"plugin_connections": info["connections"], "plugin_joined": info["joined"],
                                  "server_fds": j.fd_count()}))
                print(json.dumps({"alarm_sent": j.cmd("intercom-json", "alarm", {"name": "bench"})["sent"]}))
        rc = p.wait(timeout=300)
        if rc != 0:
            return 1
    finally:
        j.stop()
        j.cleanup()
    return 0


sys.exit(main())
