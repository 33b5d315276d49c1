#!/usr/bin/env python3
"""Seeds the sdk/media RTP fuzz corpora (tests/fuzz/corpus/rtp_*) with real packets: ffmpeg's own
RTP muxer (an independent packetizer: H.264 FU-A/STAP-A, H.265 FU/AP, AAC mpeg4-generic,
PCMA, Opus) sends to a loopback socket; each seed file is an option byte and a run of packets in
the fuzz input format ([2-byte length][packet] ...). Run once; tests/fuzz/run_all.py --grow grows them."""
import os
import socket
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC_V = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "30"]
SRC_A = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1"]
JOBS = {
    "rtp_h264": (0x40, SRC_V + ["-c:v", "libx264", "-g", "10"]),
    "rtp_h265": (0x40, SRC_V + ["-c:v", "libx265", "-x265-params", "log-level=error:keyint=10"]),
    "rtp_aac": (0x40, SRC_A + ["-c:a", "aac", "-b:a", "64k"]),
    "rtp_audio": (0x41, SRC_A + ["-c:a", "libopus"]),
    "rtp_audio_pcma": (0x40, SRC_A + ["-ar", "8000", "-c:a", "pcm_alaw"]),
}


def capture(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error"] + args + ["-sdp_file", os.devnull, "-f", "rtp", "-pkt_size", "1000",
                    f"rtp://127.0.0.1:{port}?rtcpport={port}"], check=True, timeout=60)
    s.settimeout(0.5)
    pkts = []
    try:
        while True:
            p = s.recv(65536)
            if len(p) >= 2 and 192 <= p[1] <= 223:
                continue  # RTCP
            pkts.append(p)
    except socket.timeout:
        pass
    return pkts


def main():
    for name, (opt, args) in JOBS.items():
        pkts = capture(args)
        corpus = os.path.join(ROOT, "corpus", name.replace("_pcma", ""))
        os.makedirs(corpus, exist_ok=True)
        for i in range(0, min(len(pkts), 240), 12):
            blob = bytes([opt]) + b"".join(len(p).to_bytes(2, "big") + p for p in pkts[i:i + 12])
            with open(os.path.join(corpus, f"ffmpeg_{name}_{i // 12:02d}"), "wb") as f:
                f.write(blob)
        if name == "rtp_h264":  # the reorder buffer reads any RTP: a few shuffled runs
            corpus = os.path.join(ROOT, "corpus", "rtp_reorder")
            os.makedirs(corpus, exist_ok=True)
            for i in range(0, min(len(pkts), 60), 12):
                run = pkts[i:i + 12]
                run = run[1::2] + run[0::2] + run[3:5]
                blob = bytes([0]) + b"".join(len(p).to_bytes(2, "big") + p for p in run)
                with open(os.path.join(corpus, f"ffmpeg_reorder_{i // 12:02d}"), "wb") as f:
                    f.write(blob)
        print(name, len(pkts), "packets")


if __name__ == "__main__":
    sys.exit(main())
