#!/usr/bin/env python3
"""REGISTER with digest per CPU-second: Junction's sip-registrar test plugin (sdk/sip) against
Kamailio as a digest registrar (bench/sip_register/kamailio.cfg: auth + usrloc in memory), both
driven by the same sipp scenario over UDP on 127.0.0.1 (tests/integration/sipp/register_auth.xml:
REGISTER -> 401 -> REGISTER with Authorization -> 200), 10 000 users cycled.

CPU is utime + stime from /proc/PID/stat (every process of Kamailio's tree; Junction is one
process), read before and after the sipp run. The figure is completed registrations (a 401 and a
200 each) per CPU-second of the server.

Modes (like for like): --mode stateless runs Junction with stateless_register (RFC 3261 8.2.7,
no server transaction for a REGISTER) against the stateless kamailio.cfg (sl replies); --mode
stateful runs Junction's RFC 3261 transactions against Kamailio with tm (t_newtran, -A STATEFUL);
--mode both (the default) runs both pairs, alternating.

Kamailio runs with its TLSF allocator (-x tlsf): Debian's build has memory debugging compiled in
(DBG_SR_MEMORY), which makes its default q_malloc about twice as slow per REGISTER; the fastest
configuration is the fair opponent. KAM_MEM=qm (or fm) picks another one.

  bench/sip_register/run.py [--calls 20000] [--rate 1000] [--build build] [--mode both]
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
SCENARIO = os.path.join(ROOT, "tests", "integration", "sipp", "register_auth.xml")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def tree(pid):
    out = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        kids = []
    for k in kids:
        out += tree(int(k))
    return out


def tree_ticks(pids):
    total = 0
    for p in pids:
        try:
            total += cpu_ticks(p)
        except OSError:
            pass
    return total


def users_csv(path, n):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n):
            f.write(f"user{i};[authentication username=user{i} password=secret];\n")


def run_sipp(port, csv, calls, rate, workdir):
    from junction_test import free_port
    args = ["sipp", f"127.0.0.1:{port}", "-sf", SCENARIO, "-inf", csv, "-m", str(calls), "-r", str(rate),
            "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1", "-nostdin", "-timeout", "600", "-recv_timeout", "10000",
            "-trace_stat", "-stf", os.path.join(workdir, "stat.csv"), "-fd", "1000"]
    t0 = time.monotonic()
    p = subprocess.run(args, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.monotonic() - t0
    ok = failed = None
    with open(os.path.join(workdir, "stat.csv")) as f:
        rows = [l.rstrip("\n").split(";") for l in f if l.strip()]
    head, last = rows[0], rows[-1]
    ok = int(last[head.index("SuccessfulCall(C)")])
    failed = int(last[head.index("FailedCall(C)")])
    return p.returncode, ok, failed, wall


def bench_junction(build, calls, rate, workdir, csv, stateless):
    import junction_test as jt
    from junction_test import Junction, free_port
    jt.BUILD = build
    port = free_port()
    j = Junction(plugins={"sip-registrar": {"udp_listen": f"127.0.0.1:{port}", "generated_users": 10000,
                                            "generated_password": "secret", "log_each": False,
                                            "stateless_register": stateless}},
                 server={"log_level": "warn"}, plugin_dir=os.path.join(build, "plugins"))
    try:
        j.start(expect_ready=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ready: the admin API answers
            try:
                j.cmd("sip-registrar", "stats")
                break
            except Exception:
                time.sleep(0.1)
        before = cpu_ticks(j.proc.pid)
        rc, ok, failed, wall = run_sipp(port, csv, calls, rate, workdir)
        after = cpu_ticks(j.proc.pid)
        stats = j.cmd("sip-registrar", "stats")
        if failed:  # say why: the server logs each refusal (403) and every warning
            lines = [l for l in j.log().splitlines() if " warn " in l or "refused" in l]
            print(f"junction: {failed} failed call(s); server log (last 20 of {len(lines)} relevant lines):", file=sys.stderr)
            for l in lines[-20:]:
                print("  " + l, file=sys.stderr)
        return {"server": "junction " + ("stateless" if stateless else "stateful"), "ok": ok, "failed": failed, "cpu_s": (after - before) / TICK,
                "wall_s": wall, "sipp_rc": rc, "server_ok": stats["register_ok"]}
    finally:
        j.stop()
        j.cleanup()


def bench_kamailio(calls, rate, workdir, csv, stateless):
    from junction_test import free_port
    port = free_port()
    proc = subprocess.Popen(["kamailio", "-f", os.path.join(HERE, "kamailio.cfg"), "-DD", "-E", "-l", f"udp:127.0.0.1:{port}",
                             "-m", "256" if stateless else "1024", "-M", "16", "-x", os.environ.get("KAM_MEM", "tlsf"), "-w", workdir, "-Y", workdir, "-P", os.path.join(workdir, "kam.pid")] +
                            ([] if stateless else ["-A", "STATEFUL"]),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "kam.log"), "w"))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(tree(proc.pid)) < 3:
            time.sleep(0.1)
        time.sleep(1.0)  # htable:mod-init fills 10 000 users at start
        pids = tree(proc.pid)
        before = tree_ticks(pids)
        rc, ok, failed, wall = run_sipp(port, csv, calls, rate, workdir)
        after = tree_ticks(pids)
        return {"server": f"kamailio {'stateless' if stateless else 'stateful'} ({len(pids)} p)", "ok": ok, "failed": failed, "cpu_s": (after - before) / TICK,
                "wall_s": wall, "sipp_rc": rc}
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
    ap.add_argument("--mode", choices=["both", "stateless", "stateful"], default="both",
                    help="stateless: both servers answer REGISTER without transactions; stateful: both keep RFC 3261 "
                         "server transactions; both: the two pairs")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the servers this many times; medians are printed")
    a = ap.parse_args()
    modes = ["stateless", "stateful"] if a.mode == "both" else [a.mode]
    results = {}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="jn-bench-sip-") as d:
        csv = os.path.join(d, "users.csv")
        users_csv(csv, 10000)
        for rep in range(a.repeat):
            for mode in modes:
                for name in ("junction", "kamailio"):
                    if a.only and a.only != name:
                        continue
                    wd = os.path.join(d, f"{name}-{mode}{rep}")
                    os.makedirs(wd)
                    stateless = mode == "stateless"
                    r = bench_junction(os.path.abspath(a.build), a.calls, a.rate, wd, csv, stateless) if name == "junction" else \
                        bench_kamailio(a.calls, a.rate, wd, csv, stateless)
                    r["per_cpu_s"] = r["ok"] / r["cpu_s"] if r["cpu_s"] else float("inf")
                    results.setdefault((mode, name), []).append(r["per_cpu_s"])
                    failed += r["failed"]
                    print(f"{r['server']:<28} ok {r['ok']:>6} failed {r['failed']:>4}  cpu {r['cpu_s']:6.2f} s  "
                          f"wall {r['wall_s']:6.1f} s  -> {r['per_cpu_s']:8.0f} registrations / CPU-second", flush=True)
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items() if v}
    for (mode, name), v in med.items():
        runs = ", ".join(f"{x:.0f}" for x in results[(mode, name)])
        print(f"median {mode} {name}: {v:.0f} registrations / CPU-second over {len(results[(mode, name)])} run(s) ({runs})")
    for mode in modes:
        if (mode, "junction") in med and (mode, "kamailio") in med:
            print(f"ratio {mode} junction / kamailio (medians): {med[(mode, 'junction')] / med[(mode, 'kamailio')]:.2f}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
