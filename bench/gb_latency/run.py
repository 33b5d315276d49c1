#!/usr/bin/env python3
"""GB/T 28181 live-view start latency and late-joiner time (issue 14, Benchmarks).

Starts junction (release build, build/) with gb28181 + gb-consumer and the device simulator
(tests/lib/gb_device_sim.py + gb_media_sim.py: H.264 320x240 25 fps, GOP = 25 frames = 1 s,
looped 2 s clip, UDP) through the gb28181 test fixture (plugins/gb28181/tests/media_env.py), then
per repetition:
  start  : gb-consumer subscribes to gb28181/<dev>/<ch>/video, then calls gb:<dev>/<ch>; time from
           the call to the log line "gb-consumer: first keyframe on ..." (first keyframe on the bus).
  late   : after a random 0.2-1.2 s (one GOP) of running stream (a random phase in the 1 s GOP), a second
           subscription + a second viewer call; time to that subscription's first keyframe.
Both viewers then leave and the session is BYEd (play.grace_ms 500) before the next repetition,
so every start is a cold INVITE. Breakdown from the simulator's own event times (same monotonic
clock, same process): call -> INVITE received, first keyframe sent -> on the bus; for the late
joiner: join -> IFrame DeviceControl at the device, and join -> next keyframe the device sent.

With --catch-up, gb28181 runs with media.gop_cache = true and the late joiner subscribes with
gb-consumer's {"catch_up": true} (its own catch-up stream named in media.keyframe_request): it gets
the cached GOP synchronously, so "late" is the join -> the subscribe's answer with the keyframe in
it, and "late_behind" is how far behind live it starts (cached video frames after the keyframe /
fps), the choice ZLMediaKit makes; without it, the joiner waits for a fresh keyframe (live).

Usage: bench/gb_latency/run.py [-n 20] [--vcodec h264|h265] [--transport udp|tcp_passive] [--catch-up]
"""
import argparse
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "plugins", "gb28181", "tests"))
from media_env import DEV1, GbMediaTest  # noqa: E402


class Bench(GbMediaTest):
    def runTest(self):  # unittest needs one; the benchmark drives setUp/tearDown itself
        pass


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    ms = [x * 1000 for x in xs]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1), "p90_ms": round(pct(ms, 0.9), 1),
            "min_ms": round(min(ms), 1), "max_ms": round(max(ms), 1)}


def first_key_log(j, stream, sub, start):
    return j.wait_for_log(rf"gb-consumer: first keyframe on {stream} \(sub {sub}\)", timeout=30, start=start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--vcodec", default="h264", choices=["h264", "h265"])
    ap.add_argument("--transport", default="udp", choices=["udp", "tcp_passive", "tcp_active"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--catch-up", action="store_true", help="media.gop_cache on; the late joiner asks for the cached GOP")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    if a.catch_up:
        Bench.conf_over = {"media": dict(Bench.media_conf["media"], gop_cache=True)}
    Bench.setUpClass()
    b = Bench()
    b.setUp()
    rows = []
    try:
        dev = b.media_device(DEV1, a.transport, media_codec=a.vcodec)
        ch = dev.channels[0]["DeviceID"]
        stream = f"gb28181/{DEV1}/{ch}/video"
        for i in range(a.n):
            mark = dev.mark()
            sub1 = b.watch(DEV1, ch)
            n0 = len(b.j.lines)
            t0 = time.monotonic()
            leg1 = b.viewer(ch, DEV1)
            first_key_log(b.j, stream, sub1, n0)
            t1 = time.monotonic()
            inv = dev.wait("invite", since=mark, timeout=5)
            # The simulator records a frame after its last packet went out; with the RTP marker the
            # frame can reach the bus before that record is written: wait for it.
            key1 = dev.wait("media_frame", since=mark, timeout=5, track="v", key=True)
            time.sleep(rnd.uniform(0.2, 1.2))  # the join's phase in the GOP, not a synchronisation
            mark2 = dev.mark()
            n1 = len(b.j.lines)
            t2 = time.monotonic()
            behind = None
            if a.catch_up:
                r2 = b.consumer("subscribe", {"stream": stream, "catch_up": True})
                t3 = time.monotonic()  # the cached frames were published during the call
                sub2 = r2["sub"]
                if r2["catch_up_frames"] > 0:
                    behind = (r2["catch_up_frames"] - 1) / 25.0  # frames after the cached keyframe
                leg2 = b.viewer(ch, DEV1)
                first_key_log(b.j, stream, sub2, n1)
                if behind is None:
                    t3 = time.monotonic()  # nothing cached: it waited for a keyframe
            else:
                sub2 = b.watch(DEV1, ch)
                leg2 = b.viewer(ch, DEV1)
                first_key_log(b.j, stream, sub2, n1)
                t3 = time.monotonic()
            ifr = [e for e in dev.find("control", since=mark2) if e["name"] in ("IFameCmd", "IFrameCmd")]
            keys2 = dev.find("media_frame", since=mark2, track="v", key=True)
            rows.append({"start": t1 - t0, "call_to_invite": inv["t"] - t0, "key_sent_to_bus": t1 - key1["t"],
                         "late": t3 - t2, "late_next_key_sent": keys2[0]["t"] - t2 if keys2 else None,
                         "late_behind": behind,
                         "late_iframe_at_device": ifr[0]["t"] - t2 if ifr else None,
                         "invites": len(dev.find("invite", since=mark))})
            print(json.dumps({k: (round(v * 1000, 1) if isinstance(v, float) else v) for k, v in rows[-1].items()}),
                  flush=True)
            mark3 = dev.mark()
            b.end_viewer(leg1)
            b.end_viewer(leg2)
            for s in (sub1, sub2):
                b.consumer("unsubscribe", {"sub": s})
            dev.wait("bye_received", since=mark3, timeout=15)  # cold start next time
    finally:
        b.tearDown()
    res = {"vcodec": a.vcodec, "transport": a.transport, "gop_s": 1.0, "fps": 25, "catch_up": a.catch_up}
    for k in ("start", "call_to_invite", "key_sent_to_bus", "late", "late_next_key_sent", "late_iframe_at_device",
              "late_behind"):
        xs = [r[k] for r in rows if r[k] is not None]
        if xs:
            res[k] = summary(xs)
    res["late_iframe_sent"] = sum(1 for r in rows if r["late_iframe_at_device"] is not None)
    res["late_from_cache"] = sum(1 for r in rows if r["late_behind"] is not None)
    res["one_invite_per_rep"] = all(r["invites"] == 1 for r in rows)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
