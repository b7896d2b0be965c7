#!/usr/bin/env bash
# CI hook: builds the fuzz targets and runs each for a short bounded time (20 s each by default,
# HIMG_FUZZ_SECONDS to change it). Fails on any finding (crash, panic, OOM, timeout).
#
# CI builds the targets at opt-level 1 (a cold build in a few minutes instead of a quarter of an
# hour on two cores; fewer executions per second matter little in 20 s) and with a fixed seed, so a
# run explores the same inputs every time and a red CI is reproducible with the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}"
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-0}"
export HIMG_FUZZ_SEED="${HIMG_FUZZ_SEED:-1}"
exec bash benches/fuzz.sh "${HIMG_FUZZ_SECONDS:-20}"
