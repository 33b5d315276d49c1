#!/usr/bin/env python3
"""WebRTC viewers of one 2 Mb/s H.264 stream per core: Junction (verto-ws) vs Janus (streaming
plugin), same sitting, one after the other (docs/benchmarks.md, "WebRTC viewers per core").

The stream: 1280x720 testsrc2, 25 fps, libx264 at 2 Mb/s (GOP 25, no B-frames), made once by ffmpeg.
- Junction: the route a user takes to watch a camera in a browser. A simulated GB/T 28181 camera
  (tests/lib/gb_device_sim.py) registers to gb28181 and streams that H.264 as PS over RTP (UDP)
  when asked; every viewer is a Verto call (verto-ws, one logged-in WebSocket) to
  gb:<device>/<channel>: gb28181 asks the camera once and publishes its frames on one bus
  stream, each viewer's PeerConnection packetizes them (H.264 packetization-mode 1, no
  transcoding) and protects them with SRTP.
- Janus 1.1 (Debian `janus`): a streaming-plugin RTP mountpoint fed the same H.264 access units as
  plain RTP (RFC 6184, FU-A at 1200 bytes, sent by this script); every viewer is a handle on one
  HTTP API session (watch -> Janus's offer -> our answer -> start).
- Viewers: bench_webrtc_viewers (N PeerConnections in one process on sdk/webrtc: ICE, DTLS client,
  SRTP unprotect, loss counted by RTP sequence number; see viewers.cpp).

The server is pinned to one CPU (taskset -a, --cpu, default 1); the feeders, the viewers and this
script run on the other (--other, default 0). For each N of --steps (viewers are added, never
removed, between steps): --warmup s, then a --window s measurement: server CPU time from
/proc/PID/stat (all threads), loss (packets missing by sequence number over all viewers; kernel
drops on the viewers' sockets are reported apart), server PSS (/proc/PID/smaps_rollup). Memory per
PeerConnection: (PSS at the last N - PSS with the stream running and no viewer) / N. DTLS
handshakes per second: a separate burst of --burst viewers whose server answers are all in hand
first: burst / (last Connected - first answer handed to the viewers), on a fresh server.

Everything is loopback: the script re-runs itself in a network namespace (unshare -n) with `lo`
and a veth holding 127.0.0.2/32, because Janus gathers no candidates on a loopback interface.

  python3 bench/webrtc_viewers/run.py [--build build] [--steps 50,100,200,300] [--janus-steps ...]
      [--servers junction,janus] [--janus-event-loops 1] [--stop-on-loss] [--burst 100] [--perf FILE]
(the commands and results of record are in docs/benchmarks.md).
"""
import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TICKS = os.sysconf("SC_CLK_TCK")
NETNS = "JN_BENCH_NETNS"

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(ROOT, "build"))
ap.add_argument("--steps", default="50,100,200,300")
ap.add_argument("--janus-steps", default="", help="Janus's own steps (default: --steps)")
ap.add_argument("--servers", default="junction,janus")
ap.add_argument("--janus-event-loops", type=int, default=0,
                help="Janus's general.event_loops (0: its default, a thread and loop per handle)")
ap.add_argument("--warmup", type=float, default=4)
ap.add_argument("--window", type=float, default=10)
ap.add_argument("--burst", type=int, default=100, help="viewers of the DTLS handshake burst (0: skip)")
ap.add_argument("--cpu", default="1", help="CPU the server is pinned to")
ap.add_argument("--other", default="0", help="CPU of the feeders, the viewers and this script")
ap.add_argument("--stop-on-loss", action="store_true", help="stop adding viewers after the first step with loss")
ap.add_argument("--perf", default="", help="perf record the server during its last window into FILE.<server>")
ap.add_argument("--dir", default="/tmp/jn-bench-webrtc-viewers")
ap.add_argument("--camera", default="", help=argparse.SUPPRESS)  # internal: run the simulated camera for PORT
a = ap.parse_args()
a.build = os.path.abspath(a.build)

if os.environ.get(NETNS) != "1":
    setup = ("ip link set lo up && ip link add jv0 type veth peer name jv1 && ip addr add 127.0.0.2/32 dev jv0 && "
             "ip link set jv1 up && ip link set jv0 up && exec \"$0\" \"$@\"")
    env = dict(os.environ, **{NETNS: "1"})
    sys.exit(subprocess.run(["unshare", "-n", "sh", "-c", setup, sys.executable, *sys.argv], env=env).returncode)

