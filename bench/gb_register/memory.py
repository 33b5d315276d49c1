#!/usr/bin/env python3
"""gb28181 memory per device: RSS of the server with N devices provisioned (store records and
registry entries), then with all N registered by sipp (digest over UDP) once their transactions
have ended (timer J: 32 s), per device.

  bench/gb_register/memory.py [--devices 100000] [--rate 2500] [--build build]
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, HERE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100000)
    ap.add_argument("--rate", type=int, default=2500)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    os.environ["GB_BENCH_DEVICES"] = str(a.devices)
    import run as gbr
    import junction_test as jt
    from junction_test import Junction, free_port
    jt.BUILD = os.path.abspath(a.build)
    port = free_port()
    j = Junction(plugins={"gb28181": {"sip_id": gbr.PLATFORM, "udp_listen": f"127.0.0.1:{port}", "tcp_listen": "",
                                      "log_each": False}}, server={"log_level": "warn"},
                 plugin_dir=os.path.join(jt.BUILD, "plugins"))
    try:
        j.start(expect_ready=False)
        for _ in range(300):
            try:
                j.cmd("gb28181", "stats")
                break
            except Exception:
                time.sleep(0.1)
        rss0 = j.rss_kb()
        ids = gbr.ids()
        for i in range(0, len(ids), 5000):
            j.cmd("gb28181", "add", {"devices": [{"id": x, "password": "secret"} for x in ids[i:i + 5000]]}, expect=201)
        rss1 = j.rss_kb()
        with tempfile.TemporaryDirectory(prefix="jn-bench-gbmem-") as d:
            csv = os.path.join(d, "devices.csv")
            gbr.users_csv(csv)
            rc, ok, failed, wall = gbr.run_sipp(gbr.REGISTER, port, csv, a.devices, a.rate, d, "reg")
        st = j.cmd("gb28181", "stats")
        deadline = time.monotonic() + 120
        while st["transactions"] and time.monotonic() < deadline:  # timer J lets them go after 32 s
            time.sleep(1)
            st = j.cmd("gb28181", "stats")
        rss2 = j.rss_kb()
        print(f"devices {a.devices}: registered {st['registered']} (sipp ok {ok}, failed {failed}), transactions left {st['transactions']}")
        print(f"RSS: start {rss0} KiB, provisioned {rss1} KiB, registered {rss2} KiB")
        print(f"per device: provisioned {(rss1 - rss0) * 1024 / a.devices:.0f} B, "
              f"registration adds {(rss2 - rss1) * 1024 / max(1, st['registered']):.0f} B, "
              f"total {(rss2 - rss0) * 1024 / max(1, st['registered']):.0f} B")
    finally:
        j.stop()
        j.cleanup()


if __name__ == "__main__":
    sys.exit(main())
