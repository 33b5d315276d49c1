#!/usr/bin/env bash
# H.264 RTP packetize / depacketize cost (docs/benchmarks.md, "Media: RTP packetizers").
# Encodes a 720p25 libx264 stream at ~2 Mb/s (30 s, not committed) and runs the bench on it.
#   bench/media_rtp/run.sh [BUILD_DIR]     (default build/; builds bench_media_rtp there)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
cmake --build "$build" --target bench_media_rtp >/dev/null
stream="$build/bench/media_rtp/bench-720p-2mbps.h264"
if [ ! -f "$stream" ]; then
  ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -t 30 \
    -c:v libx264 -preset veryfast -b:v 2M -maxrate 2M -bufsize 1M -g 50 -f h264 "$stream"
fi
"$build/bench/media_rtp/bench_media_rtp" "$stream" 1200 20
