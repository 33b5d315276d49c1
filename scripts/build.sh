#!/usr/bin/env bash
# Configures and builds. `scripts/build.sh` -> build/ ; `scripts/build.sh asan` -> build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer); `scripts/build.sh tsan` -> build-tsan/ (ThreadSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DJN_SANITIZE=ON) ;;
  tsan) dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DJN_TSAN=ON) ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan]" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DJN_WERROR=ON "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)"
