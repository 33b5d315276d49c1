#!/usr/bin/env python3
"""Concurrent SIP-call captures (RTP in -> RTMP out to nginx-rtmp): Junction's rest-sip-capture vs
what users do without Junction, one `ffmpeg -i call.sdp -c copy -f flv rtmp://...` per call
(docs/benchmarks.md, "SIP calls captured to RTMP").

Each call carries ~1 Mb/s H.264 (640x360 testsrc with moving noise, 25 fps, GOP 25)
+ G.711 A-law (20 ms), made once with ffmpeg and packetized (RFC 6184 FU-A) by the bench. One
Python generator sends every call's RTP, paced per 20 ms tick; nginx-rtmp (`live on`, no record)
takes every stream. Junction: a Python UAS answers the plugin's INVITEs (the REST API starts the
calls); the generator sends to the ports of each INVITE's SDP. ffmpeg: one process per call reading
an SDP with its own ports. Measured over a window after a warm-up: the capturing side's CPU time
(user+system from /proc, summed over the ffmpeg processes), RSS and PSS (/proc/PID/smaps_rollup:
shared libraries counted once across the ffmpeg processes), frames delivered (Junction's counters).

  python3 bench/sip_capture/run.py [--build build] [--junction 20,50,100] [--ffmpeg 20,50]
                                   [--warmup 5] [--window 15] [--cpu 1]
"""
import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "plugins", "rest-sip-capture", "tests"))
from junction_test import Junction, free_port, wait_until  # noqa: E402
import capture_env  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(ROOT, "build"))
ap.add_argument("--junction", default="20,50,100")
ap.add_argument("--ffmpeg", default="20,50")
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--window", type=int, default=15)
ap.add_argument("--cpu", default="1", help="CPU the capturing side is pinned to (taskset)")
ap.add_argument("--size", default="640x360")
ap.add_argument("--bitrate", default="1M")
ap.add_argument("--no-bus", action="store_true", help="bus_publish = false (no bus copy of each frame)")
ap.add_argument("--write-ms", type=int, default=None, help="rtmp_write_ms (default: the plugin's, 200; 0 = a write per video frame)")
ap.add_argument("--perf", default="", help="perf record the Junction side during its window into this file")
a = ap.parse_args()
os.environ["JN_BUILD_DIR"] = os.path.abspath(a.build)
capture_env.__dict__["FPS"] = 25


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


