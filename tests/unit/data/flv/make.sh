#!/usr/bin/env bash
# Regenerates the FLV reader's test data (tests/unit/test_rtmp_flv_reader.cpp): an FLV written by
# ffmpeg (H.264 main with B-frames, so composition times are not zero, two GOPs; G.711 A-law) and
# what ffmpeg itself extracts from it: the H.264 elementary stream (Annex B) and the raw A-law.
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=64x48:rate=10 \
  -f lavfi -i sine=frequency=440:sample_rate=8000 -t 1 \
  -c:v libx264 -profile:v main -bf 2 -g 5 -keyint_min 5 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a pcm_alaw -ar 8000 -ac 1 -f flv screen.flv
ffmpeg -hide_banner -loglevel error -y -i screen.flv -map 0:v -c copy -bsf:v h264_mp4toannexb -f h264 screen.h264
ffmpeg -hide_banner -loglevel error -y -i screen.flv -map 0:a -c copy -f alaw screen.alaw
