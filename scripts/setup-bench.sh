#!/usr/bin/env bash
# The benchmark opponents that are libraries (not needed to build or test Junction): libosip2
# (SIP parse cost, bench/sip_parse), libavformat (PS demux, bench/media_ps) and Janus (WebRTC viewers,
# bench/webrtc_viewers). The bench programs
# that link them are built only when these are present (pkg-config), so CI does not need them.
set -euo pipefail
exec bash "$(dirname "$0")/setup.sh" libosip2-dev libavformat-dev libavcodec-dev libavutil-dev janus
