#!/usr/bin/env bash
# CI hook: builds the fuzz targets and runs each for a short bounded time (20 s each by default,
# HIMG_FUZZ_SECONDS to change it). Fails on any finding (crash, panic, OOM, timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash benches/fuzz.sh "${HIMG_FUZZ_SECONDS:-20}"
