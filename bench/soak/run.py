#!/usr/bin/env python3
"""Soak: one release junction with every plugin under mixed load, a hot reload every few seconds,
for minutes; the server's RSS and fd count must stay flat and no packet may be lost.

  python3 bench/soak/run.py [--minutes 5] [--build build] [--reload-every 3] [--sample-every 3]

Load, all at once, loopback only, server.media_loops = 1:
- rtp-relay: --sessions relayed sessions (ng offer + answer) with RTP both ways at --pps per
  direction (bench/soak/rtpgen.py, a separate process), plus a churn of short ng sessions
  (offer, answer, delete) at --churn per second;
- intercom-json: --families families of two joined screens and a door unit each; every door
  places calls in a loop (call_req, both screens ring, one accepts, the other gets call_end,
  the door ends the call);
- xxxcid-gateway: --pairs door/phone simulators (plugins/xxxcid-gateway/tests) looping the
  document's flow (call, call ok, enable_video, talk with 10 video + 10 audio datagrams to the
  phone, unlock, hang-up by either side); every door on its own 127.0.x.y address;
- udp-counter: echoed datagrams at --udp-pps (tests/integration/test_reload.py's Traffic).
Every --reload-every seconds one plugin is hot-reloaded in turn (POST .../reload). Every
--sample-every seconds VmRSS and the number of open fds of the server are read from /proc; the
baseline is taken after --warmup seconds. Progress goes to stdout, one line per sample, then a JSON
report (docs/benchmarks.md, "Soak", explains the numbers and the thresholds).

Exit status 1 when: a reload failed; a packet was lost (relay RTP, udp-counter echoes,
xxxcid-gateway media); a call failed; the server's fds grew by more than --fd-slack after
warm-up; its RSS grew by more than --rss-slack-kb after warm-up; a call, session or connection
was left behind at the end; the server logged an error line; the server did not exit cleanly.
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
sys.path.insert(0, os.path.join(SRC, "plugins", "rtp-relay", "tests"))
sys.path.insert(0, os.path.join(SRC, "plugins", "intercom-json", "tests"))
sys.path.insert(0, os.path.join(SRC, "plugins", "xxxcid-gateway", "tests"))

PLUGINS = ["rtp-relay", "intercom-json", "xxxcid-gateway", "udp-counter"]
SECRET = "soak-secret-0123456789"
# The relay's ports: inside the kernel's ephemeral range (32768-60999), never a port handed out by
# free_port() (24000-32000, the listeners; the core refuses a listener inside the range), and
# away from the 10000-23999 bands the relay tests of other worktrees use on this machine. A port
# some other socket holds is skipped by the core's port_bind.
MEDIA_PORTS = (45000, 48999)


class Load:
    """One load thread's counters: what it started, what completed, the first errors."""

    def __init__(self, name, plugin):
        self.name, self.plugin = name, plugin
        self.placed = self.completed = 0
        self.errors = []
        self.n_errors = 0
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            self.placed += 1

    def done(self):
        with self.lock:
            self.completed += 1

    def fail(self, what):
        with self.lock:
            self.n_errors += 1
            if len(self.errors) < 5:
                self.errors.append((time.monotonic(), what[:800]))

    def summary(self, reloads):
        def when(t):
            # A failure's distance from this plugin's latest reload before it: tells reload-related
            # failures from the others.
            prior = [r for r in reloads if r["plugin"] == self.plugin and r["t"] <= t]
            return f"{t - prior[-1]['t']:.2f} s after a reload of {self.plugin}" if prior else f"no {self.plugin} reload before it"
        return {"placed": self.placed, "completed": self.completed, "failed": self.n_errors,
                "first_errors": [f"{what} ({when(t)})" for t, what in self.errors]}


def pause(stop, seconds):
    """Pacing between iterations of a load loop (not synchronisation: nothing waits on it)."""
    stop.wait(seconds)


# -- rtp-relay -------------------------------------------------------------------------------------
def relay_setup(ng, sessions, a_port, b_port):
    from ngclient import sdp, sdp_port
    out = []
    for i in range(sessions):
        o = ng.cmd("offer", call_id=f"soak-{i}", from_tag="fa", sdp=sdp(a_port), flags=["trust-address"],
                   replace=["origin", "session-connection"])
        an = ng.cmd("answer", call_id=f"soak-{i}", from_tag="fa", to_tag="tb", sdp=sdp(b_port), flags=["trust-address"],
                    replace=["origin", "session-connection"])
        assert o.get("result") == "ok" and an.get("result") == "ok", (o, an)
        out.append([sdp_port(an["sdp"]), sdp_port(o["sdp"])])  # A sends to the answer's port, B to the offer's
    return out


