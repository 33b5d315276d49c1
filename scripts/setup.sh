#!/usr/bin/env bash
# Installs every Debian 12 package the build and the tests need (plus any given as arguments). Idempotent: a second run
# installs nothing and takes a second.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git python3 curl
  libuv1-dev libboost-dev libboost-filesystem-dev libwebsockets-dev libwebsockets-evlib-uv libssl-dev nlohmann-json3-dev
  libsrtp2-dev libusrsctp-dev libfmt-dev doctest-dev libtomlplusplus-dev libsqlite3-dev libc-ares-dev libpugixml-dev
  clang libclang-rt-14-dev
  sip-tester kamailio rtpengine-daemon iproute2 liburing-dev openssl
  ffmpeg chromium nginx-light libnginx-mod-rtmp libopus-dev libavcodec-dev libavutil-dev
)
PKGS+=("$@")  # extra packages a caller needs too (scripts/setup-bench.sh)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