os.sched_setaffinity(0, {int(a.other)})
os.environ["JN_BUILD_DIR"] = a.build
os.makedirs(a.dir, exist_ok=True)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib", "verto"))
sys.path.insert(0, os.path.join(ROOT, "plugins", "gb28181", "tests"))
import gb_media_sim  # noqa: E402
from junction_test import Junction, free_port, wait_until  # noqa: E402

SECONDS = 10
VIEWER_IP = "127.0.0.1"
SIZE = "1280x720"
_orig_ffmpeg = gb_media_sim._ffmpeg


def _ffmpeg_2m(*args):
    args = list(args)
    if "libx264" in args:  # the simulator's encoder, at the bench's bit rate (constant-ish)
        i = args.index("libx264") + 1
        args[i:i] = ["-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M", "-x264-params", "repeat-headers=1:scenecut=0"]
        j = len(args) - 1 - args[::-1].index("-x264-params")  # drop the simulator's own (last) one
        del args[j:j + 2]
    return _orig_ffmpeg(*args)


gb_media_sim._ffmpeg = _ffmpeg_2m
ASSETS = gb_media_sim.MediaAssets("h264", SECONDS, size=SIZE)
gb_media_sim._assets[("h264", SECONDS)] = ASSETS
FRAMES = ASSETS.video_frames
ES_BITS = sum(len(f) for f in FRAMES) * 8 / SECONDS
print(f"stream: {SIZE} 25 fps H.264, {len(FRAMES)} access units, {ES_BITS / 1e6:.2f} Mb/s of ES", flush=True)


