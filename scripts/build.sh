#!/usr/bin/env bash
# Configures and builds. `scripts/build.sh` -> build/ ; `scripts/build.sh asan` -> build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer); `scripts/build.sh tsan` -> build-tsan/ (ThreadSanitizer,
# only the targets of the threaded tests);
# `scripts/build.sh fuzz` -> build-fuzz/ (clang, libFuzzer + ASan + UBSan; only the fuzz targets and
# what they link, which tests/fuzz/run_all.py runs).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DJN_SANITIZE=ON -DJN_BENCH=OFF) ;;
  # Only what the threaded tests need (scripts/test.sh runs those on it): the server, the plugins
  # and tools they load, the bus unit test. Half the build of everything.
  tsan) dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DJN_TSAN=ON -DJN_BENCH=OFF)
        target=(--target junction rtp-relay media-echo worker-test tcp-loop-echo call-peer-a call-peer-b udp-counter rtp_relay_srtp_tool test_bus) ;;
  # Debug keeps asserts; JN_FUZZ adds -O1 and line tables. Only the fuzz_all target is built.
  fuzz) dir=build-fuzz; target=(--target fuzz_all)
        flags=(-DCMAKE_BUILD_TYPE=Debug -DJN_FUZZ=ON -DJN_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan|fuzz]" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DJN_WERROR=ON "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)" ${target[@]+"${target[@]}"}
