#!/usr/bin/env bash
# Sets up (Debian packages), builds, and runs the server on the shipped conf/junction.toml.
# Extra arguments go to junction (e.g. --config other.toml). Stop with Ctrl-C (drains plugins).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec ./build/junction "$@"