if a.camera:
    # The simulated camera in a process of its own (its pacing must not wait on this script's GIL).
    import gb_device_sim
    from gb_env import DEV1, PASSWORD, PLATFORM
    sim = gb_device_sim.Simulator(server=("127.0.0.1", int(a.camera)), platform_id=PLATFORM).start()
    dev = sim.add_device(DEV1, PASSWORD, media_seconds=SECONDS)
    if sim.run(dev.register()) != 200:
        sys.exit("camera: REGISTER failed")
    print("CAMERA", dev.channels[0]["DeviceID"], flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    sim.stop()
    sys.exit(0)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


def pss_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def pin(pid):
    subprocess.run(["taskset", "-a", "-p", "-c", a.cpu, str(pid)], check=True, capture_output=True)


# -- the viewers process ----------------------------------------------------------------------------
class Viewers:
    def __init__(self):
        self.p = subprocess.Popen([os.path.join(a.build, "bench", "webrtc_viewers", "bench_webrtc_viewers"), VIEWER_IP],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait("READY")

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def send(self, line):
        with self.lock:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()

    def wait(self, prefix, timeout=30):
        with self.cond:
            found = []

            def look():
                for i, l in enumerate(self.lines):
                    if l.startswith(prefix + " ") or l == prefix or (l.startswith("ERROR") and prefix.split()[-1] in l):
                        found.append(self.lines.pop(i))
                        return True
                return False
            if not self.cond.wait_for(look, timeout):
                raise RuntimeError(f"viewers: no {prefix!r} in {timeout} s")
            if found[0].startswith("ERROR"):
                raise RuntimeError(f"viewers: {found[0]}")
            return found[0][len(prefix):].strip()

    def offer(self, i):
        self.send(f"offer {i}")
        return base64.b64decode(self.wait(f"OFFER {i}")).decode()

    def answer(self, i, sdp):
        self.send(f"answer {i} {base64.b64encode(sdp.encode()).decode()}")

    def remote(self, i, sdp):
        self.send(f"remote {i} {base64.b64encode(sdp.encode()).decode()}")
        return base64.b64decode(self.wait(f"ANSWER {i}")).decode()

    def stats(self):
        self.send("stats")
        return json.loads(self.wait("STATS"))

    def reset(self):
        self.send("reset")
        self.wait("RESET")

    def close(self):
        try:
            self.send("close")
            self.wait("CLOSED", 10)
            self.p.stdin.close()
        except (OSError, RuntimeError):
            pass
        self.p.wait(10)


# -- Junction: gb28181 camera + verto-ws viewers -----------------------------------------------------
class JunctionSide:
    name = "junction"

    def __init__(self):
        from gb_env import DEV1, PASSWORD, PLATFORM, plugin_conf  # noqa: F401
        from verto_client import VertoClient
        self.dev_id = DEV1
        gb_port, self.verto_port = free_port(), free_port()
        gb = plugin_conf(gb_port, media={"port_range": "gb28181", "bind_ip": "127.0.0.1", "rtp_timeout_ms": 5000})
        verto = {"listen": f"127.0.0.1:{self.verto_port}", "kdf_iterations": 1000, "heartbeat_ms": 0, "media": "webrtc",
                 "rate_per_s": 100000, "rate_burst": 100000, "idle_timeout_ms": 600000, "idle_ping_ms": 300000}
        self.j = Junction(plugins={"gb28181": gb, "verto-ws": verto},
                          server={"media_loops": 1, "media_loop_cpus": [int(a.cpu)]})
        self.j.core.setdefault("ports", {})["gb28181"] = {"min": 42000, "max": 42999}
        self.j.core["ports"]["media"] = {"min": 43000, "max": 49999}
        self.j.write_core(self.j.core)
        self.j.start()
        self.pid = self.j.proc.pid
        pin(self.pid)
        self.j.cmd("gb28181", "add", {"id": DEV1, "password": PASSWORD}, 201)
        self.cam = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--build", a.build, "--other", a.other,
                                     "--camera", str(gb_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = []
        while not line or line[0] != "CAMERA":
            out = self.cam.stdout.readline()
            if not out:
                raise RuntimeError("the simulated camera did not register")
            line = out.split()
        self.channel = line[1]
        self.j.cmd("gb28181", "update", {"id": DEV1, "media_transport": "udp"})
        self.j.cmd("verto-ws", "user-add", {"user": "1001", "password": "pw1001"})
        self.v = VertoClient(self.verto_port, timeout=3600)  # also its socket's read timeout: quiet windows are long
        self.v.login_ok("1001", "pw1001")
        self.calls = {}

    def start_stream(self):
        """The camera streams to the bus (gb28181's play verb), so the idle PSS has the stream."""
        self.j.cmd("gb28181", "play", {"device": self.dev_id, "channel": self.channel})

    def source_frames(self):
        """Video frames gb28181 took in from the camera (its live session's ingest counters)."""
        def walk(j):
            if isinstance(j, dict):
                return (j.get("video_frames") or 0) + sum(walk(v) for k, v in j.items() if k != "video_frames")
            if isinstance(j, list):
                return sum(walk(v) for v in j)
            return 0
        try:
            return walk(self.j.cmd("gb28181", "streams"))
        except OSError:  # the admin API did not answer in time: the server's one core is saturated
            return None

    def offers(self, viewers, ids):
        """Server answers for each viewer id (not yet handed to the viewers)."""
        out = {}
        for i in ids:
            sdp = viewers.offer(i)
            cid, r = self.v.invite(f"gb:{self.dev_id}/{self.channel}", sdp=sdp, name=f"viewer{i}")
            if "result" not in r:
                raise RuntimeError(f"invite {i}: {r}")
            self.calls[i] = cid
        for i in ids:
            cid = self.calls[i]
            deadline = time.time() + 60
            while True:
                with self.v.cond:
                    m = next((m for m in self.v.requests if m.get("method") in ("verto.answer", "verto.media")
                              and m.get("params", {}).get("callID") == cid and m["params"].get("sdp")), None)
                    if m:
                        self.v.requests.remove(m)
                        break
                    bye = next((m for m in self.v.requests if m.get("method") == "verto.bye"
                                and m.get("params", {}).get("callID") == cid), None)
                    if bye:
                        raise RuntimeError(f"viewer {i}: verto.bye {bye['params']}")
                    self.v.cond.wait(max(0.01, deadline - time.time()))
                if time.time() > deadline:
                    raise RuntimeError(f"viewer {i}: no verto.answer")
            out[i] = m["params"]["sdp"]
        return out

    def deliver(self, viewers, answers):
        for i, sdp in answers.items():
            viewers.answer(i, sdp)

    def close(self):
        try:
            self.v.close()
        except OSError:
            pass
        self.cam.stdin.close()
        self.cam.wait(30)
        self.j.stop()
        self.j.cleanup()


# -- Janus: streaming plugin + HTTP API --------------------------------------------------------------
JANUS_PORT = 18088
FEED_PORT = 15004


class JanusSide:
    name = "janus"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="jn-bench-janus-")
        lib = "/usr/lib/x86_64-linux-gnu/janus"
        others = ["audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "textroom", "videocall",
                  "videoroom", "voicemail"]
        with open(os.path.join(self.dir, "janus.jcfg"), "w") as f:
            f.write(f"""general: {{ configs_folder = "{self.dir}" plugins_folder = "{lib}/plugins"
  transports_folder = "{lib}/transports" events_folder = "{lib}/events" loggers_folder = "{lib}/loggers"
  debug_level = {5 if os.environ.get("JN_BENCH_DEBUG") else 3} session_timeout = 0
  {f"event_loops = {a.janus_event_loops}" if a.janus_event_loops else ""} }}
media: {{ ipv6 = false rtp_port_range = "20000-40000" }}
nat: {{ nice_debug = {"true" if os.environ.get("JN_BENCH_DEBUG") else "false"} ice_enforce_list = "127.0.0.2" ignore_mdns = true }}
plugins: {{ disable = "{','.join(f'libjanus_{p}.so' for p in others)}" }}
transports: {{ disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so,libjanus_websockets.so" }}
events: {{ broadcast = false }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
""")
        with open(os.path.join(self.dir, "janus.transport.http.jcfg"), "w") as f:
            f.write(f'general: {{ json = "plain" base_path = "/janus" http = true port = {JANUS_PORT} interface = "lo" https = false }}\n'
                    'admin: { admin_http = false }\n')
        with open(os.path.join(self.dir, "janus.plugin.streaming.jcfg"), "w") as f:
            f.write(f'general: {{ }}\nbench: {{ type = "rtp" id = 1 description = "bench" audio = false video = true '
                    f'videoport = {FEED_PORT} videoiface = "127.0.0.1" videopt = 96 videocodec = "H264" '
                    f'videofmtp = "profile-level-id=42e01f;packetization-mode=1" }}\n')
        shim = os.path.join(a.dir, "no_unicast_if.so")
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(HERE, "no_unicast_if.c"), "-ldl"], check=True)
        self.log = open(os.path.join(self.dir, "log.txt"), "w")
        self.proc = subprocess.Popen(["taskset", "-c", a.cpu] + (["strace", "-f", "-e", "trace=network,setsockopt", "-o", os.path.join(self.dir, "strace.txt")] if os.environ.get("JN_BENCH_STRACE") else []) + ["janus", "-C", os.path.join(self.dir, "janus.jcfg"),
                                      "-F", self.dir], stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, LD_PRELOAD=shim))
        self.pid = self.proc.pid
        wait_until(lambda: self._up(), 60, "janus HTTP API")
        pin(self.pid)
        self.session = self.post("", {"janus": "create"})["data"]["id"]
        self.events = {}  # handle -> jsep offer
        self.cond = threading.Condition()
        self.handles = {}
        threading.Thread(target=self._poll, daemon=True).start()
        self.pool = concurrent.futures.ThreadPoolExecutor(8)
        self.feeder = None

    def _up(self):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{JANUS_PORT}/janus/info", timeout=1).read()
            return True
        except OSError:
            return False

    def post(self, path, body):
        body = dict(body, transaction=str(time.monotonic_ns()))
        r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{JANUS_PORT}/janus{path}", json.dumps(body).encode(),
                                                          {"Content-Type": "application/json"}), timeout=30)
        return json.loads(r.read())

    def _poll(self):
        while self.proc.poll() is None:
            try:
                evs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{JANUS_PORT}/janus/{self.session}?maxev=50",
                                                        timeout=40).read())
            except (OSError, http.client.HTTPException):  # also Janus going away at the end
                continue
            for ev in evs if isinstance(evs, list) else [evs]:
                if ev.get("jsep", {}).get("type") == "offer":
                    with self.cond:
                        self.events[ev["sender"]] = ev["jsep"]["sdp"]
                        self.cond.notify_all()

    def start_stream(self):
        self.feeder = RtpFeeder(("127.0.0.1", FEED_PORT))

    def source_frames(self):
        return self.feeder.frames

    def offers(self, viewers, ids):
        def one(i):
            h = self.post(f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.streaming"})["data"]["id"]
            self.handles[i] = h
            self.post(f"/{self.session}/{h}", {"janus": "message", "body": {"request": "watch", "id": 1}})
            return i, h
        out = {}
        for i, h in self.pool.map(one, ids):
            with self.cond:
                if not self.cond.wait_for(lambda: h in self.events, 60):
                    raise RuntimeError(f"janus: no offer for viewer {i}")
                out[i] = self.events.pop(h)
        return out

    def deliver(self, viewers, offers):
        answers = {i: viewers.remote(i, sdp) for i, sdp in offers.items()}

        def start(i):
            h = self.handles[i]
            self.post(f"/{self.session}/{h}", {"janus": "message", "body": {"request": "start"},
                                               "jsep": {"type": "answer", "sdp": answers[i]}})
            # The candidate is in the answer; Janus (half-trickle) still waits for the end of candidates.
            self.post(f"/{self.session}/{h}", {"janus": "trickle", "candidate": {"completed": True}})
        list(self.pool.map(start, answers))

    def close(self):
        if self.feeder:
            self.feeder.stop()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class RtpFeeder:
    """The access units as RFC 6184 RTP (single NAL or FU-A, 1200-byte payloads), 25 fps, looped."""

    def __init__(self, dest):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.dest = dest
        self.stopped = False
        self.frames = 0  # sent
        self.packets = []  # per frame: list of (payload, marker)
        for fr in FRAMES:
            nals = [n for n in gb_media_sim.split_nals(fr) if n and (n[0] & 0x1F) != 9]  # AUDs stay out (as browsers send)
            pk = []
            for k, nal in enumerate(nals):
                last = k == len(nals) - 1
                if len(nal) <= 1200:
                    pk.append((nal, last))
                    continue
                hdr, body = nal[0], nal[1:]
                for off in range(0, len(body), 1198):
                    chunk = body[off:off + 1198]
                    s, e = off == 0, off + 1198 >= len(body)
                    pk.append((bytes([(hdr & 0xE0) | 28, (0x80 if s else 0) | (0x40 if e else 0) | (hdr & 0x1F)]) + chunk, last and e))
            self.packets.append(pk)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        seq, ts, t0, n = 0, 0, time.monotonic(), 0
        while not self.stopped:
            for pk in self.packets:
                if self.stopped:
                    return
                for payload, marker in pk:
                    self.sock.sendto(gb_media_sim.rtp_header(seq & 0xFFFF, ts & 0xFFFFFFFF, 0x12345678, 96, marker) + payload, self.dest)
                    seq += 1
                n += 1
                self.frames = n
                ts += 3600
                delay = t0 + n * 0.04 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing the stream, not synchronising a test

    def stop(self):
        self.stopped = True


# -- the measurement ---------------------------------------------------------------------------------
def measure(side, viewers, n, window):
    viewers.reset()
    f0 = side.source_frames()
    c0, t0 = cpu_s(side.pid), time.monotonic()
    time.sleep(window)  # the measured window
    c1, t1 = cpu_s(side.pid), time.monotonic()
    f1 = side.source_frames()
    s = viewers.stats()
    cpu = (c1 - c0) / (t1 - t0)
    return {"viewers": n, "connected": s["connected"], "failed": s["failed"], "silent": s["silent"], "cpu": cpu,
            "cpu_per_viewer_pct": 100 * cpu / n if n else 0, "lost": s["lost"], "expected": s["expected"],
            "loss_pct": 100 * s["lost"] / s["expected"] if s["expected"] else 0, "viewers_with_loss": s["viewers_with_loss"],
            "receiver_kernel_drops": s["receiver_kernel_drops"], "srtp_failed": s["srtp_failed"],
            "mbps_received": s["bytes"] * 8 / s["window_s"] / 1e6, "pss_kb": pss_kb(side.pid),
            "source_frames": f1 - f0 if f0 is not None and f1 is not None else -1,
            "source_fps": (f1 - f0) / (t1 - t0) if f0 is not None and f1 is not None else 0, "min_frames": s["min_frames"],
            "fps_per_viewer": s["frames"] / s["window_s"] / n if n else 0, "min_fps": s["min_frames"] / s["window_s"],
            "mbps_per_viewer": s["bytes"] * 8 / s["window_s"] / 1e6 / n if n else 0, "loadavg": os.getloadavg()[0]}


def connect(side, viewers, ids):
    t = time.monotonic()
    got = side.offers(viewers, ids)
    side.deliver(viewers, got)
    want = max(ids) + 1
    wait_until(lambda: viewers.stats()["connected"] + viewers.stats()["failed"] >= want, 120, "viewers connected", 0.2)
    if os.environ.get("JN_BENCH_DEBUG"):
        print("viewers after setup:", viewers.stats(), flush=True)
    return time.monotonic() - t


def run_side(cls):
    res = {"server": cls.name, "steps": []}
    side = cls()
    viewers = Viewers()
    try:
        side.start_stream()
        time.sleep(3)  # the stream runs before the idle PSS is taken
        res["idle_pss_kb"] = pss_kb(side.pid)
        c0, t0 = cpu_s(side.pid), time.monotonic()
        time.sleep(3)
        res["idle_cpu"] = (cpu_s(side.pid) - c0) / (time.monotonic() - t0)
        have = 0
        steps = [int(x) for x in (a.janus_steps if cls.name == "janus" and a.janus_steps else a.steps).split(",")]
        for k, n in enumerate(steps):
            took = connect(side, viewers, list(range(have, n)))
            have = n
            time.sleep(a.warmup)
            if a.perf and k == len(steps) - 1:
                perf = subprocess.Popen(["perf", "record", "-g", "-o", f"{a.perf}.{cls.name}", "-p", str(side.pid), "--", "sleep",
                                         str(a.window)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            m = measure(side, viewers, n, a.window)
            if a.perf and k == len(steps) - 1:
                perf.wait()
            m["setup_s"] = round(took, 2)
            # Held: every viewer connected, no packet missing by sequence number, every viewer at the
            # stream's frame rate (a frame lost before packetization leaves no sequence gap).
            # (3 frames of slack: the window's two edges are not sampled at the same instant). The
            # source itself must have kept its 25 fps, else the generator (not the server) fell behind.
            m["held"] = (m["connected"] == n and m["lost"] == 0 and m["source_frames"] >= 0 and
                         m["min_frames"] >= m["source_frames"] - 3)
            m["source_ok"] = m["source_fps"] >= 24
            res["steps"].append(m)
            print(f"{cls.name:8} N={n:4}: connected {m['connected']} failed {m['failed']} silent {m['silent']}; "
                  f"server CPU {100 * m['cpu']:.1f} % of a core = {m['cpu_per_viewer_pct']:.3f} % per viewer; "
                  f"loss {m['lost']}/{m['expected']} ({m['loss_pct']:.3f} %, {m['viewers_with_loss']} viewers; "
                  f"viewer-side kernel drops {m['receiver_kernel_drops']}); {m['mbps_received']:.0f} Mb/s received "
                  f"({m['mbps_per_viewer']:.2f} per viewer, {m['fps_per_viewer']:.1f} fps, slowest {m['min_fps']:.1f}); machine load {m['loadavg']:.1f}; "
                  f"PSS {m['pss_kb'] / 1024:.1f} MiB (setup {took:.1f} s); source {m['source_fps']:.1f} fps{'' if m['source_ok'] else ' (GENERATOR BEHIND)'}"
                  f"{'' if m['held'] else ' NOT HELD'}", flush=True)
            if a.stop_on_loss and not (m["held"] and m["source_ok"]):
                break
        last = res["steps"][-1]
        res["pss_per_pc_kb"] = (last["pss_kb"] - res["idle_pss_kb"]) / last["viewers"]
        print(f"{cls.name:8} idle (stream, no viewer): CPU {100 * res['idle_cpu']:.1f} %, PSS {res['idle_pss_kb'] / 1024:.1f} MiB; "
              f"PSS per PeerConnection {res['pss_per_pc_kb']:.0f} KiB", flush=True)
    except Exception:
        if isinstance(side, JunctionSide):
            print("\n".join(side.j.lines[-30:]), file=sys.stderr)
        raise
    finally:
        viewers.close()
        side.close()
    if a.burst:
        side = cls()
        viewers = Viewers()
        try:
            side.start_stream()
            ids = list(range(a.burst))
            got = side.offers(viewers, ids)
            c0 = cpu_s(side.pid)
            side.deliver(viewers, got)
            wait_until(lambda: (lambda s: s["connected"] + s["failed"] >= a.burst)(viewers.stats()), 120, "burst", 0.05)
            s = viewers.stats()
            cpu = cpu_s(side.pid) - c0
            span = s["last_connected"] - s["first_answer"]
            res["burst"] = {"n": a.burst, "connected": s["connected"], "span_s": span, "per_s": s["connected"] / span,
                            "server_cpu_s": cpu}
            print(f"{cls.name:8} DTLS burst: {s['connected']}/{a.burst} connected in {span:.2f} s = {s['connected'] / span:.0f} "
                  f"handshakes/s; server CPU {cpu:.2f} s = {1000 * cpu / max(1, s['connected']):.2f} ms per PeerConnection setup",
                  flush=True)
        finally:
            viewers.close()
            side.close()
    return res


results = []
for name in a.servers.split(","):
    results.append(run_side({"junction": JunctionSide, "janus": JanusSide}[name]))
with open(os.path.join(a.dir, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
print("results:", os.path.join(a.dir, "results.json"))