def relay_churn(ng_port, rate, stop, load):
    """Short ng sessions without media: offer, answer, delete; the relay's ports and state must
    come back every time."""
    from ngclient import NgClient, sdp
    ng = NgClient(ng_port, timeout=10)
    n = 0
    try:
        while not stop.is_set():
            cid = f"churn-{n}"
            n += 1
            load.start()
            try:
                o = ng.cmd("offer", call_id=cid, from_tag="fc", sdp=sdp(9), flags=["trust-address"])
                an = ng.cmd("answer", call_id=cid, from_tag="fc", to_tag="tc", sdp=sdp(11), flags=["trust-address"])
                d = ng.cmd("delete", call_id=cid, from_tag="fc")
                if o.get("result") == "ok" and an.get("result") == "ok" and d.get("result") == "ok":
                    load.done()
                else:
                    load.fail(f"{cid}: {o.get('result')}/{an.get('result')}/{d.get('result')} {d.get('error-reason', '')}")
            except (socket.timeout, OSError, AssertionError) as e:
                load.fail(f"{cid}: {e!r}")
            pause(stop, 1.0 / rate)
    finally:
        ng.close()


# -- intercom-json ---------------------------------------------------------------------------------
def intercom_family(j, port, fam, stop, load, gap):
    from intercom_peer import INNER_SCREEN, OuterBox, Screen
    room = f"{700 + fam}"
    peers = []

    def device(cls, name, type, room):
        p = cls(port, name=name)
        peers.append(p)
        tok = j.cmd("intercom-json", "issue-token", {"device": name, "type": type, "room": room})["token"]
        r = p.join(tok)
        assert r["name"] == "join_accept", r
        return p

    try:
        screens = [device(Screen, f"soak-screen-{room}-{i}", INNER_SCREEN, room) for i in range(2)]
        door = device(OuterBox, f"soak-door-{room}", OuterBox.type, "")
        n = 0
        while not stop.is_set():
            sid = f"soak-{fam}-{n}"
            winner, loser = screens[n % 2], screens[1 - n % 2]
            n += 1
            load.start()
            try:
                door.call(sid, dest={"id": room, "type": INNER_SCREEN})
                for s in screens:
                    s.expect("call_req", timeout=15, sid=sid)
                winner.accept(sid)
                door.expect("call_accept", timeout=15, sid=sid)
                loser.expect("call_end", timeout=15, sid=sid)
                door.end(sid)
                winner.expect("call_end", timeout=15, sid=sid)
                load.done()
            except AssertionError as e:
                load.fail(f"{sid}: {e}")
                if any(p.closed for p in peers):
                    return
            for p in peers:  # the peers keep every message for failure reports: bound them
                with p.cond:
                    p.received.clear()
                    p.inbox.clear()
            pause(stop, gap)
    except Exception as e:  # noqa: BLE001 - reported at the end
        load.fail(f"family {room}: {e!r}")
    finally:
        for p in peers:
            try:
                p.close()
            except OSError:
                pass


