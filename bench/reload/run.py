#!/usr/bin/env python3
"""Hot-reload benchmark: reload the sample plugin N times under UDP load and report the cut-over
time (quiesce -> save -> create -> restore -> switch -> replay), the load time of the new copy,
the whole reload request time seen by the client, packets lost, and RSS.

  python3 bench/reload/run.py [--reloads 500] [--rate 20000] [--build build]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "integration"))


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reloads", type=int, default=500)
    ap.add_argument("--rate", type=int, default=20000, help="UDP packets/s through the plugin during the run")
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    os.environ["JN_BUILD_DIR"] = os.path.abspath(a.build)
    import junction_test as jt
    jt.BUILD = os.environ["JN_BUILD_DIR"]
    jt.PLUGIN_DIR = os.path.join(jt.BUILD, "plugins")
    from test_reload import Traffic

    port = jt.free_port()
    j = jt.Junction(plugins={"udp-counter": {"listen": f"127.0.0.1:{port}", "echo": True}}, plugin_dir=jt.PLUGIN_DIR)
    j.start()
    try:
        traffic = Traffic(port, rate_pps=a.rate)
        traffic.start()
        rss0 = j.rss_kb()
        cut, load, wall = [], [], []
        for _ in range(a.reloads):
            t = time.perf_counter()
            status, r = j.request("POST", "/api/v1/plugins/udp-counter/reload")
            wall.append((time.perf_counter() - t) * 1e6)
            assert status == 200 and r["ok"] and r["old_unloaded"], r
            cut.append(r["cutover_us"])
            load.append(r["load_us"])
        sent, echoed = traffic.finish()
        rss1 = j.rss_kb()
        print(f"reloads: {a.reloads} under {a.rate} pkt/s; packets sent {sent}, echoed {echoed}, lost {sent - echoed}")
        for name, v in (("cut-over", cut), ("load new copy", load), ("request (client)", wall)):
            print(f"{name:18} p50 {pct(v, 50):8.0f} us   p99 {pct(v, 99):8.0f} us   max {max(v):8.0f} us")
        print(f"RSS {rss0} kB -> {rss1} kB ({rss1 - rss0:+d} kB)")
    finally:
        j.stop()
        j.cleanup()


if __name__ == "__main__":
    main()
