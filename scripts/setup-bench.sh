#!/usr/bin/env bash
# The benchmark opponents that are libraries (not needed to build or test Junction): libosip2
# (SIP parse cost, bench/sip) and libavformat (PS demux, bench/media). The bench programs that
# link them are built only when these are present (pkg-config), so CI does not need them.
set -euo pipefail
bash "$(dirname "$0")/setup.sh"
PKGS=(libosip2-dev libavformat-dev libavcodec-dev libavutil-dev)
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