# -- xxxcid-gateway --------------------------------------------------------------------------------
def xxxcid_pair(j, ports, k, stop, load, media, gap):
    from door_sim import DoorSim
    from phone_sim import PhoneSim

    class OwnIpDoor(DoorSim):
        """A door on its own loopback address. The gateway matches door media to a call by the
        door's source IP (latched to the oldest unlatched call from that IP): doors sharing
        127.0.0.1 and calling at the same time get each other's media latched to their calls,
        as real doors behind one NAT address would."""

        def _socket(self):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((self.ip, 0))
            s.settimeout(0.2)
            return s

    room, uid, addr = "Y%011d" % (k + 1), "9%06d" % k, "M%08d" % (k + 1)
    ip = f"127.0.{10 + k // 250}.{1 + k % 250}"
    callee = "S" + room[1:]
    door = phone = None
    try:
        j.cmd("xxxcid-gateway", "bind", {"uid": uid, "room": room, "community": "soak"})
        door = OwnIpDoor(ports["door"], ports["video"], ports["audio"], addr=addr, ip=ip, retransmit=0.3)
        phone = PhoneSim(ports["phone"], uid=uid, room=room)
        n = 0
        while not stop.is_set():
            n += 1
            load.start()
            try:
                m = phone.mark()
                result = {}
                th = threading.Thread(target=lambda: result.update(r=door.call(callee)))
                th.start()
                phone.wait("call", timeout=15, start=m)
                phone.order("call ok", door.addr)
                th.join(30)
                assert result.get("r") == "answer", f"door call: {result.get('r')}"
                phone.order("enable_video", door.addr)
                m = phone.mark()
                phone.order("talk", door.addr)
                phone.wait("talk begin", timeout=15, start=m)
                v0, a0 = len(phone.video), len(phone.audio)
                for i in range(10):
                    door.send_video(b"v%d" % i)
                    door.send_audio(b"a%d" % i)
                media["sent"] += 20
                try:
                    phone.wait_media("video", v0 + 10, timeout=10)
                    phone.wait_media("audio", a0 + 10, timeout=10)
                finally:
                    media["received"] += min(10, len(phone.video) - v0) + min(10, len(phone.audio) - a0)
                m = phone.mark()
                phone.order("unlock", door.addr)
                phone.wait("unlock success", timeout=15, start=m)
                if n % 2:
                    assert door.hangup(callee), "door hang-up unanswered"
                else:
                    m = phone.mark()
                    phone.order("over", door.addr)
                    phone.wait("over success", timeout=15, start=m)
                # The call is over once the gateway has forgotten it (no event marks that).
                deadline = time.monotonic() + 15
                while any(d["door"] == addr for d in j.cmd("xxxcid-gateway", "calls")["doors"]):
                    assert time.monotonic() < deadline, "call still listed 15 s after the hang-up"
                    time.sleep(0.05)
                load.done()
            except AssertionError as e:
                load.fail(f"{addr} flow {n}: {e}; gateway's view: {[d for d in j.cmd('xxxcid-gateway', 'calls')['doors'] if d['door'] == addr]}")
                # End the call (the door's hang-up is retransmitted until answered), so the next
                # flow starts clean and a call left at the end is the server's, not this loop's.
                door.hangup(callee)
            with door.cond:
                door.packets.clear()
            with phone.cond:
                phone.orders.clear()
                phone.video.clear()
                phone.audio.clear()
            pause(stop, gap)
    except Exception as e:  # noqa: BLE001 - reported at the end
        load.fail(f"pair {k}: {e!r}")
    finally:
        for s in (door, phone):
            if s is not None:
                s.close()


