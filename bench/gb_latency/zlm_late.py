#!/usr/bin/env python3
"""ZLMediaKit late-joiner time for the clip bench/gb_latency/run.py uses (the simulator's H.264
320x240 25 fps, 1 s GOP, PS over RTP/UDP, from tests/lib/gb_media_sim.MediaAssets).

Not part of the project's CI: a side-by-side measurement against a hand-built MediaServer
(ZLM_BIN, default /tmp/zlm/ZLMediaKit/release/linux/Release; its configuration is written by
ZLM_BENCH's bench.py write_config, mode "rtmp1": PS demux + an always-on RTMP/FLV muxer).
Per repetition: openRtpServer (UDP, stream s<i>), the clip sent in a loop paced by its RTP
timestamps (the simulator's own pacing), a random 1.2-2.2 s of running stream (random GOP phase),
then a late joiner: an HTTP-FLV player (GET /rtp/s<i>.live.flv); time from its connect() to the
first FLV video tag that is a keyframe. ZLM answers from its GOP cache, so that keyframe is the
cached (already sent) one, not a fresh one.

Usage: ZLM_BENCH=/tmp/zlmb bench/gb_latency/zlm_late.py [-n 20]
"""
import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.environ.get("ZLM_BENCH", "/tmp/zlmb"))
import bench as zb  # noqa: E402  (the ZLM peer's orchestrator: config writer, API helper)
from gb_media_sim import MediaAssets, rtp_header  # noqa: E402


def sender(port, ssrc, stop, assets):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seq, loops, t0, ts0 = 0, 0, None, None
    while not stop.is_set():
        for kind, key, packets in assets.frames:
            ts = (int.from_bytes(packets[0][4:8], "big") + loops * assets.duration_ts) & 0xFFFFFFFF
            if t0 is None:
                t0, ts0 = time.monotonic(), ts
            d = ((ts - ts0 + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            delay = t0 + d / 90000.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing by the timestamps, as the simulator does
            if stop.is_set():
                return
            for p in packets:
                s.sendto(rtp_header(seq & 0xFFFF, ts, ssrc, p[1] & 0x7F, p[1] & 0x80) + p[12:], ("127.0.0.1", port))
                seq += 1
        loops += 1


def first_flv_keyframe(path, timeout=10):
    """Connects, GETs the FLV; returns (seconds from connect() to the first video keyframe tag,
    video tags from that keyframe on received within 20 ms of it: the GOP cache's frames, i.e. how
    many frames behind live the joiner starts)."""
    t0 = time.monotonic()
    c = socket.create_connection(("127.0.0.1", zb.HTTP_PORT), timeout=timeout)
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += c.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    chunked = b"chunked" in head.lower()
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(head.decode(errors="replace"))
    raw, body, off = buf, b"", 13  # FLV header (9) + PreviousTagSize0 (4)
    tkey, burst = None, 0
    try:
        while True:
            if chunked:  # de-chunk what is complete
                while True:
                    i = raw.find(b"\r\n")
                    if i < 0:
                        break
                    n = int(raw[:i].split(b";")[0], 16)
                    if len(raw) < i + 2 + n + 2:
                        break
                    body += raw[i + 2:i + 2 + n]
                    raw = raw[i + 2 + n + 2:]
            else:
                body, raw = body + raw, b""
            while len(body) >= off + 11:
                typ, size = body[off], int.from_bytes(body[off + 1:off + 4], "big")
                if len(body) < off + 11 + size + 4:
                    break
                if typ == 9 and size > 0:
                    if tkey is None and (body[off + 11] >> 4) == 1:
                        tkey = time.monotonic()
                        c.settimeout(0.02)  # the cache burst: what arrives within 20 ms (live frames are 40 ms apart)
                    if tkey is not None:
                        burst += 1
                off += 11 + size + 4
            try:
                data = c.recv(65536)
            except socket.timeout:
                if tkey is None:
                    raise
                return tkey - t0, burst
            if tkey is not None and time.monotonic() - tkey > 0.02:
                return tkey - t0, burst
            if not data:
                raise RuntimeError("FLV ended before a keyframe")
            raw += data
    finally:
        c.close()


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    assets = MediaAssets.get("h264", 2)
    rdir = tempfile.mkdtemp(prefix="zlm-late-")
    os.makedirs(os.path.join(rdir, "log"))
    cfg = os.path.join(rdir, "config.ini")
    zb.write_config(os.path.join(zb.ZLM_BIN, "config.ini"), cfg, zb.MODES["rtmp1"])
    srv = subprocess.Popen([os.path.join(zb.ZLM_BIN, "MediaServer"), "-c", cfg, "-t", "1", "--affinity", "0", "-l", "2",
                            "--log-dir", os.path.join(rdir, "log") + "/"], cwd=rdir,
                           stdout=open(os.path.join(rdir, "server.stdout"), "w"), stderr=subprocess.STDOUT)
    out, bursts = [], []
    try:
        if not zb.wait_api():
            raise RuntimeError("MediaServer API did not come up")
        for i in range(a.n):
            port, ssrc = zb.BASE_PORT + 2 * i, zb.SSRC_BASE + i
            r = zb.api("openRtpServer", port=port, tcp_mode=0, stream_id=f"s{i}", ssrc=ssrc)
            if r.get("code") != 0:
                raise RuntimeError(f"openRtpServer: {r}")
            stop = threading.Event()
            th = threading.Thread(target=sender, args=(port, ssrc, stop, assets), daemon=True)
            th.start()
            time.sleep(rnd.uniform(1.2, 2.2))  # a running stream, joined at a random GOP phase
            try:
                dt, burst = first_flv_keyframe(f"/rtp/s{i}.live.flv")
            finally:
                stop.set()
                th.join()
                zb.api("closeRtpServer", stream_id=f"s{i}")
            out.append(dt)
            bursts.append(burst)
            print(json.dumps({"rep": i, "late_ms": round(dt * 1000, 1), "cached_video_frames": burst}), flush=True)
    finally:
        zb.stop(srv)
    ms = [x * 1000 for x in out]
    print(json.dumps({"server": "ZLMediaKit MediaServer (rtmp1 conf, HTTP-FLV player)", "n": len(ms),
                      "late_median_ms": round(statistics.median(ms), 1), "late_p90_ms": round(pct(ms, 0.9), 1),
                      "late_min_ms": round(min(ms), 1), "late_max_ms": round(max(ms), 1),
                      "cached_video_frames_median": statistics.median(bursts), "cached_video_frames_max": max(bursts),
                      "log_dir": rdir}, indent=1))


if __name__ == "__main__":
    main()