def mem_kb(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


class Generator:
    """Sends the clip's RTP (looped, sequence numbers and timestamps continued) to every target."""

    def __init__(self, media):
        self.media = media
        self.targets = []  # (video addr, audio addr)
        self.stop = False
        self.sent = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.sock.setblocking(False)
        # per 20 ms tick: the packets due (payload with header fields to rewrite)
        clip = media.seconds
        ticks = int(clip / 0.02)
        self.ticks = [[] for _ in range(ticks)]
        for t, p in media.video:
            self.ticks[min(int(t / 0.02), ticks - 1)].append((True, p))
        for t, p in media.audio:
            self.ticks[min(int(t / 0.02), ticks - 1)].append((False, p))
        self.vpkts = len(media.video)
        self.apkts = len(media.audio)

    def run(self):
        start = time.monotonic()
        k = 0
        loops = 0
        nt = len(self.ticks)
        while not self.stop:
            due = start + k * 0.02
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            i = k % nt
            if i == 0 and k:
                loops += 1
            vseq_off = loops * self.vpkts
            aseq_off = loops * self.apkts
            vts_off = loops * int(self.media.seconds * 90000)
            ats_off = loops * int(self.media.seconds * 8000)
            for video, p in self.ticks[i]:
                seq, ts = struct.unpack_from("!HI", p, 2)
                if video:
                    hdr = p[:2] + struct.pack("!HI", (seq + vseq_off) & 0xFFFF, (ts + vts_off) & 0xFFFFFFFF)
                else:
                    hdr = p[:2] + struct.pack("!HI", (seq + aseq_off) & 0xFFFF, (ts + ats_off) & 0xFFFFFFFF)
                pkt = hdr + p[8:]
                for vaddr, aaddr in self.targets:
                    try:
                        self.sock.sendto(pkt, vaddr if video else aaddr)
                        self.sent += 1
                    except BlockingIOError:
                        pass
            k += 1


class Uas:
    """Answers every INVITE (200 + SDP pointing at a sink), BYE and INFO; remembers each call's ports."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.calls = {}
        self.lock = threading.Lock()
        threading.Thread(target=self.loop, daemon=True).start()
        threading.Thread(target=self.drain, daemon=True).start()

    def drain(self):
        while True:
            try:
                self.sink.recv(4096)
            except OSError:
                return

    def loop(self):
        sp = self.sink.getsockname()[1]
        sdp = ("v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {sp} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=rtcp:{sp}\r\n"
               f"m=video {sp} RTP/AVP 112\r\na=rtpmap:112 H264/90000\r\na=fmtp:112 packetization-mode=1\r\na=rtcp:{sp}\r\n")
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                return
            msg = data.decode(errors="replace")
            first = msg.split("\r\n", 1)[0]
            if first.startswith("SIP/2.0") or first.startswith("ACK"):
                continue
            method = first.split(" ")[0]
            head = msg.split("\r\n\r\n")[0].split("\r\n")[1:]
            lines = ["SIP/2.0 200 OK"]
            for h in head:
                n = h.split(":")[0].lower()
                if n in ("via", "from", "call-id", "cseq"):
                    lines.append(h)
                elif n == "to":
                    lines.append(h if ";tag=" in h else h + ";tag=b1")
            lines.append(f"Contact: <sip:uas@127.0.0.1:{self.port}>")
            body = ""
            if method == "INVITE" and "tag=" not in [h for h in head if h.lower().startswith("to:")][0]:
                ports = dict(re.findall(r"m=(audio|video) (\d+)", msg))
                cid = re.search(r"^Call-ID:\s*(\S+)", msg, re.M | re.I).group(1)
                with self.lock:
                    self.calls[cid] = (("127.0.0.1", int(ports["video"])), ("127.0.0.1", int(ports["audio"])))
                body = sdp
                lines.append("Content-Type: application/sdp")
            lines.append(f"Content-Length: {len(body)}")
            self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), addr)


def rest(port, method, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/rest-api/{method}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def window(pids, gen):
    c0 = sum(cpu_s(p) for p in pids)
    s0 = gen.sent
    t0 = time.monotonic()
    time.sleep(a.window)  # the measured window (a benchmark, not a test)
    dt = time.monotonic() - t0
    c1 = sum(cpu_s(p) for p in pids)
    rss = pss = 0
    for p in pids:
        r, s = mem_kb(p)
        rss += r
        pss += s
    return (c1 - c0) / dt * 100, (gen.sent - s0) / dt, rss, pss


def bench_junction(n, media, nginx):
    rest_port = free_port()
    j = Junction(plugins={"rest-sip-capture": {"listen": f"127.0.0.1:{rest_port}", "sip_listen": f"127.0.0.1:{free_port()}",
                                               "port_range": "bench", "rtp_timeout_ms": 60000, "max_calls": 100000,
                                               "keyframe_sip_info": False, "bus_publish": not a.no_bus,
                                               **({} if a.write_ms is None else {"rtmp_write_ms": a.write_ms})}},
                 server={"media_loops": 1, "media_loop_cpus": [int(a.cpu)]})
    j.core.setdefault("ports", {})["bench"] = {"min": 40000, "max": 59999}
    j.write_core(j.core)
    j.start()
    subprocess.run(["taskset", "-a", "-p", "-c", a.cpu, str(j.proc.pid)], stdout=subprocess.DEVNULL)
    uas = Uas()
    gen = Generator(media)
    try:
        base_rss, base_pss = mem_kb(j.proc.pid)
        for i in range(n):
            st, r = rest(rest_port, "call/startup", {"callId": f"b{i}", "callee": "dev", "sipDomain": "127.0.0.1",
                                                      "sipPort": uas.port, "hasAudio": False, "hasVideo": False,
                                                      "rtmpUrl": nginx.url(), "rtmpStream": f"j{i}"})
            assert st == 200, r
        wait_until(lambda: len(uas.calls) == n, 60, "every INVITE")
        gen.targets = [uas.calls[f"b{i}"] for i in range(n)]
        threading.Thread(target=gen.run, daemon=True).start()

        def all_active():
            calls = j.cmd("rest-sip-capture", "captures")["calls"]
            return len(calls) == n and all(c["rtmpStreamStatus"] == "RTMP_STREAM_ACTIVE" for c in calls)
        wait_until(all_active, 60, "every RTMP output active")
        time.sleep(a.warmup)  # warm-up before the window
        f0 = {c["callId"]: c["videoFrames"] for c in j.cmd("rest-sip-capture", "captures")["calls"]}
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(j.proc.pid), "-o", a.perf, "--", "sleep",
                                     str(a.window)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu, pps, rss, pss = window([j.proc.pid], gen)
        if perf:
            perf.wait()
        calls = j.cmd("rest-sip-capture", "captures")["calls"]
        fps = sum(c["videoFrames"] - f0[c["callId"]] for c in calls) / a.window / n
        out_kbps = sum(p["kbps"] for c in calls for p in c["pushRates"]) / n
        return {"side": "junction", "n": n, "cpu": cpu, "pps": pps, "rss_mb": rss / 1024, "pss_mb": pss / 1024,
                "rss_per_call_kb": (rss - base_rss) / n, "pss_per_call_kb": (pss - base_pss) / n, "fps_per_call": fps,
                "rtmp_kbps_per_call": out_kbps}
    finally:
        gen.stop = True
        j.stop()
        j.cleanup()


def bench_ffmpeg(n, media, nginx, d):
    gen = Generator(media)
    procs = []
    try:
        for i in range(n):
            vp, ap_ = 30000 + 4 * i, 30002 + 4 * i
            sdp = os.path.join(d, f"call{i}.sdp")
            with open(sdp, "w") as f:
                f.write("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                        f"m=audio {ap_} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
                        f"m=video {vp} RTP/AVP 112\r\na=rtpmap:112 H264/90000\r\na=fmtp:112 packetization-mode=1\r\n")
            p = subprocess.Popen(["taskset", "-c", a.cpu, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
                                  "-protocol_whitelist", "file,udp,rtp", "-i", sdp, "-c", "copy", "-f", "flv",
                                  f"{nginx.url()}/f{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            gen.targets.append((("127.0.0.1", vp), ("127.0.0.1", ap_)))
        time.sleep(1)  # ffmpeg binds its RTP ports at start-up; there is no event to wait on
        threading.Thread(target=gen.run, daemon=True).start()
        time.sleep(a.warmup + 5)  # probing (ffmpeg reads ~5 s before it writes) and warm-up
        alive = [p for p in procs if p.poll() is None]
        cpu, pps, rss, pss = window([p.pid for p in alive], gen)
        # the last call's stream as nginx serves it: proof ffmpeg was past probing and publishing
        pr = subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "8000000", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                             f"{nginx.url()}/f{n - 1}"], capture_output=True, text=True, timeout=30)
        return {"side": "ffmpeg", "n": n, "alive": len(alive), "served": pr.stdout.split(), "cpu": cpu, "pps": pps, "rss_mb": rss / 1024,
                "pss_mb": pss / 1024, "rss_per_call_kb": rss / max(1, len(alive)), "pss_per_call_kb": pss / max(1, len(alive))}
    finally:
        gen.stop = True
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    d = tempfile.mkdtemp(prefix="jn-bench-capture-")
    media = capture_env.Media(d, seconds=8, bitrate=a.bitrate, size=a.size, vfilter="noise=alls=12:allf=t")  # moving noise: x264 spends its bitrate
    nginx = capture_env.Nginx()
    # no recording for the benchmark: nginx only relays
    with open(nginx.conf) as f:
        conf = f.read().replace("record all;", "").replace(f"record_path {nginx.rec};", "").replace("record_unique off;", "")
    with open(nginx.conf, "w") as f:
        f.write(conf)
    nginx.start()
    print(f"clip: {media.frames} frames, {len(media.video)} video + {len(media.audio)} audio packets over {media.seconds} s "
          f"({sum(len(p) for _, p in media.video) * 8 / media.seconds / 1000:.0f} kb/s video)", flush=True)
    try:
        for n in [int(x) for x in a.junction.split(",") if x and int(x) > 0]:
            print(json.dumps(bench_junction(n, media, nginx)), flush=True)
        for n in [int(x) for x in a.ffmpeg.split(",") if x and int(x) > 0]:
            print(json.dumps(bench_ffmpeg(n, media, nginx, d)), flush=True)
    finally:
        nginx.cleanup()
        shutil.rmtree(d, ignore_errors=True)


main()
