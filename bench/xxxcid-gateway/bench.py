#!/usr/bin/env python3
"""xxxcid-gateway benchmark: concurrent door calls and phones against one junction process.

Phase 1 (signalling): N door/phone pairs, each looping the document's whole flow (call, call ok,
enable_video, talk, unlock, hang-up by either side) for --seconds; reports completed flows/s and
the flow latency percentiles.
Phase 2 (media): N calls talking at once, every door sending video at --pps; reports datagrams
relayed to the phones per second, the loss, the server's CPU and the bus payload copies (0).

  python3 bench/xxxcid-gateway/bench.py --build build-xxxcid-gateway --pairs 20 --seconds 15
"""
import argparse
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--pps", type=int, default=200, help="video datagrams/s per door in phase 2")
    ap.add_argument("--media-seconds", type=float, default=10)
    args = ap.parse_args()
    os.environ["JN_BUILD_DIR"] = os.path.abspath(os.path.join(ROOT, args.build)) if not os.path.isabs(args.build) else args.build
    sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
    sys.path.insert(0, os.path.join(ROOT, "plugins", "xxxcid-gateway", "tests"))
    import junction_test
    from xx_common import plugin_conf, NAME
    from door_sim import DoorSim
    from phone_sim import PhoneSim

    conf, ports = plugin_conf(retransmit_ms=300, max_retries=8, tombstone_ms=0, tick_ms=50, log_level="warn")
    j = junction_test.Junction(plugins={NAME: conf})
    j.start()
    try:
        pairs = []
        for i in range(args.pairs):
            room, uid, door = "Y%011d" % (i + 1), "9%06d" % i, "M%08d" % (i + 1)
            j.cmd(NAME, "bind", {"uid": uid, "room": room, "community": "bench"})
            pairs.append((DoorSim(ports["door"], ports["video"], ports["audio"], addr=door, retransmit=0.3),
                          PhoneSim(ports["phone"], uid=uid, room=room)))

        # -- phase 1 ------------------------------------------------------------------------------
        lat, errors = [], []
        stop = time.monotonic() + args.seconds

        def loop(door, phone, k):
            callee = "S" + phone.room[1:]
            n = 0
            while time.monotonic() < stop:
                t0 = time.monotonic()
                try:
                    m = phone.mark()
                    th = threading.Thread(target=door.call, args=(callee,))
                    th.start()
                    phone.wait("call", start=m)
                    phone.order("call ok", door.addr)
                    th.join()
                    phone.order("enable_video", door.addr)
                    m = phone.mark()
                    phone.order("talk", door.addr)
                    phone.wait("talk begin", start=m)
                    m = phone.mark()
                    phone.order("unlock", door.addr)
                    phone.wait("unlock success", start=m)
                    if (n + k) % 2:
                        assert door.hangup(callee)
                    else:
                        m = phone.mark()
                        phone.order("over", door.addr)
                        phone.wait("over success", start=m)
                    lat.append(time.monotonic() - t0)
                except AssertionError as e:
                    errors.append(str(e)[:200])
                n += 1
                while j.cmd(NAME, "calls")["doors"] and any(d["door"] == door.addr for d in j.cmd(NAME, "calls")["doors"]):
                    time.sleep(0.01)
                with door.cond:  # keep the packet log short
                    door.packets.clear()
                with phone.cond:
                    phone.orders.clear()

        c0, t0 = cpu_seconds(j.proc.pid), time.monotonic()
        ts = [threading.Thread(target=loop, args=(d, p, k)) for k, (d, p) in enumerate(pairs)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.monotonic() - t0
        cpu = cpu_seconds(j.proc.pid) - c0
        lat.sort()
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
        print(f"phase 1: {args.pairs} door/phone pairs, {len(lat)} complete flows in {wall:.1f}s = "
              f"{len(lat) / wall:.1f} flows/s; latency p50 {pct(0.5):.1f} ms p99 {pct(0.99):.1f} ms; "
              f"errors {len(errors)}; server CPU {cpu / wall * 100:.1f}%")
        for e in errors[:3]:
            print("  error:", e)

        # -- phase 2 ------------------------------------------------------------------------------
        for d, p in pairs:
            callee = "S" + p.room[1:]
            m = p.mark()
            th = threading.Thread(target=d.call, args=(callee,))
            th.start()
            p.wait("call", start=m)
            p.order("call ok", d.addr)
            th.join()
            d.send_video(b"latch")
            p.order("enable_video", d.addr)
        for d, p in pairs:
            p.wait_media("video", 0)
        time.sleep(0.5)
        for _, p in pairs:
            with p.cond:
                p.video.clear()
        payload = b"\x80" * 1200
        sent = [0]
        c0, t0 = cpu_seconds(j.proc.pid), time.monotonic()
        end = t0 + args.media_seconds
        interval = 1.0 / args.pps
        nxt = t0
        while time.monotonic() < end:
            for d, _ in pairs:
                d.send_video(payload)
            sent[0] += len(pairs)
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(0.5)
        wall = time.monotonic() - t0 - 0.5
        cpu = cpu_seconds(j.proc.pid) - c0
        got = sum(len(p.video) for _, p in pairs)
        text = j.api("GET", "/metrics", expect=200)
        copies = [l for l in text.splitlines() if l.startswith("junction_bus_payload_copies_total")]
        print(f"phase 2: {args.pairs} calls, {sent[0]} video datagrams of 1200 B sent ({sent[0] / wall:.0f}/s), "
              f"{got} relayed to phones ({got / wall:.0f}/s), loss {(1 - got / max(1, sent[0])) * 100:.2f}%, "
              f"server CPU {cpu / wall * 100:.1f}%; {copies[0] if copies else 'no copy metric'}")
        for d, p in pairs:
            d.close()
            p.close()
    finally:
        j.stop()
        j.cleanup()


if __name__ == "__main__":
    main()
