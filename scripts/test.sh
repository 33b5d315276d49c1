#!/usr/bin/env bash
# Sets up, builds, and runs every test: the whole suite on a normal build, then again on an
# ASan+UBSan build (leaks and undefined behaviour fail the run), then the tests that cross threads
# (media loops, the relay on them, cross-thread buffers) on a ThreadSanitizer build; between them,
# every fuzz target runs under libFuzzer for a bounded time (tests/fuzz/run_all.py).
# JN_TEST_SKIP_ASAN=1 skips the sanitizer passes (for quick local runs only).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)
start=$SECONDS
stage() { echo "=== [$((SECONDS - start)) s] $*"; }  # stage times, for keeping CI under its budget
stage "build release"; scripts/build.sh release
stage "release suite"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900)
if [ "${JN_TEST_SKIP_ASAN:-0}" != 1 ]; then
  stage "build asan"; scripts/build.sh asan
  stage "asan suite"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_odr_violation=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # Left out of this pass on purpose (they run in the release pass above): the out-of-tree SDK
  # build (a compile check, nothing for a sanitizer to see) and the two sdk/webrtc browser-interop
  # tests (the same Transport/PeerConnection code runs here in unit.test_webrtc_transport/_peer,
  # two endpoints back to back; verto-ws.test_media keeps a real browser against the ASan server).
  (cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 1200 \
     -E 'integration\.test_sdk_out_of_tree|integration\.test_webrtc_(transport_)?chromium|verto-ws\.test_browser')
  # libFuzzer on every registered fuzz target, from its committed corpus, for a bounded time each
  # (JN_FUZZ_TIME seconds, 12 here): any crash, leak, timeout or sanitizer report fails the run
  # with the target's name and the input's path. Measured cold (no ccache) on 2 cores: build 61 s
  # idle, 155 s with the machine loaded; 12 targets x 20 s, 2 at a time, 132 s.
  stage "build fuzz"; scripts/build.sh fuzz
  stage "fuzz"
  # 12 s a target by default: ~50 targets, two at a time, is five minutes of the CI budget.
  JN_FUZZ_TIME="${JN_FUZZ_TIME:-12}" tests/fuzz/run_all.py --jobs "$jobs"
  stage "build tsan"; scripts/build.sh tsan
  stage "tsan subset"
  export TSAN_OPTIONS="halt_on_error=0:report_signal_unsafe=0"
  (cd build-tsan && ctest --output-on-failure -j "$jobs" --timeout 1200 \
     -R 'test_media_loops|test_loop_services|test_workers|test_tcp_loops|rtp-relay\.test_(reload|ng|anchor|kamailio)|unit\.test_bus')
fi
stage "done"
