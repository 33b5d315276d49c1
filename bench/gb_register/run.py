#!/usr/bin/env python3
"""gb28181: REGISTER with digest and keepalives per CPU-second, against Kamailio as a digest
registrar (bench/gb_register/kamailio.cfg), both driven by the same sipp scenarios over UDP on
127.0.0.1 with 10 000 GB device IDs cycled:
  - register: plugins/gb28181/tests/sipp/register_auth.xml (REGISTER to sip:<platform>@ip:port,
    401, REGISTER with Authorization, 200 with Date);
  - keepalive: bench/gb_register/keepalive.xml (MESSAGE Notify/Keepalive -> 200), after every
    device registered.
CPU is utime + stime from /proc/PID/stat of the server (every process of Kamailio's tree),
read around each sipp run; also the server's RSS per registered device.

  bench/gb_register/run.py [--calls 20000] [--rate 1000] [--repeat 3] [--build build]
                           [--set KEY=JSON ...]   (gb28181 conf overrides, e.g. stateless_register=false)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench", "sip_register"))
import run as sipreg  # noqa: E402  (cpu_ticks, tree, tree_ticks)

REGISTER = os.path.join(ROOT, "plugins", "gb28181", "tests", "sipp", "register_auth.xml")
KEEPALIVE = os.path.join(HERE, "keepalive.xml")
PLATFORM, DOMAIN = "34020000002000000001", "3402000000"
N = int(os.environ.get("GB_BENCH_DEVICES", "10000"))
TICK = os.sysconf("SC_CLK_TCK")


def ids():
    return [f"3402000000132{1000000 + i}" for i in range(N)]


def users_csv(path):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for u in ids():
            f.write(f"{u};[authentication username={u} password=secret];{PLATFORM};{DOMAIN};\n")


def run_sipp(scenario, port, csv, calls, rate, workdir, tag):
    from junction_test import free_port
    stat = os.path.join(workdir, f"{tag}.csv")
    args = ["sipp", f"127.0.0.1:{port}", "-sf", scenario, "-inf", csv, "-m", str(calls), "-r", str(rate),
            "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1", "-nostdin", "-timeout", "600", "-recv_timeout", "10000",
            "-trace_stat", "-stf", stat, "-fd", "1000"]
    t0 = time.monotonic()
    p = subprocess.run(args, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.monotonic() - t0
    with open(stat) as f:
        rows = [l.rstrip("\n").split(";") for l in f if l.strip()]
    head, last = rows[0], rows[-1]
    return p.returncode, int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")]), wall


def measure(pids, scenario, port, csv, calls, rate, wd, tag):
    before = sipreg.tree_ticks(pids)
    rc, ok, failed, wall = run_sipp(scenario, port, csv, calls, rate, wd, tag)
    cpu = (sipreg.tree_ticks(pids) - before) / TICK
    return {"ok": ok, "failed": failed, "cpu_s": cpu, "wall_s": wall, "per_cpu_s": ok / cpu if cpu else float("inf")}


def rss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def bench_junction(build, calls, rate, wd, csv, over=None):
    import junction_test as jt
    from junction_test import Junction, free_port
    jt.BUILD = build
    port = free_port()
    j = Junction(plugins={"gb28181": {"sip_id": PLATFORM, "udp_listen": f"127.0.0.1:{port}", "tcp_listen": "",
                                      "log_each": False, "max_expires_s": 86400,
                                      # The plugin's own level (the server's does not set it): no line per
                                      # new registration, as Kamailio's debug=1 writes none.
                                      "log_level": "warn", **(over or {})}},
                 server={"log_level": "warn"}, plugin_dir=os.path.join(build, "plugins"))
    try:
        j.start(expect_ready=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ready: the admin API answers (log level warn: no "ready" line)
            try:
                j.cmd("gb28181", "stats")
                break
            except Exception:
                time.sleep(0.1)
        j.cmd("gb28181", "add", {"devices": [{"id": i, "password": "secret"} for i in ids()]}, expect=201)
        rss0 = rss_kb([j.proc.pid])
        reg = measure([j.proc.pid], REGISTER, port, csv, calls, rate, wd, "reg")
        st = j.cmd("gb28181", "stats")
        reg["registered"] = st["registered"]
        reg["rss_per_device_b"] = (rss_kb([j.proc.pid]) - rss0) * 1024 / max(1, st["registered"])
        ka = measure([j.proc.pid], KEEPALIVE, port, csv, calls, rate, wd, "ka")
        return reg, ka
    finally:
        j.stop()
        j.cleanup()


def bench_kamailio(calls, rate, wd, csv):
    from junction_test import free_port
    port = free_port()
    proc = subprocess.Popen(["kamailio", "-f", os.path.join(HERE, "kamailio.cfg"), "-DD", "-E", "-l", f"udp:127.0.0.1:{port}",
                             "-m", "256", "-M", "16", "-w", wd, "-Y", wd, "-P", os.path.join(wd, "kam.pid")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(wd, "kam.log"), "w"))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(sipreg.tree(proc.pid)) < 3:
            time.sleep(0.1)
        time.sleep(1.0)  # htable:mod-init fills the users at start
        pids = sipreg.tree(proc.pid)
        reg = measure(pids, REGISTER, port, csv, calls, rate, wd, "reg")
        ka = measure(pids, KEEPALIVE, port, csv, calls, rate, wd, "ka")
        return reg, ka
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", choices=["junction", "kamailio"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="gb28181 conf override")
    a = ap.parse_args()
    import json
    over = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    res = {k: {"reg": [], "ka": []} for k in ("junction", "kamailio")}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="jn-bench-gb-") as d:
        csv = os.path.join(d, "devices.csv")
        users_csv(csv)
        for rep in range(a.repeat):
            for name in ("junction", "kamailio"):
                if a.only and a.only != name:
                    continue
                wd = os.path.join(d, f"{name}{rep}")
                os.makedirs(wd)
                reg, ka = bench_junction(os.path.abspath(a.build), a.calls, a.rate, wd, csv, over) if name == "junction" else \
                    bench_kamailio(a.calls, a.rate, wd, csv)
                for kind, r in (("reg", reg), ("ka", ka)):
                    res[name][kind].append(r["per_cpu_s"])
                    failed += r["failed"]
                    extra = f"  rss/device {r['rss_per_device_b']:.0f} B" if "rss_per_device_b" in r else ""
                    print(f"{name:<9} {'register ' if kind == 'reg' else 'keepalive'} ok {r['ok']:>6} failed {r['failed']:>4}  "
                          f"cpu {r['cpu_s']:6.2f} s  wall {r['wall_s']:6.1f} s  -> {r['per_cpu_s']:8.0f} / CPU-second{extra}",
                          flush=True)
    for kind in ("reg", "ka"):
        med = {k: sorted(v[kind])[len(v[kind]) // 2] for k, v in res.items() if v[kind]}
        for k, v in med.items():
            print(f"median {k} {kind}: {v:.0f} / CPU-second")
        if len(med) == 2:
            print(f"ratio junction / kamailio {kind} (medians): {med['junction'] / med['kamailio']:.2f}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
