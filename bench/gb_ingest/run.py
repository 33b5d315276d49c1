#!/usr/bin/env python3
"""gb28181 media ingest under gbgen's load (the ZLMediaKit comparison, docs/benchmarks.md).

Junction (the gb-ingest-bench plugin: N MediaIngest receivers, one media loop) pinned to CPU 1,
gbgen (../shared/peers/zlmediakit/gbgen.c) pinned to CPU 0, both on loopback. For each N: warm-up,
then a measured window: the server's CPU time (user+system, /proc/PID/stat), packets and frames from
the plugin's "stats" verb, kernel UDP receive drops (/proc/net/snmp RcvbufErrors), the peak receive
queue of the bench's sockets (/proc/net/udp, sampled), RSS.

  python3 bench/gb_ingest/run.py [--build build] [--streams 100,400,700] [--tcp] [--window 20]
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER = os.path.join(ROOT, "..", "shared", "peers", "zlmediakit")
TICKS = os.sysconf("SC_CLK_TCK")

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(ROOT, "build"))
ap.add_argument("--streams", default="100,400,700")
ap.add_argument("--tcp", action="store_true", help="TCP passive receivers, gbgen -T (RFC 4571)")
ap.add_argument("--gso", action="store_true", help="bench/gb_ingest/gbgen.c -G (UDP GSO): the generator past ~1000 streams")
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--window", type=int, default=20)
ap.add_argument("--dir", default="/tmp/jn-bench-gb-ingest")
a = ap.parse_args()
a.build = os.path.abspath(a.build)
os.makedirs(a.dir, exist_ok=True)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

clip = os.path.join(a.dir, "clip")
if not os.path.exists(clip + ".idx"):
    h264 = os.path.join(a.dir, "clip.h264")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                    "-t", "10", "-c:v", "libx264", "-b:v", "2M", "-g", "50", "-bf", "0", "-x264-params",
                    "repeat-headers=1:scenecut=0", "-bsf:v", "h264_metadata=aud=insert", "-an", "-f", "h264", h264], check=True)
    subprocess.run([os.path.join(a.build, "bench", "gb_ingest_clip"), h264, clip], check=True)
gbgen = os.path.join(a.dir, "gbgen_gso" if a.gso else "gbgen")
if not os.path.exists(gbgen):
    src = os.path.join(HERE, "gbgen.c") if a.gso else os.path.join(PEER, "gbgen.c")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", gbgen, src], check=True)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


def rcvbuf_errors():
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def rx_queue(lo, hi):
    total = 0
    for path in ("/proc/net/udp", "/proc/net/tcp"):
        with open(path) as f:
            next(f)
            for line in f:
                p = line.split()
                port = int(p[1].split(":")[1], 16)
                if lo <= port <= hi:
                    total += int(p[4].split(":")[1], 16)
    return total


def run(n):
    import junction_test
    junction_test.BUILD = a.build
    plugins = {"gb-ingest-bench": {"streams": n, "transport": "tcp_passive" if a.tcp else "udp", "port_range": "gb",
                                   "ssrc_base": 100000000, "bind_ip": "127.0.0.1"}}
    j = junction_test.Junction(plugin_dir=os.path.join(a.build, "plugins"), plugins=plugins,
                               server={"log_level": "info", "media_loops": 1, "media_loop_cpus": [1]})
    j.write_core(dict(j.core, ports={"gb": {"min": 20000, "max": 23999}}))
    j.start()
    try:
        return measure(j, n)
    finally:
        if j.proc.poll() is None:
            j.stop()


def measure(j, n):
    pid = j.proc.pid
    subprocess.run(["taskset", "-a", "-p", "-c", "1", str(pid)], check=True, capture_output=True)
    st = j.cmd("gb-ingest-bench", "stats")
    assert st["streams"] == n and st["first_port"] == 20000 and st["ports_consecutive"], st
    rss_open = j.rss_kb()
    dur = a.warmup + a.window + 2
    cmd = ["taskset", "-c", "0", gbgen, "-c", clip, "-n", str(n), "-P", "20000", "-S", "100000000", "-d", str(dur)]
    if a.tcp:
        cmd.append("-T")
    elif a.gso:
        cmd.append("-G")
    g = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(a.warmup)
    c0, s0, d0, t0 = cpu_s(pid), j.cmd("gb-ingest-bench", "stats"), rcvbuf_errors(), time.monotonic()
    samples = []
    while time.monotonic() - t0 < a.window:
        samples.append(rx_queue(20000, 20000 + 2 * n))
        time.sleep(0.25)
    peak = max(samples)
    median = sorted(samples)[len(samples) // 2]
    c1, s1, d1, t1 = cpu_s(pid), j.cmd("gb-ingest-bench", "stats"), rcvbuf_errors(), time.monotonic()
    rss = j.rss_kb()
    out = g.communicate()[0]
    final = [l for l in out.splitlines() if l.startswith("final")]
    time.sleep(1)  # the last packets in flight reach the receivers
    s2 = j.cmd("gb-ingest-bench", "stats")
    sent = dict(kv.split("=") for kv in final[0].split()[1:]) if final else {}
    pk = s1["packets"] - s0["packets"]
    cpu = c1 - c0
    res = {
        "streams": n, "transport": "tcp" if a.tcp else "udp", "generator": "gbgen -G" if a.gso else "gbgen", "window_s": round(t1 - t0, 1),
        "cpu_pct": round(100 * cpu / (t1 - t0), 1), "us_per_packet": round(cpu * 1e6 / pk, 2) if pk else None,
        "packets_per_s": round(pk / (t1 - t0)), "kernel_drops": d1 - d0, "peak_rx_queue_bytes": peak, "median_rx_queue_bytes": median,
        "last_rx_queue_bytes": samples[-1],
        "rss_mb": round(rss / 1024, 1), "rss_open_mb": round(rss_open / 1024, 1),
        "gbgen_pkts": int(sent.get("pkts", 0)), "gbgen_frames": int(sent.get("frames", 0)),
        "rx_packets": s2["packets"], "lost": s2["lost"], "video_frames": s2["video_frames"],
        "dropped_frames": s2["dropped_frames"], "streams_with_keyframe": s2["with_keyframe"],
        "wrong_ssrc": s2["wrong_ssrc"], "tcp_resyncs": s2["tcp_resyncs"],
    }
    # Every frame sent is published, the last one of each stream included: gbgen sets the RTP marker
    # on a frame's last packet and the ingest closes the AU on it
    # (plugins/gb28181/docs/media-latency.md), so no frame is held waiting for the next one to start
    # (the old "- n" for UDP made a clean run read -n). Over TCP gbgen's close flushes the deframer.
    res["frames_not_published"] = res["gbgen_frames"] - res["video_frames"]
    print(json.dumps(res), flush=True)
    return res


for n in [int(x) for x in a.streams.split(",")]:
    run(n)
