#!/usr/bin/env python3
"""RTP traffic for the soak (bench/soak/run.py): paced packets both ways through rtp-relay
sessions, counted per stream, for as long as the soak lasts.

Why not bench/rtp-relay's rtp_relay_loadgen: it busy-polls a core for the whole run (right for
a throughput bench, wrong for minutes on a shared 2-core machine), and it stops counting a fixed
300 ms after sending, so a descheduled generator would count packets still queued in its own
socket as lost. Here the generator sleeps between 5 ms ticks and, when told to stop, keeps
reading until every packet sent has arrived or nothing has come for --quiet seconds: a loss it
reports is a packet the relay never delivered.

Protocol with the parent, one line each over stdin/stdout:
  -> "ports A B"            the two local sockets (side A, side B of every session), bound
  <- JSON [[to_a, to_b],..] per session, the relay port A sends to and the one B sends to
  -> JSON progress lines    {"sent", "received", "bad"} every --report seconds
  <- "stop"                 stop sending, drain, then
  -> JSON summary           sent, received, lost, send_fail, bad, streams_with_loss, worst
"""
import argparse
import json
import os
import select
import socket
import struct
import sys
import threading
import time

SO_RCVBUFFORCE = 33


def big_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):  # FORCE needs root; else capped at rmem_max
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, 64 << 20)
            break
        except OSError:
            continue
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pps", type=int, default=50, help="packets/s per stream (a stream: one direction of a session)")
    ap.add_argument("--size", type=int, default=172, help="datagram bytes (RTP header + 160 B PCMU = 20 ms)")
    ap.add_argument("--report", type=float, default=5.0)
    ap.add_argument("--quiet", type=float, default=5.0, help="drain: give up after this long without a packet")
    a = ap.parse_args()
    socks = [big_socket(), big_socket()]
    print("ports %d %d" % (socks[0].getsockname()[1], socks[1].getsockname()[1]), flush=True)
    sessions = json.loads(sys.stdin.readline())
    n = len(sessions)
    # stream k = 2*session + direction (0: A -> relay -> B, 1: B -> relay -> A)
    dest = [[("127.0.0.1", sessions[s][0]) for s in range(n)], [("127.0.0.1", sessions[s][1]) for s in range(n)]]
    sent = [0] * (2 * n)
    recv = [0] * (2 * n)
    totals = {"send_fail": 0, "bad": 0}
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    pad = b"\xd5" * (a.size - 12)
    hdr = struct.Struct("!BBHII")

    def drain():
        got = 0
        for d, s in enumerate(socks):
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                if len(data) < 12:
                    totals["bad"] += 1
                    continue
                k = int.from_bytes(data[8:12], "big") - 1  # SSRC = stream + 1
                if not 0 <= k < 2 * n or (k & 1) == d:  # side A receives B's packets (odd streams), B receives A's
                    totals["bad"] += 1
                    continue
                recv[k] += 1
                got += 1
        return got

    rate = a.pps * 2 * n
    t0 = time.monotonic()
    next_report = t0 + a.report
    cursor = 0
    due_sent = 0
    while not stop.is_set():
        now = time.monotonic()
        target = int((now - t0) * rate)
        # After a stall (shared machine), send at most 100 ms worth at once: the offered load
        # stays honest and the relay is never handed an unbounded burst.
        if target - due_sent > rate // 10:
            due_sent = target - rate // 10
        while due_sent < target:
            k = cursor % (2 * n)
            cursor += 1
            due_sent += 1
            s, d = k >> 1, k & 1
            sent[k] += 1
            pkt = hdr.pack(0x80, 0, sent[k] & 0xFFFF, (sent[k] * 160) & 0xFFFFFFFF, k + 1) + pad
            try:
                socks[d].sendto(pkt, dest[d][s])
            except (BlockingIOError, OSError):
                sent[k] -= 1
                totals["send_fail"] += 1
        drain()
        if now >= next_report:
            next_report += a.report
            print(json.dumps({"sent": sum(sent), "received": sum(recv), "bad": totals["bad"], "send_fail": totals["send_fail"]}),
                  flush=True)
        # Sleep to the next 5 ms tick: a batch per tick, no spinning.
        time.sleep(max(0.0, 0.005 - (time.monotonic() - now)))
    # Drain: until everything sent has come back, or --quiet seconds without a packet.
    want = sum(sent)
    last = time.monotonic()
    while sum(recv) < want and time.monotonic() - last < a.quiet:
        select.select(socks, [], [], 0.1)
        if drain():
            last = time.monotonic()
    loss = [max(0, sent[k] - recv[k]) for k in range(2 * n)]
    dup = sum(max(0, recv[k] - sent[k]) for k in range(2 * n))
    print(json.dumps({"final": True, "sessions": n, "streams": 2 * n, "pps_per_stream": a.pps, "seconds": round(time.monotonic() - t0, 1),
                      "sent": want, "received": sum(recv), "lost": sum(loss), "duplicated": dup, "send_fail": totals["send_fail"],
                      "bad": totals["bad"], "streams_with_loss": sum(1 for x in loss if x > 0),
                      "worst_stream_lost": max(loss) if loss else 0, "streams_silent": sum(1 for k in range(2 * n) if sent[k] and not recv[k])}),
          flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
