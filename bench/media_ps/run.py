#!/usr/bin/env python3
"""Makes the PS capture (ffmpeg: 2 Mb/s H.264 640x360 25 fps + G.711A, 60 s, muxed GB-style by
sdk/media through tests/tools/media_ps_tool) and runs bench_media_ps on it.

  python3 bench/media_ps/run.py [--build build] [--seconds 60] [--iterations 10]
"""
import argparse
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--build", default="build")
ap.add_argument("--seconds", type=int, default=60)
ap.add_argument("--iterations", type=int, default=10)
ap.add_argument("--chunk", type=int, default=1400)
ap.add_argument("--dir", default="/tmp/jn-bench-media-ps")
a = ap.parse_args()
os.makedirs(a.dir, exist_ok=True)
d, s = a.dir, str(a.seconds)
cap = f"{d}/capture_{s}s.ps"
if not os.path.exists(cap):
    ff = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(ff + ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", s, "-c:v", "libx264",
                         "-preset", "veryfast", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M", "-g", "50", "-bf", "0",
                         "-x264-params", "repeat-headers=1", "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", f"{d}/v.264"],
                   check=True)
    subprocess.run(ff + ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000", "-t", s, "-c:a", "pcm_alaw",
                         "-f", "alaw", f"{d}/a.alaw"], check=True)
    subprocess.run([f"{a.build}/tools/media_ps_tool", "roundtrip", "--vcodec", "h264", "--video", f"{d}/v.264",
                    "--acodec", "pcma", "--audio", f"{d}/a.alaw", "--ps-out", cap, "--out-video", f"{d}/o.264",
                    "--out-audio", f"{d}/o.alaw"], check=True, stdout=subprocess.DEVNULL)
sys.exit(subprocess.run([f"{a.build}/bench/bench_media_ps", cap, "--iterations", str(a.iterations),
                         "--chunk", str(a.chunk)]).returncode)