# -- reloads and samples ---------------------------------------------------------------------------
def reloader(j, every, stop, reloads):
    i = 0
    next_t = time.monotonic() + every
    while not stop.wait(max(0.0, next_t - time.monotonic())):
        next_t += every
        name = PLUGINS[i % len(PLUGINS)]
        i += 1
        t = time.monotonic()
        try:
            status, r = j.request("POST", f"/api/v1/plugins/{name}/reload")
        except OSError as e:
            status, r = 0, repr(e)
        ok = status == 200 and isinstance(r, dict) and r.get("ok") and r.get("old_unloaded")
        reloads.append({"plugin": name, "t": t, "ok": bool(ok), "status": status, "ms": round((time.monotonic() - t) * 1000, 1),
                        "cutover_us": r.get("cutover_us") if isinstance(r, dict) else None,
                        "detail": None if ok else str(r)[:300]})


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pool_capacity(j):
    """Slab slots held by the media loops' buffer pools (junction_media_buffers_capacity, summed):
    a hold during a reload grows them; the pool's trim gives idle slabs back (docs/benchmarks.md)."""
    try:
        status, text = j.request("GET", "/metrics")
    except OSError:
        return None
    if status != 200 or not isinstance(text, str):
        return None
    return int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("junction_media_buffers_capacity{")))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def slope_kb_per_min(points):
    """Least-squares slope of (seconds, kB) points, in kB per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else 0.0


def median(v):
    s = sorted(v)
    return s[len(s) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--reload-every", type=float, default=3.0, help="seconds between reloads (one plugin in turn)")
    ap.add_argument("--sample-every", type=float, default=3.0, help="seconds between RSS/fd samples")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the RSS/fd baseline, default min(60, a fifth of the run): pools, caches, "
                         "the CDR store and every plugin's first reloads settle")
    ap.add_argument("--sessions", type=int, default=200, help="rtp-relay sessions with RTP both ways")
    ap.add_argument("--pps", type=int, default=50, help="RTP packets/s per direction per session (20 ms ptime)")
    ap.add_argument("--churn", type=float, default=5.0, help="short ng sessions (offer, answer, delete) per second")
    ap.add_argument("--families", type=int, default=4, help="intercom-json families (2 screens + a door each)")
    ap.add_argument("--pairs", type=int, default=4, help="xxxcid-gateway door/phone pairs")
    ap.add_argument("--call-gap", type=float, default=0.2, help="seconds between a loop's calls (intercom, xxxcid)")
    ap.add_argument("--udp-pps", type=int, default=500, help="udp-counter echo datagrams/s")
    ap.add_argument("--fd-slack", type=int, default=8,
                    help="fds the server may hold beyond the warm-up baseline at the end (sockets of calls in flight)")
    ap.add_argument("--rss-slack-kb", type=int, default=4096, help="RSS growth allowed from warm-up to the end (see docs/benchmarks.md, Soak)")
    ap.add_argument("--keep-log", metavar="FILE", help="write the server's whole log there")
    args = ap.parse_args()
    if args.warmup is None:
        args.warmup = min(60.0, args.minutes * 60 / 5)
    build = os.path.abspath(args.build)
    os.environ["JN_BUILD_DIR"] = build
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    import junction_test as jt
    jt.BUILD = build
    jt.PLUGIN_DIR = os.path.join(build, "plugins")
    from ngclient import NgClient
    # tests/integration/test_reload.py by path: every plugin's tests have a test_reload.py too
    import importlib.util
    spec = importlib.util.spec_from_file_location("core_test_reload", os.path.join(SRC, "tests", "integration", "test_reload.py"))
    core_test_reload = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core_test_reload)
    Traffic = core_test_reload.Traffic
    from xx_common import plugin_conf

    ng_port = jt.free_port(socket.SOCK_DGRAM)
    ic_port = jt.free_port()
    udp_port = jt.free_port(socket.SOCK_DGRAM)
    xconf, xports = plugin_conf(retransmit_ms=300, max_retries=8, tombstone_ms=0, tick_ms=50, log_level="warn")
    plugins = {
        "rtp-relay": {"ng_listen": f"127.0.0.1:{ng_port}", "port_range": "media"},
        # call_req_per_min = 0: a door placing calls back to back is the load, not a flood
        "intercom-json": {"listen": f"127.0.0.1:{ic_port}", "secret": SECRET, "keep_interval_ms": 60000,
                          "call_req_per_min": 0, "log_level": "warn"},
        "xxxcid-gateway": xconf,
        "udp-counter": {"listen": f"127.0.0.1:{udp_port}", "echo": True},
    }
    j = jt.Junction(plugins=plugins, server={"log_level": "info", "media_loops": 1}, plugin_dir=jt.PLUGIN_DIR)
    j.write_core(dict(j.core, ports={"media": {"min": MEDIA_PORTS[0], "max": MEDIA_PORTS[1]}}))
    j.start()
    pid = j.proc.pid
    stop = threading.Event()
    threads = []
    gen = None
    failures = []
    result = {"minutes": args.minutes, "warmup_s": args.warmup, "reload_every_s": args.reload_every, "sessions": args.sessions, "pps_per_direction": args.pps,
              "families": args.families, "pairs": args.pairs, "churn_per_s": args.churn, "udp_pps": args.udp_pps,
              "media_loops": 1, "host_cpus": os.cpu_count()}
    loads = {"rtp-relay churn": Load("rtp-relay churn", "rtp-relay"), "intercom-json": Load("intercom-json", "intercom-json"),
             "xxxcid-gateway": Load("xxxcid-gateway", "xxxcid-gateway")}
    xmedia = {"sent": 0, "received": 0}
    reloads = []
    samples = []  # (t, rss_kb, fds)
    capacity = []  # (t, media pool slab slots)
    try:
        # -- relay sessions and their RTP --------------------------------------------------------
        gen = subprocess.Popen([sys.executable, os.path.join(HERE, "rtpgen.py"), "--pps", str(args.pps)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        _, a_port, b_port = gen.stdout.readline().split()
        ng = NgClient(ng_port, timeout=10)
        sessions = relay_setup(ng, args.sessions, int(a_port), int(b_port))
        ng.close()
        gen.stdin.write(json.dumps(sessions) + "\n")
        gen.stdin.flush()
        gen_last = {}

        def gen_reader():
            for line in gen.stdout:
                gen_last.update(json.loads(line))

        gen_thread = threading.Thread(target=gen_reader, daemon=True)
        gen_thread.start()
        udp = Traffic(udp_port, rate_pps=args.udp_pps)
        udp.start()
        threads.append(threading.Thread(target=relay_churn, args=(ng_port, args.churn, stop, loads["rtp-relay churn"])))
        for f in range(args.families):
            threads.append(threading.Thread(target=intercom_family, args=(j, ic_port, f, stop, loads["intercom-json"], args.call_gap)))
        for k in range(args.pairs):
            threads.append(threading.Thread(target=xxxcid_pair, args=(j, xports, k, stop, loads["xxxcid-gateway"], xmedia, args.call_gap)))
        threads.append(threading.Thread(target=reloader, args=(j, args.reload_every, stop, reloads)))
        for t in threads:
            t.start()

        # -- run, sampling -----------------------------------------------------------------------
        t0 = time.monotonic()
        cpu0 = cpu_seconds(pid)
        end = t0 + args.minutes * 60
        next_s = t0
        while time.monotonic() < end:
            if j.proc.poll() is not None:
                failures.append(f"junction exited with {j.proc.returncode} during the soak")
                break
            rss, fds = sample(pid)
            t = time.monotonic() - t0
            samples.append((t, rss, fds))
            cap = pool_capacity(j)
            capacity.append((t, cap))
            print(f"t={t:6.0f}s rss={rss} kB fds={fds} pool={cap} reloads={len(reloads)} "
                  f"(failed {sum(1 for r in reloads if not r['ok'])}) rtp sent/recv={gen_last.get('sent', 0)}/{gen_last.get('received', 0)} "
                  + " ".join(f"{n}={l.completed}/{l.placed}" for n, l in loads.items()), flush=True)
            next_s += args.sample_every
            time.sleep(max(0.0, min(next_s, end) - time.monotonic()))
        if j.proc.poll() is None:
            rss, fds = sample(pid)
            samples.append((time.monotonic() - t0, rss, fds))
            result["server_cpu_pct"] = round(100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0), 1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        udp_sent, udp_echoed = udp.finish() if "udp" in locals() else (0, 0)
        gen_final = {}
        if gen is not None and gen.poll() is None:
            try:
                gen.stdin.write("stop\n")
                gen.stdin.flush()
                gen.wait(60)
                gen_thread.join(10)
            except (OSError, subprocess.TimeoutExpired):
                gen.kill()
            gen_final = dict(gen_last)
        # Left behind once the loads stopped (the 200 relay sessions are still up on purpose).
        try:
            leftover = {"core_calls": len(j.api("GET", "/api/v1/calls", expect=200)),
                        "relay_sessions": j.cmd("rtp-relay", "stats")["sessions"],
                        "intercom_calls": j.cmd("intercom-json", "info")["calls"],
                        "intercom_connections": j.cmd("intercom-json", "info")["connections"],
                        "xxxcid_calls": j.cmd("xxxcid-gateway", "stats")}
        except Exception as e:  # noqa: BLE001
            leftover = {"error": repr(e)}
        fds_idle = len(os.listdir(f"/proc/{pid}/fd")) if j.proc.poll() is None else None
        rc = j.stop() if j.proc is not None else None
        log = j.log().splitlines()
        if args.keep_log:
            with open(args.keep_log, "w") as f:
                f.write("\n".join(log) + "\n")
        j.cleanup()

    # -- report ------------------------------------------------------------------------------------
    after = [s for s in samples if s[0] >= args.warmup] or samples
    rss_all = [s[1] for s in samples]
    fds_all = [s[2] for s in samples]
    # Growth: the end (median of the last samples, so one sample's page-level noise does not
    # decide) against the sample at the end of the warm-up. The slopes tell a trend (a leak: the
    # second half climbs too) from a one-time step (the allocator: flat again after it).
    win = max(1, min(5, len(after) // 4))
    rss_end = median([s[1] for s in after[-win:]])
    second_half = [s for s in after if s[0] >= (after[0][0] + after[-1][0]) / 2]
    result["rss_kb"] = {"first": rss_all[0], "at_warmup": after[0][1], "last": rss_all[-1], "max": max(rss_all),
                        "growth_after_warmup": rss_end - after[0][1],
                        "slope_after_warmup_kb_per_min": round(slope_kb_per_min([(s[0], s[1]) for s in after]), 1),
                        "slope_second_half_kb_per_min": round(slope_kb_per_min([(s[0], s[1]) for s in second_half]), 1),
                        "slack": args.rss_slack_kb}
    result["fds"] = {"first": fds_all[0], "at_warmup": after[0][2], "last": fds_all[-1], "max": max(fds_all),
                     "after_loads_stopped": fds_idle, "slack": args.fd_slack}
    caps = [c for _, c in capacity if c is not None]
    if caps:
        result["media_pool_slots"] = {"first": caps[0], "max": max(caps), "last": caps[-1],
                                      "max_at_s": round(next(t for t, c in capacity if c == max(caps)))}
    result["samples"] = len(samples)
    by_plugin = {}
    for r in reloads:
        b = by_plugin.setdefault(r["plugin"], {"done": 0, "failed": 0, "max_cutover_us": 0})
        b["done"] += 1
        b["failed"] += 0 if r["ok"] else 1
        b["max_cutover_us"] = max(b["max_cutover_us"], r["cutover_us"] or 0)
    result["reloads"] = {"done": len(reloads), "failed": sum(1 for r in reloads if not r["ok"]), "by_plugin": by_plugin,
                         "first_failures": [r for r in reloads if not r["ok"]][:5]}
    result["rtp_relay_media"] = gen_final
    result["udp_counter"] = {"sent": udp_sent, "echoed": udp_echoed, "lost": udp_sent - udp_echoed}
    result["xxxcid_media"] = dict(xmedia, lost=xmedia["sent"] - xmedia["received"])
    result["calls"] = {n: l.summary(reloads) for n, l in loads.items()}
    for r in reloads:
        r.pop("t")
    result["left_at_end"] = leftover
    errors = [l for l in log if " error " in l[:40] or "Sanitizer" in l]
    warnings = [l for l in log if " warn " in l[:40]]
    result["server_log"] = {"lines": len(log), "errors": len(errors), "warnings": len(warnings), "first_errors": errors[:10],
                            "first_warnings": warnings[:10]}
    result["exit_code"] = rc

    if result["reloads"]["failed"] or not reloads:
        failures.append(f"reloads: {result['reloads']['failed']} of {len(reloads)} failed")
    if not gen_final.get("final") or gen_final.get("lost") or gen_final.get("bad") or not gen_final.get("sent"):
        failures.append(f"rtp-relay media: {gen_final}")
    if udp_sent == 0 or udp_sent != udp_echoed:
        failures.append(f"udp-counter: {udp_sent} sent, {udp_echoed} echoed")
    if xmedia["sent"] != xmedia["received"]:
        failures.append(f"xxxcid-gateway media: {xmedia}")
    for n, l in loads.items():
        if l.n_errors or l.completed == 0:
            failures.append(f"{n}: {l.completed} of {l.placed} completed, {l.n_errors} failed")
    if result["fds"]["last"] - result["fds"]["at_warmup"] > args.fd_slack:
        failures.append(f"fds grew {result['fds']['at_warmup']} -> {result['fds']['last']} after warm-up")
    if result["rss_kb"]["growth_after_warmup"] > args.rss_slack_kb:
        failures.append(f"RSS grew {result['rss_kb']['growth_after_warmup']} kB after warm-up (slack {args.rss_slack_kb})")
    lo = leftover
    if "error" in lo or lo["core_calls"] or lo["relay_sessions"] != args.sessions or lo["intercom_calls"] \
            or lo["xxxcid_calls"].get("door_calls_active") or lo["xxxcid_calls"].get("phone_calls_active"):
        failures.append(f"left behind at the end: {lo}")
    if errors:
        failures.append(f"{len(errors)} error line(s) in the server log")
    if rc != 0:
        failures.append(f"junction exit code {rc}")
    result["failures"] = failures
    result["ok"] = not failures
    print(json.dumps(result, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(2)
